package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/simulator/testenv"
	"github.com/citycard/transit/validator/hotlist"
)

// Variables of BenchmarkValidatorStartup, to measure a cross-built
// binary (make cross prints the command).
const (
	// footprintBinVar names the transit binary to start (default: this
	// test binary acting as transit).
	footprintBinVar = "TRANSIT_FOOTPRINT_BIN"
	// footprintExecVar is put before it, e.g. "qemu-aarch64-static".
	footprintExecVar = "TRANSIT_FOOTPRINT_EXEC"
	// footprintCardsVar is the hotlist size (default 1,000,000).
	footprintCardsVar = "TRANSIT_FOOTPRINT_CARDS"
)

// BenchmarkValidatorStartup starts `transit validator run` on the real
// pcscd with a signed hotlist of a million cards and the sample tariff,
// and reports the time from exec to /readyz answering 200 (ms/ready) and
// the process's resident memory once ready (MB-rss) and at its peak
// (MB-hwm). Under qemu user emulation the time says little about real
// hardware and the memory includes the emulator's own.
//
//	go test -run '^$' -bench ValidatorStartup -benchtime 5x ./cmd/transit
func BenchmarkValidatorStartup(b *testing.B) {
	_, reader := testenv.PCSC(b, 0)
	cards := 1_000_000
	if v := os.Getenv(footprintCardsVar); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			b.Fatalf("%s=%q: want a number of cards", footprintCardsVar, v)
		}
		cards = n
	}
	ctx := context.Background()
	dir := b.TempDir()
	const pass = "footprint"
	b.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", pass)
	b.Setenv("TRANSIT_ROLE_PASSPHRASE", pass)
	keys := filepath.Join(dir, "city.keys")
	mustRun := func(args ...string) {
		if code, _, errb := cli(args...); code != 0 {
			b.Fatalf("transit %s: %s", strings.Join(args, " "), errb)
		}
	}
	mustRun("hsm", "init", "--keystore", keys)
	// A validator keystore as a vehicle has it: the default key
	// derivation, which start-up pays for.
	mustRun("hsm", "export-role", "validator", "--device", "bus-fp", "--out", filepath.Join(dir, "validator.keys"), "--keystore", keys)
	if err := os.CopyFS(filepath.Join(dir, "tariff"), os.DirFS(filepath.Join("..", "..", "testdata", "tariff"))); err != nil {
		b.Fatal(err)
	}
	mustRun("tariff", "sign", filepath.Join(dir, "tariff"), "--keystore", keys)

	// The hotlist, installed as the validator's updater installs one.
	ks, err := hsm.OpenKeystore(keys, []byte(pass))
	if err != nil {
		b.Fatal(err)
	}
	signer, err := ks.Signer(ctx, hsm.Ref{Label: hsm.LabelSignHotlist, Version: 1})
	if err != nil {
		b.Fatal(err)
	}
	entries := make([]hotlist.Entry, cards)
	for i := range entries {
		n, err := card.NewNumber(1001, uint64(1_000_000+3*i))
		if err != nil {
			b.Fatal(err)
		}
		entries[i] = hotlist.Entry{Card: uint64(n), Reason: hotlist.ReasonLost}
	}
	data, err := hotlist.Build(entries, 7, time.Now(), signer, 1)
	if err != nil {
		b.Fatal(err)
	}
	hkeys, err := hotlist.HSMKeys(ctx, ks)
	if err != nil {
		b.Fatal(err)
	}
	h, err := hotlist.Open(ctx, hotlist.Config{Dir: filepath.Join(dir, "hotlist")}, hkeys)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := h.Apply(ctx, data, hkeys); err != nil {
		b.Fatal(err)
	}
	ks.Close()

	metrics := freeAddr(b)
	cfg := filepath.Join(dir, "validator.json")
	doc := fmt.Sprintf(`{"device": "bus-fp", "device_number": 9001, "carrier": "ATP-1", "route": "12", "vehicle": "fp",
		"reader": %q, "journal": "journal.db", "keystore": "validator.keys", "tariff": "tariff",
		"metrics_listen": %q, "kafka": {"brokers": ["127.0.0.1:1"]}}`, reader, metrics)
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		b.Fatal(err)
	}
	argv := []string{transitBin(b)}
	env := []string{asMainVar + "=1"}
	if bin := os.Getenv(footprintBinVar); bin != "" {
		argv, env = []string{bin}, nil
	}
	if pre := os.Getenv(footprintExecVar); pre != "" {
		argv = append(strings.Fields(pre), argv...)
	}
	argv = append(argv, "validator", "run", "--config", cfg)
	b.Logf("%d cards, hotlist file %d bytes; %s", cards, len(data), strings.Join(argv, " "))

	var readyMS, rss, hwm float64
	b.ResetTimer()
	for range b.N {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		logPath := filepath.Join(dir, "validator.log")
		logf, err := os.Create(logPath)
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for {
			if code, _, err := httpGet("http://" + metrics + "/readyz"); err == nil && code == 200 {
				break
			}
			if time.Since(start) > 2*time.Minute {
				cmd.Process.Kill()
				b.Fatalf("not ready within 2 minutes\n%s", tail(logPath, 20))
			}
			time.Sleep(5 * time.Millisecond)
		}
		readyMS += float64(time.Since(start).Microseconds()) / 1000
		r, w := procMemory(b, cmd.Process.Pid)
		rss, hwm = rss+r, hwm+w
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		logf.Close()
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(readyMS/n, "ms/ready")
	b.ReportMetric(rss/n/(1<<20), "MB-rss")
	b.ReportMetric(hwm/n/(1<<20), "MB-hwm")
}

// procMemory returns VmRSS and VmHWM of pid in bytes.
func procMemory(b *testing.B, pid int) (rss, hwm float64) {
	b.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		for key, dst := range map[string]*float64{"VmRSS:": &rss, "VmHWM:": &hwm} {
			if v, ok := strings.CutPrefix(l, key); ok {
				kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				if err != nil {
					b.Fatalf("%s %q: %v", key, v, err)
				}
				*dst = kb * 1024
			}
		}
	}
	return rss, hwm
}
