package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/citycard/transit/simulator/testenv"
)

// readmeSteps returns the commands of the first sh block under heading in
// README.md, continuation lines joined, comments and blank lines left out.
func readmeSteps(t *testing.T, heading string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README.md has no heading %q", heading)
	}
	doc = doc[i:]
	start := strings.Index(doc, "\n```sh\n")
	if start < 0 {
		t.Fatalf("README.md: no sh block under %q", heading)
	}
	doc = doc[start+len("\n```sh\n"):]
	doc = doc[:strings.Index(doc, "\n```")]
	var steps []string
	cur := ""
	for _, line := range strings.Split(doc, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur += cont
			continue
		}
		steps = append(steps, cur+line)
		cur = ""
	}
	return steps
}

// TestReadmeByHand runs the README's by-hand steps as a new user would,
// in an empty directory with the repository's testdata: the same
// commands in bash, through the transit binary (this test binary acting
// as it), the virtual card in pcscd's vpcd reader, and its own broker
// and free ports in place of the fixed ones the README names. It passes
// when every step succeeds, the validator showed the tap green, and the
// compensation report owes the carrier for the benefit ride.
func TestReadmeByHand(t *testing.T) {
	vpcdAddr, reader := testenv.PCSC(t, 0)
	for _, tool := range []string{"bash", "curl", "sed", "date"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README's steps need %s: %v", tool, err)
		}
	}
	steps := readmeSteps(t, "## Running the services by hand")
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "testdata"), os.DirFS(filepath.Join("..", "..", "testdata"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(transitBin(t), filepath.Join(dir, "transit")); err != nil {
		t.Fatal(err)
	}
	// The README's broker, `make localkafka`, in process on a free port.
	broker, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(8, "taps"))
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	repl := strings.NewReplacer(
		"127.0.0.1:9092", broker.ListenAddrs()[0],
		"127.0.0.1:8080", freeAddr(t),
		"127.0.0.1:8081", freeAddr(t),
		"127.0.0.1:9464", freeAddr(t),
		"127.0.0.1:35963", vpcdAddr,
		"Virtual PCD 00 00", reader,
	)
	cfg := filepath.Join(dir, "testdata", "validator.json")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(repl.Replace(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}

	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	built := false
	for i, step := range steps {
		switch {
		case strings.HasPrefix(step, "go build -o transit ./cmd/transit"):
			built = true // ./transit is this test binary
			continue
		case strings.HasPrefix(step, "make localkafka"):
			continue // the broker above
		}
		label := fmt.Sprintf("@@ step %d: %s", i+1, step)
		fmt.Fprintf(&script, "echo '%s' >&2\n%s\n", strings.ReplaceAll(label, "'", `'\''`), repl.Replace(step))
	}
	if !built {
		t.Fatal("the README's steps do not start by building transit (go build -o transit ./cmd/transit)")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// A file, not a pipe: the services the steps start in the background
	// keep writing after the script ends.
	logPath := filepath.Join(t.TempDir(), "steps.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	out := logText(logPath)
	sh := exec.CommandContext(ctx, "bash", "-c", script.String())
	sh.Dir = dir
	sh.Env = append(os.Environ(), asMainVar+"=1", "TZ=UTC")
	sh.Stdout, sh.Stderr = logf, logf
	// The services the steps leave running share the script's process
	// group: stopped together at the end.
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	sh.Cancel = func() error { return syscall.Kill(-sh.Process.Pid, syscall.SIGKILL) }
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := sh.Process.Pid
	defer func() {
		syscall.Kill(-pgid, syscall.SIGTERM) //nolint:errcheck // gone already is fine
		time.Sleep(2 * time.Second)
		syscall.Kill(-pgid, syscall.SIGKILL) //nolint:errcheck // as above
	}()
	if err := sh.Wait(); err != nil {
		t.Fatalf("the README's steps failed (%v); the last step started is the culprit:\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "GREEN card") {
		t.Fatalf("the validator did not show the tap green:\n%s", out.String())
	}
	// The new registry published its empty, signed hotlist at once, and
	// the validator holds it.
	if m, _ := filepath.Glob(filepath.Join(dir, "run", "hotlist", "*.hotlist")); len(m) == 0 {
		t.Errorf("the validator holds no hotlist from the new registry:\n%s", out.String())
	}
	// The report step ran once, maybe before the batch was stored; the
	// same report a few seconds later must owe ATP-1 the ride.
	period := time.Now().In(mustLoc(t)).Format("2006-01")
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, report, errb := cli("report", "compensation", "--period", period, "--db", "sqlite:"+filepath.Join(dir, "run", "clearing.db"))
		if code != 0 {
			t.Fatalf("report: exit %d: %s", code, errb)
		}
		if strings.Contains(report, "ATP-1") && strings.Contains(report, uah(1500)) {
			t.Logf("after the README's steps:\n%s", report)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the report does not owe ATP-1 %s UAH for the pensioner's ride 60 s after the tap:\n%s\nsteps:\n%s", uah(1500), report, out.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// logText reads a log file when asked, for failure messages.
type logText string

func (l logText) String() string {
	b, err := os.ReadFile(string(l))
	if err != nil {
		return err.Error()
	}
	return string(b)
}
