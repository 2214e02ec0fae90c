// Package demo runs the whole platform in one process on embedded
// defaults: a software keystore, virtual cards personalised as a desk
// would, validators deciding taps against them, journals on disk, an
// in-process bus, and clearing on the embedded SQLite store. It is what
// `transit demo` prints, and it checks its own result: the compensation
// clearing reports must equal what the validators' decisions add up to.
package demo

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/issue"
	"github.com/citycard/transit/clearing/bus"
	"github.com/citycard/transit/clearing/bus/inproc"
	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/simulator/vcard"
	"github.com/citycard/transit/validator/agent"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/journal"
	"github.com/citycard/transit/validator/tap"
	"github.com/citycard/transit/validator/tariff"
	"github.com/citycard/transit/validator/upload"
)

// defaultTariff holds the demo city's tariff directory, the same as the
// sample in testdata/tariff (a test keeps them equal).
//
//go:embed tariff
var defaultTariff embed.FS

// DefaultTariff returns the demo city's tariff directory.
func DefaultTariff() fs.FS {
	sub, err := fs.Sub(defaultTariff, "tariff")
	if err != nil {
		panic(err) // "tariff" is a valid path: fs.Sub cannot fail
	}
	return sub
}

// Options shape a demo run.
type Options struct {
	// Dir holds the keystores, journals and clearing database.
	Dir string
	// Out receives the narration; nil discards it.
	Out io.Writer
	// Tariff is the tariff directory; nil means DefaultTariff().
	Tariff fs.FS
	// Day is the simulated service day (its date in Location is used).
	Day time.Time
	// Location is the city's time zone.
	Location *time.Location
	// Cards is how many cards are issued (default 40).
	Cards int
	// Seed makes the day's rides repeatable.
	Seed uint64
}

// Result is what the demo found.
type Result struct {
	Period string
	Lines  []store.Line
	// Taps counts every journalled tap; Rides the benefit rides the
	// validators recorded on cards.
	Taps, Rides int
	// ExpectedKop is the compensation the validators' decisions add up to;
	// clearing's report must equal it.
	ExpectedKop int64
	Stored      ingest.Totals
}

// Vehicle is one validator on one bus.
type Vehicle struct {
	Device  string
	Number  uint32
	Carrier string
	Route   string
	Vehicle string
}

// Fleet is the demo city's fleet: three carriers, one validator each.
var fleet = []Vehicle{
	{"atp1-bus-0417", 417001, "ATP-1", "12", "0417"},
	{"et-tram-0093", 93001, "ELEKTROTRANS", "T3", "0093"},
	{"pr7-bus-0212", 212001, "PRIVAT-7", "45", "0212"},
}

// profile is a kind of cardholder and the benefit written on the card.
type profile struct {
	name     string
	category uint16
	funding  card.Funding
	share    int // in every 20 cards
}

var profiles = []profile{
	{"pensioner", 11, card.FundingState, 6},
	{"veteran", 12, card.FundingState, 2},
	{"disability", 21, card.FundingCity, 2},
	{"student", 31, card.FundingCity, 4},
	{"full fare", 0, 0, 6},
}

// cheapKDF keeps the demo fast; production keystores use hsm.DefaultKDF.
var cheapKDF = hsm.KDFParams{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}

// Run runs the demo and returns what clearing reported.
func Run(ctx context.Context, o Options) (Result, error) {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	if o.Cards <= 0 {
		o.Cards = 40
	}
	loc := o.Location
	if loc == nil {
		loc = time.UTC
	}
	if o.Tariff == nil {
		o.Tariff = DefaultTariff()
	}
	tf, err := tariff.Parse(o.Tariff)
	if err != nil {
		return Result{}, fmt.Errorf("demo tariff: %w", err)
	}
	y, m, d := o.Day.In(loc).Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, loc)
	res := Result{Period: day.Format("2006-01")}
	rng := rand.New(rand.NewPCG(o.Seed, 0x7a11))

	// 1. Keys.
	pass := []byte("demo passphrase")
	ks, err := hsm.CreateKeystore(filepath.Join(o.Dir, "city.keys"), pass, cheapKDF)
	if err != nil {
		return res, err
	}
	defer ks.Close()
	if err := standardKeys(ctx, ks); err != nil {
		return res, err
	}
	keys, _ := ks.Keys(ctx)
	fmt.Fprintf(out, "1. Key custody: software keystore with %d keys (card masters per role, signing keys, batch master)\n", len(keys))

	// 2. Cards, personalised as a desk would with the issuer's keys.
	issuer := cardkey.New(ks)
	cards := make([]*vcard.Card, o.Cards)
	count := map[string]int{}
	for i := range cards {
		uid := []byte{0x04, byte(i >> 16), byte(i >> 8), byte(i), 0x5A, 0x80, 0x01}
		cards[i] = vcard.New(uid)
		p := pick(i)
		pers := personalisation(i, p, day)
		if err := issue.Personalise(ctx, cards[i], issuer, uid, pers); err != nil {
			return res, fmt.Errorf("personalise card %d: %w", i+1, err)
		}
		count[p.name]++
	}
	fmt.Fprintf(out, "2. Issued %d cards:", o.Cards)
	for _, p := range profiles {
		fmt.Fprintf(out, " %d %s", count[p.name], p.name)
	}
	fmt.Fprintln(out)

	// 3. Validators, each with only its role's keys and its own journal.
	bs := inproc.New(4)
	prod := bs.Producer()
	defer prod.Close()
	type validator struct {
		v       Vehicle
		agent   *agent.Agent
		journal *journal.Journal
		up      *upload.Uploader
	}
	vals := make([]*validator, len(fleet))
	for i, v := range fleet {
		rks, err := hsm.ExportRole(ctx, ks, hsm.RoleValidator, v.Device, filepath.Join(o.Dir, v.Device+".keys"), pass, cheapKDF)
		if err != nil {
			return res, err
		}
		defer rks.Close()
		j, err := journal.Open(ctx, filepath.Join(o.Dir, v.Device+".journal"), v.Device)
		if err != nil {
			return res, err
		}
		defer j.Close()
		sealer, err := upload.NewKeySealer(ctx, rks)
		if err != nil {
			return res, err
		}
		vals[i] = &validator{v: v, journal: j,
			agent: &agent.Agent{
				Device:  fare.Device{ID: v.Device, Carrier: v.Carrier, Route: v.Route, Vehicle: v.Vehicle},
				Tariff:  tf,
				Cards:   agent.DESFire(cardkey.New(rks), v.Number, v.Vehicle, loc),
				Journal: j,
				// A torn card is part of the story, not a warning.
				Log: slog.New(slog.DiscardHandler),
			},
			// Batches leave at the end of the service day, on the same
			// simulated clock as the taps and clearing.
			up: &upload.Uploader{Journal: j, Sealer: sealer, Publisher: bus.KeyValuePublisher{Producer: prod}, MaxTaps: 50,
				Now: func() time.Time { return day.Add(23 * time.Hour) }},
		}
	}

	// 4. A service day: each card rides two to four times, from 06:00.
	type ride struct {
		at   time.Time
		card int
		veh  int
	}
	var rides []ride
	for c := range cards {
		for range 2 + rng.IntN(3) {
			at := day.Add(6*time.Hour + time.Duration(rng.Int64N(int64(16*time.Hour))))
			rides = append(rides, ride{at, c, rng.IntN(len(fleet))})
		}
	}
	// A few riders tap twice at the same door: anti-passback.
	for k := 0; k < len(rides)/20; k++ {
		r := rides[rng.IntN(len(rides))]
		rides = append(rides, ride{r.at.Add(20 * time.Second), r.card, r.veh})
	}
	slices.SortStableFunc(rides, func(a, b ride) int { return a.at.Compare(b.at) })
	results := map[string]int{}
	torn := 0
	for i, r := range rides {
		val := vals[r.veh]
		cards[r.card].Reset() // a new presentation powers the card up afresh
		val.agent.Now = func() time.Time { return r.at }
		var tr interface {
			Transmit([]byte) ([]byte, error)
		} = cards[r.card]
		// Every fiftieth rider pulls the card away mid-transaction; the
		// validator records the tap as not committed, the rider taps again.
		if i%50 == 49 {
			tr = &vcard.Tear{Card: cards[r.card], After: 5}
		}
		ev, err := val.agent.Tap(ctx, tr, cards[r.card].UID())
		if err != nil {
			return res, err
		}
		if _, ok := ev.Tap(); ok {
			res.Taps++
		}
		if !ev.Committed && ev.Reason == agent.ReasonTorn {
			torn++
			val.agent.Now = func() time.Time { return r.at.Add(3 * time.Second) }
			if ev, err = val.agent.Tap(ctx, cards[r.card], cards[r.card].UID()); err != nil {
				return res, err
			}
			res.Taps++
		}
		results[ev.Result]++
		if t, ok := ev.Tap(); ok && t.Result == tap.Accepted && t.CardCommitted && t.CompensationKop > 0 {
			res.Rides++
			res.ExpectedKop += t.CompensationKop
		}
	}
	fmt.Fprintf(out, "3. Rode a day on %d vehicles of %d carriers: %d taps (%d accepted, %d already paid, %d denied, %d torn away and tapped again)\n",
		len(fleet), len(fleet), res.Taps, results["accepted"], results["already-paid"], results["denied"], torn)

	// 5. Upload: sealed batches onto the bus.
	batches := 0
	for _, v := range vals {
		n, err := v.up.Flush(ctx)
		if err != nil {
			return res, err
		}
		batches += (n + v.up.MaxTaps - 1) / v.up.MaxTaps
	}
	fmt.Fprintf(out, "4. Validators sent %d sealed batches\n", batches)

	// 6. Clearing: verify, store exactly once, roll up.
	st, err := sqlite.Open(ctx, filepath.Join(o.Dir, "clearing.db"), store.Options{Location: loc})
	if err != nil {
		return res, err
	}
	defer st.Close()
	cons, err := bs.Consumer("clearing")
	if err != nil {
		return res, err
	}
	defer cons.Close()
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	runner := &ingest.Runner{
		Consumer:  cons,
		Processor: &ingest.Processor{Verifier: &ingest.KeyVerifier{Keys: ks}, Store: st, Now: func() time.Time { return day.Add(24 * time.Hour) }},
		OnBatch: func(_ ingest.Outcome, t ingest.Totals) {
			res.Stored = t
			if t.Batches == batches {
				stop()
			}
		},
	}
	if err := runner.Run(cctx); err != nil && !errors.Is(err, context.Canceled) {
		return res, err
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	fmt.Fprintf(out, "5. Clearing stored %d taps (%d duplicates, %d batches quarantined)\n",
		res.Stored.Added, res.Stored.Duplicates, res.Stored.Quarantined)

	res.Lines, err = st.Compensation(ctx, store.Query{Period: res.Period})
	if err != nil {
		return res, err
	}
	var got int64
	for _, l := range res.Lines {
		got += l.CompensationKop
	}
	if got != res.ExpectedKop {
		return res, fmt.Errorf("clearing reports %d kop of compensation, the validators decided %d kop", got, res.ExpectedKop)
	}
	return res, nil
}

func pick(i int) profile {
	n := i % 20
	for _, p := range profiles {
		if n < p.share {
			return p
		}
		n -= p.share
	}
	return profiles[len(profiles)-1]
}

func personalisation(i int, p profile, day time.Time) issue.Personalisation {
	num, _ := card.NewNumber(1001, uint64(100000+i))
	today, _ := card.DateOf(day)
	expires, _ := card.DateOf(day.AddDate(5, 0, 0))
	pers := issue.Personalisation{
		Identity: card.Identity{Number: num, Issuer: 1001, Issued: today, Expires: expires},
		Holder:   card.Holder{Name: fmt.Sprintf("Demo Holder %d", i+1), BirthDate: card.BirthDate{Year: 1950 + i%50, Month: time.Month(1 + i%12), Day: 1 + i%28}, RegistryRef: uint64(5000 + i)},
		Contract: card.Contract{Status: card.StatusActive, Number: num, Expires: expires},
		PurseKop: int64(200_00 + 50_00*(i%3)),
	}
	if p.category == 0 && i%4 == 0 {
		pers.PurseKop = 20_00 // runs dry during the day: the card refuses the debit
	}
	if p.category != 0 {
		from, _ := card.DateOf(day.AddDate(-1, 0, 0))
		to, _ := card.DateOf(day.AddDate(1, 0, 0))
		pers.Contract.Entitlements[0] = card.Entitlement{Category: p.category, ValidFrom: from, ValidTo: to, Funding: p.funding}
	}
	return pers
}

// standardKeys generates version 1 of every key the platform uses.
func standardKeys(ctx context.Context, a hsm.Admin) error {
	for _, r := range hsm.Roles {
		if _, err := a.Generate(ctx, hsm.CardMasterLabel(r), hsm.KindCardMaster); err != nil {
			return err
		}
	}
	for _, l := range []string{hsm.LabelSignHotlist, hsm.LabelSignTariff, hsm.LabelSignStatement} {
		if _, err := a.Generate(ctx, l, hsm.KindSigning); err != nil {
			return err
		}
	}
	_, err := a.Generate(ctx, hsm.LabelBatchMaster, hsm.KindBatchMaster)
	return err
}
