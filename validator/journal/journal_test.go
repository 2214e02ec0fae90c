package journal

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/citycard/transit/validator/tap"
)

var t0 = time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)

func newTap(i int) *tap.Tap {
	return &tap.Tap{Time: t0.Add(time.Duration(i) * time.Second), Card: uint64(1000 + i), Carrier: "KTE",
		Route: "12", Vehicle: "AA1", Result: tap.Accepted, Reason: "ok", Product: "purse", FareKop: 1500, ChargedKop: 1500}
}

func TestAppendSettleSend(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(ctx, path, "V-1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		tp := newTap(i)
		if err := j.Append(ctx, tp); err != nil {
			t.Fatal(err)
		}
		if tp.Seq != uint64(i+1) || tp.Device != "V-1" {
			t.Fatalf("tap %d got seq %d device %q", i, tp.Seq, tp.Device)
		}
		if i < 4 { // the last stays pending, as if power failed mid-card-write
			if err := j.Settle(ctx, tp.Seq, i%2 == 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := j.Settle(ctx, 1, true); err == nil {
		t.Fatal("settling twice was accepted")
	}
	un, err := j.Unsent(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(un) != 4 || un[0].Seq != 1 || !un[0].CardCommitted || un[1].CardCommitted {
		t.Fatalf("unsent = %+v", un)
	}
	if err := j.MarkSent(ctx, []uint64{1, 2}); err != nil {
		t.Fatal(err)
	}
	j.Close()

	// Reopen: the pending (accepted) tap becomes settled as commit
	// unknown; numbering goes on.
	j, err = Open(ctx, path, "V-1")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	st, _ := j.Stats(ctx)
	if st != (Stats{LastSeq: 5, Backlog: 3, Sent: 2}) {
		t.Fatalf("stats after reopen = %+v", st)
	}
	un, _ = j.Unsent(ctx, 10)
	if len(un) != 3 || un[2].Seq != 5 || un[2].CardCommitted || !un[2].CommitUnknown {
		t.Fatalf("unsent after reopen = %+v", un)
	}
	if un[1].CommitUnknown {
		t.Fatalf("a tap settled before the crash became commit unknown: %+v", un[1])
	}
	if n, err := j.PruneSent(ctx, 0); err != nil || n != 2 {
		t.Fatalf("prune = %d, %v", n, err)
	}
	tp := newTap(9)
	if err := j.Append(ctx, tp); err != nil || tp.Seq != 6 {
		t.Fatalf("after prune seq = %d, %v (sequences must never repeat)", tp.Seq, err)
	}
}

func TestWrongDevice(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(ctx, path, "V-1")
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	if _, err := Open(ctx, path, "V-2"); err == nil {
		t.Fatal("a journal of V-1 opened as V-2")
	}
}

// TestKillAtRandom kills a process that appends taps, at random instants,
// many times, and checks that every tap the process reported as journalled
// is there exactly once and that sequence numbers stay contiguous.
func TestKillAtRandom(t *testing.T) {
	if os.Getenv("JOURNAL_CHILD") != "" {
		childAppend(os.Getenv("JOURNAL_CHILD"))
		return
	}
	path := filepath.Join(t.TempDir(), "j.db")
	rng := rand.New(rand.NewPCG(1, 2))
	acked := map[uint64]bool{}
	for round := range 12 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillAtRandom$")
		cmd.Env = append(os.Environ(), "JOURNAL_CHILD="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan uint64, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if n, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
					lines <- n
				}
			}
		}()
		// Wait for at least one ack so the kill lands mid-work, then kill
		// after a random extra delay.
		first, ok := <-lines
		if !ok {
			t.Fatalf("round %d: child printed nothing", round)
		}
		acked[first] = true
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		cmd.Process.Kill()
		for n := range lines {
			acked[n] = true
		}
		cmd.Wait()
	}
	j, err := Open(context.Background(), path, "V-K")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	all, err := j.Unsent(context.Background(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for i, tp := range all {
		if seen[tp.Seq] {
			t.Fatalf("sequence %d twice", tp.Seq)
		}
		seen[tp.Seq] = true
		if tp.Seq != uint64(i+1) {
			t.Fatalf("gap: position %d holds sequence %d", i, tp.Seq)
		}
	}
	for n := range acked {
		if !seen[n] {
			t.Fatalf("acknowledged tap %d lost", n)
		}
	}
	t.Logf("%d rounds, %d taps journalled, %d acknowledged before kill", 12, len(all), len(acked))
}

func childAppend(path string) {
	ctx := context.Background()
	j, err := Open(ctx, path, "V-K")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		tp := newTap(i)
		if err := j.Append(ctx, tp); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		if err := j.Settle(ctx, tp.Seq, true); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Fprintln(w, tp.Seq)
		w.Flush()
	}
}

func BenchmarkAppendSettle(b *testing.B) {
	ctx := context.Background()
	j, err := Open(ctx, filepath.Join(b.TempDir(), "j.db"), "V-B")
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	i := 0
	for b.Loop() {
		tp := newTap(i)
		i++
		if err := j.Append(ctx, tp); err != nil {
			b.Fatal(err)
		}
		if err := j.Settle(ctx, tp.Seq, true); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSettleAsRecordsTheCardsVerdict(t *testing.T) {
	ctx := context.Background()
	j, err := Open(ctx, filepath.Join(t.TempDir(), "j.db"), "V-1")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	tp := newTap(1)
	if err := j.Append(ctx, tp); err != nil {
		t.Fatal(err)
	}
	// The card refused the debit: the tap becomes a denial.
	denied := *tp
	denied.Result, denied.Reason, denied.Product, denied.ChargedKop, denied.CardCommitted = tap.Denied, "insufficient-funds", "", 0, true
	other := denied
	other.Device = "V-2"
	if err := j.SettleAs(ctx, &other); err == nil {
		t.Fatal("settled a tap of another device")
	}
	if err := j.SettleAs(ctx, &denied); err != nil {
		t.Fatal(err)
	}
	if err := j.SettleAs(ctx, &denied); err == nil {
		t.Fatal("settling twice was accepted")
	}
	un, err := j.Unsent(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(un) != 1 || un[0] != denied {
		t.Fatalf("unsent = %+v, want %+v", un, denied)
	}
}

// TestCrashLeavesADenialCommitted: a tap that writes nothing to the card
// (a denial) left pending by a crash is settled as committed: the card
// holds exactly what it held.
func TestCrashLeavesADenialCommitted(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(ctx, path, "V-1")
	if err != nil {
		t.Fatal(err)
	}
	d := newTap(1)
	d.Result, d.Reason, d.Product, d.ChargedKop = tap.Denied, "hotlisted", "", 0
	if err := j.Append(ctx, d); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j, err = Open(ctx, path, "V-1")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	un, _ := j.Unsent(ctx, 10)
	if len(un) != 1 || !un[0].CardCommitted || un[0].CommitUnknown {
		t.Fatalf("unsent after reopen = %+v", un)
	}
}

// TestJournalIsPrivate: the journal and its write-ahead files are 0600
// whatever the umask, and a journal left wider is made so.
func TestJournalIsPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "taps.journal")
	j, err := Open(context.Background(), path, "bus-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Append(context.Background(), newTap(1)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	j.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	j, err = Open(context.Background(), path, "bus-1")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("a reopened 0644 journal is %v, want 0600", fi.Mode().Perm())
	}
}
