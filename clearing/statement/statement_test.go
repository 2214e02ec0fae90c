package statement_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/clearing/store/storetest"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/validator/tap"
)

var kyiv = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Kyiv")
	if err != nil {
		panic(err)
	}
	return loc
}()

type fixture struct {
	path string
	st   *sqlite.Store
	ks   *hsm.Keystore
	svc  *statement.Service
	now  time.Time
}

func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	ks, err := hsm.CreateKeystore(filepath.Join(dir, "keys"), []byte("pw"), hsm.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	if _, err := ks.Generate(ctx, hsm.LabelSignStatement, hsm.KindSigning); err != nil {
		t.Fatal(err)
	}
	f := &fixture{path: filepath.Join(dir, "clearing.db"), ks: ks, now: time.Date(2026, 12, 3, 9, 0, 0, 0, kyiv)}
	f.st, err = sqlite.Open(ctx, f.path, store.Options{Location: kyiv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.st.Close() })
	f.svc = &statement.Service{Store: f.st, Keys: ks, Location: kyiv, Now: func() time.Time { return f.now }}
	return f
}

// ride is a benefit ride that clearing's re-rating proves with the
// store suite's tariff: on ATP-1 a free ride (1500) or a half-price one
// (750), on Elektrotrans a free ride (800).
func ride(device string, seq uint64, at time.Time, carrier string, kop int64) tap.Tap {
	tp := storetest.Ride(device, seq, at)
	tp.Card, tp.Vehicle = 500+seq, device
	if carrier == "Elektrotrans" || carrier == "ELEKTROTRANS" {
		tp.Carrier, tp.Route, tp.FareKop, tp.CompensationKop = "ELEKTROTRANS", "T1", 800, 800
	}
	if kop == 750 {
		tp.Category, tp.ChargedKop, tp.CompensationKop = "31", 750, 750
	}
	return tp
}

func (f *fixture) add(t *testing.T, taps ...tap.Tap) {
	t.Helper()
	storetest.Prove(t, f.st, taps)
	if _, _, err := f.st.AddTaps(context.Background(), taps); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) statements(t *testing.T, period string) []store.Statement {
	t.Helper()
	sts, err := f.st.Statements(context.Background(), period)
	if err != nil {
		t.Fatal(err)
	}
	return sts
}

func verified(t *testing.T, f *fixture, period string) []statement.Verification {
	t.Helper()
	vs, err := f.svc.Verify(context.Background(), period, true)
	if err != nil {
		t.Fatalf("Verify(%s): %v", period, err)
	}
	return vs
}

// TestLateTapLeavesClosedStatement is the proof: a tap of
// November that arrives after November was closed leaves November's
// closed statement (lines, hash, signature) as it was, and appears in
// December's adjustment statement of November.
func TestLateTapLeavesClosedStatement(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	nov := time.Date(2026, 11, 20, 8, 0, 0, 0, kyiv)
	f.add(t, ride("BUS-1", 1, nov, "ATP-1", 1500), ride("BUS-1", 2, nov.Add(time.Minute), "ATP-1", 750),
		ride("TRAM-2", 1, nov, "Elektrotrans", 800))

	closed, err := f.svc.Close(ctx, "2026-11", closing)
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	if len(closed) != 1 || closed[0].KeyRef != "sign-statement@1" || len(closed[0].Signature) != 64 {
		t.Fatalf("closed statements %+v", closed)
	}
	if tot := closed[0].Total(); tot.Rides != 3 || tot.CompensationKop != 3050 {
		t.Fatalf("closed total %+v, want 3 rides and 3050 kop", tot)
	}
	before := f.statements(t, "2026-11")

	// BUS-1's third November ride arrives in December.
	late := ride("BUS-1", 3, nov.Add(2*time.Minute), "ATP-1", 1500)
	f.add(t, late)

	after := f.statements(t, "2026-11")
	if len(after) != 1 || !slices.Equal(after[0].Lines, before[0].Lines) ||
		!bytes.Equal(after[0].Hash, before[0].Hash) || !bytes.Equal(after[0].Signature, before[0].Signature) ||
		!after[0].ClosedAt.Equal(before[0].ClosedAt) || after[0].KeyRef != before[0].KeyRef {
		t.Fatalf("the late tap changed the closed statement:\nbefore %+v\nafter  %+v", before, after)
	}
	for _, v := range verified(t, f, "2026-11") {
		if !v.OK() || !v.Signed || !v.RollupMatches || !v.TapsMatch {
			t.Errorf("verify November after the late tap: %+v", v)
		}
	}
	dec := f.statements(t, "2026-12")
	want := []store.Line{{Adjusts: "2026-11", Carrier: "ATP-1", Category: "11", Funding: "city", Rides: 1, FareKop: 1500, CompensationKop: 1500}}
	if len(dec) != 2 || dec[1].Adjusts != "2026-11" || dec[1].Closed || !slices.Equal(dec[1].Lines, want) {
		t.Fatalf("December's statements %+v; want its own and a draft adjustment of November holding the late ride", dec)
	}

	// December closes a month later, with its adjustment signed too.
	f.now = time.Date(2027, 1, 2, 9, 0, 0, 0, kyiv)
	decClosed, err := f.svc.Close(ctx, "2026-12", closing)
	if err != nil || len(decClosed) != 2 {
		t.Fatalf("Close(2026-12) = %+v, %v", decClosed, err)
	}
	for _, v := range verified(t, f, "2026-12") {
		if !v.OK() {
			t.Errorf("verify %s/%s: %v", v.Statement.Period, v.Statement.Adjusts, v.Problems)
		}
	}
}

func TestCloseRules(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.now = time.Date(2026, 11, 30, 23, 59, 0, 0, kyiv)
	if _, err := f.svc.Close(ctx, "2026-11", closing); !errors.Is(err, statement.ErrNotOver) || !strings.Contains(err.Error(), "2026-12-01T00:00:00+02:00") {
		t.Fatalf("closing November before it ended: %v; want ErrNotOver naming its end", err)
	}
	if _, err := f.svc.Verify(ctx, "2026-11", false); !errors.Is(err, statement.ErrNotClosed) {
		t.Fatalf("verifying an open period: %v, want ErrNotClosed", err)
	}
	if _, err := f.svc.Close(ctx, "2026-11", early); err != nil {
		t.Fatalf("closing November early on purpose: %v", err)
	}
	if _, err := f.svc.Close(ctx, "2026-11", early); !errors.Is(err, store.ErrPeriodClosed) {
		t.Fatalf("closing twice: %v, want ErrPeriodClosed", err)
	}
	if _, err := f.svc.Close(ctx, "November", early); err == nil {
		t.Fatal("closing a malformed period succeeded")
	}
	// Without a signing key nothing is closed.
	empty, err := hsm.CreateKeystore(filepath.Join(t.TempDir(), "k"), []byte("pw"), hsm.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	svc := *f.svc
	svc.Keys = empty
	if _, err := svc.Close(ctx, "2026-10", early); err == nil || !strings.Contains(err.Error(), "transit hsm keygen sign-statement") {
		t.Fatalf("closing without a key: %v; want a hint to create it", err)
	}
	if ps, _ := f.st.ClosedPeriods(ctx); !slices.Equal(ps, []string{"2026-11"}) {
		t.Fatalf("closed periods %v", ps)
	}
}

// TestVerifyFindsTampering edits the database behind the store's back, as
// someone with write access to the file could, and expects Verify to say
// so.
func TestVerifyFindsTampering(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	nov := time.Date(2026, 11, 20, 8, 0, 0, 0, kyiv)
	f.add(t, ride("BUS-1", 1, nov, "ATP-1", 1500), ride("BUS-1", 2, nov, "Elektrotrans", 800))
	if _, err := f.svc.Close(ctx, "2026-11", closing); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+f.path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	edit := func(q ...string) {
		t.Helper()
		for _, s := range q {
			if _, err := db.Exec(s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
	problems := func() string {
		t.Helper()
		var all []string
		for _, v := range verified(t, f, "2026-11") {
			all = append(all, v.Problems...)
		}
		return strings.Join(all, "; ")
	}
	if p := problems(); p != "" {
		t.Fatalf("untouched statement: %s", p)
	}
	edit("UPDATE taps SET compensation_kop = 1 WHERE seq = 2")
	if p := problems(); !strings.Contains(p, "raw taps") || strings.Contains(p, "hash") {
		t.Errorf("after editing a tap: %q", p)
	}
	edit("DROP TRIGGER statement_lines_no_update", "UPDATE statement_lines SET compensation_kop = 1000 WHERE carrier = 'ATP-1'")
	if p := problems(); !strings.Contains(p, "content hash does not match") {
		t.Errorf("after editing a closed line: %q", p)
	}
}

// closing and early are the confirmed closes of the tests.
var (
	closing = statement.Closing{Actor: "o.koval (supervisor)", Confirmed: true}
	early   = statement.Closing{Actor: "o.koval (supervisor)", Confirmed: true, Early: true}
)
