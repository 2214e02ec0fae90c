//go:build cgo

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/card/pcsc"
	"github.com/citycard/transit/clearing/cardmac"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/simulator/testenv"
	"github.com/citycard/transit/simulator/vcard"
	"github.com/citycard/transit/validator/agent"
	"github.com/citycard/transit/validator/cardtx"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/tap"
)

// TestDeskGenerationsOverPCSC is issue 17's first "done when": a
// factory-fresh virtual EV1 and a factory-fresh EV3 are personalised
// through real pcscd with the desk command, then tap on the validator's
// card transaction through pcscd: the EV1 in EV1 secure messaging, the
// EV3 in EV2 secure messaging with a Transaction MAC that clearing's
// verifier accepts, each within 8 exchanges.
func TestDeskGenerationsOverPCSC(t *testing.T) {
	addr, reader := testenv.PCSC(t, 0)
	t.Cleanup(func() { time.Sleep(time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	reg := newDeskRegistry(t)
	keysPath := issuerKeystore(t, "desk pass")
	t.Setenv(tokenEnv, reg.token)
	t.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", "desk pass")
	ks, err := hsm.OpenKeystore(keysPath, []byte("desk pass"))
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	keys := cardkey.New(ks)
	for i, g := range []vcard.Generation{vcard.EV1, vcard.EV3} {
		t.Run(g.String(), func(t *testing.T) {
			n := reg.order()
			uid := []byte{0x04, 0x17, 0x22, 0x33, 0x44, byte(0x50 + i), 0x80}
			vc := vcard.New(uid, vcard.WithGeneration(g))
			_, remove := insert(t, ctx, addr, vc)
			defer remove()
			code, out, stderr := deskCLI(ctx, "desk", "personalise", "--card", n.Grouped(), "--purpose", "card issue, ticket 17",
				"--reader", reader, "--keystore", keysPath, "--wait", "30s", "--registry", reg.url)
			if code != 0 || !strings.Contains(out, "handed over") {
				t.Fatalf("personalise an %s: exit %d, %s %s", g, code, out, stderr)
			}
			r := pcsc.Open(reader)
			defer r.Close()
			pc, err := r.WaitCard(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			got, err := pc.UID()
			if err != nil || string(got) != string(uid) {
				t.Fatalf("UID from the reader %X, %v", got, err)
			}
			// A top-up point credits the purse.
			top := desfire.New(pc)
			k, err := keys.Key(ctx, card.RoleTopUp, uid, card.AIDTransport, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := top.SelectApplication(card.AIDTransport.Bytes()); err != nil {
				t.Fatal(err)
			}
			auth := top.AuthenticateAES
			if g != vcard.EV1 {
				auth = top.AuthenticateEV2First
			}
			if err := auth(card.KeyTopUp, k.Value[:]); err != nil {
				t.Fatal(err)
			}
			if err := top.Credit(card.FilePurse, 50_00, desfire.CommMAC); err != nil {
				t.Fatal(err)
			}
			if err := top.CommitTransaction(); err != nil {
				t.Fatal(err)
			}
			o := cardtx.Options{EV1: func(u []byte) bool { return g == vcard.EV1 }}
			tf := &fare.Tariff{Version: 1, FareKop: map[string]int64{"KTE": 800}}
			dev := fare.Device{ID: "V-17", Carrier: "KTE", Route: "12", Vehicle: "AA1"}
			now := time.Now()
			for ride := 1; ride <= 2; ride++ {
				now = now.Add(time.Hour)
				c := desfire.New(pc)
				s, err := cardtx.ReadWith(ctx, c, keys, uid, now, time.UTC, o)
				if err != nil {
					t.Fatalf("ride %d: %v", ride, err)
				}
				d := fare.Decide(s.Fare(nil), tf, nil, dev, now)
				st, _ := card.StampOf(now)
				tp := tap.Tap{Device: dev.ID, Seq: uint64(ride), Time: now.UTC().Truncate(time.Millisecond), Card: uint64(n),
					Result: d.Result, Reason: d.Reason, Product: d.Product, FareKop: d.FareKop, ChargedKop: d.ChargedKop, DeviceNumber: 17}
				if prev, ok := s.LastTap(); ok {
					tp.Prev = agent.CardRide(prev)
				}
				if err := s.Commit(ctx, d, card.TapRecord{Time: st, Device: 17, Seq: uint32(ride), Carrier: 7, Route: 12}); err != nil {
					t.Fatalf("ride %d: %v", ride, err)
				}
				m, signed := s.CardMAC()
				t.Logf("%s ride %d: %s, %d APDUs, secure messaging %s, card-signed %v", g, ride, d.Product, c.APDUs(), c.SecureMessaging(), signed)
				if want := 8 + 2*boolInt(ride == 1); c.APDUs() != want { // a first tap finds an empty log: +2
					t.Fatalf("ride %d took %d APDUs, want %d", ride, c.APDUs(), want)
				}
				if signed != (g == vcard.EV3) || s.EV2() != (g == vcard.EV3) {
					t.Fatalf("%s: EV2 %v, card-signed %v", g, s.EV2(), signed)
				}
				if signed {
					tp.CardMAC = agent.TapCardMAC(m)
					vd, why, err := (&cardmac.Verifier{Keys: keys}).Verify(ctx, &tp)
					want := cardmac.Signed
					if ride == 1 {
						want = cardmac.Unproven
					}
					if err != nil || vd != want {
						t.Fatalf("ride %d: %s (%v, %v), want %s", ride, vd, why, err, want)
					}
				}
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
