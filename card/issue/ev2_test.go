package issue_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/card/issue"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/simulator/vcard"
)

// TestPersonaliseEV3: a factory-fresh EV3 is personalised in EV2 secure
// messaging and gets the Transaction MAC file with its own diversified
// key; the card MACs a transaction with exactly that key; Wipe returns it
// to the factory state and it can be issued again.
func TestPersonaliseEV3(t *testing.T) {
	ks, keys := issuerKeys(t)
	ctx := context.Background()
	vc := vcard.New(testUID, vcard.WithGeneration(vcard.EV3))
	p := sample(t, 42)
	err := issue.Personalise(ctx, vc, keys, testUID, p)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("tmac-master")) {
		t.Fatalf("EV3 without a Transaction MAC master: %v; want the refusal naming tmac-master", err)
	}
	if before, _ := vcard.New(testUID, vcard.WithGeneration(vcard.EV3)).MarshalBinary(); !bytes.Equal(mustState(t, vc), before) {
		t.Fatal("the refused personalisation wrote to the card")
	}
	if _, err := ks.Generate(ctx, hsm.LabelTMACMaster, hsm.KindTMACMaster); err != nil {
		t.Fatal(err)
	}
	must(t, "personalise EV3", issue.Personalise(ctx, vc, keys, testUID, p))
	checkCard(t, vc, keys, p)

	tmKey, err := keys.TMACKey(ctx, testUID, 0)
	must(t, "tmac key", err)
	vc.Reset()
	c := desfire.New(vc)
	must(t, "select", c.SelectApplication(card.AIDTransport.Bytes()))
	must(t, "issuer EV2 auth", c.AuthenticateEV2First(card.KeyIssuer, key(t, keys, card.RoleIssuer, card.AIDTransport)))
	fs, err := c.GetFileSettings(card.FileTMAC)
	must(t, "TMAC file settings", err)
	if fs.Type != desfire.FileTransactionMAC || fs.Rights.Read != card.KeyValidator {
		t.Fatalf("TMAC file %+v", fs)
	}
	must(t, "validator EV2 auth", c.AuthenticateEV2First(card.KeyValidator, key(t, keys, card.RoleValidator, card.AIDTransport)))
	must(t, "debit", c.Debit(card.FilePurse, 100, desfire.CommMAC))
	tmc, tmv, err := c.CommitTMAC()
	must(t, "commit", err)
	want, _ := desfire.TransactionMAC(tmKey.Value[:], tmc, testUID, desfire.TMI(nil).Value(desfire.InsDebit, card.FilePurse, 100))
	// Personalisation's purse credit was the application's first MACed
	// transaction.
	if tmc != 2 || tmv != want {
		t.Fatalf("TMC %d TMV %X; want 2 and %X (the key from cardkey.TMACKey)", tmc, tmv, want)
	}

	must(t, "wipe", issue.Wipe(ctx, vc, keys, testUID))
	p2 := sample(t, 43)
	must(t, "re-issue", issue.Personalise(ctx, vc, keys, testUID, p2))
	checkCard(t, vc, keys, p2)
	if err := issue.Personalise(ctx, vc, keys, testUID, p); !errors.Is(err, issue.ErrAlreadyPersonalised) {
		t.Fatalf("personalised again with other data: %v", err)
	}
}

func mustState(t *testing.T, vc *vcard.Card) []byte {
	t.Helper()
	b, err := vc.MarshalBinary()
	must(t, "state", err)
	return b
}
