package mixin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/citycard/transit/clearing/bus"
	"github.com/citycard/transit/clearing/bus/inproc"
	"github.com/citycard/transit/clearing/clonecheck"
	"github.com/citycard/transit/clearing/fleet"
	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/monitor"
	"github.com/citycard/transit/clearing/monitor/mixin"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/simulator/testenv"
	"github.com/citycard/transit/validator/agent"
	"github.com/citycard/transit/validator/hotlist"
	"github.com/citycard/transit/validator/journal"
	"github.com/citycard/transit/validator/tap"
	"github.com/citycard/transit/validator/upload"
)

// promtool returns the path of promtool, or skips (fails under CI) when
// Debian's prometheus package is not installed.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	msg := "promtool is not installed: apt-get install prometheus (the test run installs it)"
	if testenv.Required() {
		t.Fatal(msg + "; CI must not skip this test")
	}
	t.Skip(msg)
	return ""
}

func TestRulesCheckAndPassTheirUnitTests(t *testing.T) {
	pt := promtool(t)
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "tests.yaml", "tests_statements.yaml"}} {
		out, err := exec.Command(pt, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// recorder keeps the name of every metric a collector describes when it is
// registered, so that metrics without series yet (a vector before its first
// label) count as exported too.
type recorder struct {
	*prometheus.Registry
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 100)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return r.Registry.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func newRecorder() *recorder {
	r := &recorder{Registry: prometheus.NewRegistry(), names: map[string]bool{}}
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// clearingRegistry builds the metrics of a `clearing serve` process as it
// does (cmd/transit) and makes them move: a batch stored from a bus, one
// quarantined, an assignment, a read of the store.
func clearingRegistry(t *testing.T) *recorder {
	reg := newRecorder()
	m, err := ingest.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ingest.RegisterInstance(reg, "clearing-a", "clearing", "taps"); err != nil {
		t.Fatal(err)
	}
	w, err := monitor.NewWatcher(reg, fleet.Options{}, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clonecheck.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ks, err := hsm.CreateKeystore(filepath.Join(t.TempDir(), "k"), []byte("pw"), hsm.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	if _, err := ks.Generate(ctx, hsm.LabelBatchMaster, hsm.KindBatchMaster); err != nil {
		t.Fatal(err)
	}
	key, err := hsm.DeviceKey(ctx, ks, hsm.Ref{Label: hsm.LabelBatchMaster, Version: 1}, "bus-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Import(ctx, hsm.Ref{Label: "dev", Version: 1}, hsm.KindMAC, key[:]); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	b := tap.Batch{Device: "bus-1", KeyVersion: 1, Created: now, Taps: []tap.Tap{{Device: "bus-1", Seq: 1, Time: now, Result: tap.Accepted}}}
	mac, err := ks.MAC(ctx, hsm.Ref{Label: "dev", Version: 1}, b.Body())
	if err != nil {
		t.Fatal(err)
	}
	b.MAC = mac[:]
	wire, _ := b.Marshal()
	bb := inproc.New(1)
	if err := bb.Producer().Publish(ctx, bus.Message{Key: []byte("bus-1"), Value: wire}, bus.Message{Value: []byte("junk")}); err != nil {
		t.Fatal(err)
	}
	cons, _ := bb.Consumer("clearing")
	defer cons.Close()
	m.Assigned([]int{0})
	rctx, stop := context.WithCancel(ctx)
	r := &ingest.Runner{Consumer: cons, Processor: &ingest.Processor{Verifier: &ingest.KeyVerifier{Keys: ks}, Store: st, Metrics: m},
		Linger: time.Millisecond, OnBatch: func(_ ingest.Outcome, tot ingest.Totals) {
			if tot.Batches == 2 {
				stop()
			}
		}}
	r.Run(rctx) //nolint:errcheck // stopped
	if err := w.Update(ctx, st, time.Now()); err != nil {
		t.Fatal(err)
	}
	return reg
}

// validatorRegistry builds a validator's metrics as `transit validator
// run` does.
func validatorRegistry(t *testing.T) *recorder {
	reg := newRecorder()
	ctx := context.Background()
	j, err := journal.Open(ctx, filepath.Join(t.TempDir(), "journal"), "bus-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	hl, err := hotlist.Open(ctx, hotlist.Config{Dir: filepath.Join(t.TempDir(), "hotlist")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(journal.NewCollector(j), hotlist.NewCollector(hl, time.Now))
	agent.NewMetrics(reg)
	upload.NewMetrics(reg)
	return reg
}

// namesIn returns the metric names an expression uses (names with a colon
// are recording rules) and the recording rules it uses.
var token = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)

func namesIn(expr string) (metrics, recorded []string) {
	// Label matchers' values and strings are not names.
	expr = regexp.MustCompile(`"[^"]*"`).ReplaceAllString(expr, `""`)
	for _, tk := range token.FindAllString(expr, -1) {
		switch {
		case strings.Contains(tk, ":"):
			recorded = append(recorded, tk)
		case strings.HasPrefix(tk, "transit_"), strings.HasPrefix(tk, "process_"), strings.HasPrefix(tk, "go_"), tk == "up":
			metrics = append(metrics, tk)
		}
	}
	return metrics, recorded
}

// ruleExprs returns alerts.yaml's expressions and its recording rules.
func ruleExprs(t *testing.T) (exprs []string, records map[string]bool) {
	records = map[string]bool{}
	for i, line := range strings.Split(string(mixin.Alerts), "\n") {
		l := strings.TrimPrefix(strings.TrimSpace(line), "- ")
		if v, ok := strings.CutPrefix(l, "record:"); ok {
			records[strings.TrimSpace(v)] = true
		}
		if v, ok := strings.CutPrefix(l, "expr:"); ok {
			if strings.TrimSpace(v) == "" || strings.HasPrefix(strings.TrimSpace(v), "|") {
				t.Fatalf("alerts.yaml line %d: keep each expr on its line, so this test reads them all", i+1)
			}
			exprs = append(exprs, v)
		}
	}
	return exprs, records
}

// dashboardPanel is the part of a Grafana panel the test reads.
type dashboardPanel struct {
	ID          int    `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Datasource  *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func dashboard(t *testing.T) []dashboardPanel {
	var d struct {
		UID        string           `json:"uid"`
		Title      string           `json:"title"`
		Panels     []dashboardPanel `json:"panels"`
		Templating struct {
			List []struct{ Name, Type string } `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(mixin.Dashboard, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Templating.List) == 0 || d.Templating.List[0].Type != "datasource" {
		t.Fatalf("dashboard.json: want a uid, a title and a data source variable first")
	}
	return d.Panels
}

func TestDashboardIsWellFormed(t *testing.T) {
	ids := map[int]bool{}
	for _, p := range dashboard(t) {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W < 1 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24 columns", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Description == "" || p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: want a description, the ${datasource} variable and a query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q has an empty query", p.Title)
			}
		}
	}
}

// TestEveryMetricUsedIsExported: each metric the rules and the dashboard
// name is one that the clearing or the validator process registers, each
// recording rule used is defined, and the clearing metrics as scraped
// pass promtool's naming checks.
func TestEveryMetricUsedIsExported(t *testing.T) {
	clr, val := clearingRegistry(t), validatorRegistry(t)
	exported := func(name string) bool {
		for _, n := range []string{name, strings.TrimSuffix(name, "_bucket"), strings.TrimSuffix(name, "_count"), strings.TrimSuffix(name, "_sum")} {
			if clr.names[n] || val.names[n] {
				return true
			}
		}
		return name == "up" // Prometheus's own, per scrape target
	}
	exprs, records := ruleExprs(t)
	var where []string
	for _, e := range exprs {
		where = append(where, "alerts.yaml: "+e)
	}
	for _, p := range dashboard(t) {
		for _, tg := range p.Targets {
			where = append(where, fmt.Sprintf("dashboard panel %q: %s", p.Title, tg.Expr))
		}
	}
	used := map[string]bool{}
	for _, w := range where {
		_, expr, _ := strings.Cut(w, ": ")
		ms, rs := namesIn(expr)
		for _, m := range ms {
			used[m] = true
			if !exported(m) {
				t.Errorf("%s uses %s, which no process exports", w, m)
			}
		}
		for _, r := range rs {
			if !records[r] {
				t.Errorf("%s uses the recording rule %s, which alerts.yaml does not define", w, r)
			}
		}
	}
	if len(used) < 30 {
		t.Errorf("only %d metric names found in the rules and the dashboard: is the extraction broken?", len(used))
	}
	var names []string
	for n := range used {
		if strings.HasPrefix(n, "transit_validator") || strings.HasPrefix(n, "transit_hotlist") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	t.Logf("validator metrics the rules and the dashboard expect: %s", strings.Join(names, ", "))

	// Naming: units and _total as promtool checks them, on a real scrape.
	pt := promtool(t)
	mfs, err := clr.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "transit_") {
			if err := enc.Encode(mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	if buf.Len() < 2000 {
		t.Fatalf("the scrape of clearing's metrics is only %d bytes: the metrics did not move", buf.Len())
	}
	cmd := exec.Command(pt, "check", "metrics")
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics on clearing's metrics: %v\n%s", err, out)
	}
}
