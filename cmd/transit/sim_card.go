package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/citycard/transit/simulator/vcard"
	"github.com/citycard/transit/simulator/vpcd"
)

// maxCardState bounds a card state file: a full 8 KB card encodes to a
// little more than its memory.
const maxCardState = 64 << 10

func newSimCardCmd() *cobra.Command {
	var (
		addr, statePath, uidHex string
		hold                    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "card --vpcd HOST:PORT --state FILE",
		Short: "Present a virtual card in a vpcd reader of pcscd, keeping the card in a file between presentations",
		Long: `Put a virtual DESFire EV1-compatible card (the simulator's: the same commands, keys, secure messaging
and transactions as the real card) into a virtual reader of pcscd, the one vsmartcard's vpcd driver listens
for at --vpcd. The desk and the validator then read and write it with PC/SC, through pcscd, exactly as
they would a real card on a real reader: it is how to try personalisation and taps without hardware.

The card is blank (factory state, a random UID unless --uid) unless --state names a file an earlier run
saved; its committed state is written back to --state whenever it changes and when the card leaves the
reader: at Ctrl-C or SIGTERM, or after --for. The file holds the card's keys: it is written 0600.
A card stays in the field until taken away; the validator taps a card once per presentation, so present it
again (another run) for the next tap.`,
		Example: `  # a blank card for the desk to personalise, until Ctrl-C
  transit sim card --vpcd 127.0.0.1:35963 --state run/card.vdfc
  # the same card tapped on a validator: in the reader for 3 seconds
  transit sim card --vpcd 127.0.0.1:35963 --state run/card.vdfc --for 3s`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if statePath == "" {
				return usagef("give the file that keeps the card: --state FILE (created for a blank card)")
			}
			if hold < 0 {
				return usagef("--for %v: want a duration such as 3s, or 0 to wait for Ctrl-C", hold)
			}
			vc, created, err := loadCard(statePath, uidHex)
			if err != nil {
				return err
			}
			return presentCard(c.Context(), vc, addr, statePath, hold, created, c.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&addr, "vpcd", "127.0.0.1:35963", "where pcscd's vpcd driver listens for the card (35963 is its first reader, 35964 the second)")
	cmd.Flags().StringVar(&statePath, "state", "", "file keeping the card's state between runs (a blank card when it does not exist yet)")
	cmd.Flags().StringVar(&uidHex, "uid", "", "UID of a new blank card, 7 bytes in hex (default: random)")
	cmd.Flags().DurationVar(&hold, "for", 0, "take the card away after this long (default: at Ctrl-C)")
	return cmd
}

// loadCard reads the card in path, or makes a blank one when the file does
// not exist.
func loadCard(path, uidHex string) (*vcard.Card, bool, error) {
	data, err := readBounded(path, maxCardState)
	switch {
	case errors.Is(err, os.ErrNotExist):
		uid := make([]byte, 7)
		if uidHex != "" {
			if uid, err = hex.DecodeString(uidHex); err != nil || len(uid) != 7 {
				return nil, false, usagef("--uid %q: want 7 bytes in hex, e.g. 04A1B2C3D4E580", uidHex)
			}
		} else {
			rand.Read(uid) //nolint:errcheck // crypto/rand.Read does not fail
			uid[0] = 0x04  // NXP's manufacturer code, as real cards have
		}
		return vcard.New(uid), true, nil
	case err != nil:
		return nil, false, fmt.Errorf("card state %s: %w", path, err)
	}
	if uidHex != "" {
		return nil, false, usagef("--uid is for a new card; %s already holds one", path)
	}
	vc := vcard.New(nil)
	if err := vc.UnmarshalBinary(data); err != nil {
		return nil, false, fmt.Errorf("card state %s: %w; it is not a file 'transit sim card' wrote", path, err)
	}
	return vc, false, nil
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("more than %d bytes", limit)
	}
	return data, nil
}

// presentCard keeps vc in the reader at addr until ctx ends, hold passes
// or pcscd goes away, saving its state to path as it changes and at the
// end.
func presentCard(ctx context.Context, vc *vcard.Card, addr, path string, hold time.Duration, created bool, stderr io.Writer) error {
	saved, _ := vc.MarshalBinary()
	if created {
		if err := saveCard(path, saved); err != nil {
			return err
		}
	}
	save := func() error {
		b, _ := vc.MarshalBinary()
		if bytes.Equal(b, saved) {
			return nil
		}
		if err := saveCard(path, b); err != nil {
			return err
		}
		saved = b
		return nil
	}
	slot, err := vpcd.Insert(ctx, addr, vc)
	if err != nil {
		return err
	}
	what := "card"
	if created {
		what = "blank card"
	}
	until := "Ctrl-C takes it away"
	if hold > 0 {
		until = fmt.Sprintf("for %v", hold)
	}
	fmt.Fprintf(stderr, "virtual %s UID %X in the reader at %s (%s); state in %s\n", what, vc.UID(), addr, until, path)
	var timeout <-chan time.Time
	if hold > 0 {
		timeout = time.After(hold)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var serveErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-timeout:
			break loop
		case <-slot.Done():
			serveErr = slot.Err()
			break loop
		case <-tick.C:
			if err := save(); err != nil {
				slot.Remove()
				return err
			}
		}
	}
	slot.Remove()
	vc.Reset() // out of the field: what was not committed is gone
	if err := save(); err != nil {
		return err
	}
	if serveErr != nil {
		return fmt.Errorf("the reader dropped the card: %w", serveErr)
	}
	fmt.Fprintf(stderr, "card UID %X taken away; saved in %s\n", vc.UID(), path)
	return nil
}

// saveCard writes data to path whole (a temporary file renamed over it),
// readable by the owner only: it holds the card's keys.
func saveCard(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("save the card: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save the card to %s: %w", path, err)
	}
	return nil
}
