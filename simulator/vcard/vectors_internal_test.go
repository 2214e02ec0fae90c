package vcard

import (
	"bytes"
	"crypto/des"
	"encoding/binary"
	"testing"

	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/card/desfire/desfiretest"
)

// replay feeds the vector's commands to the card and checks each answer
// byte for byte.
func replay(t *testing.T, c *Card, v desfiretest.Vector) {
	t.Helper()
	for i := 1; ; i++ {
		name := string(rune('0' + i))
		cmd, ok := v["cmd"+name]
		if !ok {
			return
		}
		if got, want := c.Respond(cmd), v.Get(t, "resp"+name); !bytes.Equal(got, want) {
			t.Fatalf("answer %d to %X = %X, published %X", i, cmd, got, want)
		}
	}
}

// TestPublishedAuthenticationCardSide: with the published RndB (and TI)
// the virtual card answers the published commands with the published
// responses, and opens a session with the published key.
func TestPublishedAuthenticationCardSide(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  desfire.KeyType
		gen  Generation
	}{
		{"ev1-iso-2k3des", desfire.KeyDES, EV1},
		{"ev1-iso-3k3des", desfire.Key3K3DES, EV1},
		{"ev1-aes", desfire.KeyAES, EV1},
		{"an12196-t14-ev2first", desfire.KeyAES, EV3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := desfiretest.Get(t, tc.name)
			rnd := v.Get(t, "rndB")
			if v.Has("ti") {
				rnd = append(rnd, v.Get(t, "ti")...)
			}
			c := New(nil, WithRand(&desfiretest.FixedRand{B: rnd}), WithGeneration(tc.gen))
			c.picc.keys[0] = key{typ: tc.typ, k: v.Get(t, "key")}
			replay(t, c, v)
			if k, ok := c.session(); !ok || k != 0 {
				t.Fatal("no session after the published authentication")
			}
			if c.ev2 != nil && !bytes.Equal(c.ev2.TI[:], v.Get(t, "ti")) {
				t.Fatalf("TI %X", c.ev2.TI)
			}
		})
	}
}

// TestPublishedChangeKeyCardSide: the card takes the published ChangeKey
// cryptograms (EV1 AES, ISO DES, and AN12196's EV2 ones) and holds the new
// key afterwards.
func TestPublishedChangeKeyCardSide(t *testing.T) {
	app := desfire.AID{0x16, 0xAE, 0x00}
	newApp := func(gen Generation) *Card {
		c := New(nil, WithGeneration(gen))
		a := &application{aid: app, settings: 0x0F, keys: []key{aesKey(make([]byte, 16), 0), aesKey(make([]byte, 16), 0), aesKey(make([]byte, 16), 0)}}
		c.apps = append(c.apps, a)
		c.sel = a
		return c
	}
	t.Run("ev1-changekey-2k3des", func(t *testing.T) {
		v := desfiretest.Get(t, "ev1-changekey-2k3des")
		c := New(nil)
		b, _ := des.NewCipher(v.Get(t, "session"))
		c.sess = desfire.NewSessionCipher(0, desfire.KeyDES, b)
		replay(t, c, v)
		if k := c.picc.keys[0]; k.typ != desfire.KeyDES || !bytes.Equal(k.k, v.Get(t, "newKey")) {
			t.Fatalf("PICC key %v %X", k.typ, k.k)
		}
	})
	for _, name := range []string{"ev1-changekey-aes-same", "ev1-changekey-aes-other"} {
		t.Run(name, func(t *testing.T) {
			v := desfiretest.Get(t, name)
			c := newApp(EV1)
			c.sess, _ = desfire.NewSession(0, v.Get(t, "session"))
			replay(t, c, v)
			no := v.Get(t, "cmd1")[5]
			if k := c.sel.keys[no]; !bytes.Equal(k.k, v.Get(t, "newKey")) || k.version != v.Get(t, "version")[0] {
				t.Fatalf("key %d = %X v%d", no, k.k, k.version)
			}
		})
	}
	for _, name := range []string{"an12196-t25-changekey-other", "an12196-t26-changekey-same"} {
		t.Run(name, func(t *testing.T) {
			v := desfiretest.Get(t, name)
			c := newApp(EV2)
			c.ev2, _ = desfire.NewEV2Session(0, v.Get(t, "enc"), v.Get(t, "mac"), v.Get(t, "ti"))
			c.ev2.CmdCtr = binary.LittleEndian.Uint16(v.Get(t, "ctr"))
			replay(t, c, v)
			no := v.Get(t, "keyNo")[0]
			if k := c.sel.keys[no]; !bytes.Equal(k.k, v.Get(t, "newKey")) || k.version != v.Get(t, "version")[0] {
				t.Fatalf("key %d = %X v%d", no, k.k, k.version)
			}
		})
	}
	t.Run("an12196-t28-getcarduid", func(t *testing.T) {
		v := desfiretest.Get(t, "an12196-t28-getcarduid")
		c := New(v.Get(t, "uid"), WithGeneration(EV2))
		c.ev2, _ = desfire.NewEV2Session(0, v.Get(t, "enc"), v.Get(t, "mac"), v.Get(t, "ti"))
		replay(t, c, v)
	})
}
