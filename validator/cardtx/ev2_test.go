package cardtx_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/card/issue"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/simulator/vcard"
	"github.com/citycard/transit/validator/cardtx"
	"github.com/citycard/transit/validator/fare"
)

// genCard is a factory-fresh card of generation g with UID uid,
// personalised with p.
func genCard(t testing.TB, keys *cardkey.Source, g vcard.Generation, uid []byte, p issue.Personalisation) *vcard.Card {
	t.Helper()
	vc := vcard.New(uid, vcard.WithGeneration(g))
	must(t, "personalise "+g.String(), issue.Personalise(context.Background(), vc, keys, uid, p))
	return vc
}

// ride is one tap of card vc (UID uid) at devB with options o.
func ride(t testing.TB, vc *vcard.Card, keys *cardkey.Source, uid []byte, tf *fare.Tariff, o cardtx.Options, dev, seq uint32, carrier string, now time.Time) (fare.Decision, *cardtx.Session, int) {
	t.Helper()
	vc.Reset()
	c := desfire.New(vc)
	s, err := cardtx.ReadWith(context.Background(), c, keys, uid, now, city, o)
	must(t, "read", err)
	d := device(dev)
	if carrier != "" {
		d.Carrier = carrier
	}
	dec := fare.Decide(s.Fare(fleet), tf, nil, d, now)
	must(t, "commit", s.Commit(context.Background(), dec, card.TapRecord{Time: stamp(t, now), Device: dev, Seq: seq, Carrier: 7, Route: 12}))
	return dec, s, c.APDUs()
}

// TestAPDUBudgetPerGeneration is LAYOUT.md's budget on an EV1 (known to
// be one), an EV2 and an EV3 in EV2 secure messaging with the
// Transaction MAC, and an EV1 the validator did not know (one more).
func TestAPDUBudgetPerGeneration(t *testing.T) {
	_, keys := newKeys(t)
	tf := networkTariff()
	tf.Carriers["SUB"] = fare.Carrier{ID: "SUB", Code: 8, Group: 4, Network: "suburb"}
	tf.Legs = append(tf.Legs, fare.LegRule{LegGroup: "suburb", Network: "suburb", Product: "suburb", FareKop: 1200})
	tf.Transfers = append(tf.Transfers, fare.TransferRule{From: "city", To: "suburb", Within: 30 * time.Minute,
		Type: fare.TransferFixed, Product: "to-suburb", AmountKop: 300})
	pass := card.Pass{Product: 5, ValidFrom: card.MustDate(2026, time.November, 1), ValidTo: card.MustDate(2026, time.November, 30), Carriers: card.AllCarriers}
	unknown := cardtx.Options{}
	for _, gen := range []struct {
		g     vcard.Generation
		o     cardtx.Options
		extra int
		ev2   bool
	}{{vcard.EV1, population, 0, false}, {vcard.EV2, unknown, 0, true}, {vcard.EV3, unknown, 0, true}, {vcard.EV1, unknown, 1, false}} {
		for _, tc := range []struct {
			name    string
			ents    []card.Entitlement
			pass    bool
			carrier string
			after   time.Duration
			want    int
		}{
			{name: "purse", after: 2 * time.Hour, want: 8},
			{name: "pass", pass: true, after: 2 * time.Hour, want: 7},
			{name: "free benefit", ents: []card.Entitlement{benefit(catPens, 0)}, after: 2 * time.Hour, want: 7},
			{name: "discounted benefit, counted", ents: []card.Entitlement{benefit(catStud, 5)}, after: 2 * time.Hour, want: 8},
			{name: "free transfer", after: 10 * time.Minute, want: 7},
			{name: "paid transfer", carrier: "SUB", after: 10 * time.Minute, want: 8},
		} {
			name := fmt.Sprintf("%s/known=%v/%s", gen.g, gen.o.EV1 != nil, tc.name)
			t.Run(name, func(t *testing.T) {
				p := personalisation(t, initPurse, tc.ents...)
				if tc.pass {
					p.Contract.Passes[0] = pass
				}
				vc := genCard(t, keys, gen.g, testUID, p)
				ride(t, vc, keys, testUID, tf, gen.o, devA1, 1, "", t0)
				d, s, n := ride(t, vc, keys, testUID, tf, gen.o, devB, 2, tc.carrier, t0.Add(tc.after))
				t.Logf("%s: %s, %d APDUs", name, d.Product, n)
				if n != tc.want+gen.extra {
					t.Fatalf("%d APDUs, want %d", n, tc.want+gen.extra)
				}
				if s.EV2() != gen.ev2 {
					t.Fatalf("EV2 secure messaging %v on an %s", s.EV2(), gen.g)
				}
				m, signed := s.CardMAC()
				if signed != gen.ev2 {
					t.Fatalf("card-signed %v on an %s", signed, gen.g)
				}
				if signed {
					checkCardMAC(t, keys, m)
				}
			})
		}
	}
}

// checkCardMAC recomputes the Transaction MAC from the key clearing would
// derive and the bytes the session says the card MACed.
func checkCardMAC(t testing.TB, keys *cardkey.Source, m cardtx.CardMAC) {
	t.Helper()
	k, err := keys.TMACKey(context.Background(), m.UID, int(m.KeyVersion))
	must(t, "tmac key", err)
	var tmi desfire.TMI
	if m.Contract != nil {
		tmi = tmi.ReadData(card.FileContract, 0, m.Contract)
	}
	if m.Prev != nil {
		tmi = tmi.ReadRecords(card.FileTapLog, 0, 1, m.Prev)
	}
	if m.Debit > 0 {
		tmi = tmi.Value(desfire.InsDebit, card.FilePurse, m.Debit)
	}
	tmi = tmi.WriteRecord(card.FileTapLog, 0, m.Record)
	want, err := desfire.TransactionMAC(k.Value[:], m.TMC, m.UID, tmi)
	must(t, "tmv", err)
	if want != m.TMV {
		t.Fatalf("TMV %X, recomputed %X", m.TMV, want)
	}
}

// TestMixedPopulation is item 7 of issue 17: EV1 and EV3 cards, of the
// old and the new key generation, all tapping on one validator; the
// first tap of a card also finds its log empty.
func TestMixedPopulation(t *testing.T) {
	ks, keys := newKeys(t)
	tf := tariff()
	type member struct {
		g   vcard.Generation
		uid []byte
		vc  *vcard.Card
	}
	var cards []*member
	mk := func(g vcard.Generation, n byte) {
		uid := []byte{0x04, 0x10, 0x20, 0x30, 0x40, 0x50, n}
		cards = append(cards, &member{g: g, uid: uid, vc: genCard(t, keys, g, uid, personalisation(t, initPurse))})
	}
	mk(vcard.EV1, 1)
	mk(vcard.EV3, 2)
	// Rotate every master (the Transaction MAC one too); new cards get
	// generation 2, old ones keep 1.
	for _, r := range hsm.Roles {
		_, err := ks.Generate(context.Background(), hsm.CardMasterLabel(r), hsm.KindCardMaster)
		must(t, "rotate", err)
	}
	_, err := ks.Generate(context.Background(), hsm.LabelTMACMaster, hsm.KindTMACMaster)
	must(t, "rotate tmac", err)
	mk(vcard.EV1, 3)
	mk(vcard.EV3, 4)
	ev1 := map[string]bool{}
	for _, m := range cards {
		if m.g == vcard.EV1 {
			ev1[string(m.uid)] = true
		}
	}
	o := cardtx.Options{EV1: func(uid []byte) bool { return ev1[string(uid)] }}
	now := t0
	seq := uint32(0)
	for round := range 2 {
		for i, m := range cards {
			now = now.Add(10 * time.Minute)
			seq++
			d, s, n := ride(t, m.vc, keys, m.uid, tf, o, devA1, seq, "", now)
			old := i%4 < 2
			want := 8
			if old {
				want += 2 // the previous key generation
			}
			if round == 0 {
				want += 2 // first tap: empty log
			}
			if d.Product != fare.ProductPurse || n != want {
				t.Fatalf("round %d card %d (%s, old keys %v): %s after %d APDUs, want %d", round, i, m.g, old, d.Product, n, want)
			}
			if m, signed := s.CardMAC(); signed != (cards[i].g == vcard.EV3) {
				t.Fatalf("card %d signed %v", i, signed)
			} else if signed {
				checkCardMAC(t, keys, m)
				if want := uint8(1); old && m.KeyVersion != want {
					t.Fatalf("old card's key version %d", m.KeyVersion)
				}
			}
		}
	}
	if !bytes.Equal(cards[0].uid[:6], cards[3].uid[:6]) {
		t.Fatal("test UIDs")
	}
}

// BenchmarkTapGenerations is a purse tap (Read, Decide, Commit) against
// the in-process virtual card per generation: all of it is computation
// (both sides' crypto, the key derivation, the decision), so set beside
// BenchmarkPurseTapThroughPCSCD it gives the share of a tap's time that is
// not the PC/SC round trips.
func BenchmarkTapGenerations(b *testing.B) {
	for _, g := range []vcard.Generation{vcard.EV1, vcard.EV3} {
		b.Run(g.String(), func(b *testing.B) {
			_, keys := newKeys(b)
			vc := genCard(b, keys, g, testUID, personalisation(b, int64(card.PurseUpper)))
			o := cardtx.Options{EV1: func([]byte) bool { return g == vcard.EV1 }}
			tf := tariff()
			tf.Passback = 0
			now := t0
			ride(b, vc, keys, testUID, tf, o, devA1, 1, "", now)
			apdus, n := 0, 0
			for b.Loop() {
				n++
				now = now.Add(time.Minute)
				if n%600 == 0 {
					b.StopTimer()
					vc.Reset()
					c := desfire.New(vc)
					k, _ := keys.Key(context.Background(), card.RoleTopUp, testUID, card.AIDTransport, 0)
					must(b, "select", c.SelectApplication(card.AIDTransport.Bytes()))
					must(b, "auth", c.AuthenticateAES(card.KeyTopUp, k.Value[:]))
					must(b, "credit", c.Credit(card.FilePurse, 600*fareKop, desfire.CommMAC))
					must(b, "commit", c.CommitTransaction())
					b.StartTimer()
				}
				_, _, a := ride(b, vc, keys, testUID, tf, o, devA1, uint32(n+1), "", now)
				apdus += a
			}
			b.ReportMetric(float64(apdus)/float64(n), "apdus/op")
		})
	}
}
