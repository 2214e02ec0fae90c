package rerate_test

import (
	"testing"
	"time"

	citycard "github.com/citycard/transit/card"
	"github.com/citycard/transit/clearing/cardmac/cardmactest"
	"github.com/citycard/transit/clearing/rerate"
	"github.com/citycard/transit/validator/tap"
)

var (
	ev3UID = []byte{0x04, 0x31, 0x7A, 0x52, 0x6C, 0x11, 0x90}
	ev3Key = [16]byte{0x3C, 0x1F, 0x02, 0x77, 0x0B, 0x8D, 0xE4, 0x55, 0x90, 0x11, 0xA2, 0x6E, 0x07, 0xC3, 0x48, 0xF9}
)

func sign(t *testing.T, tp *tap.Tap, tmc uint32) {
	t.Helper()
	if err := cardmactest.Sign(tp, ev3Key, ev3UID, tmc); err != nil {
		t.Fatal(err)
	}
}

func macKeys() map[rerate.MACKey][16]byte {
	k, _ := rerate.MACKeyOf(&tap.CardMAC{UID: ev3UID, KeyVersion: 1})
	return map[rerate.MACKey][16]byte{k: ev3Key}
}

// TestCardMAC: the rides of an EV2/EV3 card are paid only with the
// card's own signature; a ride a device invented or changed is held.
func TestCardMAC(t *testing.T) {
	num, _ := citycard.NewNumber(1001, 7001)
	w := newWorld(t)
	c := newCard(uint64(num), ent("11", 0))
	var taps []tap.Tap
	for i := range 4 {
		tp := w.tap("BUS-1", c, nov.Add(time.Duration(i)*3*time.Hour))
		sign(t, &tp, uint32(i+1))
		taps = append(taps, tp)
	}
	facts := w.worldFacts(nov.AddDate(0, 1, 0))
	facts.CardMACKeys = macKeys()
	cf := &rerate.CardFacts{Records: records(c)}
	vs := verdicts(t, facts, cf, taps...)
	for _, tp := range taps {
		want(t, vs, tp, rerate.Paid, "")
	}

	t.Run("MAC changed", func(t *testing.T) {
		bad := append([]tap.Tap(nil), taps...)
		m := *bad[1].CardMAC
		m.TMV[0] ^= 1
		bad[1].CardMAC = &m
		vs := verdicts(t, facts, cf, bad...)
		want(t, vs, bad[1], rerate.Held, rerate.ReasonCardMACInvalid)
		for _, tp := range []tap.Tap{bad[0], bad[2], bad[3]} {
			want(t, vs, tp, rerate.Paid, "")
		}
	})
	t.Run("ride changed under a real MAC", func(t *testing.T) {
		bad := append([]tap.Tap(nil), taps...)
		bad[2].Time = bad[2].Time.Add(20 * time.Minute) // the card signed another time
		vs := verdicts(t, facts, cf, bad...)
		want(t, vs, bad[2], rerate.Held, rerate.ReasonCardMACInvalid)
	})
	t.Run("invented ride without a MAC", func(t *testing.T) {
		// A device with a valid batch key invents a benefit ride of the
		// card between its real rides, naming its real previous ride.
		inv := taps[1]
		inv.Device, inv.Seq, inv.Time, inv.CardMAC = "BUS-2", 900, taps[1].Time.Add(time.Hour), nil
		inv.Route, inv.Vehicle, inv.DeviceNumber = "21", "AA1002", w.devs["BUS-2"].number
		inv.Prev = taps[2].Prev
		vs := verdicts(t, facts, cf, append(append([]tap.Tap(nil), taps...), inv)...)
		want(t, vs, inv, rerate.Held, rerate.ReasonCardMACMissing)
		for _, tp := range taps {
			want(t, vs, tp, rerate.Paid, "") // its false evidence forks nothing
		}
	})
	t.Run("invented ride with another card's MAC", func(t *testing.T) {
		inv := taps[3]
		m := *inv.CardMAC
		m.UID = []byte{0x04, 1, 2, 3, 4, 5, 6}
		inv.CardMAC = &m
		facts := w.worldFacts(nov.AddDate(0, 1, 0))
		facts.CardMACKeys = macKeys()
		other, _ := rerate.MACKeyOf(&m)
		facts.CardMACKeys[other] = [16]byte{0x55} // that card's own key, from the HSM
		vs := verdicts(t, facts, cf, taps[0], taps[1], taps[2], inv)
		want(t, vs, inv, rerate.Held, rerate.ReasonCardMACInvalid)
	})
	t.Run("a MAC naming no key", func(t *testing.T) {
		bad := append([]tap.Tap(nil), taps...)
		m := *bad[0].CardMAC
		m.KeyVersion = 0
		bad[0].CardMAC = &m
		vs := verdicts(t, facts, cf, bad...)
		want(t, vs, bad[0], rerate.Held, rerate.ReasonCardMACInvalid)
	})
	t.Run("no Transaction MAC master", func(t *testing.T) {
		facts := w.worldFacts(nov.AddDate(0, 1, 0))
		vs := verdicts(t, facts, cf, taps...)
		for _, tp := range taps {
			want(t, vs, tp, rerate.Waiting, rerate.ReasonCardMACUnchecked)
		}
	})
	t.Run("commit unknown, shown by the next signed tap", func(t *testing.T) {
		// The card's answer to the commit was lost with its MAC; the
		// card's next tap, which it signed, names the ride.
		cu := append([]tap.Tap(nil), taps...)
		cu[1].CardCommitted, cu[1].CommitUnknown, cu[1].CardMAC = false, true, nil
		vs := verdicts(t, facts, cf, cu...)
		for _, tp := range cu {
			want(t, vs, tp, rerate.Paid, "")
		}
	})
	t.Run("EV1 rides need no MAC", func(t *testing.T) {
		w := newWorld(t)
		c := newCard(uint64(num), ent("11", 0))
		a, b := w.tap("BUS-1", c, nov), w.tap("TRAM-1", c, nov.Add(2*time.Hour))
		vs := verdicts(t, facts, &rerate.CardFacts{Records: records(c)}, a, b)
		want(t, vs, a, rerate.Paid, "")
		want(t, vs, b, rerate.Paid, "")
	})
}
