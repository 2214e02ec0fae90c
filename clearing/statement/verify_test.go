package statement_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/hsm"
)

// closedNovember closes a November with two carriers and returns its
// statements and the statement key's public half.
func closedNovember(t *testing.T) (*fixture, []store.Statement, []byte) {
	t.Helper()
	f := setup(t)
	ctx := context.Background()
	nov := time.Date(2026, 11, 20, 8, 0, 0, 0, kyiv)
	f.add(t, ride("BUS-1", 1, nov, "ATP-1", 1500), ride("TRAM-2", 1, nov, "ELEKTROTRANS", 800))
	sts, err := f.svc.Close(ctx, "2026-11", closing)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := f.ks.PublicKey(ctx, hsm.Ref{Label: hsm.LabelSignStatement, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	pem, err := statement.EncodePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return f, sts, pem
}

// TestActorAndKeyAreSigned: who closed and which key signed are in the
// signed canonical form 4, with each carrier's part, and it parses back
// to the same statement.
func TestActorAndKeyAreSigned(t *testing.T) {
	_, sts, pemKey := closedNovember(t)
	st := sts[0]
	pub, err := statement.ParsePublicKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	c := string(statement.Canonical(&st))
	parts := statement.Parts(&st)
	if len(parts) != 2 {
		t.Fatalf("%d parts, want one for each of the two carriers", len(parts))
	}
	for _, want := range []string{statement.Header4 + "\n", `closed-by "o.koval (supervisor)"`,
		`key "sign-statement@1" "` + statement.Fingerprint(pub) + `"`, "parts 2\n",
		fmt.Sprintf("part \"ATP-1\" %x\n", parts[0].Digest()), fmt.Sprintf("part \"ELEKTROTRANS\" %x\n", parts[1].Digest()), "\nend\n"} {
		if !strings.Contains(c, want) {
			t.Errorf("canonical form lacks %q:\n%s", want, c)
		}
	}
	back, err := statement.ParseContent([]byte(c))
	if err != nil {
		t.Fatalf("ParseContent(canonical): %v\n%s", err, c)
	}
	if b := back.Statement; !bytes.Equal(b.Hash, st.Hash) || b.ClosedBy != st.ClosedBy || b.KeyFingerprint != st.KeyFingerprint || !b.ClosedAt.Equal(st.ClosedAt) {
		t.Errorf("ParseContent did not give the statement back: %+v", back)
	}
	// Changing who closed changes the hash: it is signed.
	other := st
	other.ClosedBy = "someone else"
	if bytes.Equal(statement.Hash(&other), st.Hash) {
		t.Error("the actor is not part of the content hash")
	}
	if err := statement.VerifyWith(&other, pub); err == nil {
		t.Error("a statement with another actor verifies")
	}
}

// TestVerifyWithPublicKeyOnly: an auditor with the published key only,
// and a keystore that reuses the label with another key, which is named
// as another key, not as a change of the statement.
func TestVerifyWithPublicKeyOnly(t *testing.T) {
	f, sts, pemKey := closedNovember(t)
	ctx := context.Background()
	pub, _ := statement.ParsePublicKey(pemKey)
	auditor := &statement.Service{Store: f.st, PublicKey: pub, Location: kyiv}
	vs, err := auditor.Verify(ctx, "2026-11", true)
	if err != nil || len(vs) != 1 || !vs[0].OK() {
		t.Fatalf("verify with the public key alone: %+v, %v", vs, err)
	}
	if err := statement.VerifyWith(&sts[0], pub); err != nil {
		t.Fatal(err)
	}

	other, err := hsm.CreateKeystore(filepath.Join(t.TempDir(), "other"), []byte("pw"), hsm.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Generate(ctx, hsm.LabelSignStatement, hsm.KindSigning); err != nil {
		t.Fatal(err)
	}
	wrong := &statement.Service{Store: f.st, Keys: other, Location: kyiv}
	vs, err = wrong.Verify(ctx, "2026-11", false)
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Join(vs[0].Problems, "; ")
	if vs[0].OK() || !strings.Contains(p, "another key") || strings.Contains(p, "changed") || !strings.Contains(p, sts[0].KeyFingerprint) {
		t.Errorf("a keystore with another sign-statement@1: %q; want it named another key, by fingerprint", p)
	}
	if !vs[0].OtherKey {
		t.Error("Verification.OtherKey is false")
	}
}

// TestBundle: the offline bundle verifies with the trusted key, and a
// changed line, signature or key in it is found.
func TestBundle(t *testing.T) {
	_, sts, pemKey := closedNovember(t)
	pub, _ := statement.ParsePublicKey(pemKey)
	b, err := statement.NewBundle(sts, pub)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := b.Write(&buf, kyiv); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	if !strings.Contains(text, "closed 03.12.2026 09:00 EET by o.koval") || !strings.Contains(text, "transit statement verify --bundle") {
		t.Errorf("bundle's lines for people:\n%s", text)
	}
	back, err := statement.ReadBundle(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got, err := back.Verify(pub)
	if err != nil || len(got) != 1 || got[0].Statement.Total().Rides != 2 || got[0].Statement.ClosedBy != "o.koval (supervisor)" || !got[0].Whole() {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	if !slices.Equal(got[0].Statement.Lines, sts[0].Lines) {
		t.Errorf("the whole bundle's lines %+v, want %+v", got[0].Statement.Lines, sts[0].Lines)
	}

	// Another key, however named, is refused as another key.
	ks, _ := hsm.CreateKeystore(filepath.Join(t.TempDir(), "k"), []byte("pw"), hsm.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1})
	defer ks.Close()
	ref, _ := ks.Generate(context.Background(), hsm.LabelSignStatement, hsm.KindSigning)
	otherPub, _ := ks.PublicKey(context.Background(), ref)
	if _, err := back.Verify(otherPub); !errors.Is(err, statement.ErrOtherKey) {
		t.Errorf("Verify with another key: %v, want ErrOtherKey", err)
	}
	// A forger who swaps in their own key and signature is refused.
	forged := back
	forged.PublicKey = otherPub
	if _, err := forged.Verify(pub); !errors.Is(err, statement.ErrOtherKey) {
		t.Errorf("a bundle naming another key: %v", err)
	}
	// A changed amount no longer matches the digest that is signed.
	tampered := back
	tampered.Statements = []statement.Signed{back.Statements[0]}
	tampered.Statements[0].Parts = slices.Clone(back.Statements[0].Parts)
	p := bytes.Replace(tampered.Statements[0].Parts[0], []byte(" 1500 0 1500"), []byte(" 9500 0 9500"), 2)
	tampered.Statements[0].Parts[0] = p
	if _, err := tampered.Verify(pub); err == nil || !strings.Contains(err.Error(), "changed after the close") {
		t.Errorf("a tampered part: %v; want it found changed", err)
	}
	// A changed digest breaks the signature.
	tampered.Statements[0].Parts = back.Statements[0].Parts
	d := statement.Parts(&sts[0])[0].Digest()
	d2 := d
	d2[0] ^= 0xff
	tampered.Statements[0].Canonical = bytes.Replace(back.Statements[0].Canonical, fmt.Appendf(nil, "%x", d), fmt.Appendf(nil, "%x", d2), 1)
	if _, err := tampered.Verify(pub); err == nil || errors.Is(err, statement.ErrOtherKey) || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("a tampered statement: %v; want it refused", err)
	}
}

func TestCloseNeedsConfirmationAndActor(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.add(t, ride("BUS-1", 1, time.Date(2026, 11, 20, 8, 0, 0, 0, kyiv), "ATP-1", 1500))
	if _, err := f.svc.Close(ctx, "2026-11", statement.Closing{Actor: "x"}); !errors.Is(err, statement.ErrNotConfirmed) {
		t.Errorf("unconfirmed close: %v", err)
	}
	if _, err := f.svc.Close(ctx, "2026-11", statement.Closing{Confirmed: true}); !errors.Is(err, statement.ErrNoActor) {
		t.Errorf("close without an actor: %v", err)
	}
	if _, err := f.svc.Close(ctx, "2026-11", statement.Closing{Confirmed: true, Actor: "a\u202eb"}); err == nil {
		t.Error("an actor with a bidi override was accepted")
	}
	p, err := f.svc.Preview(ctx, "2026-11")
	if err != nil || p.Total.Rides != 1 || p.Early {
		t.Fatalf("Preview = %+v, %v", p, err)
	}
	token := p.Token()
	// A ride booked after the preview: the confirmed figures are stale.
	f.add(t, ride("BUS-1", 2, time.Date(2026, 11, 21, 8, 0, 0, 0, kyiv), "ATP-1", 1500))
	c := closing
	c.Expect = token
	if _, err := f.svc.Close(ctx, "2026-11", c); !errors.Is(err, statement.ErrChanged) {
		t.Fatalf("close with stale figures: %v, want ErrChanged", err)
	}
	if ps, _ := f.st.ClosedPeriods(ctx); len(ps) != 0 {
		t.Fatalf("a refused close closed %v", ps)
	}
	p, _ = f.svc.Preview(ctx, "2026-11")
	c.Expect = p.Token()
	if _, err := f.svc.Close(ctx, "2026-11", c); err != nil {
		t.Fatalf("close with the figures shown: %v", err)
	}
	if _, err := f.svc.Preview(ctx, "2026-11"); !errors.Is(err, store.ErrPeriodClosed) {
		t.Errorf("Preview of a closed period: %v", err)
	}
}

func FuzzReadBundle(f *testing.F) {
	f.Add([]byte("-----BEGIN CITYCARD STATEMENT-----\nY2l0eWNhcmQ=\n-----END CITYCARD STATEMENT-----\n"))
	f.Add([]byte("text\n-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := statement.ReadBundle(data)
		if err != nil {
			return
		}
		if len(b.Statements) == 0 {
			t.Fatal("ReadBundle accepted a bundle without statements")
		}
		for i, s := range b.Statements {
			if len(s.Signature) != 64 {
				t.Fatalf("ReadBundle accepted statement %d with a signature of %d bytes", i+1, len(s.Signature))
			}
		}
		if b.PublicKey != nil {
			b.Verify(b.PublicKey) //nolint:errcheck // must not panic
		}
	})
}
