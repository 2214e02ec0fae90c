package tap

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func sampleBatch() *Batch {
	t0 := time.Date(2026, 11, 3, 7, 45, 12, 345e6, time.UTC)
	return &Batch{
		Device:     "V-0042",
		KeyVersion: 2,
		Created:    t0.Add(time.Minute),
		Taps: []Tap{
			{Device: "V-0042", Seq: 1, Time: t0, Card: 9804000000001, Carrier: "KTE", Route: "12", Vehicle: "AA1234",
				Lat: 50450100, Lon: 30523400, Result: Accepted, Reason: "ok", Product: "benefit", Category: "PENS",
				Funding: "city", FareKop: 1500, CompensationKop: 1500, TariffVersion: 7, HotlistVersion: 99, CardCommitted: true},
			{Device: "V-0042", Seq: 2, Time: t0.Add(3 * time.Second), Card: 9804000000019, Carrier: "KTE", Route: "12",
				Vehicle: "AA1234", Result: Denied, Reason: "insufficient-funds", FareKop: 1500, TariffVersion: 7},
			{Device: "V-0042", Seq: 3, Time: t0.Add(9 * time.Second), Card: 9804000000027, Carrier: "KTE", Route: "12",
				Vehicle: "AA1234", Result: Accepted, Reason: "ok", Product: "transfer", FareKop: 1500, TariffVersion: 7,
				CommitUnknown: true, Counted: false, ClockAnomaly: false, BenefitRevoked: true, DeviceNumber: 4201,
				Prev: CardRide{Device: 77, Seq: 1 << 31, Time: t0.Add(-20 * time.Minute).Truncate(time.Second), Carrier: 2, Route: 105,
					Product: "benefit", ChargedKop: 400}},
			{Device: "V-0042", Seq: 4, Time: t0.Add(time.Hour), Card: 9804000000027, Carrier: "KTE", Route: "12",
				Vehicle: "AA1234", Result: Accepted, Reason: "ok", Product: "benefit", Category: "31", Funding: "city",
				FareKop: 1500, ChargedKop: 750, CompensationKop: 750, TariffVersion: 7, CardCommitted: true, Counted: true,
				ClockAnomaly: true, DeviceNumber: 4201},
			// An EV3's tap, signed with its Transaction MAC; after an empty
			// log, so no contract and no previous record in it.
			{Device: "V-0042", Seq: 5, Time: t0.Add(2 * time.Hour), Card: 9804000000035, Carrier: "KTE", Route: "12",
				Vehicle: "AA1234", Result: Accepted, Reason: "ok", Product: "purse", FareKop: 1500, ChargedKop: 1500,
				TariffVersion: 7, CardCommitted: true, DeviceNumber: 4201,
				CardMAC: &CardMAC{TMC: 3, TMV: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, UID: []byte{4, 0x44, 0x0F, 0x32, 0x76, 0x31, 0x80},
					KeyVersion: 2, DebitKop: 1500, Record: bytes.Repeat([]byte{0x5C}, 34)}},
			{Device: "V-0042", Seq: 6, Time: t0.Add(3 * time.Hour), Card: 9804000000035, Carrier: "KTE", Route: "12",
				Vehicle: "AA1234", Result: Accepted, Reason: "ok", Product: "pass", FareKop: 1500,
				TariffVersion: 7, CardCommitted: true, DeviceNumber: 4201,
				Prev: CardRide{Device: 4201, Seq: 5, Time: t0.Add(2 * time.Hour).Truncate(time.Second), Carrier: 7, Route: 12, Product: "purse", ChargedKop: 1500},
				CardMAC: &CardMAC{TMC: 4, UID: []byte{4, 0x44, 0x0F, 0x32, 0x76, 0x31, 0x80}, KeyVersion: 2,
					Contract: bytes.Repeat([]byte{0xC0}, 44), Prev: bytes.Repeat([]byte{0x5C}, 34), Record: bytes.Repeat([]byte{0x5D}, 34)}},
		},
		MAC: bytes.Repeat([]byte{0xAB}, MACSize),
	}
}

func TestRoundTrip(t *testing.T) {
	b := sampleBatch()
	wire, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(wire)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, b)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Body(), wire[:len(wire)-MACSize]) {
		t.Fatal("Body() of decoded batch differs from the bytes received")
	}
}

// TestExtensionsAreOptional: a tap with none of the extension fields
// encodes exactly as before they existed, so older batches and journals
// still decode.
func TestExtensionsAreOptional(t *testing.T) {
	old := sampleBatch().Taps[0]
	b, _ := old.AppendBinary(nil)
	if flags := b[len(b)-1]; flags != flagCommitted {
		t.Fatalf("flags %#x, want only committed", flags)
	}
	full := sampleBatch().Taps[2]
	enc, _ := full.AppendBinary(nil)
	got, err := UnmarshalTap(full.Device, enc)
	if err != nil || !reflect.DeepEqual(got, full) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}

func TestExtensionsRejected(t *testing.T) {
	base := sampleBatch().Taps[1]
	prefix, _ := base.AppendBinary(nil)
	prefix = prefix[:len(prefix)-1] // without the flags byte
	ext := func(flags byte, rest ...byte) []byte {
		return append(append(bytes.Clone(prefix), flags), rest...)
	}
	for name, data := range map[string][]byte{
		"unknown flag":            ext(1 << 5),
		"empty list":              ext(flagExtensions, 0),
		"unknown tag":             ext(flagExtensions, 1, 9, 1, 1),
		"tags out of order":       ext(flagExtensions, 2, extPrev, 7, 1, 1, 2, 1, 1, 1, 0, extDeviceNumber, 1, 5),
		"repeated tag":            ext(flagExtensions, 2, extDeviceNumber, 1, 5, extDeviceNumber, 1, 6),
		"device number 0":         ext(flagExtensions, 1, extDeviceNumber, 1, 0),
		"bytes left over":         ext(flagExtensions, 1, extDeviceNumber, 2, 5, 5),
		"too long":                ext(flagExtensions, 1, extDeviceNumber, 9, 5),
		"device number > 32 bits": ext(flagExtensions, 1, extDeviceNumber, 5, 0x80, 0x80, 0x80, 0x80, 0x10),
		"list missing":            ext(flagExtensions),
	} {
		if _, err := UnmarshalTap("V-0042", data); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestMarshalUnsealed(t *testing.T) {
	b := sampleBatch()
	b.MAC = nil
	if _, err := b.Marshal(); err == nil {
		t.Fatal("Marshal accepted a batch without MAC")
	}
}

func TestUnmarshalRejects(t *testing.T) {
	good, _ := sampleBatch().Marshal()
	cases := map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("XX"), good[2:]...),
		"version":   append([]byte{'T', 'B', 9}, good[3:]...),
		"truncated": good[:len(good)-20],
		"trailing":  append(append(append([]byte(nil), good[:len(good)-MACSize]...), 0), good[len(good)-MACSize:]...),
	}
	for name, wire := range cases {
		if _, err := Unmarshal(wire); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestValidate(t *testing.T) {
	b := sampleBatch()
	b.Taps[1].Device = "V-9999"
	if err := b.Validate(); err == nil {
		t.Error("a tap from another device passed")
	}
	b = sampleBatch()
	b.Taps[0].Seq = 0
	if err := b.Validate(); err == nil {
		t.Error("sequence 0 passed")
	}
	// Money is clearing's to judge: a negative amount is a valid record
	// that clearing holds, not a reason to refuse the batch.
	b = sampleBatch()
	b.Taps[0].ChargedKop = -1
	if err := b.Validate(); err != nil {
		t.Errorf("a negative amount failed the batch: %v", err)
	}
}

func TestPeriod(t *testing.T) {
	kyiv := time.FixedZone("EET", 2*3600)
	tp := Tap{Time: time.Date(2026, 10, 31, 23, 30, 0, 0, time.UTC)}
	if got := tp.Period(kyiv); got != "2026-11" {
		t.Fatalf("Period = %s, want 2026-11 (local time decides the month)", got)
	}
}

func FuzzUnmarshal(f *testing.F) {
	good, _ := sampleBatch().Marshal()
	f.Add(good)
	f.Add([]byte("TB\x01"))
	f.Fuzz(func(t *testing.T, wire []byte) {
		b, err := Unmarshal(wire)
		if err != nil {
			return
		}
		again, err := b.Marshal()
		if err != nil {
			t.Fatalf("decoded batch does not marshal: %v", err)
		}
		b2, err := Unmarshal(again)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if !reflect.DeepEqual(b, b2) {
			t.Fatal("decode(encode(decode(x))) != decode(x)")
		}
	})
}

func BenchmarkUnmarshal1000(b *testing.B) {
	s := sampleBatch()
	for len(s.Taps) < 1000 {
		tp := s.Taps[0]
		tp.Seq = uint64(len(s.Taps) + 1)
		s.Taps = append(s.Taps, tp)
	}
	wire, _ := s.Marshal()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		if _, err := Unmarshal(wire); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTapRoundTrip(t *testing.T) {
	want := sampleBatch().Taps[0]
	buf, _ := want.AppendBinary(nil)
	got, err := UnmarshalTap(want.Device, buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if _, err := UnmarshalTap("V", append(buf, 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing byte: err = %v", err)
	}
	if _, err := UnmarshalTap("V", buf[:len(buf)-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short: err = %v", err)
	}
}

func FuzzUnmarshalTap(f *testing.F) {
	tp := sampleBatch().Taps[0]
	buf, _ := tp.AppendBinary(nil)
	f.Add(buf)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := UnmarshalTap("V", data)
		if err != nil {
			return
		}
		again, _ := got.AppendBinary(nil)
		got2, err := UnmarshalTap("V", again)
		if err != nil || !reflect.DeepEqual(got, got2) {
			t.Fatalf("re-encoding is not stable: %v", err)
		}
	})
}

func TestMarksAndEvidenceRoundTrip(t *testing.T) {
	for _, want := range sampleBatch().Taps {
		var got Tap
		got = want
		got.CommitUnknown, got.ClockAnomaly, got.BenefitRevoked, got.Counted = false, false, false, false
		got.DeviceNumber, got.Prev = 0, CardRide{}
		if err := got.SetMarks(want.Marks()); err != nil {
			t.Fatal(err)
		}
		if err := got.SetEvidence(want.Evidence()); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip through marks and evidence:\n got %+v\nwant %+v", got, want)
		}
	}
	var x Tap
	if err := x.SetMarks(flagCommitted); err == nil {
		t.Error("SetMarks took the committed bit")
	}
	if err := x.SetEvidence([]byte{1, 9, 0}); !errors.Is(err, ErrMalformed) {
		t.Errorf("SetEvidence of an unknown tag: %v", err)
	}
}
