package issue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/apdu"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/card/issue"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/simulator/vcard"
)

var testUID = []byte{0x04, 0x44, 0x0F, 0x32, 0x76, 0x31, 0x80}

// issuerKeys is an issuer keystore with version 1 of every role's master.
func issuerKeys(t testing.TB) (*hsm.Keystore, *cardkey.Source) {
	t.Helper()
	ks, err := hsm.CreateKeystore(filepath.Join(t.TempDir(), "keys.json"), []byte("test"),
		hsm.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	for _, r := range hsm.Roles {
		if _, err := ks.Generate(context.Background(), hsm.CardMasterLabel(r), hsm.KindCardMaster); err != nil {
			t.Fatal(err)
		}
	}
	return ks, cardkey.New(ks)
}

func sample(t testing.TB, serial uint64) issue.Personalisation {
	t.Helper()
	num, err := card.NewNumber(1001, serial)
	if err != nil {
		t.Fatal(err)
	}
	issued := card.MustDate(2026, time.November, 2)
	expires := card.MustDate(2031, time.November, 30)
	return issue.Personalisation{
		Identity: card.Identity{Number: num, Issuer: 1001, Issued: issued, Expires: expires},
		Holder:   card.Holder{Name: "Олена Петренко", BirthDate: card.BirthDate{Year: 1951, Month: time.March, Day: 8}, RegistryRef: 77001},
		Contract: card.Contract{Status: card.StatusActive, Number: num, Expires: expires,
			Entitlements: [card.MaxEntitlements]card.Entitlement{{Category: 11, ValidFrom: issued, ValidTo: expires, Limit: 0, Funding: card.FundingCity}}},
		PurseKop: 150_00,
	}
}

// counter counts APDUs on their way to a transport.
type counter struct {
	t apdu.Transport
	n int
}

func (c *counter) Transmit(cmd []byte) ([]byte, error) { c.n++; return c.t.Transmit(cmd) }

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func key(t testing.TB, keys *cardkey.Source, r card.Role, aid card.AID) []byte {
	t.Helper()
	k, err := keys.Key(context.Background(), r, testUID, aid, 1)
	must(t, "derive key", err)
	return k.Value[:]
}

// checkCard reads the card with card/desfire alone (not with package
// issue) and checks that it holds exactly p, with the layout of
// card.CityCard() and version-1 role keys.
func checkCard(t testing.TB, vc *vcard.Card, keys *cardkey.Source, p issue.Personalisation) {
	t.Helper()
	c := desfire.New(vc)
	l := card.CityCard()

	// PICC: the issuer's diversified key with AID 000000, version 1.
	must(t, "select PICC", c.SelectApplication(desfire.AID{}))
	if v, err := c.GetKeyVersion(0); err != nil || v != 1 {
		t.Fatalf("PICC key version %d, %v; want 1", v, err)
	}
	if err := c.AuthenticateAES(0, make([]byte, 16)); !errors.Is(err, desfire.ErrAuthentication) {
		t.Fatalf("PICC still opens with the factory key: %v", err)
	}
	must(t, "PICC auth", c.AuthenticateAES(0, key(t, keys, card.RoleIssuer, 0)))
	if s, _, err := c.GetKeySettings(); err != nil || s != issue.PICCKeySettings {
		t.Fatalf("PICC key settings %#x, %v; want %#x", s, err, issue.PICCKeySettings)
	}
	aids, err := c.GetApplicationIDs()
	must(t, "list applications", err)
	if len(aids) != len(l.Apps) {
		t.Fatalf("%d applications, want %d", len(aids), len(l.Apps))
	}
	// The ISO identifiers LAYOUT.md gives each application and file.
	dfs, err := c.GetDFNames()
	must(t, "list DF names", err)
	if len(dfs) != len(l.Apps) {
		t.Fatalf("GetDFNames: %d applications, want %d", len(dfs), len(l.Apps))
	}
	for i, a := range l.Apps {
		if d := dfs[i]; d.AID != a.AID.Bytes() || d.FileID != desfire.ISOFileID(a.ISOFileID) || !bytes.Equal(d.DFName, a.DFName) {
			t.Fatalf("GetDFNames[%d] = %+v, layout %s %04X %X", i, d, a.AID, a.ISOFileID, a.DFName)
		}
	}

	for _, a := range l.Apps {
		must(t, "select "+a.Name, c.SelectApplication(a.AID.Bytes()))
		for _, k := range a.Keys {
			if v, err := c.GetKeyVersion(k.No); err != nil || v != 1 {
				t.Fatalf("%s key %d version %d, %v", a.Name, k.No, v, err)
			}
			must(t, fmt.Sprintf("%s key %d (%s)", a.Name, k.No, k.Role), c.AuthenticateAES(k.No, key(t, keys, k.Role, a.AID)))
		}
		must(t, "issuer auth", c.AuthenticateAES(card.KeyIssuer, key(t, keys, card.RoleIssuer, a.AID)))
		if s, n, err := c.GetKeySettings(); err != nil || s != desfire.KeySettings(a.KeySettings) || n != len(a.Keys) {
			t.Fatalf("%s key settings %#x/%d keys, %v", a.Name, s, n, err)
		}
		var fids []desfire.ISOFileID
		for _, f := range a.Files {
			if f.ISOFileID != 0 {
				fids = append(fids, desfire.ISOFileID(f.ISOFileID))
			}
		}
		if got, err := c.GetISOFileIDs(); err != nil || !slices.Equal(got, fids) {
			t.Fatalf("%s ISO file IDs %v, %v; layout %v", a.Name, got, err, fids)
		}
		for _, f := range a.Files {
			fs, err := c.GetFileSettings(f.No)
			must(t, "file settings", err)
			r := fs.Rights
			if fs.Type != desfire.FileType(f.Type) || fs.Comm != desfire.CommMode(f.Comm) ||
				r.Read != byte(f.Rights.Read) || r.Write != byte(f.Rights.Write) || r.ReadWrite != byte(f.Rights.ReadWrite) || r.Change != byte(f.Rights.Change) {
				t.Fatalf("%s/%s settings %+v, layout %+v", a.Name, f.Name, fs, f)
			}
			switch f.Type {
			case card.StdData, card.BackupData:
				if fs.Size != f.Size {
					t.Fatalf("%s size %d, want %d", f.Name, fs.Size, f.Size)
				}
			case card.Value:
				if fs.Limits.Lower != int32(f.Lower) || fs.Limits.Upper != int32(f.Upper) || fs.Limits.LimitedCredit != f.LimitedCredit {
					t.Fatalf("%s limits %+v", f.Name, fs.Limits)
				}
			case card.CyclicRecord:
				if fs.RecordSize != f.RecordSize || fs.MaxRecords != f.Records || fs.Records != 0 {
					t.Fatalf("%s records %+v", f.Name, fs)
				}
			}
		}
	}

	must(t, "select identification", c.SelectApplication(card.AIDIdentification.Bytes()))
	raw, err := c.ReadData(card.FileIdentity, 0, card.IdentitySize, desfire.CommPlain)
	must(t, "read identity", err)
	var id card.Identity
	must(t, "decode identity", id.UnmarshalBinary(raw))
	if id != p.Identity {
		t.Fatalf("identity %v, want %v", id, p.Identity)
	}

	must(t, "select holder", c.SelectApplication(card.AIDHolder.Bytes()))
	must(t, "desk auth", c.AuthenticateAES(card.KeyHolderDesk, key(t, keys, card.RoleDesk, card.AIDHolder)))
	raw, err = c.ReadData(card.FileHolder, 0, card.HolderSize, desfire.CommEnciphered)
	must(t, "read holder", err)
	var h card.Holder
	must(t, "decode holder", h.UnmarshalBinary(raw))
	if h != p.Holder {
		t.Fatal("holder differs")
	}

	// ISO SELECT by DF name finds the transport application as the
	// native AID does.
	must(t, "select transport by DF name", c.SelectByDFName(card.DFName(card.AIDTransport)))
	must(t, "validator auth", c.AuthenticateAES(card.KeyValidator, key(t, keys, card.RoleValidator, card.AIDTransport)))
	raw, err = c.ReadData(card.FileContract, 0, card.ContractSize, desfire.CommEnciphered)
	must(t, "read contract", err)
	var ct card.Contract
	must(t, "decode contract", ct.UnmarshalBinary(raw))
	want := p.Contract
	want.KeyVersion = 1
	if ct != want {
		t.Fatalf("contract %+v, want %+v", ct, want)
	}
	v, err := c.GetValue(card.FilePurse, desfire.CommMAC)
	must(t, "purse", err)
	if int64(v) != p.PurseKop {
		t.Fatalf("purse %d, want %d", v, p.PurseKop)
	}
	// The tap log starts empty (no ride counted yet): the validator's
	// key reads it and the card answers with a boundary error.
	vk, err := keys.Key(context.Background(), card.RoleValidator, testUID, card.AIDTransport, 1)
	must(t, "validator key", err)
	must(t, "auth validator", c.AuthenticateAES(card.KeyValidator, vk.Value[:]))
	if _, err := c.ReadRecords(card.FileTapLog, 0, 1, card.TapRecordSize, desfire.CommEnciphered); !errors.Is(err, desfire.ErrBoundary) {
		t.Fatalf("tap log of a new card: %v, want a boundary error (empty)", err)
	}
}

func TestPersonalise(t *testing.T) {
	_, keys := issuerKeys(t)
	vc := vcard.New(testUID)
	p := sample(t, 42)
	ct := &counter{t: vc}
	must(t, "personalise", issue.Personalise(context.Background(), ct, keys, testUID, p))
	t.Logf("personalisation took %d APDUs", ct.n)
	checkCard(t, vc, keys, p)
}

func TestPersonaliseAgain(t *testing.T) {
	_, keys := issuerKeys(t)
	vc := vcard.New(testUID)
	p := sample(t, 42)
	ctx := context.Background()
	must(t, "personalise", issue.Personalise(ctx, vc, keys, testUID, p))
	// The same personalisation again: nothing to do.
	must(t, "personalise again", issue.Personalise(ctx, vc, keys, testUID, p))
	checkCard(t, vc, keys, p)

	// Another card number: refused, card untouched.
	err := issue.Personalise(ctx, vc, keys, testUID, sample(t, 43))
	if !errors.Is(err, issue.ErrAlreadyPersonalised) {
		t.Fatalf("other number: %v, want ErrAlreadyPersonalised", err)
	}
	t.Log(err)

	// Same number but the card is in use: refused.
	c := desfire.New(vc)
	must(t, "select", c.SelectApplication(card.AIDTransport.Bytes()))
	must(t, "auth", c.AuthenticateAES(card.KeyValidator, key(t, keys, card.RoleValidator, card.AIDTransport)))
	must(t, "debit", c.Debit(card.FilePurse, 800, desfire.CommMAC))
	must(t, "commit", c.CommitTransaction())
	err = issue.Personalise(ctx, vc, keys, testUID, p)
	if !errors.Is(err, issue.ErrAlreadyPersonalised) || !errors.Is(err, issue.ErrMismatch) {
		t.Fatalf("card in use: %v, want ErrAlreadyPersonalised and ErrMismatch", err)
	}
}

// TestTearEveryAPDU tears the card away after every APDU of a
// personalisation (and during each, with the answer lost). Presenting it
// again must finish the job, with exactly the requested content.
func TestTearEveryAPDU(t *testing.T) {
	_, keys := issuerKeys(t)
	ctx := context.Background()
	p := sample(t, 42)
	full := &counter{t: vcard.New(testUID)}
	must(t, "untorn", issue.Personalise(ctx, full, keys, testUID, p))
	for _, lose := range []bool{false, true} {
		for after := 0; after < full.n; after++ {
			t.Run(fmt.Sprintf("after=%d/lose=%v", after, lose), func(t *testing.T) {
				vc := vcard.New(testUID)
				err := issue.Personalise(ctx, &vcard.Tear{Card: vc, After: after, LoseResponse: lose}, keys, testUID, p)
				if !errors.Is(err, apdu.ErrCardRemoved) {
					t.Fatalf("torn personalisation: %v, want an error wrapping apdu.ErrCardRemoved", err)
				}
				vc.Reset()
				must(t, "present again", issue.Personalise(ctx, vc, keys, testUID, p))
				checkCard(t, vc, keys, p)
			})
		}
	}
}

func TestWipe(t *testing.T) {
	_, keys := issuerKeys(t)
	ctx := context.Background()
	vc := vcard.New(testUID)
	must(t, "personalise", issue.Personalise(ctx, vc, keys, testUID, sample(t, 42)))
	must(t, "wipe", issue.Wipe(ctx, vc, keys, testUID))
	// Factory state: the 2K3DES zero PICC key, version 0, no applications.
	c := desfire.New(vc)
	must(t, "select", c.SelectApplication(desfire.AID{}))
	if _, n, typ, err := c.GetKeySettingsType(); err != nil || n != 1 || typ != desfire.KeyDES {
		t.Fatalf("after wipe: %d PICC keys of type %s, %v; want one 2K3DES key", n, typ, err)
	}
	must(t, "factory key", c.AuthenticateISO(0, desfire.KeyDES, desfire.FactoryPICCKey()))
	if aids, err := c.GetApplicationIDs(); err != nil || len(aids) != 0 {
		t.Fatalf("after wipe: applications %v, %v", aids, err)
	}
	if s, _, err := c.GetKeySettings(); err != nil || s != issue.FactoryKeySettings {
		t.Fatalf("after wipe: settings %#x, %v", s, err)
	}
	p := sample(t, 43)
	must(t, "re-issue", issue.Personalise(ctx, vc, keys, testUID, p))
	checkCard(t, vc, keys, p)
	// Wiping a blank card is harmless.
	blank := vcard.New(testUID)
	must(t, "wipe blank", issue.Wipe(ctx, blank, keys, testUID))
}

// TestTearWipe: a wipe torn at any APDU leaves a card that Personalise
// refuses with an error naming what to do, and that a second Wipe clears.
func TestTearWipe(t *testing.T) {
	_, keys := issuerKeys(t)
	ctx := context.Background()
	probe := vcard.New(testUID)
	must(t, "personalise", issue.Personalise(ctx, probe, keys, testUID, sample(t, 42)))
	full := &counter{t: probe}
	must(t, "wipe", issue.Wipe(ctx, full, keys, testUID))
	for after := 0; after < full.n; after++ {
		for _, lose := range []bool{false, true} {
			t.Run(fmt.Sprintf("after=%d/lose=%v", after, lose), func(t *testing.T) {
				vc := vcard.New(testUID)
				must(t, "personalise", issue.Personalise(ctx, vc, keys, testUID, sample(t, 42)))
				err := issue.Wipe(ctx, &vcard.Tear{Card: vc, After: after, LoseResponse: lose}, keys, testUID)
				if !errors.Is(err, apdu.ErrCardRemoved) {
					t.Fatalf("torn wipe: %v", err)
				}
				vc.Reset()
				err = issue.Personalise(ctx, vc, keys, testUID, sample(t, 43))
				if err != nil && !errors.Is(err, issue.ErrAlreadyPersonalised) && !errors.Is(err, issue.ErrPartlyWiped) {
					t.Fatalf("personalise after torn wipe: %v", err)
				}
				if err == nil {
					return // the wipe had finished; the answer was lost
				}
				must(t, "wipe again", issue.Wipe(ctx, vc, keys, testUID))
				p := sample(t, 43)
				must(t, "personalise after wipe", issue.Personalise(ctx, vc, keys, testUID, p))
				checkCard(t, vc, keys, p)
			})
		}
	}
}

func TestForeignCards(t *testing.T) {
	_, keys := issuerKeys(t)
	ctx := context.Background()
	p := sample(t, 42)

	// PICC key changed by someone else, at versions 0 and 7.
	for _, ver := range []byte{0, 7} {
		vc := vcard.New(testUID)
		c := desfire.New(vc)
		must(t, "auth", c.AuthenticateISO(0, desfire.KeyDES, desfire.FactoryPICCKey()))
		must(t, "change", c.ChangeKey(0, bytes.Repeat([]byte{0x5A}, 16), ver, nil))
		err := issue.Personalise(ctx, vc, keys, testUID, p)
		if !errors.Is(err, issue.ErrForeignCard) {
			t.Fatalf("foreign PICC key version %d: %v, want ErrForeignCard", ver, err)
		}
		t.Log(err)
		if err := issue.Wipe(ctx, vc, keys, testUID); !errors.Is(err, issue.ErrForeignCard) {
			t.Fatalf("wipe foreign card: %v", err)
		}
	}

	// Factory PICC key, but another system's application: not formatted.
	vc := vcard.New(testUID)
	c := desfire.New(vc)
	other := desfire.AID{0x01, 0x02, 0xF7}
	must(t, "auth", c.AuthenticateISO(0, desfire.KeyDES, desfire.FactoryPICCKey()))
	must(t, "create", c.CreateApplication(other, 0x0F, 1))
	err := issue.Personalise(ctx, vc, keys, testUID, p)
	if !errors.Is(err, issue.ErrForeignCard) {
		t.Fatalf("foreign application: %v", err)
	}
	vc.Reset()
	c = desfire.New(vc)
	aids, err := c.GetApplicationIDs()
	if err != nil || len(aids) != 1 || aids[0] != other {
		t.Fatalf("foreign application touched: %v, %v", aids, err)
	}
}

// TestRefusedBeforeTouchingCard: a bad personalisation or a keystore
// that cannot make the keys fails before the first APDU, saying why.
func TestRefusedBeforeTouchingCard(t *testing.T) {
	ks, keys := issuerKeys(t)
	ctx := context.Background()
	mismatch := sample(t, 42)
	mismatch.Contract.Number = sample(t, 43).Contract.Number
	tooRich := sample(t, 42)
	tooRich.PurseKop = int64(card.PurseUpper) + 1
	badHolder := sample(t, 42)
	badHolder.Holder.RegistryRef = 0
	badContract := sample(t, 42)
	badContract.Contract.Entitlements[0].Funding = 0
	noSuchGen := sample(t, 42)
	noSuchGen.KeyVersion = 3
	refuse := func(t *testing.T, p issue.Personalisation, want string) {
		t.Helper()
		ct := &counter{t: vcard.New(testUID)}
		err := issue.Personalise(ctx, ct, keys, testUID, p)
		if err == nil || ct.n != 0 || !strings.Contains(err.Error(), want) {
			t.Fatalf("err %v after %d APDUs; want an error containing %q before any APDU", err, ct.n, want)
		}
	}
	refuse(t, mismatch, "contract number")
	refuse(t, tooRich, "initial purse credit")
	refuse(t, badHolder, "registryRef")
	refuse(t, badContract, "funding")
	refuse(t, noSuchGen, "card-issuer@3")

	// Rotating one role alone leaves no common newest generation.
	if _, err := ks.Generate(ctx, hsm.CardMasterLabel(hsm.RoleValidator), hsm.KindCardMaster); err != nil {
		t.Fatal(err)
	}
	refuse(t, sample(t, 42), "rotate all card masters together")
	// With the generation named, the keystore works.
	p := sample(t, 42)
	p.KeyVersion = 1
	vc := vcard.New(testUID)
	must(t, "personalise generation 1", issue.Personalise(ctx, vc, keys, testUID, p))
	checkCard(t, vc, keys, p)
	if err := issue.Personalise(ctx, vcard.New(testUID), keys, testUID[:4], p); err == nil {
		t.Fatal("4-byte UID accepted")
	}
}

func TestCancelled(t *testing.T) {
	_, keys := issuerKeys(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := issue.Personalise(ctx, vcard.New(testUID), keys, testUID, sample(t, 42))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
