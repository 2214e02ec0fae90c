package card

import (
	"bytes"
	"testing"
	"time"
)

// fuzzCodec checks that a decoder never panics and that whatever it
// accepts re-encodes to the same bytes (the encodings are canonical).
func fuzzCodec(f *testing.F, fresh func() codec, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		v := fresh()
		if err := v.UnmarshalBinary(data); err != nil {
			return
		}
		out, err := v.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %x but cannot re-encode: %v", data, err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("re-encoded\n% x\nfrom\n% x", out, data)
		}
	})
}

func mustEncode(t testing.TB, c codec) []byte {
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzIdentity(f *testing.F) {
	id := Identity{Number: sampleNumber(f), Issuer: 9804, Issued: MustDate(2026, 11, 22), Expires: MustDate(2031, 11, 22)}
	fuzzCodec(f, func() codec { return new(Identity) }, mustEncode(f, &id))
}

func FuzzHolder(f *testing.F) {
	h := Holder{Name: "Коваль Ірина", BirthDate: BirthDate{1948, time.May, 1}, RegistryRef: 77}
	fuzzCodec(f, func() codec { return new(Holder) }, mustEncode(f, &h))
}

func FuzzContract(f *testing.F) {
	c := sampleContract(f)
	fuzzCodec(f, func() codec { return new(Contract) }, mustEncode(f, &c))
}

func FuzzTapRecord(f *testing.F) {
	r, c := sampleTap(), sampleCounted(f)
	fuzzCodec(f, func() codec { return new(TapRecord) }, mustEncode(f, &r), mustEncode(f, &c))
}

func FuzzDecodeTapLog(f *testing.F) {
	r := sampleTap()
	b := mustEncode(f, &r)
	f.Add(append(bytes.Clone(b), b...))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := DecodeTapLog(data)
		if err != nil {
			return
		}
		if len(recs)*TapRecordSize != len(data) {
			t.Fatalf("%d records from %d bytes", len(recs), len(data))
		}
	})
}
