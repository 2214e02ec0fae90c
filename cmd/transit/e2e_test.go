package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/issue"
	"github.com/citycard/transit/clearing/bus/kafka"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/postgres"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/simulator/testenv"
	"github.com/citycard/transit/simulator/vcard"
	"github.com/citycard/transit/simulator/vpcd"
	"github.com/citycard/transit/validator/agent"
	"github.com/citycard/transit/validator/hotlist"
	"github.com/citycard/transit/validator/tap"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// transit runs the command line in process and fails the test unless it
// exits with want.
func transit(t *testing.T, ctx context.Context, want int, args ...string) string {
	t.Helper()
	var out, errb syncBuffer
	if code := run(ctx, args, &out, &errb); code != want {
		t.Fatalf("transit %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out.String(), errb.String())
	}
	return out.String()
}

// background starts a long-running command and returns a function that
// stops it and checks it ended cleanly.
func background(t *testing.T, ctx context.Context, name string, args ...string) (stop func(), out *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	out = &syncBuffer{}
	errb := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, out, errb) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("%s exited %d\nstdout: %s\nstderr: %s", name, code, out.String(), errb.String())
				}
			case <-time.After(30 * time.Second):
				t.Errorf("%s did not stop within 30 s of cancel", name)
			}
		})
	}
	t.Cleanup(stop)
	// A command that fails at start (bad flag, server down) must say so
	// now rather than time the test out later.
	select {
	case code := <-done:
		t.Fatalf("%s exited at start with %d\nstdout: %s\nstderr: %s", name, code, out.String(), errb.String())
	case <-time.After(300 * time.Millisecond):
	}
	return stop, out
}

// rider is a card in the test and what its ride must cost the city.
type rider struct {
	category uint16
	funding  card.Funding
	purseKop int64
	lost     bool // on the hotlist
}

// TestEndToEnd drives the walking skeleton with every real part: virtual
// cards presented through vpcd to a real pcscd, two `transit validator
// run` processes reading them with PC/SC, journals on disk, sealed batches
// to the Kafka-protocol broker, `transit clearing serve` storing them in
// PostgreSQL, and `transit report compensation` printing one line per
// carrier whose amounts must equal what the taps made.
func TestEndToEnd(t *testing.T) {
	broker := testenv.Kafka(t)
	vpcd0, reader0 := testenv.PCSC(t, 0)
	vpcd1, reader1 := testenv.PCSC(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	suffix := fmt.Sprintf("%x", rand.Uint32())

	// A schema of its own in the shared test database.
	db := testenv.PostgresSchema(t)
	topic := "e2e-" + suffix
	if err := kafka.CreateTopic(ctx, kafka.Config{Brokers: []string{broker}, Topic: topic}, 4); err != nil {
		t.Fatal(err)
	}

	// Keys: the city's keystore, and one role keystore per validator.
	t.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", "e2e passphrase")
	t.Setenv("TRANSIT_ROLE_PASSPHRASE", "e2e passphrase")
	keys := filepath.Join(dir, "city.keys")
	transit(t, ctx, 0, "hsm", "init", "--keystore", keys)
	type validator struct {
		device, carrier, vpcd, reader string
		fareKop                       int64
	}
	vals := []validator{
		{"e2e-atp1-0417", "ATP-1", vpcd0, reader0, 1500},
		{"e2e-et-0093", "ELEKTROTRANS", vpcd1, reader1, 800},
	}
	// The sample tariff, signed as the city would sign it.
	tariffPath := filepath.Join(dir, "tariff")
	if err := os.CopyFS(tariffPath, os.DirFS(filepath.Join("..", "..", "testdata", "tariff"))); err != nil {
		t.Fatal(err)
	}
	transit(t, ctx, 0, "tariff", "sign", tariffPath, "--keystore", keys)

	// The registry's hotlist publisher, with one lost card on it.
	lostCard, _ := card.NewNumber(1001, 799)
	ks, err := hsm.OpenKeystore(keys, []byte("e2e passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ks.Signer(ctx, hsm.Ref{Label: hsm.LabelSignHotlist, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	hotlistFile, err := hotlist.Build([]hotlist.Entry{{Card: uint64(lostCard), Reason: hotlist.ReasonLost}}, 1, time.Now(), signer, 1)
	if err != nil {
		t.Fatal(err)
	}
	// It also gives clearing, with the service token, the registry's
	// records of the riders' cards, which re-rating proves their benefit
	// rides against, and says its tariff is the one clearing keeps.
	const registryToken = "rgt_e2e-clearing-service"
	t.Setenv("TRANSIT_REGISTRY_TOKEN", registryToken)
	var records []map[string]any
	registry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/tariff":
			w.WriteHeader(http.StatusNotModified)
			return
		case "/v1/cards/records":
			if r.Header.Get("Authorization") != "Bearer "+registryToken {
				http.Error(w, `{"error": "unknown token"}`, http.StatusUnauthorized)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"records": records, "next": 1, "as_of": time.Now().UTC()}) //nolint:errcheck // test server
			return
		}
		if r.URL.Path != "/v1/validator/hotlist" {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("since") == "1" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(hotlistFile)
	}))
	defer registry.Close()
	for i, v := range vals {
		vk := filepath.Join(dir, v.device+".keys")
		transit(t, ctx, 0, "hsm", "export-role", "validator", "--device", v.device, "--out", vk, "--keystore", keys)
		cfg := fmt.Sprintf(`{"device": %q, "device_number": %d, "carrier": %q, "route": "1", "vehicle": "v%d",
			"reader": %q, "journal": %q, "keystore": %q, "tariff": %q, "hotlist_dir": %q,
			"updates_url": %q, "kafka": {"brokers": [%q], "topic": %q}, "upload_interval": "200ms"}`,
			v.device, 1000+i, v.carrier, i, v.reader, v.device+".journal", vk, tariffPath, v.device+".hotlist",
			registry.URL+"/v1/validator", broker, topic)
		if err := os.WriteFile(filepath.Join(dir, v.device+".json"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// Cards, personalised with the issuer's keys as a desk does.
	issuer := cardkey.New(ks)
	riders := []rider{
		{11, card.FundingState, 100_00, false}, // pensioner: free, the state pays
		{31, card.FundingCity, 100_00, false},  // student: half fare, the city pays half
		{0, 0, 100_00, false},                  // full fare: nothing to compensate
		{21, card.FundingCity, 0, false},       // disability, empty purse: still rides free
		{11, card.FundingState, 100_00, true},  // reported lost: on the hotlist, denied
	}
	now := time.Now()
	cards := make([]*vcard.Card, len(riders))
	var studentCard card.Number // an EV3
	for i, r := range riders {
		uid := []byte{0x04, 0xE2, 0xE0, byte(i), 0x11, 0x22, 0x80}
		gen := vcard.EV1
		if i%2 == 1 { // a mixed population: the student and the empty purse carry EV3s
			gen = vcard.EV3
		}
		cards[i] = vcard.New(uid, vcard.WithGeneration(gen))
		num, _ := card.NewNumber(1001, uint64(700+i))
		if i == len(riders)-1 {
			num = lostCard
		}
		if i == 1 {
			studentCard = num
		}
		today, _ := card.DateOf(now.AddDate(0, 0, -1))
		exp, _ := card.DateOf(now.AddDate(4, 0, 0))
		p := issue.Personalisation{
			Identity: card.Identity{Number: num, Issuer: 1001, Issued: today, Expires: exp},
			Holder:   card.Holder{Name: "E2E Rider", BirthDate: card.BirthDate{Year: 1950, Month: 1, Day: 2}, RegistryRef: uint64(i + 1)},
			Contract: card.Contract{Status: card.StatusActive, Number: num, Expires: exp},
			PurseKop: r.purseKop,
		}
		if r.category != 0 {
			p.Contract.Entitlements[0] = card.Entitlement{Category: r.category, ValidFrom: today, ValidTo: exp, Funding: r.funding}
			funding := "city"
			if r.funding == card.FundingState {
				funding = "state"
			}
			records = append(records, map[string]any{"card": num.String(), "revoked": []any{}, "entitlements": []map[string]any{{
				"category": r.category, "valid_from": now.In(mustLoc(t)).AddDate(0, 0, -1).Format(time.DateOnly),
				"valid_to": now.In(mustLoc(t)).AddDate(4, 0, 0).Format(time.DateOnly), "funding": funding, "monthly_limit": 0}}})
		}
		if err := issue.Personalise(ctx, cards[i], issuer, uid, p); err != nil {
			t.Fatalf("personalise card %d: %v", i, err)
		}
	}
	ks.Close()

	// Services.
	transit(t, ctx, 0, "clearing", "migrate", "--db", db)
	transit(t, ctx, 0, "clearing", "tariff", "add", tariffPath, "--db", db, "--keystore", keys)
	stopClearing, _ := background(t, ctx, "clearing serve", "clearing", "serve", "--db", db,
		"--brokers", broker, "--topic", topic, "--group", "e2e-"+suffix, "--keystore", keys, "--registry", registry.URL,
		"--test-allow-fsync-off") // the harness's PostgreSQL runs with fsync off
	events := make([]string, len(vals))
	stops := make([]func(), len(vals))
	for i, v := range vals {
		events[i] = filepath.Join(dir, v.device+".events")
		stops[i], _ = background(t, ctx, "validator "+v.device, "validator", "run",
			"--config", filepath.Join(dir, v.device+".json"), "--events", events[i])
	}
	// Each validator fetches the hotlist from the registry when it starts.
	for _, v := range vals {
		waitFile(t, filepath.Join(dir, v.device+".hotlist", "*.hotlist"))
	}

	// Every rider taps on both validators, one card at a time: a card is
	// in one reader at once.
	want := map[string]int64{}
	wantRides := map[string]int64{}
	for i, v := range vals {
		for k, c := range cards {
			if comp := compensation(riders[k], v.fareKop); comp > 0 {
				want[v.carrier] += comp
				wantRides[v.carrier]++
			}
			ev, err := present(ctx, v.vpcd, c, events[i], k+1)
			if err != nil {
				t.Fatalf("%s, card %d: %v", v.device, k, err)
			}
			if k == len(riders)-1 {
				if ev.Green || ev.Result != "denied" || ev.Reason != "hotlisted" {
					t.Fatalf("%s: the lost card was not denied as hotlisted: %+v", v.device, ev)
				}
				continue
			}
			if !ev.Green || !ev.Committed || ev.Result != "accepted" {
				t.Fatalf("%s, card %d: not a committed green ride: %+v", v.device, k, ev)
			}
			if wantCharged := v.fareKop - compensation(riders[k], v.fareKop); ev.ChargedKop != wantCharged {
				t.Fatalf("%s, card %d: charged %d kop, want %d", v.device, k, ev.ChargedKop, wantCharged)
			}
		}
	}

	// The report catches up once the uploads and clearing have run.
	period := now.In(mustLoc(t)).Format("2006-01")
	var doc struct {
		Lines []struct {
			Carrier         string `json:"carrier"`
			Rides           int64  `json:"rides"`
			CompensationKop int64  `json:"compensation_kop"`
		} `json:"lines"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := transit(t, ctx, 0, "report", "compensation", "--period", period, "--db", db, "--format", "json")
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("report is not JSON: %v\n%s", err, out)
		}
		got := map[string]int64{}
		gotRides := map[string]int64{}
		for _, l := range doc.Lines {
			got[l.Carrier] = l.CompensationKop
			gotRides[l.Carrier] = l.Rides
		}
		if fmt.Sprint(got) == fmt.Sprint(want) && fmt.Sprint(gotRides) == fmt.Sprint(wantRides) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("report after 60 s: compensation %v rides %v, want %v and %v", got, gotRides, want, wantRides)
		}
		time.Sleep(300 * time.Millisecond)
	}
	table := transit(t, ctx, 0, "report", "compensation", "--period", period, "--db", db)
	for carrier, kop := range want {
		if !strings.Contains(table, carrier) || !strings.Contains(table, uah(kop)) {
			t.Errorf("table report lacks %s %s:\n%s", carrier, uah(kop), table)
		}
	}
	t.Logf("report:\n%s", table)
	heldCopy(t, ctx, db, uint64(studentCard), want)
	for _, s := range stops {
		s()
	}
	stopClearing()
}

// heldCopy: a device with a valid batch key copies the student's EV3 ride
// under another sequence number and time, with the card's real
// Transaction MAC. The clearing serve running verifies the MAC with the
// city's tmac-master and holds the copy (card-mac-invalid); the
// compensation stays want.
func heldCopy(t *testing.T, ctx context.Context, db string, student uint64, want map[string]int64) {
	t.Helper()
	st, err := postgres.Open(ctx, db, store.Options{Location: mustLoc(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	taps, err := st.CardTaps(ctx, store.CardTapQuery{Cards: []uint64{student}, From: now.Add(-time.Hour), To: now.Add(time.Hour), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var cp *tap.Tap
	for i := range taps {
		if taps[i].CardMAC != nil && taps[i].Product == "benefit" {
			cp = &taps[i]
		}
	}
	if cp == nil {
		t.Fatalf("no card-signed benefit ride of the student's EV3 among %d taps", len(taps))
	}
	cp.Seq += 1_000_000
	cp.Time = cp.Time.Add(-90 * time.Second)
	if added, _, err := st.AddTaps(ctx, []tap.Tap{*cp}); err != nil || added != 1 {
		t.Fatalf("AddTaps(the copy) = %d, %v", added, err)
	}
	period := cp.Time.In(mustLoc(t)).Format("2006-01")
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := transit(t, ctx, 0, "clearing", "held", "list", "--period", period, "--db", db)
		if strings.Contains(out, "card-mac-invalid") && strings.Contains(out, fmt.Sprintf("/%d", cp.Seq)) {
			t.Logf("held:\n%s", out)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the copied ride is not held card-mac-invalid after 60 s:\n%s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	var doc struct {
		Lines []struct {
			Carrier         string `json:"carrier"`
			CompensationKop int64  `json:"compensation_kop"`
		} `json:"lines"`
	}
	out := transit(t, ctx, 0, "report", "compensation", "--period", period, "--db", db, "--format", "json")
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, l := range doc.Lines {
		got[l.Carrier] = l.CompensationKop
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("compensation with the copy held %v, want %v", got, want)
	}
}

// waitFile waits up to 20 s for a file matching pattern to exist.
func waitFile(t *testing.T, pattern string) {
	t.Helper()
	for range 200 {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no %s within 20 s", pattern)
}

func compensation(r rider, fareKop int64) int64 {
	if r.lost {
		return 0
	}
	switch r.category {
	case 11, 12, 21:
		return fareKop
	case 31:
		return fareKop / 2
	}
	return 0
}

func mustLoc(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Europe/Kyiv")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// present inserts card into the vpcd reader at addr, waits for the
// validator's n-th event, and takes the card away again.
func present(ctx context.Context, addr string, c *vcard.Card, events string, n int) (agent.Event, error) {
	slot, err := vpcd.Insert(ctx, addr, c)
	if err != nil {
		return agent.Event{}, err
	}
	defer func() {
		slot.Remove()
		// pcscd notices a removal at its ~400 ms poll; the next card must
		// not arrive before the validator saw this one leave.
		time.Sleep(900 * time.Millisecond)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if evs, err := readEvents(events); err == nil && len(evs) >= n {
			return evs[n-1], nil
		}
		select {
		case <-ctx.Done():
			return agent.Event{}, ctx.Err()
		case <-slot.Done():
			return agent.Event{}, fmt.Errorf("virtual card left the reader: %v", slot.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return agent.Event{}, fmt.Errorf("no event %d from the validator within 20 s", n)
}

func readEvents(path string) ([]agent.Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var evs []agent.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev agent.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("event %q: %w", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return evs, sc.Err()
}
