package cmac

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 4493 section 4 test vectors.
func TestRFC4493(t *testing.T) {
	key := "2b7e151628aed2a6abf7158809cf4f3c"
	msg := "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
	cases := []struct {
		n    int
		want string
	}{
		{0, "bb1d6929e95937287fa37d129b756746"},
		{16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{40, "dfa66747de9ae63030ca32611497c827"},
		{64, "51f0bebf7e3b9d92fc49741779363cfe"},
	}
	m, err := New(unhex(t, key))
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := m.Subkeys()
	if got := hex.EncodeToString(k1[:]); got != "fbeed618357133667c85e08f7236a8de" {
		t.Errorf("K1 = %s", got)
	}
	if got := hex.EncodeToString(k2[:]); got != "f7ddac306ae266ccf90bc11ee46d513b" {
		t.Errorf("K2 = %s", got)
	}
	full := unhex(t, msg)
	for _, c := range cases {
		sum := m.Sum(full[:c.n])
		if got := hex.EncodeToString(sum[:]); got != c.want {
			t.Errorf("len %d: CMAC = %s, want %s", c.n, got, c.want)
		}
		if !m.Verify(full[:c.n], unhex(t, c.want)) {
			t.Errorf("len %d: Verify rejected a good tag", c.n)
		}
		bad := unhex(t, c.want)
		bad[0] ^= 1
		if m.Verify(full[:c.n], bad) {
			t.Errorf("len %d: Verify accepted a bad tag", c.n)
		}
	}
}

func TestSumIVZeroIsSum(t *testing.T) {
	m, _ := New(bytes.Repeat([]byte{7}, 16))
	var iv [16]byte
	msg := []byte("city card")
	if m.Sum(msg) != m.SumIV(iv, msg) {
		t.Fatal("SumIV with zero IV differs from Sum")
	}
}

func TestBadKey(t *testing.T) {
	if _, err := New(make([]byte, 5)); err == nil {
		t.Fatal("New accepted a 5-byte key")
	}
}

func BenchmarkSum32(b *testing.B) {
	m, _ := New(make([]byte, 16))
	msg := make([]byte, 32)
	for b.Loop() {
		m.Sum(msg)
	}
}
