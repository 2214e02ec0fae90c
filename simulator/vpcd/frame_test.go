package vpcd

import (
	"bytes"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, p := range [][]byte{{0x04}, {0x00, 0xA4, 0x04, 0x00}, bytes.Repeat([]byte{7}, 300)} {
		f, err := appendFrame(nil, p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readFrame(bytes.NewReader(f), nil)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("round trip % X: got % X, %v", p, got, err)
		}
	}
	if _, err := readFrame(bytes.NewReader([]byte{0, 0}), nil); err == nil {
		t.Fatal("empty frame accepted")
	}
	if _, err := readFrame(bytes.NewReader([]byte{0, 5, 1}), nil); err == nil {
		t.Fatal("short payload accepted")
	}
	if _, err := appendFrame(nil, make([]byte, 0x10000)); err == nil {
		t.Fatal("oversized payload accepted")
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 1, 4})
	f.Add([]byte{0, 4, 0, 0xA4, 4, 0})
	f.Add([]byte{0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := readFrame(bytes.NewReader(b), nil)
		if err != nil {
			return
		}
		if len(p) == 0 || len(p)+2 > len(b) || !bytes.Equal(p, b[2:2+len(p)]) {
			t.Fatalf("decoded % X from % X", p, b)
		}
	})
}
