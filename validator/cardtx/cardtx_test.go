package cardtx_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
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
	"github.com/citycard/transit/validator/cardtx"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/tap"
)

var (
	testUID = []byte{0x04, 0x44, 0x0F, 0x32, 0x76, 0x31, 0x80}
	// city is a fixed zone so that the test needs no tzdata; UTC+2 puts
	// local midnight two hours before UTC's, which the date tests use.
	city = time.FixedZone("EET", 2*60*60)
	// t0 is a Tuesday morning in the city.
	t0 = time.Date(2026, time.November, 3, 8, 0, 0, 0, city)
)

const (
	fareKop   = 800
	devA1     = 17 // front door of vehicle AA1
	devA2     = 18 // back door of vehicle AA1
	devB      = 30 // vehicle BB2
	catPens   = 11 // pensioner: free, no limit
	catLimit  = 21 // free, 2 rides a month
	catStud   = 31 // half fare
	initPurse = 100_00
)

var fleet = cardtx.Fleet{devA1: "AA1", devA2: "AA1", devB: "BB2"}

// population tells Read that the test cards are EV1s (vcard.New's
// default), as the registry's list of EV1 UIDs would.
var population = cardtx.Options{EV1: func([]byte) bool { return true }}

func tariff() *fare.Tariff {
	return &fare.Tariff{
		Version: 1,
		FareKop: map[string]int64{"KTE": fareKop},
		Categories: map[string]fare.Category{
			"11": {Code: "11", DiscountPct: 100, Funding: "city"},
			"21": {Code: "21", DiscountPct: 100, Funding: "state"},
			"31": {Code: "31", DiscountPct: 50, Funding: "state"},
		},
		Passback: 2 * time.Minute,
	}
}

func device(no uint32) fare.Device {
	return fare.Device{ID: fmt.Sprintf("V-%d", no), Carrier: "KTE", Route: "12", Vehicle: fleet[no]}
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// newKeys is an issuer keystore with version 1 of every role's master.
func newKeys(t testing.TB) (*hsm.Keystore, *cardkey.Source) {
	t.Helper()
	ks, err := hsm.CreateKeystore(filepath.Join(t.TempDir(), "keys.json"), []byte("test"),
		hsm.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})
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

// personalisation of a card with purse, and the given entitlements.
func personalisation(t testing.TB, purse int64, ents ...card.Entitlement) issue.Personalisation {
	t.Helper()
	num, err := card.NewNumber(1001, 4242)
	must(t, "number", err)
	issued := card.MustDate(2026, time.January, 10)
	expires := card.MustDate(2030, time.December, 31)
	p := issue.Personalisation{
		Identity: card.Identity{Number: num, Issuer: 1001, Issued: issued, Expires: expires},
		Holder:   card.Holder{Name: "Test Holder", BirthDate: card.BirthDate{Year: 1950, Month: time.May, Day: 9}, RegistryRef: 1},
		Contract: card.Contract{Status: card.StatusActive, Number: num, Expires: expires},
		PurseKop: purse,
	}
	copy(p.Contract.Entitlements[:], ents)
	return p
}

func benefit(cat uint16, limit uint8) card.Entitlement {
	return card.Entitlement{Category: cat, ValidFrom: card.MustDate(2026, time.January, 1), ValidTo: card.MustDate(2027, time.December, 31),
		Limit: limit, Funding: card.FundingCity}
}

func newCard(t testing.TB, keys *cardkey.Source, p issue.Personalisation) *vcard.Card {
	t.Helper()
	vc := vcard.New(testUID)
	must(t, "personalise", issue.Personalise(context.Background(), vc, keys, testUID, p))
	return vc
}

// result of one tap through cardtx.
type result struct {
	d     fare.Decision
	apdus int
	err   error // from Commit
}

// tapCard presents the card at device dev at time now: Read, Decide,
// Commit, through tr (the card itself, or a tearing transport).
func tapCard(t testing.TB, tr apdu.Transport, keys *cardkey.Source, dev uint32, seq uint32, now time.Time) (result, error) {
	t.Helper()
	ctx := context.Background()
	c := desfire.New(tr)
	s, err := cardtx.ReadWith(ctx, c, keys, testUID, now, city, population)
	if err != nil {
		return result{apdus: c.APDUs()}, err
	}
	d := fare.Decide(s.Fare(fleet), tariff(), nil, device(dev), now)
	st, _ := card.StampOf(now)
	err = s.Commit(ctx, d, card.TapRecord{Time: st, Device: dev, Seq: seq, Carrier: 7, Route: 12})
	return result{d: d, apdus: c.APDUs(), err: err}, nil
}

// present is tapCard on the card itself, which first leaves the field
// (Reset) as between two real taps.
func present(t testing.TB, vc *vcard.Card, keys *cardkey.Source, dev uint32, seq uint32, now time.Time) result {
	t.Helper()
	vc.Reset()
	r, err := tapCard(t, vc, keys, dev, seq, now)
	must(t, "read", err)
	return r
}

// snapshot is what the card holds, read with card/desfire alone.
type snapshot struct {
	purse   int32
	records []card.TapRecord // oldest first
}

// newest is the newest tap record, which carries the ride counts; nil for
// an empty log.
func (s snapshot) newest() *card.TapRecord {
	if len(s.records) == 0 {
		return nil
	}
	return &s.records[len(s.records)-1]
}

// used is the rides counted in slot for category in month m.
func (s snapshot) used(slot int, category uint16, m card.Month) uint8 {
	return s.newest().UsedIn(slot, category, m)
}

func read(t testing.TB, vc *vcard.Card, keys *cardkey.Source) snapshot {
	t.Helper()
	vc.Reset()
	defer vc.Reset()
	k, err := keys.Key(context.Background(), card.RoleValidator, testUID, card.AIDTransport, 1)
	must(t, "key", err)
	c := desfire.New(vc)
	must(t, "select", c.SelectApplication(card.AIDTransport.Bytes()))
	must(t, "auth", c.AuthenticateAES(card.KeyValidator, k.Value[:]))
	var s snapshot
	s.purse, err = c.GetValue(card.FilePurse, desfire.CommMAC)
	must(t, "purse", err)
	recs, err := c.ReadRecords(card.FileTapLog, 0, 0, card.TapRecordSize, desfire.CommEnciphered)
	if errors.Is(err, desfire.ErrBoundary) {
		return s // empty log
	}
	must(t, "log", err)
	for _, r := range recs {
		var tr card.TapRecord
		must(t, "decode record", tr.UnmarshalBinary(r))
		s.records = append(s.records, tr)
	}
	return s
}

func stamp(t testing.TB, at time.Time) card.Stamp {
	t.Helper()
	s, err := card.StampOf(at)
	must(t, "stamp", err)
	return s
}

func TestPurseTap(t *testing.T) {
	_, keys := newKeys(t)
	vc := newCard(t, keys, personalisation(t, initPurse))

	// First tap of the card: the log is empty, which costs two exchanges.
	r := present(t, vc, keys, devA1, 1, t0)
	must(t, "commit", r.err)
	if r.d.Result != tap.Accepted || r.d.Product != fare.ProductPurse || r.d.ChargedKop != fareKop {
		t.Fatalf("decision %+v", r.d)
	}
	if r.apdus != 10 {
		t.Errorf("first tap (empty log) took %d APDUs, want 10", r.apdus)
	}
	s := read(t, vc, keys)
	want := card.TapRecord{Time: stamp(t, t0), Device: devA1, Seq: 1, Carrier: 7, Route: 12, Charged: fareKop,
		Product: card.ProductPurse, Result: card.ResultAccepted, Slot: card.NoSlot}
	if s.purse != initPurse-fareKop || len(s.records) != 1 || s.records[0] != want {
		t.Fatalf("after the tap: purse %d, log %+v; want %d and %+v", s.purse, s.records, initPurse-fareKop, want)
	}

	// The representative purse tap: within the budget of 8.
	at := t0.Add(20 * time.Minute)
	r = present(t, vc, keys, devB, 2, at)
	must(t, "commit", r.err)
	if r.d.Result != tap.Accepted || r.apdus > 8 {
		t.Fatalf("purse tap: %v after %d APDUs, want accepted within 8", r.d.Result, r.apdus)
	}
	s = read(t, vc, keys)
	if s.purse != initPurse-2*fareKop || len(s.records) != 2 || s.records[1].Device != devB || s.records[1].Time != stamp(t, at) {
		t.Fatalf("after the second tap: purse %d, log %+v", s.purse, s.records)
	}

	// The back door of the same vehicle 30 s later: already paid, nothing
	// written, 5 exchanges.
	r = present(t, vc, keys, devB, 3, at.Add(30*time.Second))
	must(t, "commit", r.err)
	if r.d.Result != tap.AlreadyPaid || r.apdus != 5 {
		t.Fatalf("passback: %v after %d APDUs, want already-paid after 5", r.d.Result, r.apdus)
	}
	if s2 := read(t, vc, keys); s2.purse != s.purse || len(s2.records) != len(s.records) {
		t.Fatalf("already-paid tap changed the card: purse %d, %d records", s2.purse, len(s2.records))
	}
}

// TestPassbackAcrossDoors: the log names a device; Fleet makes the other
// door of the same vehicle the same ride.
func TestPassbackAcrossDoors(t *testing.T) {
	_, keys := newKeys(t)
	vc := newCard(t, keys, personalisation(t, initPurse))
	must(t, "front door", present(t, vc, keys, devA1, 1, t0).err)
	r := present(t, vc, keys, devA2, 1, t0.Add(10*time.Second))
	if r.d.Result != tap.AlreadyPaid {
		t.Fatalf("back door of the same vehicle: %v, want already-paid", r.d.Result)
	}
	// Without the fleet map the back door is another vehicle.
	vc.Reset()
	c := desfire.New(vc)
	s, err := cardtx.ReadWith(context.Background(), c, keys, testUID, t0.Add(20*time.Second), city, population)
	must(t, "read", err)
	fc := s.Fare(nil)
	if fc.LastTap == nil || fc.LastTap.Vehicle != cardtx.DeviceVehicle(devA1) || fc.LastTap.Vehicle == "AA1" {
		t.Fatalf("last tap without a fleet: %+v", fc.LastTap)
	}
}

func TestBenefitTaps(t *testing.T) {
	_, keys := newKeys(t)

	t.Run("free, no limit", func(t *testing.T) {
		vc := newCard(t, keys, personalisation(t, initPurse, benefit(catPens, 0)))
		must(t, "first ride", present(t, vc, keys, devA1, 1, t0).err)
		r := present(t, vc, keys, devB, 2, t0.Add(time.Hour))
		must(t, "commit", r.err)
		if r.d.Result != tap.Accepted || r.d.Product != fare.ProductBenefit || r.d.Category != "11" || r.d.DebitKop != 0 {
			t.Fatalf("decision %+v", r.d)
		}
		if r.apdus != 7 {
			t.Errorf("free ride took %d APDUs, want 7", r.apdus)
		}
		s := read(t, vc, keys)
		if s.purse != initPurse || len(s.records) != 2 {
			t.Fatalf("purse %d (want untouched %d), %d records", s.purse, initPurse, len(s.records))
		}
		if rec := s.records[1]; rec.Product != card.ProductBenefit || rec.Charged != 0 || rec.Slot != 0 {
			t.Fatalf("record %+v", rec)
		}
	})

	t.Run("half fare", func(t *testing.T) {
		vc := newCard(t, keys, personalisation(t, initPurse, benefit(catStud, 0)))
		r := present(t, vc, keys, devA1, 1, t0)
		must(t, "commit", r.err)
		if s := read(t, vc, keys); s.purse != initPurse-fareKop/2 || s.records[0].Charged != fareKop/2 {
			t.Fatalf("half fare: purse %d, record %+v", s.purse, s.records[0])
		}
	})

	t.Run("monthly limit", func(t *testing.T) {
		vc := newCard(t, keys, personalisation(t, initPurse, benefit(catLimit, 2)))
		mon, _ := card.MonthOf(t0)
		// The card's first tap: the empty log costs a second
		// authentication (7 + 2).
		r := present(t, vc, keys, devA1, 1, t0)
		must(t, "ride 1", r.err)
		if r.d.Product != fare.ProductBenefit || !r.d.CountRide || r.apdus != 9 {
			t.Fatalf("ride 1: %+v after %d APDUs, want a counted benefit ride after 9", r.d, r.apdus)
		}
		s := read(t, vc, keys)
		if rec := s.newest(); rec.Counts[0] != (card.Counter{Category: catLimit, Month: mon, Used: 1}) || rec.Device != devA1 || rec.Time != stamp(t, t0) {
			t.Fatalf("record %+v", rec)
		}
		// The back door: the newest record stops a second count.
		r = present(t, vc, keys, devA2, 1, t0.Add(20*time.Second))
		if r.d.Result != tap.AlreadyPaid || r.apdus != 5 {
			t.Fatalf("back door: %v after %d APDUs", r.d.Result, r.apdus)
		}
		r = present(t, vc, keys, devB, 2, t0.Add(time.Hour))
		must(t, "ride 2", r.err)
		if !r.d.CountRide || r.apdus != 7 {
			t.Fatalf("ride 2: %+v after %d APDUs, want a counted free ride after 7", r.d, r.apdus)
		}
		// Limit used up: the third ride is paid from the purse, at 8.
		r = present(t, vc, keys, devA1, 3, t0.Add(2*time.Hour))
		must(t, "ride 3", r.err)
		if r.d.Product != fare.ProductPurse || r.d.ChargedKop != fareKop || r.apdus != 8 {
			t.Fatalf("ride 3: %+v after %d APDUs, want a purse ride after 8", r.d, r.apdus)
		}
		s = read(t, vc, keys)
		if s.used(0, catLimit, mon) != 2 || s.purse != initPurse-fareKop || len(s.records) != 3 {
			t.Fatalf("after the limit: counts %+v, purse %d, %d records", s.newest().Counts, s.purse, len(s.records))
		}
		// A new month starts at zero.
		next := time.Date(2026, time.December, 1, 7, 0, 0, 0, city)
		r = present(t, vc, keys, devA1, 4, next)
		must(t, "december", r.err)
		if r.d.Product != fare.ProductBenefit {
			t.Fatalf("new month: %+v", r.d)
		}
		dec, _ := card.MonthOf(next)
		if s := read(t, vc, keys); s.newest().Counts[0] != (card.Counter{Category: catLimit, Month: dec, Used: 1}) {
			t.Fatalf("december counts %+v", s.newest().Counts[0])
		}
	})

	t.Run("half fare with a monthly limit: 8", func(t *testing.T) {
		vc := newCard(t, keys, personalisation(t, initPurse, benefit(catStud, 5)))
		must(t, "first ride", present(t, vc, keys, devA1, 1, t0).err)
		r := present(t, vc, keys, devB, 2, t0.Add(2*time.Hour))
		must(t, "ride 2", r.err)
		if r.d.Product != fare.ProductBenefit || !r.d.CountRide || r.d.DebitKop != fareKop/2 || r.apdus != 8 {
			t.Fatalf("counted half-fare ride: %+v after %d APDUs, want 8", r.d, r.apdus)
		}
		mon, _ := card.MonthOf(t0)
		if s := read(t, vc, keys); s.used(0, catStud, mon) != 2 || s.purse != initPurse-fareKop {
			t.Fatalf("counts %+v, purse %d", s.newest().Counts, s.purse)
		}
	})
}

func TestBlockedCard(t *testing.T) {
	_, keys := newKeys(t)
	p := personalisation(t, initPurse, benefit(catPens, 0))
	p.Contract.Status = card.StatusBlocked
	vc := newCard(t, keys, p)
	vc.Reset()
	c := desfire.New(vc)
	s, err := cardtx.ReadWith(context.Background(), c, keys, testUID, t0, city, population)
	must(t, "read", err)
	fc := s.Fare(fleet)
	if !fc.Blocked || fc.Number != uint64(p.Contract.Number) {
		t.Fatalf("blocked card read as %+v", fc)
	}
	d := fare.Decide(fc, tariff(), nil, device(devA1), t0)
	must(t, "commit", s.Commit(context.Background(), d, card.TapRecord{Device: devA1}))
	if d.Result != tap.Denied || d.Reason != fare.ReasonBlocked || c.APDUs() != 4 {
		t.Fatalf("blocked: %v/%s after %d APDUs, want denied/%s after 4", d.Result, d.Reason, c.APDUs(), fare.ReasonBlocked)
	}
	if s := read(t, vc, keys); s.purse != initPurse || len(s.records) != 0 {
		t.Fatalf("blocked card was written: purse %d, %d records", s.purse, len(s.records))
	}
}

func TestInsufficientFunds(t *testing.T) {
	_, keys := newKeys(t)
	vc := newCard(t, keys, personalisation(t, fareKop-1))
	r := present(t, vc, keys, devA1, 1, t0)
	if !errors.Is(r.err, cardtx.ErrInsufficientFunds) || !errors.Is(r.err, cardtx.ErrNotCommitted) || !errors.Is(r.err, desfire.ErrBoundary) {
		t.Fatalf("purse %d, fare %d: %v; want ErrInsufficientFunds, ErrNotCommitted, desfire.ErrBoundary", fareKop-1, fareKop, r.err)
	}
	if s := read(t, vc, keys); s.purse != fareKop-1 || len(s.records) != 0 {
		t.Fatalf("refused debit changed the card: purse %d, %d records", s.purse, len(s.records))
	}
}

// TestReadBalance: with the balance read, fare.Decide itself denies.
func TestReadBalance(t *testing.T) {
	_, keys := newKeys(t)
	vc := newCard(t, keys, personalisation(t, fareKop-1))
	c := desfire.New(vc)
	s, err := cardtx.ReadWith(context.Background(), c, keys, testUID, t0, city, population)
	must(t, "read", err)
	before := c.APDUs()
	if _, ok := s.Balance(); ok {
		t.Fatal("balance known before ReadBalance")
	}
	if fc := s.Fare(fleet); fc.PurseKop != int64(card.PurseUpper) {
		t.Fatalf("unread balance handed to Decide as %d, want the purse limit", fc.PurseKop)
	}
	v, err := s.ReadBalance(context.Background())
	must(t, "balance", err)
	if v != fareKop-1 || c.APDUs() != before+1 {
		t.Fatalf("balance %d after %d more APDUs", v, c.APDUs()-before)
	}
	d := fare.Decide(s.Fare(fleet), tariff(), nil, device(devA1), t0)
	if d.Result != tap.Denied || d.Reason != fare.ReasonInsufficientFunds {
		t.Fatalf("decision %v/%s", d.Result, d.Reason)
	}
}

func TestFareCard(t *testing.T) {
	_, keys := newKeys(t)
	p := personalisation(t, initPurse, benefit(catPens, 0))
	vc := newCard(t, keys, p)
	// 23:30 on the entitlement's last valid day in the city; given in UTC
	// (21:30), which must not matter.
	last := time.Date(2027, time.December, 31, 23, 30, 0, 0, city)
	s, err := cardtx.ReadWith(context.Background(), desfire.New(vc), keys, testUID, last.UTC(), city, population)
	must(t, "read", err)
	fc := s.Fare(fleet)
	if fc.Number != uint64(p.Contract.Number) || fc.Blocked || fc.LastTap != nil {
		t.Fatalf("card %+v", fc)
	}
	if want := time.Date(2031, time.January, 1, 0, 0, 0, 0, city); !fc.Expiry.Equal(want) {
		t.Fatalf("expiry %s, want %s (the day after the last valid day, city midnight)", fc.Expiry, want)
	}
	if len(fc.Entitlements) != 1 {
		t.Fatalf("entitlements %+v", fc.Entitlements)
	}
	e := fc.Entitlements[0]
	if e.Category != "11" || !e.ValidFrom.Equal(time.Date(2026, time.January, 1, 0, 0, 0, 0, city)) ||
		!e.ValidTo.Equal(time.Date(2028, time.January, 1, 0, 0, 0, 0, city)) {
		t.Fatalf("entitlement %+v", e)
	}
	if d := fare.Decide(fc, tariff(), nil, device(devB), last); d.Product != fare.ProductBenefit {
		t.Fatalf("on the last valid day: %+v", d)
	}
	// 00:30 the next day in the city is still the 31st in UTC: the
	// benefit is over.
	after := time.Date(2028, time.January, 1, 0, 30, 0, 0, city)
	vc.Reset()
	s, err = cardtx.ReadWith(context.Background(), desfire.New(vc), keys, testUID, after.UTC(), city, population)
	must(t, "read", err)
	if d := fare.Decide(s.Fare(fleet), tariff(), nil, device(devB), after); d.Product != fare.ProductPurse {
		t.Fatalf("the day after the last valid day: %+v", d)
	}
}

// networkTariff prices KTE (carrier code 7, as tapCard logs it) by a leg
// rule, with a free transfer within 30 minutes and a network pass 5.
func networkTariff() *fare.Tariff {
	t := tariff()
	t.FareKop = nil
	t.Carriers = map[string]fare.Carrier{"KTE": {ID: "KTE", Code: 7, Group: 3, Network: "city"}}
	t.Legs = []fare.LegRule{{LegGroup: "city", Network: "city", Product: "single", FareKop: fareKop}}
	t.Transfers = []fare.TransferRule{{From: "city", To: "city", Within: 30 * time.Minute, Product: "free"}}
	t.Passes = map[uint16]fare.PassProduct{5: {Code: 5, Product: "month", Days: 31, Groups: fare.AllGroups}}
	return t
}

// tapWith is tapCard with tariff tf.
func tapWith(t *testing.T, vc *vcard.Card, keys *cardkey.Source, tf *fare.Tariff, dev, seq uint32, now time.Time) (result, fare.Card) {
	t.Helper()
	vc.Reset()
	c := desfire.New(vc)
	s, err := cardtx.ReadWith(context.Background(), c, keys, testUID, now, city, population)
	must(t, "read", err)
	fc := s.Fare(fleet)
	d := fare.Decide(fc, tf, nil, device(dev), now)
	err = s.Commit(context.Background(), d, card.TapRecord{Time: stamp(t, now), Device: dev, Seq: seq, Carrier: 7, Route: 12})
	return result{d: d, apdus: c.APDUs(), err: err}, fc
}

// TestPassAndTransferTaps: a pass ride and a transfer ride reach the card
// log with their product and slot, and the log's carrier and product come
// back for the next decision.
func TestPassAndTransferTaps(t *testing.T) {
	_, keys := newKeys(t)
	tf := networkTariff()

	t.Run("pass", func(t *testing.T) {
		p := personalisation(t, initPurse)
		p.Contract.Passes[1] = card.Pass{Product: 5, ValidFrom: card.MustDate(2026, time.November, 1),
			ValidTo: card.MustDate(2026, time.November, 30), Carriers: 1 << 3}
		vc := newCard(t, keys, p)
		r, fc := tapWith(t, vc, keys, tf, devA1, 1, t0)
		must(t, "commit", r.err)
		if len(fc.Passes) != 1 || fc.Passes[0].Slot != 1 || fc.Passes[0].Groups != 1<<3 ||
			!fc.Passes[0].ValidTo.Equal(time.Date(2026, time.December, 1, 0, 0, 0, 0, city)) {
			t.Fatalf("passes handed to Decide: %+v", fc.Passes)
		}
		if r.d.Product != fare.ProductPass || r.d.Slot != 1 || r.d.DebitKop != 0 {
			t.Fatalf("decision %+v", r.d)
		}
		s := read(t, vc, keys)
		if s.purse != initPurse || len(s.records) != 1 || s.records[0].Product != card.ProductPass || s.records[0].Slot != 1 {
			t.Fatalf("purse %d, log %+v", s.purse, s.records)
		}
		r, _ = tapWith(t, vc, keys, tf, devB, 2, t0.Add(time.Hour))
		must(t, "second pass ride", r.err)
		if r.d.Product != fare.ProductPass || r.apdus != 7 {
			t.Fatalf("pass ride: %+v after %d APDUs, want 7", r.d, r.apdus)
		}
	})

	t.Run("transfer", func(t *testing.T) {
		vc := newCard(t, keys, personalisation(t, initPurse))
		must(t, "first ride", func() error { r, _ := tapWith(t, vc, keys, tf, devA1, 1, t0); return r.err }())
		r, fc := tapWith(t, vc, keys, tf, devB, 2, t0.Add(10*time.Minute))
		must(t, "transfer", r.err)
		if l := fc.LastTap; l == nil || l.Carrier != 7 || l.Route != 12 || l.Product != fare.ProductPurse {
			t.Fatalf("last tap handed to Decide: %+v", fc.LastTap)
		}
		if r.d.Product != fare.ProductTransfer || r.d.ChargedKop != 0 || r.apdus != 7 {
			t.Fatalf("transfer: %+v after %d APDUs, want a free transfer after 7", r.d, r.apdus)
		}
		// A transfer does not open another one.
		r, fc = tapWith(t, vc, keys, tf, devA1, 3, t0.Add(20*time.Minute))
		must(t, "third ride", r.err)
		if fc.LastTap.Product != fare.ProductTransfer || r.d.Product != fare.ProductPurse {
			t.Fatalf("after a transfer: last %+v, decision %+v", fc.LastTap, r.d)
		}
		s := read(t, vc, keys)
		if s.purse != initPurse-2*fareKop || len(s.records) != 3 || s.records[1].Product != card.ProductTransfer || s.records[1].Charged != 0 {
			t.Fatalf("purse %d, log %+v", s.purse, s.records)
		}
	})
}

// TestFareCountsRides: Fare hands Decide each entitlement's slot, limit
// and the rides counted this month.
func TestFareCountsRides(t *testing.T) {
	_, keys := newKeys(t)
	// Slot 0 empty: the limited entitlement in slot 1 pays.
	vc := newCard(t, keys, personalisation(t, initPurse, card.Entitlement{}, benefit(catLimit, 3)))
	must(t, "ride", present(t, vc, keys, devA1, 1, t0).err)
	vc.Reset()
	s, err := cardtx.ReadWith(context.Background(), desfire.New(vc), keys, testUID, t0.Add(time.Hour), city, population)
	must(t, "read", err)
	fc := s.Fare(fleet)
	if len(fc.Entitlements) != 1 || fc.Entitlements[0] != (fare.Entitlement{Category: "21", Slot: 1, Limit: 3, Used: 1,
		ValidFrom: time.Date(2026, time.January, 1, 0, 0, 0, 0, city), ValidTo: time.Date(2028, time.January, 1, 0, 0, 0, 0, city)}) {
		t.Fatalf("entitlements %+v", fc.Entitlements)
	}
	if d := fare.Decide(fc, tariff(), nil, device(devB), t0.Add(time.Hour)); d.Slot != 1 || !d.CountRide {
		t.Fatalf("decision %+v, want a ride counted on slot 1", d)
	}
}

// TestMixedBenefits: beside an unlimited benefit the decision leaves the
// ride uncounted; the newest record still gives anti-passback.
func TestMixedBenefits(t *testing.T) {
	_, keys := newKeys(t)
	vc := newCard(t, keys, personalisation(t, initPurse, benefit(catPens, 0), benefit(catLimit, 3)))
	r := present(t, vc, keys, devA1, 1, t0)
	must(t, "ride", r.err)
	if r.d.Category != "11" || r.d.CountRide { // a tie at 100 %: the uncounted slot wins
		t.Fatalf("decision %+v", r.d)
	}
	r = present(t, vc, keys, devA2, 2, t0.Add(30*time.Second))
	if r.d.Result != tap.AlreadyPaid {
		t.Fatalf("back door after an uncounted benefit ride: %v, want already-paid", r.d.Result)
	}
}

// TestLimitUsedUp: an entitlement with no rides left this month reaches
// the decision with its count, and the purse pays.
func TestLimitUsedUp(t *testing.T) {
	_, keys := newKeys(t)
	vc := newCard(t, keys, personalisation(t, initPurse, benefit(catLimit, 1)))
	must(t, "ride", present(t, vc, keys, devA1, 1, t0).err)
	vc.Reset()
	s, err := cardtx.ReadWith(context.Background(), desfire.New(vc), keys, testUID, t0.Add(time.Hour), city, population)
	must(t, "read", err)
	fc := s.Fare(fleet)
	if len(fc.Entitlements) != 1 || fc.Entitlements[0].Used != 1 || fc.Entitlements[0].Limit != 1 {
		t.Fatalf("entitlements %+v", fc.Entitlements)
	}
	if d := fare.Decide(fc, tariff(), nil, device(devB), t0.Add(time.Hour)); d.Product != fare.ProductPurse {
		t.Fatalf("used-up limit: %+v, want a purse ride", d)
	}
}

func TestForeignKeys(t *testing.T) {
	_, keys := newKeys(t)
	_, other := newKeys(t)
	vc := newCard(t, keys, personalisation(t, initPurse))
	vc.Reset()
	_, err := cardtx.ReadWith(context.Background(), desfire.New(vc), other, testUID, t0, city, population)
	if !errors.Is(err, cardtx.ErrNotOurCard) || !errors.Is(err, desfire.ErrAuthentication) {
		t.Fatalf("other system's keys: %v; want ErrNotOurCard and desfire.ErrAuthentication", err)
	}
	if !strings.Contains(err.Error(), "validator key version 1") {
		t.Fatalf("error does not say which key was refused: %v", err)
	}
	// A blank card has no transport application.
	_, err = cardtx.ReadWith(context.Background(), desfire.New(vcard.New(testUID)), keys, testUID, t0, city, population)
	if !errors.Is(err, cardtx.ErrNotOurCard) || !errors.Is(err, desfire.ErrApplicationNotFound) {
		t.Fatalf("blank card: %v", err)
	}
}

// TestKeyRotation: a validator on generation 2 still reads a card of
// generation 1, at two more exchanges; a card two generations back fails.
func TestKeyRotation(t *testing.T) {
	ks, keys := newKeys(t)
	vc := newCard(t, keys, personalisation(t, initPurse))
	must(t, "first tap", present(t, vc, keys, devA1, 1, t0).err)
	for _, r := range hsm.Roles {
		_, err := ks.Generate(context.Background(), hsm.CardMasterLabel(r), hsm.KindCardMaster)
		must(t, "rotate", err)
	}
	r := present(t, vc, keys, devB, 2, t0.Add(time.Hour))
	must(t, "tap after rotation", r.err)
	if r.d.Result != tap.Accepted || r.apdus != 10 {
		t.Fatalf("old-generation card: %v after %d APDUs, want accepted after 8+2", r.d.Result, r.apdus)
	}
	for _, r := range hsm.Roles {
		_, err := ks.Generate(context.Background(), hsm.CardMasterLabel(r), hsm.KindCardMaster)
		must(t, "rotate", err)
	}
	vc.Reset()
	_, err := cardtx.ReadWith(context.Background(), desfire.New(vc), keys, testUID, t0, city, population)
	if !errors.Is(err, cardtx.ErrNotOurCard) || !strings.Contains(err.Error(), "version 3 and 2") {
		t.Fatalf("card two generations back: %v", err)
	}
}

func TestCommitOnce(t *testing.T) {
	_, keys := newKeys(t)
	vc := newCard(t, keys, personalisation(t, initPurse))
	s, err := cardtx.ReadWith(context.Background(), desfire.New(vc), keys, testUID, t0, city, population)
	must(t, "read", err)
	d := fare.Decide(s.Fare(fleet), tariff(), nil, device(devA1), t0)
	must(t, "commit", s.Commit(context.Background(), d, card.TapRecord{Device: devA1, Seq: 1}))
	if err := s.Commit(context.Background(), d, card.TapRecord{Device: devA1, Seq: 1}); !errors.Is(err, cardtx.ErrNotCommitted) {
		t.Fatalf("second commit: %v", err)
	}
	if s := read(t, vc, keys); s.purse != initPurse-fareKop || len(s.records) != 1 || s.records[0].Time != stamp(t, t0) {
		t.Fatalf("purse %d, records %+v", s.purse, s.records)
	}
}

// TestBadDecisionWritesNothing: a decision Commit cannot write is refused
// before the first exchange.
func TestBadDecisionWritesNothing(t *testing.T) {
	_, keys := newKeys(t)
	vc := newCard(t, keys, personalisation(t, initPurse, benefit(catPens, 0)))
	for name, d := range map[string]fare.Decision{
		"negative debit":   {Result: tap.Accepted, Product: fare.ProductPurse, DebitKop: -1, LogTap: true},
		"unknown category": {Result: tap.Accepted, Product: fare.ProductBenefit, Category: "99", LogTap: true},
		"unknown product":  {Result: tap.Accepted, Product: "voucher", LogTap: true},
		"pass slot empty":  {Result: tap.Accepted, Product: fare.ProductPass, Slot: 1, LogTap: true},
		"pass slot -1":     {Result: tap.Accepted, Product: fare.ProductPass, Slot: fare.NoSlot, LogTap: true},
		"benefit slot 1":   {Result: tap.Accepted, Product: fare.ProductBenefit, Category: "11", Slot: 1, LogTap: true},
	} {
		t.Run(name, func(t *testing.T) {
			vc.Reset()
			c := desfire.New(vc)
			s, err := cardtx.ReadWith(context.Background(), c, keys, testUID, t0, city, population)
			must(t, "read", err)
			n := c.APDUs()
			err = s.Commit(context.Background(), d, card.TapRecord{Device: devA1})
			if !errors.Is(err, cardtx.ErrNotCommitted) || c.APDUs() != n {
				t.Fatalf("err %v after %d APDUs", err, c.APDUs()-n)
			}
		})
	}
}

// TestTearEveryAPDU tears the card away after each exchange of a tap
// (Read and Commit), and during each with the answer lost. The card then
// holds all of the tap or none of it, Commit's error says which, and an
// error always wraps apdu.ErrCardRemoved.
func TestTearEveryAPDU(t *testing.T) {
	_, keys := newKeys(t)
	kinds := []struct {
		name string
		p    func(t testing.TB) issue.Personalisation
	}{
		{"purse", func(t testing.TB) issue.Personalisation { return personalisation(t, initPurse) }},
		{"counted benefit", func(t testing.TB) issue.Personalisation { return personalisation(t, initPurse, benefit(catLimit, 5)) }},
	}
	for _, kind := range kinds {
		// The untorn tap, after a first one, to count its exchanges.
		probe := newCard(t, keys, kind.p(t))
		must(t, "first tap", present(t, probe, keys, devA1, 1, t0).err)
		n := present(t, probe, keys, devB, 2, t0.Add(time.Hour)).apdus
		for _, lose := range []bool{false, true} {
			for after := 0; after < n; after++ {
				t.Run(fmt.Sprintf("%s/after=%d/lose=%v", kind.name, after, lose), func(t *testing.T) {
					vc := newCard(t, keys, kind.p(t))
					must(t, "first tap", present(t, vc, keys, devA1, 1, t0).err)
					before := read(t, vc, keys)

					r, err := tapCard(t, &vcard.Tear{Card: vc, After: after, LoseResponse: lose}, keys, devB, 2, t0.Add(time.Hour))
					if err == nil {
						err = r.err
					}
					if !errors.Is(err, apdu.ErrCardRemoved) {
						t.Fatalf("torn tap: %v, want an error wrapping apdu.ErrCardRemoved", err)
					}
					atCommit := after == n-1
					switch {
					case r.err == nil: // Read failed
					case atCommit && !errors.Is(r.err, cardtx.ErrCommitUnknown):
						t.Fatalf("torn at CommitTransaction: %v, want ErrCommitUnknown", r.err)
					case !atCommit && !errors.Is(r.err, cardtx.ErrNotCommitted):
						t.Fatalf("torn before CommitTransaction: %v, want ErrNotCommitted", r.err)
					}

					got := read(t, vc, keys)
					mon, _ := card.MonthOf(t0)
					unchanged := got.purse == before.purse && len(got.records) == len(before.records)
					done := len(got.records) == len(before.records)+1 && got.newest().Seq == 2 &&
						(kind.name != "purse" || got.purse == before.purse-fareKop) &&
						(kind.name == "purse" || got.used(0, catLimit, mon) == before.used(0, catLimit, mon)+1)
					if unchanged == done {
						t.Fatalf("card is neither wholly before nor wholly after the tap: %+v, before %+v", got, before)
					}
					if committed := lose && atCommit; done != committed {
						t.Fatalf("tap on card = %v, want %v", done, committed)
					}
				})
			}
		}
	}
}

// BenchmarkTap is one purse tap (Read, Decide, Commit) against the
// in-process virtual card.
func BenchmarkTap(b *testing.B) {
	_, keys := newKeys(b)
	vc := newCard(b, keys, personalisation(b, int64(card.PurseUpper)))
	must(b, "first tap", present(b, vc, keys, devA1, 1, t0).err)
	topUp, err := keys.Key(context.Background(), card.RoleTopUp, testUID, card.AIDTransport, 0)
	must(b, "top-up key", err)
	apdus, taps := 0, 0
	now := t0
	for b.Loop() {
		now = now.Add(5 * time.Minute) // past the passback window
		vc.Reset()
		r, err := tapCard(b, vc, keys, devA1, uint32(taps+2), now)
		if err != nil || r.err != nil || r.d.Result != tap.Accepted {
			b.Fatalf("tap %d: %v %v %v", taps, err, r.err, r.d.Result)
		}
		apdus += r.apdus
		if taps++; taps%500 == 0 { // keep the purse from running dry
			b.StopTimer()
			vc.Reset()
			c := desfire.New(vc)
			must(b, "select", c.SelectApplication(card.AIDTransport.Bytes()))
			must(b, "auth", c.AuthenticateAES(card.KeyTopUp, topUp.Value[:]))
			must(b, "credit", c.Credit(card.FilePurse, 500*fareKop, desfire.CommMAC))
			must(b, "commit", c.CommitTransaction())
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(apdus)/float64(taps), "apdus/op")
}

// TestAPDUBudget is LAYOUT.md's table: every product's tap, on a card
// that has ridden before, within 8 exchanges.
func TestAPDUBudget(t *testing.T) {
	_, keys := newKeys(t)
	tf := networkTariff()
	tf.Carriers["SUB"] = fare.Carrier{ID: "SUB", Code: 8, Group: 4, Network: "suburb"}
	tf.Legs = append(tf.Legs, fare.LegRule{LegGroup: "suburb", Network: "suburb", Product: "suburb", FareKop: 1200})
	tf.Transfers = append(tf.Transfers, fare.TransferRule{From: "city", To: "suburb", Within: 30 * time.Minute,
		Type: fare.TransferFixed, Product: "to-suburb", AmountKop: 300})
	pass := card.Pass{Product: 5, ValidFrom: card.MustDate(2026, time.November, 1), ValidTo: card.MustDate(2026, time.November, 30), Carriers: card.AllCarriers}
	for _, tc := range []struct {
		name    string
		ents    []card.Entitlement
		pass    bool
		carrier string
		after   time.Duration
		product string
		debit   bool
		counted bool
		want    int
	}{
		{name: "purse", after: 2 * time.Hour, product: fare.ProductPurse, debit: true, want: 8},
		{name: "pass", pass: true, after: 2 * time.Hour, product: fare.ProductPass, want: 7},
		{name: "free benefit", ents: []card.Entitlement{benefit(catPens, 0)}, after: 2 * time.Hour, product: fare.ProductBenefit, want: 7},
		{name: "free benefit, counted", ents: []card.Entitlement{benefit(catLimit, 5)}, after: 2 * time.Hour, product: fare.ProductBenefit, counted: true, want: 7},
		{name: "discounted benefit", ents: []card.Entitlement{benefit(catStud, 0)}, after: 2 * time.Hour, product: fare.ProductBenefit, debit: true, want: 8},
		{name: "discounted benefit, counted", ents: []card.Entitlement{benefit(catStud, 5)}, after: 2 * time.Hour, product: fare.ProductBenefit, debit: true, counted: true, want: 8},
		{name: "free transfer", after: 10 * time.Minute, product: fare.ProductTransfer, want: 7},
		{name: "paid transfer", carrier: "SUB", after: 10 * time.Minute, product: fare.ProductTransfer, debit: true, want: 8},
		{name: "transfer beats a counted half fare", ents: []card.Entitlement{benefit(catStud, 5)}, after: 10 * time.Minute, product: fare.ProductTransfer, want: 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := personalisation(t, initPurse, tc.ents...)
			if tc.pass {
				p.Contract.Passes[0] = pass
			}
			vc := newCard(t, keys, p)
			first, _ := tapWith(t, vc, keys, tf, devA1, 1, t0)
			must(t, "first ride", first.err)
			now := t0.Add(tc.after)
			vc.Reset()
			c := desfire.New(vc)
			s, err := cardtx.ReadWith(context.Background(), c, keys, testUID, now, city, population)
			must(t, "read", err)
			dev := device(devB)
			if tc.carrier != "" {
				dev.Carrier = tc.carrier
			}
			d := fare.Decide(s.Fare(fleet), tf, nil, dev, now)
			must(t, "commit", s.Commit(context.Background(), d, card.TapRecord{Time: stamp(t, now), Device: devB, Seq: 2, Carrier: 8, Route: 1}))
			if d.Product != tc.product || (d.DebitKop > 0) != tc.debit || d.CountRide != tc.counted {
				t.Fatalf("decision %+v, want product %s, debit %v, counted %v", d, tc.product, tc.debit, tc.counted)
			}
			t.Logf("%s: %d APDUs", tc.name, c.APDUs())
			if c.APDUs() != tc.want || c.APDUs() > 8 {
				t.Fatalf("%s took %d APDUs, want %d (at most 8)", tc.name, c.APDUs(), tc.want)
			}
		})
	}
}
