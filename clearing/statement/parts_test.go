package statement_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/hsm"
)

// sample3 is a closed form 3 statement with a fixed seed.
func sample3() store.Statement {
	st := sample()
	st.Form, st.ClosedBy, st.KeyRef = 3, "o.koval", "sign-statement@1"
	st.KeyFingerprint = "sha256:" + strings.Repeat("0f", 32)
	st.PartSeed = bytes.Repeat([]byte{7}, statement.SeedSize)
	st.Lines = slices.Clone(st.Lines)
	return st
}

// TestCanonicalV3Golden pins the signed content of form 3 and a part:
// a change to either changes every hash, so it must be deliberate.
func TestCanonicalV3Golden(t *testing.T) {
	st := sample3()
	parts := statement.Parts(&st)
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	want := fmt.Sprintf(`citycard-transit-statement/3
period "2026-12"
adjusts "2026-11"
closed 2027-01-05T10:00:00.123456Z
closed-by "o.koval"
key "sign-statement@1" "sha256:%s"
parts 3
part "ATP-1" %x
part "bad\xff\x0a\\" %x
part "ТОВ \"Маршрут\"" %x
end
`, strings.Repeat("0f", 32), parts[0].Digest(), parts[1].Digest(), parts[2].Digest())
	if got := string(statement.Canonical(&st)); got != want {
		t.Fatalf("canonical form 3:\n%s\nwant:\n%s", got, want)
	}
	if h := sha256.Sum256([]byte(want)); !bytes.Equal(statement.Hash(&st), h[:]) {
		t.Fatal("Hash is not the SHA-256 of the canonical form")
	}
	wantPart := fmt.Sprintf(`citycard-transit-statement-part/3
period "2026-12"
adjusts "2026-11"
carrier "ТОВ \"Маршрут\""
salt %x
sections 1
section "benefit-compensation" 1
line "student" "state" 3 4500 2250 2250
total 3 4500 2250 2250
end
`, parts[2].Salt)
	if got := string(parts[2].Canonical()); got != wantPart {
		t.Fatalf("part:\n%s\nwant:\n%s", got, wantPart)
	}
	// The salt is HMAC-SHA256 under the seed of a label, the statement
	// and the carrier: fixed by them, and nothing without the seed.
	m := hmac.New(sha256.New, st.PartSeed)
	m.Write([]byte("citycard-transit-statement-part-salt/3\x002026-12\x002026-11\x00ATP-1\x00"))
	if !bytes.Equal(parts[0].Salt, m.Sum(nil)) {
		t.Errorf("salt of ATP-1's part %x, want the HMAC of its statement and carrier", parts[0].Salt)
	}
	c, err := statement.ParseContent([]byte(want))
	if err != nil {
		t.Fatal(err)
	}
	if c.Statement.Period != st.Period || c.Statement.ClosedBy != st.ClosedBy || !slices.Equal(c.Carriers(), []string{"ATP-1", "bad\xff\n\\", "ТОВ \"Маршрут\""}) {
		t.Errorf("ParseContent = %+v", c)
	}
	for i := range parts {
		back, err := statement.ParsePart(parts[i].Canonical())
		if err != nil {
			t.Fatalf("ParsePart(part %d): %v", i, err)
		}
		if back.Digest() != parts[i].Digest() || !slices.Equal(back.Lines, parts[i].Lines) {
			t.Errorf("part %d back: %+v, want %+v", i, back, parts[i])
		}
	}
}

// TestDigestsHideLines: a carrier's digest depends on its lines and a
// salt it alone is given, so a carrier holding its own part cannot test
// a guess of another's lines against that one's digest; and a change of
// one carrier's lines changes its digest alone, and the content hash.
func TestDigestsHideLines(t *testing.T) {
	a, b := sample3(), sample3()
	b.PartSeed = bytes.Repeat([]byte{8}, statement.SeedSize)
	pa, pb := statement.Parts(&a), statement.Parts(&b)
	for i := range pa {
		if !slices.Equal(pa[i].Lines, pb[i].Lines) || pa[i].Digest() == pb[i].Digest() || bytes.Equal(pa[i].Salt, pb[i].Salt) {
			t.Errorf("part %d: the same lines under another seed have the same salt or digest", i)
		}
	}
	if bytes.Equal(pa[0].Salt, pa[1].Salt) || bytes.Equal(pa[1].Salt, pa[2].Salt) || bytes.Equal(pa[0].Salt, pa[2].Salt) {
		t.Error("two carriers share a salt")
	}
	// Without the salt, a guess of the exact lines does not give the digest.
	guess := pa[0]
	guess.Salt = make([]byte, 32)
	if guess.Digest() == pa[0].Digest() {
		t.Error("the digest does not depend on the salt")
	}
	c := sample3()
	c.Lines[2].CompensationKop++
	pc := statement.Parts(&c)
	if pc[0].Digest() != pa[0].Digest() || pc[2].Digest() == pa[2].Digest() || bytes.Equal(statement.Hash(&c), statement.Hash(&a)) {
		t.Error("a change of one carrier's lines must change its digest, only its, and the hash")
	}
}

func TestParseContentAndPartReject(t *testing.T) {
	st := sample3()
	good := string(statement.Canonical(&st))
	part := string(statement.Parts(&st)[0].Canonical())
	for name, in := range map[string]string{
		"form 2 header":  strings.Replace(good, "statement/3", "statement/2", 1),
		"part count":     strings.Replace(good, "parts 3", "parts 2", 1),
		"short digest":   strings.Replace(good, `part "ATP-1" `, `part "ATP-1" 00`, 1)[:len(good)-10] + "\nend\n",
		"no end":         strings.TrimSuffix(good, "end\n"),
		"unsorted parts": strings.Replace(good, `part "ATP-1"`, `part "zzz"`, 1),
		"crlf":           strings.ReplaceAll(good, "\n", "\r\n"),
	} {
		if _, err := statement.ParseContent([]byte(in)); !errors.Is(err, statement.ErrCanonical) {
			t.Errorf("%s: ParseContent = %v, want ErrCanonical", name, err)
		}
	}
	for name, in := range map[string]string{
		"wrong total": strings.Replace(part, "total 12", "total 13", 1),
		"no lines":    strings.Replace(strings.Replace(part, `section "benefit-compensation" 1`, `section "benefit-compensation" 0`, 1), "line \"pensioner\" \"city\" 12 18000 0 18000\n", "", 1),
		"short salt":  strings.Replace(part, "salt ", "salt 00", 1),
		"extra field": strings.Replace(part, `"city" 12`, `"city" "x" 12`, 1),
		"bad period":  strings.Replace(part, `period "2026-12"`, `period "2026-13"`, 1),
	} {
		if _, err := statement.ParsePart([]byte(in)); !errors.Is(err, statement.ErrCanonical) {
			t.Errorf("%s: ParsePart = %v, want ErrCanonical", name, err)
		}
	}
	if _, err := statement.Parse([]byte(good)); !errors.Is(err, statement.ErrCanonical) || !strings.Contains(err.Error(), "ParseContent") {
		t.Errorf("Parse of form 3: %v; want it to point to ParseContent", err)
	}
}

// FuzzParseContent: a form 3 statement from outside must not panic the
// reader, and what it accepts is canonical.
func FuzzParseContent(f *testing.F) {
	st := sample3()
	f.Add(statement.Canonical(&st))
	empty := store.Statement{Period: "2031-02", Form: 3, ClosedAt: time.Unix(0, 0), PartSeed: make([]byte, 32)}
	f.Add(statement.Canonical(&empty))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := statement.ParseContent(b)
		if err != nil {
			return
		}
		if h := sha256.Sum256(b); !bytes.Equal(c.Statement.Hash, h[:]) {
			t.Fatal("the hash of what was read is not the SHA-256 of its bytes")
		}
	})
}

// FuzzParsePart: a part from outside must not panic the reader, and what
// it accepts is canonical.
func FuzzParsePart(f *testing.F) {
	st, held := sample3(), heldSample() // form 3, and form 4 with held rides
	for _, p := range append(statement.Parts(&st), statement.Parts(&held)...) {
		f.Add(p.Canonical())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := statement.ParsePart(b)
		if err != nil {
			return
		}
		if !bytes.Equal(p.Canonical(), b) {
			t.Fatalf("ParsePart accepted a non-canonical part:\n%q\ncanonical:\n%q", b, p.Canonical())
		}
	})
}

// blocks decodes every PEM block of a bundle, for looking into it as a
// curious carrier would.
func blocks(t *testing.T, text []byte) string {
	t.Helper()
	var all strings.Builder
	for rest := text; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		all.Write(b.Bytes)
		for k, v := range b.Headers {
			all.WriteString(k + ": " + v + "\n")
		}
	}
	return all.String()
}

// TestCarrierCopy is the confidentiality of a carrier's copy: ATP-1's
// bundle holds ATP-1's lines and no line of ELEKTROTRANS, in its text for
// people or in its blocks, and still verifies with the public key alone;
// a part changed or forged is found.
func TestCarrierCopy(t *testing.T) {
	_, sts, pemKey := closedNovember(t)
	pub, _ := statement.ParsePublicKey(pemKey)
	b, err := statement.NewCarrierBundle(sts, pub, "ATP-1")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := b.Write(&buf, kyiv); err != nil {
		t.Fatal(err)
	}
	// ELEKTROTRANS rode once for 8.00 UAH (800 kopiyky): no trace of it.
	inside := buf.String() + blocks(t, buf.Bytes())
	for _, leak := range []string{" 800", "8.00", "total 2 ", "2300", "23.00"} {
		if strings.Contains(inside, leak) {
			t.Errorf("ATP-1's copy shows %q, of ELEKTROTRANS's lines or the month's total:\n%s", leak, inside)
		}
	}
	if !strings.Contains(inside, "ATP-1's part: 1 benefit rides, compensation 15.00 UAH") || !strings.Contains(inside, "Carriers with a part: ATP-1, ELEKTROTRANS") {
		t.Errorf("ATP-1's copy, for people:\n%s", buf.String())
	}
	back, err := statement.ReadBundle(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	vs, err := back.Verify(pub)
	if err != nil {
		t.Fatal(err)
	}
	v := vs[0]
	if v.Whole() || !slices.Equal(v.Carriers, []string{"ATP-1", "ELEKTROTRANS"}) || !slices.Equal(v.Disclosed, []string{"ATP-1"}) {
		t.Errorf("carriers %v, disclosed %v", v.Carriers, v.Disclosed)
	}
	if len(v.Statement.Lines) != 1 || v.Statement.Lines[0] != sts[0].Lines[0] || !bytes.Equal(v.Statement.Hash, sts[0].Hash) {
		t.Errorf("verified %+v; want ATP-1's line of %+v", v.Statement, sts[0])
	}

	// A carrier who raises its own figures is found out.
	forged := back
	forged.Statements = []statement.Signed{back.Statements[0]}
	raised := bytes.ReplaceAll(back.Statements[0].Parts[0], []byte("1500 0 1500"), []byte("1600 0 1600"))
	forged.Statements[0].Parts = [][]byte{raised}
	if _, err := forged.Verify(pub); err == nil || !strings.Contains(err.Error(), "does not match the digest") {
		t.Errorf("a raised part: %v", err)
	}
	// A part made up for the other carrier, without its salt, does not match.
	guess := statement.Part{Period: "2026-11", Carrier: "ELEKTROTRANS", Form: statement.Form, Salt: make([]byte, 32), Lines: []store.Line{sts[0].Lines[1]}}
	forged.Statements[0].Parts = [][]byte{back.Statements[0].Parts[0], guess.Canonical()}
	if _, err := forged.Verify(pub); err == nil || !strings.Contains(err.Error(), "does not match the digest") {
		t.Errorf("a guessed part of another carrier: %v", err)
	}
	// A part of a carrier the statement does not name.
	stranger := statement.Part{Period: "2026-11", Carrier: "ZZZ", Form: statement.Form, Salt: make([]byte, 32), Lines: []store.Line{{Carrier: "ZZZ", Rides: 1}}}
	forged.Statements[0].Parts = [][]byte{back.Statements[0].Parts[0], stranger.Canonical()}
	if _, err := forged.Verify(pub); err == nil || !strings.Contains(err.Error(), "does not name") {
		t.Errorf("a part of a carrier not in the statement: %v", err)
	}

	// A carrier without lines gets the signed statement and no part.
	none, err := statement.NewCarrierBundle(sts, pub, "PRIVAT-7")
	if err != nil || len(none.Statements[0].Parts) != 0 {
		t.Fatalf("PRIVAT-7's copy: %+v, %v", none, err)
	}
	if vs, err := none.Verify(pub); err != nil || len(vs[0].Statement.Lines) != 0 || len(vs[0].Disclosed) != 0 {
		t.Errorf("PRIVAT-7's copy verifies as %+v, %v", vs, err)
	}
}

// TestOldFormsStayVerifiable: statements closed in forms 1 and 2 (one
// signature over every carrier's lines) keep verifying, whole, and a
// carrier's copy of them is refused rather than silently whole.
func TestOldFormsStayVerifiable(t *testing.T) {
	f, sts, pemKey := closedNovember(t)
	pub, _ := statement.ParsePublicKey(pemKey)
	ctx := context.Background()
	signer, err := f.ks.Signer(ctx, hsm.Ref{Label: hsm.LabelSignStatement, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []int{1, 2} {
		old := sts[0]
		old.Form, old.PartSeed = form, nil
		if form == 1 {
			old.ClosedBy, old.KeyFingerprint = "", ""
		}
		old.Hash = statement.Hash(&old)
		if old.Signature, err = signer.Sign(rand.Reader, statement.SignedMessage(old.Hash), crypto.Hash(0)); err != nil {
			t.Fatal(err)
		}
		if err := statement.VerifyWith(&old, pub); err != nil {
			t.Fatalf("form %d: %v", form, err)
		}
		if _, err := statement.NewCarrierBundle([]store.Statement{old}, pub, "ATP-1"); !errors.Is(err, statement.ErrWholeOnly) {
			t.Errorf("form %d: a carrier's copy: %v, want ErrWholeOnly", form, err)
		}
		b, err := statement.NewBundle([]store.Statement{old}, pub)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := b.Write(&buf, kyiv); err != nil {
			t.Fatal(err)
		}
		back, err := statement.ReadBundle(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		vs, err := back.Verify(pub)
		if err != nil || !vs[0].Whole() || !slices.Equal(vs[0].Statement.Lines, old.Lines) || vs[0].Statement.Form != form {
			t.Errorf("form %d bundle: %+v, %v", form, vs, err)
		}
	}
	// A form 3 statement without its seed cannot be checked.
	noSeed := sts[0]
	noSeed.PartSeed = nil
	if err := statement.VerifyWith(&noSeed, pub); !errors.Is(err, statement.ErrNoSeed) {
		t.Errorf("form 3 without its seed: %v", err)
	}
}
