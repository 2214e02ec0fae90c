package desfire

import (
	"bytes"
	"crypto/aes"
	"crypto/des"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/citycard/transit/card/desfire/desfiretest"
)

// noParity drops the parity bits, which DES ignores and the published
// transcripts clear.
func noParity(b []byte) []byte {
	out := make([]byte, len(b))
	for i, x := range b {
		out[i] = x &^ 1
	}
	return out
}

// TestPublishedAuthentication replays the published EV1 authentications
// (DES, 2K3DES, 3K3DES, AES) on the reader side: with the example's RndA
// the reader sends the published APDUs, accepts the card's proof and
// derives the published session key.
func TestPublishedAuthentication(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  KeyType
	}{{"ev1-iso-des", KeyDES}, {"ev1-iso-2k3des", KeyDES}, {"ev1-iso-3k3des", Key3K3DES}, {"ev1-aes", KeyAES}} {
		t.Run(tc.name, func(t *testing.T) {
			v := desfiretest.Get(t, tc.name)
			sc := &desfiretest.Script{T: t, V: v}
			c := New(sc, WithRand(&desfiretest.FixedRand{B: v.Get(t, "rndA")}))
			var err error
			if tc.typ == KeyAES {
				err = c.AuthenticateAES(0, v.Get(t, "key"))
			} else {
				err = c.AuthenticateISO(0, tc.typ, v.Get(t, "key"))
			}
			if err != nil || !sc.Done() {
				t.Fatalf("authenticate: %v (all answers used: %v)", err, sc.Done())
			}
			// The session key, through its cipher: encrypt a block with
			// the published key and with the session's.
			want := v.Get(t, "session")
			var ref interface{ Encrypt(dst, src []byte) }
			switch len(want) {
			case 8:
				ref, _ = des.NewCipher(want)
			case 16:
				if tc.typ == KeyAES {
					ref, _ = aes.NewCipher(want)
				} else {
					ref, _ = NewKeyCipher(KeyDES, want)
				}
			case 24:
				ref, _ = des.NewTripleDESCipher(want)
			}
			in := make([]byte, c.s.BlockSize())
			a, b := make([]byte, len(in)), make([]byte, len(in))
			ref.Encrypt(a, in)
			c.s.block.Encrypt(b, in)
			if !bytes.Equal(a, b) {
				t.Fatalf("session key differs from the published %X", want)
			}
			if tc.typ == KeyDES && v.Has("rndB") {
				k, _, _ := ISOSessionKey(tc.typ, v.Get(t, "key"), v.Get(t, "rndA"), v.Get(t, "rndB"))
				if !bytes.Equal(noParity(k), noParity(want)) {
					t.Fatalf("session key %X, published %X", k, want)
				}
			}
		})
	}
	// A card whose proof is wrong is not authentic.
	v := desfiretest.Get(t, "ev1-iso-3k3des")
	v["resp2"][0] ^= 1
	c := New(&desfiretest.Script{T: t, V: v}, WithRand(&desfiretest.FixedRand{B: v.Get(t, "rndA")}))
	if err := c.AuthenticateISO(0, Key3K3DES, v.Get(t, "key")); !errors.Is(err, ErrCardNotAuthentic) {
		t.Fatalf("wrong proof: %v", err)
	}
}

// TestPublishedChangeKey replays the published EV1 ChangeKey cryptograms
// from a session with the published key and a zero IV.
func TestPublishedChangeKey(t *testing.T) {
	for _, tc := range []struct {
		name    string
		typ     KeyType // the new key's
		session KeyType
		keyNo   byte
		aid     AID
	}{
		{"ev1-changekey-2k3des", KeyDES, KeyDES, 0, AID{}},
		{"ev1-changekey-aes-same", KeyAES, KeyAES, 0, AID{0x16, 0xAE, 0x00}},
		{"ev1-changekey-aes-other", KeyAES, KeyAES, 1, AID{0x16, 0xAE, 0x00}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := desfiretest.Get(t, tc.name)
			c := New(&desfiretest.Script{T: t, V: v})
			sk := v.Get(t, "session")
			var err error
			if tc.session == KeyAES {
				c.s, err = NewSession(0, sk)
			} else {
				var b, _ = des.NewCipher(sk)
				c.s = NewSessionCipher(0, KeyDES, b)
			}
			if err != nil {
				t.Fatal(err)
			}
			c.aid, c.app = tc.aid, tc.aid != AID{}
			var ver byte
			if v.Has("version") {
				ver = v.Get(t, "version")[0]
			}
			var old []byte
			if v.Has("oldKey") {
				old = v.Get(t, "oldKey")
			}
			if err := c.ChangeKeyType(tc.keyNo, tc.typ, v.Get(t, "newKey"), ver, old); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPublishedEV2 replays AN12196's AuthenticateEV2First, ChangeKey (both
// cases) and GetCardUID, and AN12343's session keys, on the reader side.
func TestPublishedEV2(t *testing.T) {
	v := desfiretest.Get(t, "an12196-t14-ev2first")
	rndA, rndB := v.Get(t, "rndA"), v.Get(t, "rndB")
	if sv := EV2SessionVector(0xA5, 0x5A, rndA, rndB); !bytes.Equal(sv, v.Get(t, "sv1")) {
		t.Fatalf("SV1 %X", sv)
	}
	if sv := EV2SessionVector(0x5A, 0xA5, rndA, rndB); !bytes.Equal(sv, v.Get(t, "sv2")) {
		t.Fatalf("SV2 %X", sv)
	}
	sc := &desfiretest.Script{T: t, V: v}
	c := New(sc, WithRand(&desfiretest.FixedRand{B: rndA}))
	if err := c.AuthenticateEV2First(0, v.Get(t, "key")); err != nil || !sc.Done() {
		t.Fatalf("AuthenticateEV2First: %v", err)
	}
	if e := c.EV2(); e == nil || !bytes.Equal(e.TI[:], v.Get(t, "ti")) || e.CmdCtr != 0 {
		t.Fatalf("session %+v", c.EV2())
	}
	enc, mac, _ := EV2SessionKeys(v.Get(t, "key"), rndA, rndB)
	if !bytes.Equal(enc[:], v.Get(t, "enc")) || !bytes.Equal(mac[:], v.Get(t, "mac")) {
		t.Fatalf("session keys %X %X", enc, mac)
	}
	l := desfiretest.Get(t, "an12343-sessionkeys")
	enc, mac, _ = EV2SessionKeys(l.Get(t, "key"), l.Get(t, "rndA"), l.Get(t, "rndB"))
	if !bytes.Equal(enc[:], l.Get(t, "enc")) || !bytes.Equal(mac[:], l.Get(t, "mac")) {
		t.Fatalf("AN12343 session keys %X %X", enc, mac)
	}

	session := func(t *testing.T, v desfiretest.Vector) *Card {
		c := New(&desfiretest.Script{T: t, V: v})
		e, err := NewEV2Session(0, v.Get(t, "enc"), v.Get(t, "mac"), v.Get(t, "ti"))
		if err != nil {
			t.Fatal(err)
		}
		e.CmdCtr = binary.LittleEndian.Uint16(v.Get(t, "ctr"))
		c.e, c.aid, c.app = e, AID{1, 2, 3}, true
		return c
	}
	for _, name := range []string{"an12196-t25-changekey-other", "an12196-t26-changekey-same"} {
		t.Run(name, func(t *testing.T) {
			v := desfiretest.Get(t, name)
			c := session(t, v)
			var old []byte
			if v.Has("oldKey") {
				old = v.Get(t, "oldKey")
			}
			if err := c.ChangeKey(v.Get(t, "keyNo")[0], v.Get(t, "newKey"), v.Get(t, "version")[0], old); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("an12196-t28-getcarduid", func(t *testing.T) {
		v := desfiretest.Get(t, "an12196-t28-getcarduid")
		c := session(t, v)
		uid, err := c.GetCardUID()
		if err != nil || !bytes.Equal(uid, v.Get(t, "uid")) {
			t.Fatalf("GetCardUID = %X, %v", uid, err)
		}
		if c.EV2().CmdCtr != 1 {
			t.Fatalf("CmdCtr %d after one command", c.EV2().CmdCtr)
		}
	})
}
