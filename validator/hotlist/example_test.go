package hotlist_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/hotlist"
)

// A Holder is what fare.Decide checks taps against.
var _ fare.Hotlist = (*hotlist.Holder)(nil)

func Example() {
	ctx := context.Background()

	// Registry: sign version 1 with sign-hotlist@1. In production the
	// signer is km.Signer(ctx, ref) from the hsm; here a fixed test key.
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	lost, _ := card.NewNumber(2201, 1234)
	issued := time.Date(2025, 1, 2, 6, 0, 0, 0, time.UTC)
	file, err := hotlist.Build([]hotlist.Entry{{Card: uint64(lost), Reason: hotlist.ReasonLost}}, 1, issued, priv, 1)
	if err != nil {
		fmt.Println(err)
		return
	}

	// Validator: trust the public key of sign-hotlist@1, keep files in a
	// directory, apply what the registry sends.
	keys := hotlist.KeyMap(map[int]ed25519.PublicKey{1: priv.Public().(ed25519.PublicKey)})
	dir, err := os.MkdirTemp("", "hotlist-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	h, err := hotlist.Open(ctx, hotlist.Config{Dir: dir, MaxAge: 48 * time.Hour, Log: slog.New(slog.DiscardHandler)}, keys)
	if err != nil {
		fmt.Println(err)
		return
	}
	m, err := h.Apply(ctx, file, keys)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("applied", m.Kind, "version", m.Version, "signed by key version", m.KeyVersion)

	// A tap: one snapshot decides and is recorded.
	l := h.Current()
	reason, blocked := l.Lookup(uint64(lost))
	fmt.Println(lost.Grouped(), "blocked:", blocked, reason, "- decided with version", l.Version())

	_, err = h.Apply(ctx, file, keys)
	fmt.Println("same file again:", err)
	fmt.Println("stale a day later:", h.Stale(issued.Add(24*time.Hour)))
	fmt.Println("stale three days later:", h.Stale(issued.Add(72*time.Hour)))
	// Output:
	// applied full version 1 signed by key version 1
	// 2201 0000 0001 2347 blocked: true lost - decided with version 1
	// same file again: hotlist is not newer than the loaded one: full file has version 1, the loaded list 1
	// stale a day later: false
	// stale three days later: true
}
