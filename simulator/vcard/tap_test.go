package vcard_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/citycard/transit/card/apdu"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/simulator/vcard"
)

// tapAPDUs is the number of exchanges of the representative tap.
const tapAPDUs = 8

func TestTapAPDUBudget(t *testing.T) {
	card := vcard.New(testUID)
	personalise(t, card)
	c := desfire.New(card)
	must(t, "tap", tap(c, pattern(recordSize, 1)))
	if c.APDUs() != tapAPDUs {
		t.Fatalf("tap took %d APDUs, want %d", c.APDUs(), tapAPDUs)
	}
	v, recs := snapshot(t, card)
	if v != initialPurse-fare || len(recs) != 1 || !bytes.Equal(recs[0], pattern(recordSize, 1)) {
		t.Fatalf("after tap: purse %d, records %X", v, recs)
	}
}

// TestTearEveryAPDU tears the card away after each APDU of a tap (and,
// separately, during each APDU: executed but its answer lost). Afterwards
// the card holds either none or all of the tap: the debit and the log
// record agree.
func TestTearEveryAPDU(t *testing.T) {
	for _, lose := range []bool{false, true} {
		for after := 0; after <= tapAPDUs; after++ {
			if lose && after == tapAPDUs {
				continue // there is no ninth APDU to lose
			}
			t.Run(fmt.Sprintf("after=%d/loseResponse=%v", after, lose), func(t *testing.T) {
				card := vcard.New(testUID)
				personalise(t, card)
				// One completed tap first, so "before" has a record too.
				must(t, "first tap", tap(desfire.New(card), pattern(recordSize, 1)))

				tr := &vcard.Tear{Card: card, After: after, LoseResponse: lose}
				err := tap(desfire.New(tr), pattern(recordSize, 2))
				switch {
				case after == tapAPDUs && !lose:
					must(t, "untorn tap", err)
				case !errors.Is(err, apdu.ErrCardRemoved):
					t.Fatalf("torn tap: got %v, want an error wrapping apdu.ErrCardRemoved", err)
				}

				v, recs := snapshot(t, card)
				before := v == initialPurse-fare && len(recs) == 1 && bytes.Equal(recs[0], pattern(recordSize, 1))
				afterTap := v == initialPurse-2*fare && len(recs) == 2 && bytes.Equal(recs[1], pattern(recordSize, 2))
				if before == afterTap {
					t.Fatalf("card is neither wholly before nor wholly after the tap: purse %d, %d records", v, len(recs))
				}
				// Only a tear at or after the commit may leave the tap done.
				committed := after >= tapAPDUs || (lose && after == tapAPDUs-1)
				if afterTap != committed {
					t.Fatalf("tap committed = %v, want %v", afterTap, committed)
				}
			})
		}
	}
}

// BenchmarkTapTransaction is one validator tap against the in-process
// virtual card: select, authenticate (2), read contract, GetValue, Debit,
// WriteRecord, CommitTransaction.
func BenchmarkTapTransaction(b *testing.B) {
	card := vcard.New(testUID)
	personalise(b, card)
	rec := pattern(recordSize, 1)
	apdus, taps := 0, 0
	for b.Loop() {
		c := desfire.New(card)
		if err := tap(c, rec); err != nil {
			b.Fatal(err)
		}
		apdus += c.APDUs()
		if taps++; taps%10 == 0 { // keep the purse from running dry
			b.StopTimer()
			refill(b, card, 10*fare)
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(apdus)/float64(taps), "apdus/op")
}

func refill(b *testing.B, card *vcard.Card, amount int32) {
	c := desfire.New(card)
	must(b, "select", c.SelectApplication(transportAID))
	must(b, "auth", c.AuthenticateAES(keyTopUp, roleKey(keyTopUp)))
	must(b, "credit", c.Credit(filePurse, amount, desfire.CommMAC))
	must(b, "commit", c.CommitTransaction())
}
