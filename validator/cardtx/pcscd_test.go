package cardtx_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/card/pcsc"
	"github.com/citycard/transit/simulator/testenv"
	"github.com/citycard/transit/simulator/vcard"
	"github.com/citycard/transit/simulator/vpcd"
	"github.com/citycard/transit/validator/cardtx"
	"github.com/citycard/transit/validator/fare"
)

// throughPCSCD puts vc into the first vpcd reader and returns the card as
// the validator sees it through pcscd.
func throughPCSCD(t testing.TB, vc *vcard.Card) *pcsc.Card {
	t.Helper()
	addr, name := testenv.PCSC(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	slot, err := vpcd.Insert(ctx, addr, vc)
	must(t, "insert virtual card", err)
	r := pcsc.Open(name)
	t.Cleanup(func() {
		slot.Remove()
		// pcscd sees the reader empty at its next ~400 ms poll; the next
		// test's card must not meet this one's leftovers.
		rctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		r.WaitRemoval(rctx, nil)
		r.Close()
	})
	pc, err := r.WaitCard(ctx)
	must(t, "wait for the card in "+name, err)
	return pc
}

// purseTap runs one purse ride through tr at now and returns the APDUs it
// took.
func purseTap(t testing.TB, tr *pcsc.Card, keys *cardkey.Source, o cardtx.Options, uid []byte, now time.Time, seq uint32) int {
	t.Helper()
	c := desfire.New(tr)
	s, err := cardtx.ReadWith(context.Background(), c, keys, uid, now, city, o)
	must(t, "read", err)
	tf := tariff()
	tf.Passback = 0 // every iteration is a new ride
	d := fare.Decide(s.Fare(fleet), tf, nil, device(devA1), now)
	if d.DebitKop != fareKop {
		t.Fatalf("decision %+v, want a purse ride of %d kop", d, fareKop)
	}
	at, err := card.StampOf(now)
	must(t, "stamp", err)
	must(t, "commit", s.Commit(context.Background(), d, card.TapRecord{Time: at, Device: devA1, Seq: seq}))
	return c.APDUs()
}

// TestPurseTapThroughPCSCD: the tap budget holds on the real PC/SC stack,
// not only in process.
func TestPurseTapThroughPCSCD(t *testing.T) {
	_, keys := newKeys(t)
	vc := newCard(t, keys, personalisation(t, initPurse))
	pc := throughPCSCD(t, vc)
	uid, err := pc.UID()
	must(t, "UID from the reader", err)
	purseTap(t, pc, keys, population, uid, t0, 1) // the first tap pays +2 for an empty log
	if n := purseTap(t, pc, keys, population, uid, t0.Add(time.Hour), 2); n > 8 {
		t.Fatalf("a purse ride through pcscd took %d APDUs, want at most 8", n)
	}
	v, err := vc.MarshalBinary()
	must(t, "card state", err)
	if len(v) == 0 {
		t.Fatal("empty card state")
	}
}

// BenchmarkPurseTapThroughPCSCD is DESIGN.md's "one tap through real
// pcscd with the virtual card" target: Read, Decide and Commit of a purse
// ride, 8 APDUs each way through pcscd and vpcd.
//
// Sub-benchmarks per card generation: EV1 (known as one), EV3 (EV2 secure
// messaging and the Transaction MAC).
func BenchmarkPurseTapThroughPCSCD(b *testing.B) {
	for _, g := range []vcard.Generation{vcard.EV1, vcard.EV3} {
		b.Run(g.String(), func(b *testing.B) { benchPCSCD(b, g) })
	}
}

func benchPCSCD(b *testing.B, g vcard.Generation) {
	_, keys := newKeys(b)
	vc := genCard(b, keys, g, testUID, personalisation(b, int64(card.PurseUpper)))
	pc := throughPCSCD(b, vc)
	uid, err := pc.UID()
	must(b, "UID", err)
	o := cardtx.Options{EV1: func([]byte) bool { return g == vcard.EV1 }}
	now := t0
	purseTap(b, pc, keys, o, uid, now, 1)
	var lat []time.Duration
	apdus, n := 0, 0
	for b.Loop() {
		n++
		now = now.Add(time.Minute)
		if n%600 == 0 { // 600 rides of 8 UAH drain the 5,000 UAH purse
			b.StopTimer()
			topUp(b, pc, keys, uid)
			b.StartTimer()
		}
		start := time.Now()
		apdus += purseTap(b, pc, keys, o, uid, now, uint32(n+1))
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(apdus)/float64(n), "apdus/tap")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms/tap")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms/tap")
}

func topUp(t testing.TB, tr *pcsc.Card, keys *cardkey.Source, uid []byte) {
	t.Helper()
	c := desfire.New(tr)
	aid := card.AIDTransport.Bytes()
	must(t, "select", c.SelectApplication(desfire.AID(aid)))
	k, err := keys.Key(context.Background(), card.RoleTopUp, uid, card.AIDTransport, 0)
	must(t, "top-up key", err)
	if err := c.AuthenticateEV2First(card.KeyTopUp, k.Value[:]); err != nil {
		must(t, "auth", c.AuthenticateAES(card.KeyTopUp, k.Value[:]))
	}
	v, err := c.GetValue(card.FilePurse, desfire.CommMAC)
	must(t, "balance", err)
	must(t, "credit", c.Credit(card.FilePurse, int32(card.PurseUpper)-v, desfire.CommMAC))
	must(t, "commit", c.CommitTransaction())
}
