package card

import (
	"bytes"
	"encoding"
	"errors"
	"testing"
	"time"
)

func sampleNumber(t testing.TB) Number {
	n, err := NewNumber(9804, 1234567)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func sampleContract(t testing.TB) Contract {
	return Contract{
		KeyVersion: 3,
		Status:     StatusActive,
		Number:     sampleNumber(t),
		Expires:    MustDate(2031, 12, 31),
		Entitlements: [MaxEntitlements]Entitlement{
			{Category: 101, ValidFrom: MustDate(2026, 1, 1), ValidTo: MustDate(2026, 12, 31), Limit: 50, Funding: FundingState},
		},
		Passes: [MaxPasses]Pass{
			{}, {Product: 30, ValidFrom: MustDate(2026, 11, 1), ValidTo: MustDate(2026, 11, 30), Carriers: 1<<0 | 1<<3},
		},
	}
}

// sampleCounted is a benefit ride that was the third counted on slot 0 in
// November 2026.
func sampleCounted(t testing.TB) TapRecord {
	m, err := NewMonth(2026, time.November)
	if err != nil {
		t.Fatal(err)
	}
	r := TapRecord{Time: 848_000_000, Device: 70_001, Seq: 7, Carrier: 2, Route: 101, Product: ProductBenefit, Result: ResultAccepted, Slot: 0}
	var prev *TapRecord
	for range 3 {
		if r.Counts, err = CountsAfter(prev, m, 0, 101); err != nil {
			t.Fatal(err)
		}
		prev = &TapRecord{Counts: r.Counts}
	}
	return r
}

func sampleTap() TapRecord {
	return TapRecord{Time: 848_000_000, Device: 70_001, Seq: 123_456, Carrier: 12, Route: 47, Charged: 1500, Product: ProductPurse, Result: ResultAccepted, Slot: NoSlot}
}

type codec interface {
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

func TestRoundTrip(t *testing.T) {
	id := Identity{Number: sampleNumber(t), Issuer: 9804, Issued: MustDate(2026, 11, 22), Expires: MustDate(2031, 11, 22)}
	h := Holder{Name: "Шевченко Тарас Григорович", BirthDate: BirthDate{1950, time.March, 9}, RegistryRef: 4_000_123}
	c := sampleContract(t)
	cn := sampleCounted(t)
	tr := sampleTap()
	tests := []struct {
		name  string
		in    codec
		fresh func() codec
		size  int
	}{
		{"identity", &id, func() codec { return new(Identity) }, IdentitySize},
		{"holder", &h, func() codec { return new(Holder) }, HolderSize},
		{"contract", &c, func() codec { return new(Contract) }, ContractSize},
		{"tap", &tr, func() codec { return new(TapRecord) }, TapRecordSize},
		{"counted tap", &cn, func() codec { return new(TapRecord) }, TapRecordSize},
	}
	for _, tt := range tests {
		b, err := tt.in.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if len(b) != tt.size {
			t.Errorf("%s: %d bytes, want %d", tt.name, len(b), tt.size)
		}
		out := tt.fresh()
		if err := out.UnmarshalBinary(b); err != nil {
			t.Fatalf("%s: decode: %v", tt.name, err)
		}
		b2, _ := out.MarshalBinary()
		if !bytes.Equal(b, b2) {
			t.Errorf("%s: re-encoded\n% x\nwant\n% x", tt.name, b2, b)
		}
	}
	var back Contract
	b, _ := c.MarshalBinary()
	if err := back.UnmarshalBinary(b); err != nil || back != c {
		t.Errorf("contract round trip = %+v, %v", back, err)
	}
}

func TestContractPassesRegion(t *testing.T) {
	c := sampleContract(t)
	full, _ := c.MarshalBinary()
	passes, err := c.MarshalPasses()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(full[PassOffset:], passes) || PassOffset+len(passes) != ContractSize {
		t.Errorf("passes region % x, file tail % x", passes, full[PassOffset:])
	}
}

func TestCountsAfter(t *testing.T) {
	nov, _ := NewMonth(2026, time.November)
	dec, _ := NewMonth(2026, time.December)
	c := sampleCounted(t)
	if got := c.UsedIn(0, 101, nov); got != 3 {
		t.Errorf("used %d, want 3", got)
	}
	if got := c.UsedIn(0, 102, nov); got != 0 {
		t.Errorf("other category used %d", got)
	}
	if got := c.UsedIn(1, 101, nov); got != 0 {
		t.Errorf("other slot used %d", got)
	}
	var empty *TapRecord
	if got := empty.UsedIn(0, 101, nov); got != 0 {
		t.Errorf("empty log used %d", got)
	}
	// An uncounted ride carries every counter as it is, of any month.
	if got, err := CountsAfter(&c, dec, NoSlot, 0); err != nil || got != c.Counts {
		t.Errorf("uncounted ride carried %+v, %v", got, err)
	}
	next, err := CountsAfter(&c, dec, 0, 101)
	n := TapRecord{Counts: next}
	if err != nil || n.UsedIn(0, 101, dec) != 1 || n.UsedIn(0, 101, nov) != 0 {
		t.Errorf("new month did not restart the count: %+v, %v", next, err)
	}
	other, err := CountsAfter(&c, nov, 0, 102)
	if o := (TapRecord{Counts: other}); err != nil || o.UsedIn(0, 102, nov) != 1 || o.UsedIn(0, 101, nov) != 0 {
		t.Errorf("re-used slot inherited the old count: %+v, %v", other, err)
	}
	full := TapRecord{Counts: [MaxEntitlements]Counter{{}, {Category: 7, Month: nov, Used: 255}}}
	if _, err := CountsAfter(&full, nov, 1, 7); err == nil {
		t.Error("counter overflow accepted")
	}
	if _, err := CountsAfter(nil, nov, 2, 7); err == nil {
		t.Error("slot 2 accepted")
	}
	if _, err := CountsAfter(nil, nov, 0, 0); err == nil {
		t.Error("category 0 accepted")
	}
	if _, err := CountsAfter(nil, 0, 0, 7); err == nil {
		t.Error("month 0 accepted")
	}
}

func TestDecodeRejects(t *testing.T) {
	enc := func(c codec) []byte {
		b, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	id := Identity{Number: sampleNumber(t), Issuer: 9804, Issued: MustDate(2026, 11, 22), Expires: MustDate(2031, 11, 22)}
	h := Holder{Name: "Олена", BirthDate: BirthDate{1960, time.February, 29}, RegistryRef: 1}
	c := sampleContract(t)
	cn := sampleCounted(t)
	tr := sampleTap()
	with := func(b []byte, f func([]byte)) []byte {
		b = bytes.Clone(b)
		f(b)
		return b
	}
	tests := []struct {
		name    string
		into    codec
		data    []byte
		wantErr error
		field   string
	}{
		{"identity short", new(Identity), enc(&id)[:15], ErrLength, "length"},
		{"identity version", new(Identity), with(enc(&id), func(b []byte) { b[0] = 2 }), ErrVersion, "version"},
		{"identity check digit", new(Identity), with(enc(&id), func(b []byte) { b[8] ^= 1 }), ErrCheckDigit, "number"},
		{"identity issuer", new(Identity), with(enc(&id), func(b []byte) { b[10]++ }), ErrValue, "issuer"},
		{"identity expiry", new(Identity), with(enc(&id), func(b []byte) { copy(b[13:15], b[11:13]) }), ErrDate, "expires"},
		{"identity reserved", new(Identity), with(enc(&id), func(b []byte) { b[15] = 1 }), ErrValue, "reserved"},
		{"holder long", new(Holder), append(enc(&h), 0), ErrLength, "length"},
		{"holder version", new(Holder), with(enc(&h), func(b []byte) { b[0] = 0 }), ErrVersion, "version"},
		{"holder 30 February", new(Holder), with(enc(&h), func(b []byte) { b[4] = 30 }), ErrDate, "birthDate"},
		{"holder month 13", new(Holder), with(enc(&h), func(b []byte) { b[3] = 13 }), ErrDate, "birthDate"},
		{"holder ref 0", new(Holder), with(enc(&h), func(b []byte) { clear(b[5:13]) }), ErrValue, "registryRef"},
		{"holder name length", new(Holder), with(enc(&h), func(b []byte) { b[13] = 200 }), ErrLength, "name"},
		{"holder name trailing", new(Holder), with(enc(&h), func(b []byte) { b[127] = 'x' }), ErrValue, "name"},
		{"holder name not UTF-8", new(Holder), with(enc(&h), func(b []byte) { b[14] = 0xFF }), ErrValue, "name"},
		{"holder empty name", new(Holder), with(enc(&h), func(b []byte) { b[13] = 0; clear(b[14:]) }), ErrValue, "name"},
		{"contract short", new(Contract), enc(&c)[:43], ErrLength, "length"},
		{"contract version", new(Contract), with(enc(&c), func(b []byte) { b[0] = 9 }), ErrVersion, "version"},
		{"contract status", new(Contract), with(enc(&c), func(b []byte) { b[2] = 0 }), ErrValue, "status"},
		{"contract number", new(Contract), with(enc(&c), func(b []byte) { b[9] ^= 3 }), ErrCheckDigit, "number"},
		{"entitlement dates", new(Contract), with(enc(&c), func(b []byte) { b[EntitlementOffset+4], b[EntitlementOffset+5] = 0, 0 }), ErrDate, "entitlements[0].validTo"},
		{"entitlement funding", new(Contract), with(enc(&c), func(b []byte) { b[EntitlementOffset+7] = 3 }), ErrValue, "entitlements[0].funding"},
		{"entitlement category", new(Contract), with(enc(&c), func(b []byte) { b[EntitlementOffset], b[EntitlementOffset+1] = 0, 0 }), ErrValue, "entitlements[0].category"},
		{"pass carriers", new(Contract), with(enc(&c), func(b []byte) { b[PassOffset+PassSize+6], b[PassOffset+PassSize+7] = 0, 0 }), ErrValue, "passes[1].carriers"},
		{"pass dates", new(Contract), with(enc(&c), func(b []byte) { b[PassOffset+PassSize+2] = 0xFF }), ErrDate, "passes[1].validTo"},
		{"pass product", new(Contract), with(enc(&c), func(b []byte) { b[PassOffset+PassSize+1] = 0 }), ErrValue, "passes[1].product"},
		{"tap counts month", new(TapRecord), with(enc(&cn), func(b []byte) { b[27] = 13 }), ErrDate, "counts[0].month"},
		{"tap counts category", new(TapRecord), with(enc(&cn), func(b []byte) { b[24], b[25] = 0, 0 }), ErrValue, "counts[0].category"},
		{"tap v1 length", new(TapRecord), make([]byte, 24), ErrLength, "length"},
		{"tap length", new(TapRecord), make([]byte, TapRecordSize+1), ErrLength, "length"},
		{"tap version", new(TapRecord), make([]byte, TapRecordSize), ErrVersion, "version"},
		{"tap device", new(TapRecord), with(enc(&tr), func(b []byte) { clear(b[5:9]) }), ErrValue, "device"},
		{"tap negative", new(TapRecord), with(enc(&tr), func(b []byte) { b[17] = 0x80 }), ErrValue, "charged"},
		{"tap product", new(TapRecord), with(enc(&tr), func(b []byte) { b[21] = 9 }), ErrValue, "product"},
		{"tap result", new(TapRecord), with(enc(&tr), func(b []byte) { b[22] = 0 }), ErrValue, "result"},
		{"tap slot", new(TapRecord), with(enc(&tr), func(b []byte) { b[23] = 2 }), ErrValue, "slot"},
	}
	for _, tt := range tests {
		err := tt.into.UnmarshalBinary(tt.data)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.wantErr)
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%s: error %v does not name field %q", tt.name, err, tt.field)
		}
	}
}

func TestDecodeTapLog(t *testing.T) {
	a, b := sampleTap(), sampleTap()
	b.Seq++
	b.Product, b.Charged, b.Slot = ProductBenefit, 0, 0
	ea, _ := a.MarshalBinary()
	eb, _ := b.MarshalBinary()
	got, err := DecodeTapLog(append(eb, ea...))
	if err != nil || len(got) != 2 || got[0] != b || got[1] != a {
		t.Errorf("DecodeTapLog = %+v, %v", got, err)
	}
	if _, err := DecodeTapLog(ea[:10]); !errors.Is(err, ErrLength) {
		t.Errorf("partial record: %v", err)
	}
	bad := bytes.Clone(eb)
	bad[0] = 7
	if _, err := DecodeTapLog(append(ea, bad...)); !errors.Is(err, ErrVersion) {
		t.Errorf("bad second record: %v", err)
	}
	if got, err := DecodeTapLog(nil); err != nil || len(got) != 0 {
		t.Errorf("empty log = %v, %v", got, err)
	}
}

func TestHolderHidesPersonalData(t *testing.T) {
	h := Holder{Name: "Петренко", RegistryRef: 5}
	for _, s := range []string{h.String(), h.GoString()} {
		if bytes.Contains([]byte(s), []byte("Петренко")) {
			t.Errorf("%q shows the name", s)
		}
	}
}

func TestMarshalRejectsInvalid(t *testing.T) {
	c := sampleContract(t)
	c.Entitlements[1] = Entitlement{Category: 5, Funding: FundingCity, ValidFrom: 10, ValidTo: 9}
	if _, err := c.MarshalBinary(); !errors.Is(err, ErrDate) {
		t.Errorf("contract with bad dates encoded: %v", err)
	}
	if _, err := (&Identity{Number: 1}).MarshalBinary(); !errors.Is(err, ErrCheckDigit) {
		t.Errorf("identity with bad number encoded: %v", err)
	}
	if _, err := (&Holder{Name: string(make([]byte, MaxNameBytes+1)), BirthDate: BirthDate{1990, 1, 1}, RegistryRef: 1}).MarshalBinary(); !errors.Is(err, ErrLength) {
		t.Errorf("long name encoded: %v", err)
	}
	if _, err := (&TapRecord{Device: 1, Product: ProductPurse, Result: ResultAccepted, Slot: NoSlot, Charged: PurseUpper + 1}).MarshalBinary(); !errors.Is(err, ErrValue) {
		t.Errorf("huge charge encoded: %v", err)
	}
}

func BenchmarkContractUnmarshal(b *testing.B) {
	c := sampleContract(b)
	data, _ := c.MarshalBinary()
	var out Contract
	b.ReportAllocs()
	for b.Loop() {
		if err := out.UnmarshalBinary(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidatorFiles(b *testing.B) {
	// What a validator decodes and encodes per benefit tap: the contract
	// and the newest tap record in, a tap record with the ride counted out.
	c := sampleContract(b)
	cn := sampleCounted(b)
	cb, _ := c.MarshalBinary()
	nb, _ := cn.MarshalBinary()
	m, _ := NewMonth(2026, time.November)
	b.ReportAllocs()
	for b.Loop() {
		var gc Contract
		var gn TapRecord
		if gc.UnmarshalBinary(cb) != nil || gn.UnmarshalBinary(nb) != nil {
			b.Fatal("decode")
		}
		next := gn
		var err error
		if next.Counts, err = CountsAfter(&gn, m, 0, gc.Entitlements[0].Category); err != nil {
			b.Fatal(err)
		}
		if _, err := next.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestValidOn(t *testing.T) {
	c := sampleContract(t)
	e, p := c.Entitlements[0], c.Passes[1]
	for _, tt := range []struct {
		name string
		got  bool
		want bool
	}{
		{"entitlement first day", e.ValidOn(MustDate(2026, 1, 1)), true},
		{"entitlement last day", e.ValidOn(MustDate(2026, 12, 31)), true},
		{"entitlement day after", e.ValidOn(MustDate(2027, 1, 1)), false},
		{"empty entitlement", Entitlement{}.ValidOn(0), false},
		{"pass group 3", p.ValidOn(MustDate(2026, 11, 15), 3), true},
		{"pass group 1", p.ValidOn(MustDate(2026, 11, 15), 1), false},
		{"pass group 16", p.ValidOn(MustDate(2026, 11, 15), 16), false},
		{"pass before", p.ValidOn(MustDate(2026, 10, 31), 0), false},
		{"network pass", Pass{Product: 1, ValidTo: 5, Carriers: AllCarriers}.ValidOn(5, 15), true},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %v", tt.name, tt.got)
		}
	}
}
