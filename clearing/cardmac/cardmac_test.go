package cardmac_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/card/issue"
	"github.com/citycard/transit/clearing/cardmac"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/simulator/vcard"
	"github.com/citycard/transit/validator/agent"
	"github.com/citycard/transit/validator/cardtx"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/tap"
)

var (
	uid  = []byte{0x04, 0x44, 0x0F, 0x32, 0x76, 0x31, 0x80}
	city = time.FixedZone("EET", 2*60*60)
	t0   = time.Date(2026, time.November, 3, 8, 0, 0, 0, city)
)

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// cityKeys is the city's keystore: every card master and the Transaction
// MAC master.
func cityKeys(t testing.TB) (hsm.Admin, *cardkey.Source) {
	t.Helper()
	ks, err := hsm.CreateKeystore(filepath.Join(t.TempDir(), "city.keys"), []byte("test"), hsm.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})
	must(t, "keystore", err)
	t.Cleanup(func() { ks.Close() })
	for _, r := range hsm.Roles {
		_, err := ks.Generate(context.Background(), hsm.CardMasterLabel(r), hsm.KindCardMaster)
		must(t, "generate", err)
	}
	_, err = ks.Generate(context.Background(), hsm.LabelTMACMaster, hsm.KindTMACMaster)
	must(t, "generate", err)
	return ks, cardkey.New(ks)
}

// rides returns the taps of an EV3 card's first two purse rides as the
// validator journals them, through the virtual card and validator/cardtx.
func rides(t testing.TB, keys *cardkey.Source) []tap.Tap {
	t.Helper()
	ctx := context.Background()
	num, _ := card.NewNumber(1001, 4242)
	exp := card.MustDate(2030, time.December, 31)
	p := issue.Personalisation{
		Identity: card.Identity{Number: num, Issuer: 1001, Issued: card.MustDate(2026, time.January, 10), Expires: exp},
		Holder:   card.Holder{Name: "Test", BirthDate: card.BirthDate{Year: 1950, Month: time.May, Day: 9}, RegistryRef: 1},
		Contract: card.Contract{Status: card.StatusActive, Number: num, Expires: exp},
		PurseKop: 100_00,
	}
	vc := vcard.New(uid, vcard.WithGeneration(vcard.EV3))
	must(t, "personalise", issue.Personalise(ctx, vc, keys, uid, p))
	tf := &fare.Tariff{Version: 1, FareKop: map[string]int64{"KTE": 800}, Passback: 2 * time.Minute}
	dev := fare.Device{ID: "V-17", Carrier: "KTE", Route: "12", Vehicle: "AA1"}
	var out []tap.Tap
	for i, at := range []time.Time{t0, t0.Add(time.Hour)} {
		vc.Reset()
		s, err := cardtx.Read(ctx, desfire.New(vc), keys, uid, at, city)
		must(t, "read", err)
		d := fare.Decide(s.Fare(cardtx.Fleet{17: "AA1"}), tf, nil, dev, at)
		tp := tap.Tap{Device: dev.ID, Seq: uint64(i + 1), Time: at.UTC(), Card: uint64(num), Carrier: "KTE", Route: "12",
			Result: d.Result, Reason: d.Reason, Product: d.Product, FareKop: d.FareKop, ChargedKop: d.ChargedKop,
			TariffVersion: 1, CardCommitted: true, DeviceNumber: 17}
		if r, ok := s.LastTap(); ok {
			tp.Prev = agent.CardRide(r)
		}
		st, _ := card.StampOf(at)
		must(t, "commit", s.Commit(ctx, d, card.TapRecord{Time: st, Device: 17, Seq: uint32(i + 1), Carrier: 7, Route: 12}))
		m, ok := s.CardMAC()
		if !ok {
			t.Fatal("an EV3 tap without a card MAC")
		}
		tp.CardMAC = agent.TapCardMAC(m)
		must(t, "valid tap", tp.Validate())
		out = append(out, tp)
	}
	return out
}

// TestVerify: genuine rides are card-signed (the first, after an empty
// log, without the contract: unproven); a ride a device made up, or
// changed after the card committed it, is refused.
func TestVerify(t *testing.T) {
	_, keys := cityKeys(t)
	taps := rides(t, keys)
	v := &cardmac.Verifier{Keys: keys}
	ctx := context.Background()
	verdict := func(tp tap.Tap) (cardmac.Verdict, error) {
		vd, why, err := v.Verify(ctx, &tp)
		must(t, "verify", err)
		return vd, why
	}
	if vd, why := verdict(taps[0]); vd != cardmac.Unproven || why != nil {
		t.Fatalf("first ride: %s, %v; want unproven (no contract in the MACed transaction)", vd, why)
	}
	if vd, why := verdict(taps[1]); vd != cardmac.Signed || why != nil || vd.Held() {
		t.Fatalf("second ride: %s, %v; want card-signed", vd, why)
	}
	if vd, _ := verdict(tap.Tap{Device: "V-17", Seq: 9}); vd != cardmac.None || !vd.Held() {
		t.Fatalf("no card MAC: %s", vd)
	}

	forged := func(name string, change func(tp *tap.Tap), want string) {
		t.Run(name, func(t *testing.T) {
			tp := taps[1]
			m := *tp.CardMAC
			tp.CardMAC = &m
			change(&tp)
			vd, why := verdict(tp)
			if vd != cardmac.Invalid || !vd.Held() || why == nil || !strings.Contains(why.Error(), want) {
				t.Fatalf("%s: %s, %v; want invalid saying %q", name, vd, why, want)
			}
		})
	}
	forged("another card's number in the tap", func(tp *tap.Tap) { tp.Card++ }, "contract of card")
	forged("a higher charge", func(tp *tap.Tap) { tp.ChargedKop += 100 }, "charge")
	forged("a benefit ride invented over a purse ride", func(tp *tap.Tap) { tp.Product, tp.ChargedKop = "benefit", 0 }, "")
	forged("another time", func(tp *tap.Tap) { tp.Time = tp.Time.Add(time.Minute) }, "recorded the ride at")
	forged("a MAC made up by the device", func(tp *tap.Tap) { tp.CardMAC.TMV[0] ^= 1 }, "does not verify")
	forged("the MACed record changed to match", func(tp *tap.Tap) {
		var r card.TapRecord
		_ = r.UnmarshalBinary(tp.CardMAC.Record)
		r.Charged = 0
		tp.CardMAC.Record, _ = r.MarshalBinary()
		tp.ChargedKop = 0
	}, "does not verify")
	forged("another counter", func(tp *tap.Tap) { tp.CardMAC.TMC++ }, "does not verify")
	forged("another card's key", func(tp *tap.Tap) { tp.CardMAC.UID = []byte{4, 1, 2, 3, 4, 5, 6} }, "does not verify")
}

// BenchmarkVerifySoftware is clearing's Transaction MAC verifications with
// the software keystore: one diversification and two CMACs each.
func BenchmarkVerifySoftware(b *testing.B) {
	_, keys := cityKeys(b)
	benchVerify(b, keys, keys)
}

func benchVerify(b *testing.B, issuer *cardkey.Source, clearing cardmac.Keys) {
	taps := rides(b, issuer)
	v := &cardmac.Verifier{Keys: clearing}
	ctx := context.Background()
	tp := taps[1]
	b.ResetTimer()
	for b.Loop() {
		vd, why, err := v.Verify(ctx, &tp)
		if err != nil || vd != cardmac.Signed {
			b.Fatalf("%s %v %v", vd, why, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
}

// FuzzCheck: whatever bytes a tap's card MAC carries, Check answers a
// verdict, never panics, and never calls changed bytes card-signed.
func FuzzCheck(f *testing.F) {
	_, keys := cityKeys(f)
	taps := rides(f, keys)
	k, err := keys.TMACKey(context.Background(), uid, 1)
	must(f, "key", err)
	m := taps[1].CardMAC
	f.Add(m.Contract, m.Prev, m.Record, m.DebitKop, m.TMC)
	f.Fuzz(func(t *testing.T, contract, prev, record []byte, debit int64, tmc uint32) {
		tp := taps[1]
		c := *tp.CardMAC
		c.Contract, c.Prev, c.Record, c.DebitKop, c.TMC = contract, prev, record, debit, tmc
		tp.CardMAC = &c
		vd, _ := cardmac.Check(&tp, k.Value)
		same := bytes.Equal(contract, m.Contract) && bytes.Equal(prev, m.Prev) && bytes.Equal(record, m.Record) && debit == m.DebitKop && tmc == m.TMC
		if vd == cardmac.Signed && !same {
			t.Fatalf("changed card MAC bytes verified")
		}
	})
}
