package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestVersionSaysWhatWasBuilt(t *testing.T) {
	code, out, errb := cli("version")
	if code != 0 {
		t.Fatalf("version: exit %d: %s", code, errb)
	}
	for _, want := range []string{"transit ", "module", "revision", runtime.Version(), "PC/SC", "PKCS#11"} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
	code, out, errb = cli("version", "--json")
	if code != 0 {
		t.Fatalf("version --json: exit %d: %s", code, errb)
	}
	var b buildInfo
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatalf("version --json: %v\n%s", err, out)
	}
	if b.GoVersion != runtime.Version() || b.Cgo != cgoBuilt || b.PCSC != cgoBuilt || b.Platform != runtime.GOOS+"/"+runtime.GOARCH || b.Version == "" {
		t.Fatalf("version --json: %+v", b)
	}
}

// goTool returns the go command, to build variants of the binary.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no go command on PATH nor at %s: the test builds the binary without cgo", p)
	}
	return p
}

// TestValidatorWithoutCgoSaysSoOnce builds transit without cgo, as the
// demo is built, and starts a validator with it: it must say once that it
// cannot read cards and exit 1, not retry the reader forever.
func TestValidatorWithoutCgoSaysSoOnce(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "transit")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, goTool(t), "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build without cgo: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil || !strings.Contains(string(out), "PC/SC    not built in") {
		t.Fatalf("version of the cgo-less build: %v\n%s", err, out)
	}
	cfg, err := filepath.Abs(filepath.Join("..", "..", "testdata", "validator.json"))
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, time.Minute)
	defer rcancel()
	run := exec.CommandContext(rctx, bin, "validator", "run", "--config", cfg)
	run.Env = append(os.Environ(), "TRANSIT_KEYSTORE_PASSPHRASE=unused")
	var stderr strings.Builder
	run.Stderr = &stderr
	err = run.Run()
	if rctx.Err() != nil {
		t.Fatalf("the cgo-less validator was still running after a minute: it retries instead of saying it cannot read cards\n%s", stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("cgo-less validator: %v, want exit status 1\n%s", err, stderr.String())
	}
	msg := strings.TrimSpace(stderr.String())
	if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "without cgo") || !strings.Contains(msg, "cannot read cards") {
		t.Fatalf("cgo-less validator said %q; want one line saying it cannot read cards", msg)
	}
}
