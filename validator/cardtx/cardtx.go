// Package cardtx is the validator's side of a tap on a city card: the
// reads before the fare decision and the writes after it, in one
// authenticated DESFire session, with no decision inside. The caller runs
//
//	s, err := cardtx.Read(ctx, c, keys, uid, now, city) // select, authenticate, read
//	d := fare.Decide(s.Fare(fleet), tariff, hotlist, device, now)
//	err = s.Commit(ctx, d, rec)                         // debit, count, log, commit
//
// # APDU budget
//
// card/LAYOUT.md sets at most 8 exchanges per tap and counts them so:
//
//	purse ride, paid transfer          8  select, auth x2, contract, newest log record, Debit, WriteRecord, Commit
//	discounted benefit (counted or not) 8  as a purse ride
//	pass ride, free transfer           7  as above without Debit
//	free benefit (counted or not)      7  as above without Debit
//	blocked or expired card            4  stops after the contract
//	already paid (anti-passback)       5  nothing written
//	purse too low                      6  the card refuses the Debit (ErrInsufficientFunds)
//	and on top, rarely:
//	  +2  a card's first tap: its empty log answers with a boundary error,
//	      which ends the session, so Read authenticates again
//	  +2  a card still on the previous key generation
//
// The monthly benefit ride counts travel in the tap log's newest record
// (card.TapRecord.Counts), which every tap reads anyway for anti-passback
// and transfers, so a counted ride costs what any other ride costs.
//
// The purse balance is not read: GetValue would make a purse ride 9.
// Fare hands fare.Decide the purse's upper limit as the balance, so the
// decision never denies for funds, and the card's own Debit, which cannot
// take the purse below zero, is the check: Commit then returns
// ErrInsufficientFunds, and the caller records the tap as denied for
// insufficient funds. A validator that wants the exact balance (to show it,
// or to have fare.Decide deny) calls ReadBalance between Read and Fare,
// at one more exchange.
//
// # Tears
//
// The debit and the tap record (a cyclic record file, carrying the ride
// counts) take effect together at CommitTransaction, or not at all:
// a card that leaves the field earlier discards them. Every error from
// Commit wraps ErrNotCommitted (the card holds nothing of this tap) or, if
// the card was lost during CommitTransaction itself, ErrCommitUnknown;
// errors of a card that left the field also wrap apdu.ErrCardRemoved.
package cardtx

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/apdu"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/tap"
)

// Errors a caller can test with errors.Is.
var (
	// ErrNotOurCard: the card has no transport application, or it does not
	// accept this validator's key of the newest or the previous generation.
	ErrNotOurCard = errors.New("not a card of this system, or not on a key generation this validator holds")
	// ErrInsufficientFunds: the card refused the debit because the purse
	// holds less than the fare. The card is unchanged.
	ErrInsufficientFunds = errors.New("purse balance is below the fare")
	// ErrNotCommitted: Commit failed before CommitTransaction reached the
	// card; the card holds nothing of this tap.
	ErrNotCommitted = errors.New("tap not committed on the card")
	// ErrCommitUnknown: the card was lost during CommitTransaction: it may
	// or may not hold the tap. Record the tap as not committed; clearing
	// reconciles it with what the card shows later.
	ErrCommitUnknown = errors.New("card lost during CommitTransaction: the tap may or may not be on the card")
)

// Fleet maps a validator's device number to the code of the vehicle it is
// mounted on. The card's tap log names a device, fare.Decide compares
// vehicles: with the map, a tap at another door of the same vehicle counts
// as the same ride. A device missing from the map (nil map: every device)
// is its own vehicle, so anti-passback then only works between taps at the
// same device and only if the caller's fare.Device.Vehicle is
// DeviceVehicle(device).
type Fleet map[uint32]string

// DeviceVehicle is the vehicle code a device missing from a Fleet gets:
// "device:N", which no real vehicle code equals.
func DeviceVehicle(device uint32) string { return "device:" + strconv.FormatUint(uint64(device), 10) }

func (f Fleet) vehicle(device uint32) string {
	if v, ok := f[device]; ok {
		return v
	}
	return DeviceVehicle(device)
}

// Session is one tap's open transaction on one card: what Read found, and
// the authenticated session Commit writes through. It is used by one
// goroutine, for one tap.
type Session struct {
	c    *desfire.Card
	loc  *time.Location
	now  time.Time // the tap instant, in loc
	day  card.Date
	mon  card.Month
	kver uint8

	contract    card.Contract
	last        card.TapRecord
	hasLast     bool
	uid         []byte
	ev2         bool // the card is an EV2 or EV3, in EV2 secure messaging
	mac         CardMAC
	signed      bool
	balance     card.Money
	balanceRead bool
	done        bool
}

// Read opens the tap: it selects the transport application, authenticates
// with the validator key diversified for uid (the newest generation, then
// the previous one if the card refuses it), reads the contract and, unless
// the card is blocked or expired, the newest tap log record: the previous
// ride and the month's benefit ride counts. Card dates are compared with
// now's calendar day in loc, the city's time zone; Commit counts rides in
// that month.
func Read(ctx context.Context, c *desfire.Card, keys *cardkey.Source, uid []byte, now time.Time, loc *time.Location) (*Session, error) {
	return ReadWith(ctx, c, keys, uid, now, loc, Options{})
}

// Options tune Read for a city's card population.
type Options struct {
	// EV1 reports whether the card uid is known to be a DESFire EV1 (the
	// registry knows every card's generation, and EV1 cards are a closed
	// set: none are made any more). Read authenticates an EV1 with
	// AuthenticateAES at once; any other card first with
	// AuthenticateEV2First, and an EV1 it did not know answers that with
	// an illegal-command error, which costs one exchange before
	// AuthenticateAES. Nil: no card is known to be an EV1.
	EV1 func(uid []byte) bool
}

// ReadWith is Read with options.
func ReadWith(ctx context.Context, c *desfire.Card, keys *cardkey.Source, uid []byte, now time.Time, loc *time.Location, o Options) (*Session, error) {
	switch {
	case c == nil:
		return nil, errors.New("cardtx: read: no card")
	case keys == nil:
		return nil, errors.New("cardtx: read: no key source")
	case loc == nil:
		return nil, errors.New("cardtx: read: no time zone for the card's dates")
	}
	local := now.In(loc)
	day, err := card.DateOf(local)
	if err != nil {
		return nil, fmt.Errorf("cardtx: read: %w", err)
	}
	mon, err := card.MonthOf(local)
	if err != nil {
		return nil, fmt.Errorf("cardtx: read: %w", err)
	}
	s := &Session{c: c, loc: loc, now: local, day: day, mon: mon, uid: append([]byte(nil), uid...)}
	s.ev2 = o.EV1 == nil || !o.EV1(uid)
	// Key first: an HSM problem must not cost an exchange.
	key, err := keys.Key(ctx, card.RoleValidator, uid, card.AIDTransport, 0)
	if err != nil {
		return nil, fmt.Errorf("cardtx: read: %w", err)
	}
	if err := step(ctx, "select the transport application", func() error {
		return c.SelectApplication(card.AIDTransport.Bytes())
	}); err != nil {
		if errors.Is(err, desfire.ErrApplicationNotFound) {
			return nil, fmt.Errorf("%w: %w", err, ErrNotOurCard)
		}
		return nil, err
	}
	if key, err = s.authenticate(ctx, keys, uid, key); err != nil {
		return nil, err
	}
	s.kver = key.Version

	var raw []byte
	if err := step(ctx, "read the contract", func() (err error) {
		raw, err = c.ReadData(card.FileContract, 0, card.ContractSize, desfire.CommEnciphered)
		return err
	}); err != nil {
		return nil, err
	}
	if err := s.contract.UnmarshalBinary(raw); err != nil {
		return nil, fmt.Errorf("cardtx: read: %w", err)
	}
	s.mac.Contract = raw
	// Decide denies these before it looks at anything else.
	if s.contract.Status == card.StatusBlocked || s.contract.Expires < day {
		return s, nil
	}
	if err := s.readLastTap(ctx, key); err != nil {
		return nil, err
	}
	return s, nil
}

// authenticate authenticates with key, then, if the card refuses it, with
// the previous generation (LAYOUT.md: validators carry two during a
// rotation). It returns the key that worked.
func (s *Session) authenticate(ctx context.Context, keys *cardkey.Source, uid []byte, key cardkey.Key) (cardkey.Key, error) {
	auth := func(k cardkey.Key) error {
		return step(ctx, fmt.Sprintf("authenticate with validator key version %d", k.Version), func() error {
			return s.auth(k)
		})
	}
	err := auth(key)
	if !errors.Is(err, desfire.ErrAuthentication) {
		return key, err
	}
	tried := strconv.Itoa(int(key.Version))
	if key.Version > 1 {
		prev, perr := keys.Key(ctx, card.RoleValidator, uid, card.AIDTransport, int(key.Version)-1)
		switch {
		case perr == nil:
			// The failed attempt closed the session but kept the
			// application selected.
			if err = auth(prev); !errors.Is(err, desfire.ErrAuthentication) {
				return prev, err
			}
			tried += " and " + strconv.Itoa(int(prev.Version))
		case !errors.Is(perr, hsm.ErrNotFound):
			return key, fmt.Errorf("cardtx: read: %w", perr)
		}
	}
	return key, fmt.Errorf("%w: card refused validator key version %s: %w", err, tried, ErrNotOurCard)
}

// auth authenticates with validator key k: EV2 secure messaging while the
// card may be an EV2 or EV3, EV1 otherwise. An EV1 answers
// AuthenticateEV2First with an illegal-command error (one exchange) and
// keeps its application selected, so AuthenticateAES follows at once.
func (s *Session) auth(k cardkey.Key) error {
	if s.ev2 {
		err := s.c.AuthenticateEV2First(card.KeyValidator, k.Value[:])
		if !errors.Is(err, desfire.ErrIllegalCommand) {
			return err
		}
		s.ev2 = false
	}
	return s.c.AuthenticateAES(card.KeyValidator, k.Value[:])
}

// readLastTap reads the newest tap record. An empty log answers with a
// boundary error, which ends the session on the card, so the session is
// opened again with the same key.
func (s *Session) readLastTap(ctx context.Context, key cardkey.Key) error {
	var recs [][]byte
	err := step(ctx, "read the newest tap record", func() (err error) {
		recs, err = s.c.ReadRecords(card.FileTapLog, 0, 1, card.TapRecordSize, desfire.CommEnciphered)
		return err
	})
	if errors.Is(err, desfire.ErrBoundary) {
		// The new session is a new transaction: the contract read is no
		// longer in what the card will MAC.
		s.mac.Contract = nil
		return step(ctx, "authenticate again after the empty tap log", func() error {
			return s.auth(key)
		})
	}
	if err != nil {
		return err
	}
	if len(recs) != 1 {
		return fmt.Errorf("cardtx: read the newest tap record: %d records, asked 1", len(recs))
	}
	if err := s.last.UnmarshalBinary(recs[0]); err != nil {
		return fmt.Errorf("cardtx: read the newest tap record: %w", err)
	}
	s.mac.Prev = recs[0]
	s.hasLast = true
	return nil
}

// Contract returns the contract read from the card.
func (s *Session) Contract() card.Contract { return s.contract }

// LastTap returns the newest tap log record, and false when the log is
// empty or Read stopped at a blocked or expired contract.
func (s *Session) LastTap() (card.TapRecord, bool) { return s.last, s.hasLast }

// KeyVersion is the generation of the validator key the card accepted.
func (s *Session) KeyVersion() uint8 { return s.kver }

// ReadBalance reads the purse balance with GetValue: one more exchange
// (9 for a purse ride). Call it after Read and before Fare when the
// decision or the display needs the exact balance.
func (s *Session) ReadBalance(ctx context.Context) (card.Money, error) {
	if s.done {
		return 0, errors.New("cardtx: read balance: the session is closed")
	}
	var v int32
	if err := step(ctx, "read the purse balance", func() (err error) {
		v, err = s.c.GetValue(card.FilePurse, desfire.CommMAC)
		return err
	}); err != nil {
		return 0, err
	}
	s.balance, s.balanceRead = card.Money(v), true
	return s.balance, nil
}

// Balance returns the balance ReadBalance read, and false before.
func (s *Session) Balance() (card.Money, bool) { return s.balance, s.balanceRead }

// FareCard returns the card as fare.Decide sees it at instant now, from
// what a validator reads: the contract ct and the newest tap record prev
// (nil for an empty log), with card dates read in loc:
//
//   - Number from the contract; Blocked when its status is blocked.
//   - Expiry and the entitlements' ValidFrom/ValidTo are the instants the
//     days begin in loc (midnights, or where the clocks jump at midnight
//     the instants that compare as the tap's local date does); ValidTo and
//     Expiry are exclusive, the day after the card's inclusive last day.
//   - Entitlement categories are the card's uint16 code in decimal ("11"),
//     with the slot, the monthly limit and the rides counted this month,
//     which the newest tap record carries (card.TapRecord.UsedIn).
//   - Passes with their slot, product code and carrier groups; ValidTo is
//     exclusive like the entitlements'.
//   - PurseKop is the purse's upper limit, card.PurseUpper: the card's
//     Debit does the funds check (see the package documentation).
//   - LastTap is the newest tap record, with its carrier and route codes
//     and product for transfers. Its Vehicle is fleet's vehicle for the
//     record's device (see Fleet).
func FareCard(ct *card.Contract, prev *card.TapRecord, fleet Fleet, now time.Time, loc *time.Location) fare.Card {
	local := now.In(loc)
	mon, _ := card.MonthOf(local) // 0 outside the card's years: no counter matches
	today, todayErr := card.DateOf(local)
	// start returns the instant civil day d begins, as now must see it:
	// the local midnight, unless the clocks jump at midnight (where that
	// midnight does not exist, or happens twice) and it falls on the wrong
	// side of now, which must be in d or later exactly when today is. Card
	// dates are compared with the tap's local date (FORMAT.md).
	start := func(d card.Date) time.Time {
		y, m, dd := d.Time().Date()
		mid := time.Date(y, m, dd, 0, 0, 0, 0, loc)
		if todayErr != nil {
			return mid
		}
		switch on := today >= d; {
		case on && now.Before(mid):
			return now
		case !on && !now.Before(mid):
			return now.Add(time.Nanosecond)
		}
		return mid
	}
	// after returns the start of the day after d.
	after := func(d card.Date) time.Time {
		if d == card.Date(0xFFFF) {
			return start(d).AddDate(0, 0, 1)
		}
		return start(d + 1)
	}
	fc := fare.Card{
		Number:   uint64(ct.Number),
		Blocked:  ct.Status == card.StatusBlocked,
		Expiry:   after(ct.Expires),
		PurseKop: int64(card.PurseUpper),
	}
	for i, e := range ct.Entitlements {
		if e.Empty() {
			continue
		}
		fc.Entitlements = append(fc.Entitlements, fare.Entitlement{
			Category:  strconv.Itoa(int(e.Category)),
			ValidFrom: start(e.ValidFrom),
			ValidTo:   after(e.ValidTo),
			Slot:      i,
			Limit:     int(e.Limit),
			Used:      int(prev.UsedIn(i, e.Category, mon)),
		})
	}
	for i, p := range ct.Passes {
		if p.Empty() {
			continue
		}
		fc.Passes = append(fc.Passes, fare.Pass{
			Product:   p.Product,
			ValidFrom: start(p.ValidFrom),
			ValidTo:   after(p.ValidTo),
			Groups:    p.Carriers,
			Slot:      i,
		})
	}
	if prev != nil {
		fc.LastTap = &fare.LastTap{Time: prev.Time.Time(), Vehicle: fleet.vehicle(prev.Device),
			Carrier: prev.Carrier, Route: prev.Route, Product: prev.Product.String()}
	}
	return fc
}

// Fare returns the card as fare.Decide sees it at the tap instant Read
// was given (FareCard), with the purse balance if ReadBalance ran.
func (s *Session) Fare(fleet Fleet) fare.Card {
	fc := FareCard(&s.contract, s.prev(), fleet, s.now, s.loc)
	if s.balanceRead {
		fc.PurseKop = int64(s.balance)
	}
	return fc
}

// prev returns the newest tap record, nil for an empty log.
func (s *Session) prev() *card.TapRecord {
	if !s.hasLast {
		return nil
	}
	return &s.last
}

// Commit writes decision d to the card and commits: a Debit of
// d.DebitKop when positive; the tap record when d.LogTap (every accepted
// ride), carrying the month's ride counts forward with this ride counted
// when d is a benefit ride on an entitlement with a monthly limit; then
// CommitTransaction. A decision that writes nothing sends nothing.
//
// rec supplies the tap's Time (zero: the Read instant), Device, Seq,
// Carrier and Route; Commit sets Charged, Product, Result, Slot and Counts
// from d and the card so that the card's log cannot disagree with the
// decision.
//
// A session commits at most once. See the package documentation for the
// errors.
func (s *Session) Commit(ctx context.Context, d fare.Decision, rec card.TapRecord) error {
	if s.done {
		return fmt.Errorf("cardtx: commit: the session is closed: %w", ErrNotCommitted)
	}
	s.done = true // whatever happens next, this session's card transaction ends here
	w, err := s.plan(d, rec)
	if err != nil {
		return err
	}
	if !w.any() {
		return nil
	}
	c := s.c
	if w.debit > 0 {
		if err := s.write(ctx, fmt.Sprintf("debit %s", card.Money(w.debit)), func() error {
			return c.Debit(card.FilePurse, w.debit, desfire.CommMAC)
		}); err != nil {
			if errors.Is(err, desfire.ErrBoundary) {
				return fmt.Errorf("%w: %w", ErrInsufficientFunds, err)
			}
			return err
		}
	}
	if w.record != nil {
		if err := s.write(ctx, "write the tap record", func() error {
			return c.WriteRecord(card.FileTapLog, 0, w.record, desfire.CommEnciphered)
		}); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cardtx: commit: before CommitTransaction: %w: %w", ErrNotCommitted, err)
	}
	err = nil
	if s.ev2 {
		// EV2, EV3: the card MACs the transaction and answers the counter
		// and the MAC in the same exchange.
		var tmc uint32
		var tmv [8]byte
		if tmc, tmv, err = c.CommitTMAC(); err == nil {
			s.mac.TMC, s.mac.TMV, s.mac.Debit, s.mac.Record, s.signed = tmc, tmv, w.debit, w.record, true
			s.mac.UID = s.uid
			s.mac.KeyVersion = s.kver
		}
	} else {
		err = c.CommitTransaction()
	}
	if err != nil {
		var se *desfire.StatusError
		if errors.As(err, &se) {
			// The card answered, and refused: it discarded the transaction.
			return fmt.Errorf("cardtx: commit: CommitTransaction: %w: %w", ErrNotCommitted, err)
		}
		return fmt.Errorf("cardtx: commit: CommitTransaction: %w: %w", ErrCommitUnknown, err)
	}
	return nil
}

// CardMAC is what an EV2 or EV3 card signed with its Transaction MAC when
// a tap committed: the counter and MAC it answered, and the plain bytes of
// every command it MACed, so that clearing, which alone holds the
// Transaction MAC master, can rebuild the Transaction MAC Input
// (clearing/cardmac) and check the tap's fields against what the card
// itself recorded.
type CardMAC struct {
	TMC uint32
	TMV [8]byte
	// UID is the card's real UID (the session key derivation and the
	// key's diversification need it).
	UID []byte
	// KeyVersion is the generation of the validator key the card accepted,
	// which personalisation gave the Transaction MAC key too.
	KeyVersion uint8
	// Contract is the contract read in the MACed transaction (nil when an
	// empty log restarted the session after it).
	Contract []byte
	// Prev is the newest tap record read, nil for an empty log.
	Prev []byte
	// Debit is the purse debit in kopiyky, 0 for none.
	Debit int32
	// Record is the tap record written.
	Record []byte
}

// EV2 reports whether the card spoke EV2 secure messaging: an EV2 or EV3.
func (s *Session) EV2() bool { return s.ev2 }

// CardMAC returns what the card signed when Commit committed on an EV2 or
// EV3, and false otherwise.
func (s *Session) CardMAC() (CardMAC, bool) { return s.mac, s.signed }

// writes is what Commit sends, prepared before the first exchange so that
// a bad decision or record fails without touching the card.
type writes struct {
	debit  int32
	record []byte
}

func (w *writes) any() bool { return w.debit > 0 || w.record != nil }

func (s *Session) plan(d fare.Decision, rec card.TapRecord) (*writes, error) {
	w := &writes{}
	if d.DebitKop < 0 || d.DebitKop > int64(card.PurseUpper) {
		return nil, fmt.Errorf("cardtx: commit: debit %d kop outside 0..%d: %w", d.DebitKop, int64(card.PurseUpper), ErrNotCommitted)
	}
	w.debit = int32(d.DebitKop)
	if rec.Time == 0 {
		st, err := card.StampOf(s.now)
		if err != nil {
			return nil, fmt.Errorf("cardtx: commit: %w: %w", err, ErrNotCommitted)
		}
		rec.Time = st
	}
	if d.Result == tap.Accepted && d.Product == fare.ProductPass {
		if _, err := s.passSlot(d.Slot); err != nil {
			return nil, err
		}
	}
	if d.Result == tap.Accepted && d.Product == fare.ProductBenefit {
		if _, err := s.slotFor(d.Category, d.Slot); err != nil {
			return nil, err
		}
	}
	if d.LogTap {
		next, err := NextRecord(&s.contract, s.prev(), d, rec, s.mon)
		if err != nil {
			return nil, err
		}
		b, err := next.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("cardtx: commit: tap record: %w: %w", err, ErrNotCommitted)
		}
		w.record = b
	}
	return w, nil
}

// NextRecord returns the tap log record that decision d, accepted and
// committed in month mon, leaves on a card with contract ct whose newest
// record was prev (nil for an empty log): rec's Time, Device, Seq,
// Carrier and Route, with the charge, product, result and slot of d, and
// the ride counts of prev carried forward with the ride counted when d is
// a benefit ride on an entitlement with a monthly limit
// (card.CountsAfter). Errors wrap ErrNotCommitted.
func NextRecord(ct *card.Contract, prev *card.TapRecord, d fare.Decision, rec card.TapRecord, mon card.Month) (card.TapRecord, error) {
	rec.Slot = card.NoSlot
	counted, category := card.NoSlot, uint16(0)
	switch d.Product {
	case fare.ProductPurse:
		rec.Product = card.ProductPurse
	case fare.ProductBenefit:
		rec.Product = card.ProductBenefit
		if d.Slot < 0 || d.Slot >= card.MaxEntitlements {
			return rec, fmt.Errorf("cardtx: commit: benefit ride on entitlement slot %d: %w", d.Slot, ErrNotCommitted)
		}
		rec.Slot = uint8(d.Slot)
		if e := ct.Entitlements[d.Slot]; e.Limit > 0 {
			counted, category = rec.Slot, e.Category
		}
	case fare.ProductPass:
		rec.Product = card.ProductPass
		if d.Slot < 0 || d.Slot >= card.MaxPasses {
			return rec, fmt.Errorf("cardtx: commit: pass ride on pass slot %d: %w", d.Slot, ErrNotCommitted)
		}
		rec.Slot = uint8(d.Slot)
	case fare.ProductTransfer:
		rec.Product = card.ProductTransfer
	default:
		return rec, fmt.Errorf("cardtx: commit: product %q has no tap log code: %w", d.Product, ErrNotCommitted)
	}
	rec.Charged = card.Money(d.ChargedKop)
	rec.Result = card.Result(d.Result) // validator/tap and the card share the codes
	counts, err := card.CountsAfter(prev, mon, counted, category)
	if err != nil {
		return rec, fmt.Errorf("cardtx: commit: count the ride: %w: %w", err, ErrNotCommitted)
	}
	rec.Counts = counts
	return rec, nil
}

// slotFor checks that entitlement slot, which the decision names, pays a
// benefit ride of category (decimal code) today.
func (s *Session) slotFor(category string, slot int) (int, error) {
	if slot >= 0 && slot < card.MaxEntitlements {
		if e := s.contract.Entitlements[slot]; !e.Empty() && strconv.Itoa(int(e.Category)) == category && e.ValidOn(s.day) &&
			(e.Limit == 0 || s.prev().UsedIn(slot, e.Category, s.mon) < e.Limit) {
			return slot, nil
		}
	}
	return 0, fmt.Errorf("cardtx: commit: the decision names benefit category %q in entitlement slot %d, which card %s does not cover on %s: %w",
		category, slot, s.contract.Number, s.day, ErrNotCommitted)
}

// passSlot checks that pass slot, which the decision names, holds a pass
// valid today. The carrier groups are the decision's business: the
// session does not know the tariff.
func (s *Session) passSlot(slot int) (int, error) {
	if slot >= 0 && slot < card.MaxPasses {
		if p := s.contract.Passes[slot]; !p.Empty() && p.ValidFrom <= s.day && s.day <= p.ValidTo {
			return slot, nil
		}
	}
	return 0, fmt.Errorf("cardtx: commit: the decision names pass slot %d, which holds no pass valid on %s on card %s: %w",
		slot, s.day, s.contract.Number, ErrNotCommitted)
}

// write runs one write exchange of Commit; any failure means nothing of
// the tap is on the card.
func (s *Session) write(ctx context.Context, what string, f func() error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cardtx: commit: before %s: %w: %w", what, ErrNotCommitted, err)
	}
	err := f()
	if err == nil {
		return nil
	}
	var se *desfire.StatusError
	if !errors.As(err, &se) && !errors.Is(err, apdu.ErrCardRemoved) {
		// The reader rejected the card's answer (MAC, CRC, shape); the card
		// may still hold the pending writes. Drop them now rather than when
		// the card leaves the field; if this fails the card still
		// discards them then.
		_ = s.c.AbortTransaction()
	}
	return fmt.Errorf("cardtx: commit: %s: %w: %w", what, ErrNotCommitted, err)
}

// step runs one read exchange (or two, for authentication) of Read,
// checking ctx first.
func step(ctx context.Context, what string, f func() error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cardtx: read: before %s: %w", what, err)
	}
	if err := f(); err != nil {
		return fmt.Errorf("cardtx: read: %s: %w", what, err)
	}
	return nil
}
