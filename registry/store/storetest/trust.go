package storetest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/auditchain"
	"github.com/citycard/transit/registry/store"
)

// The contract tests of issue 16's trust boundaries: tokens that end,
// staff accounts, resident sign-in codes, the audit chain, text in NFC,
// and conflict answers that name nobody else.

func testTokenLifecycle(t *testing.T, e *env) {
	secret, tok, err := registry.NewToken(deskActor, start)
	if err != nil {
		t.Fatal(err)
	}
	tok.Note, tok.CreatedBy = "desk laptop 3", "transit registry token create"
	if err := e.s.AddToken(e.ctx, tok); err != nil {
		t.Fatal(err)
	}
	hash := registry.HashToken(secret)
	ti, err := e.s.Authenticate(e.ctx, hash)
	if err != nil || ti.LastUsed.IsZero() || ti.Note != tok.Note {
		t.Fatalf("Authenticate = %+v, %v; want the token, with its use recorded", ti, err)
	}
	list, err := e.s.Tokens(e.ctx, supervisor, registry.TokenQuery{})
	if err != nil || len(list) != 1 || list[0].ID != ti.ID || list[0].LastUsed.IsZero() || list[0].Actor != deskActor {
		t.Fatalf("Tokens = %+v, %v; want the one token with its last use", list, err)
	}
	if _, err := e.s.Tokens(e.ctx, desk, registry.TokenQuery{}); !errors.Is(err, registry.ErrForbidden) {
		t.Errorf("Tokens as desk = %v; want ErrForbidden", err)
	}

	// It ends when it says.
	e.clock.Set(tok.Expires)
	if _, err := e.s.Authenticate(e.ctx, hash); err != nil {
		t.Errorf("Authenticate at its last instant: %v", err)
	}
	e.clock.Set(tok.Expires.Add(time.Second))
	if _, err := e.s.Authenticate(e.ctx, hash); !errors.Is(err, registry.ErrUnauthenticated) || !strings.Contains(err.Error(), "ended") {
		t.Errorf("Authenticate at the end = %v; want ErrUnauthenticated saying it ended", err)
	}
	if live, _ := e.s.Tokens(e.ctx, supervisor, registry.TokenQuery{}); len(live) != 0 {
		t.Errorf("live tokens after the end = %+v; want none", live)
	}
	if all, _ := e.s.Tokens(e.ctx, supervisor, registry.TokenQuery{All: true}); len(all) != 1 {
		t.Errorf("all tokens = %+v; want the ended one", all)
	}
	e.clock.Set(start)

	// A token back-dated to the year 2000 does not work: it has ended.
	old, oldTok, _ := registry.NewToken(deskActor, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	if err := e.s.AddToken(e.ctx, oldTok); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Authenticate(e.ctx, registry.HashToken(old)); !errors.Is(err, registry.ErrUnauthenticated) {
		t.Errorf("a token of the year 2000 = %v; want ErrUnauthenticated", err)
	}
	// Nor does one that would live for ever.
	_, forever, _ := registry.NewToken(deskActor, start)
	forever.Expires = start.AddDate(50, 0, 0)
	if err := e.s.AddToken(e.ctx, forever); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("AddToken living 50 years = %v; want ErrInvalid", err)
	}

	// Revocation ends it at once, and says who.
	s2, t2, _ := registry.NewToken(registry.Actor{User: "clearing", Role: registry.RoleService}, start)
	if err := e.s.AddToken(e.ctx, t2); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.RevokeToken(e.ctx, desk, registry.TokenID(t2.Hash)); !errors.Is(err, registry.ErrForbidden) {
		t.Errorf("desk revokes another's token = %v; want ErrForbidden", err)
	}
	got, err := e.s.RevokeToken(e.ctx, supervisor, registry.TokenID(t2.Hash))
	if err != nil || got.RevokedBy != supervisorActor.User || got.Revoked.IsZero() {
		t.Fatalf("RevokeToken = %+v, %v", got, err)
	}
	if _, err := e.s.Authenticate(e.ctx, registry.HashToken(s2)); !errors.Is(err, registry.ErrUnauthenticated) || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("a revoked token = %v; want ErrUnauthenticated saying so", err)
	}
	if _, err := e.s.RevokeToken(e.ctx, supervisor, registry.TokenID(t2.Hash)); !errors.Is(err, registry.ErrConflict) {
		t.Errorf("revoke twice = %v; want ErrConflict", err)
	}
	if _, err := e.s.RevokeToken(e.ctx, supervisor, "0011223344556677"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("revoke an unknown token = %v; want ErrNotFound", err)
	}
	// Anyone may end their own session.
	s3, t3, _ := registry.NewToken(deskActor, start)
	t3.Kind = registry.TokenSession
	if err := e.s.AddToken(e.ctx, t3); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.RevokeToken(e.ctx, as(deskActor, ""), registry.TokenID(t3.Hash)); err != nil {
		t.Errorf("desk ends their own session: %v", err)
	}
	if _, err := e.s.Authenticate(e.ctx, registry.HashToken(s3)); !errors.Is(err, registry.ErrUnauthenticated) {
		t.Errorf("an ended session = %v", err)
	}
}

func testStaff(t *testing.T, e *env) {
	acc := registry.StaffAccount{User: "olena.k", Role: registry.RoleDesk, PasswordHash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}
	if err := e.s.AddStaff(e.ctx, acc); err != nil {
		t.Fatal(err)
	}
	if err := e.s.AddStaff(e.ctx, acc); !errors.Is(err, registry.ErrDuplicate) {
		t.Errorf("AddStaff twice = %v; want ErrDuplicate", err)
	}
	for _, bad := range []registry.StaffAccount{
		{User: "x", Role: registry.RoleResident, PasswordHash: acc.PasswordHash},
		{User: "x", Role: registry.RoleService, PasswordHash: acc.PasswordHash},
		{User: "x\u202e", Role: registry.RoleDesk, PasswordHash: acc.PasswordHash},
		{User: "x", Role: registry.RoleDesk},
	} {
		if err := e.s.AddStaff(e.ctx, bad); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("AddStaff(%+v) = %v; want ErrInvalid", bad, err)
		}
	}
	got, err := e.s.Staff(e.ctx, "olena.k")
	if err != nil || got.PasswordHash != acc.PasswordHash || got.Role != registry.RoleDesk || !got.Created.Equal(start) {
		t.Fatalf("Staff = %+v, %v", got, err)
	}
	if _, err := e.s.Staff(e.ctx, "nobody"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Staff(nobody) = %v; want ErrNotFound", err)
	}
	all, err := e.s.StaffAccounts(e.ctx)
	if err != nil || len(all) != 1 || all[0].PasswordHash != "" {
		t.Errorf("StaffAccounts = %+v, %v; want one, without its hash", all, err)
	}
	newHash := strings.Replace(acc.PasswordHash, "t=1", "t=2", 1)
	if err := e.s.SetStaffPassword(e.ctx, "olena.k", newHash); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.s.Staff(e.ctx, "olena.k"); got.PasswordHash != newHash {
		t.Errorf("password hash after SetStaffPassword = %q", got.PasswordHash)
	}
	if err := e.s.SetStaffPassword(e.ctx, "nobody", newHash); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("SetStaffPassword(nobody) = %v", err)
	}
	// Disabling ends the person's sessions at once.
	secret, tok, _ := registry.NewToken(registry.Actor{User: "olena.k", Role: registry.RoleDesk}, start)
	tok.Kind = registry.TokenSession
	if err := e.s.AddToken(e.ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := e.s.DisableStaff(e.ctx, "olena.k", supervisorActor.User, true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Authenticate(e.ctx, registry.HashToken(secret)); !errors.Is(err, registry.ErrUnauthenticated) {
		t.Errorf("a session of a disabled account = %v; want ErrUnauthenticated", err)
	}
	if got, _ := e.s.Staff(e.ctx, "olena.k"); got.Disabled.IsZero() || got.DisabledBy != supervisorActor.User {
		t.Errorf("disabled account = %+v", got)
	}
	if err := e.s.DisableStaff(e.ctx, "olena.k", supervisorActor.User, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.s.Staff(e.ctx, "olena.k"); !got.Disabled.IsZero() {
		t.Errorf("enabled account = %+v", got)
	}
}

func testResidentSignIn(t *testing.T, e *env) {
	r := e.register()
	audits := e.auditCount()
	code := func(id, c string) [32]byte { return sha256.Sum256([]byte(id + "/" + c)) }
	rc := store.ResidentCode{ID: "sign-in-1", CodeHash: code("sign-in-1", "12345678"), Created: start, Expires: start.Add(10 * time.Minute)}
	if _, _, err := e.s.StartResidentSignIn(e.ctx, RegistryNumber(9999), rc); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("sign-in of an unknown number = %v; want ErrNotFound", err)
	}
	id, contact, err := e.s.StartResidentSignIn(e.ctx, r.RegistryNumber, rc)
	if err != nil || id != r.ID || contact != r.Contact {
		t.Fatalf("StartResidentSignIn = %d, %q, %v", id, contact, err)
	}
	if got := e.auditCount(); got != audits+1 {
		t.Errorf("reading the contact for a code left %d audit entries; want 1", got-audits)
	}
	if _, err := e.s.FinishResidentSignIn(e.ctx, "sign-in-1", code("sign-in-1", "00000000"), 3); !errors.Is(err, registry.ErrUnauthenticated) {
		t.Errorf("a wrong code = %v", err)
	}
	got, err := e.s.FinishResidentSignIn(e.ctx, "sign-in-1", rc.CodeHash, 3)
	if err != nil || got != r.ID {
		t.Fatalf("the right code = %d, %v", got, err)
	}
	if _, err := e.s.FinishResidentSignIn(e.ctx, "sign-in-1", rc.CodeHash, 3); !errors.Is(err, registry.ErrUnauthenticated) {
		t.Errorf("a code used twice = %v; want ErrUnauthenticated", err)
	}
	// Tried too often: even the right code no longer works.
	rc2 := store.ResidentCode{ID: "sign-in-2", CodeHash: code("sign-in-2", "1"), Created: start, Expires: start.Add(10 * time.Minute)}
	if _, _, err := e.s.StartResidentSignIn(e.ctx, r.RegistryNumber, rc2); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		e.s.FinishResidentSignIn(e.ctx, "sign-in-2", code("sign-in-2", "wrong"), 3) //nolint:errcheck // counted
	}
	if _, err := e.s.FinishResidentSignIn(e.ctx, "sign-in-2", rc2.CodeHash, 3); !errors.Is(err, registry.ErrUnauthenticated) {
		t.Errorf("the right code after 3 wrong ones = %v; want ErrUnauthenticated", err)
	}
	// Expired.
	rc3 := store.ResidentCode{ID: "sign-in-3", CodeHash: code("sign-in-3", "1"), Created: start, Expires: start.Add(10 * time.Minute)}
	if _, _, err := e.s.StartResidentSignIn(e.ctx, r.RegistryNumber, rc3); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(start.Add(10 * time.Minute))
	if _, err := e.s.FinishResidentSignIn(e.ctx, "sign-in-3", rc3.CodeHash, 3); !errors.Is(err, registry.ErrUnauthenticated) {
		t.Errorf("an expired code = %v; want ErrUnauthenticated", err)
	}
	if _, err := e.s.FinishResidentSignIn(e.ctx, "no-such-sign-in", rc3.CodeHash, 3); !errors.Is(err, registry.ErrUnauthenticated) {
		t.Errorf("an unknown sign-in = %v; want ErrUnauthenticated", err)
	}
	if n, err := e.s.ResidentCodesSince(e.ctx, r.ID, start); err != nil || n != 3 {
		t.Errorf("ResidentCodesSince = %d, %v; want 3", n, err)
	}
}

// testAuditChain: every way of writing the audit log links entries into
// one chain, concurrent writers included, and it verifies.
func testAuditChain(t *testing.T, e *env) {
	r := e.register()
	c := e.cardIn(registry.StatusActive)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := e.s.Resident(e.ctx, desk, r.ID); err != nil {
				t.Errorf("Resident: %v", err)
			}
			if _, err := e.s.FindResidents(e.ctx, desk, registry.Search{NamePrefix: "Коваленко"}); err != nil {
				t.Errorf("FindResidents: %v", err)
			}
		})
	}
	wg.Wait()
	if _, err := e.s.CardData(e.ctx, desk, c.Number); err != nil {
		t.Fatal(err)
	}
	es, err := e.s.Audit(e.ctx, auditor, registry.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	seqs := map[int64]bool{}
	for _, en := range es {
		if en.Seq <= 0 || seqs[en.Seq] || len(en.Hash) != 32 {
			t.Fatalf("audit entry %+v: want a place of its own in the chain and a hash", en)
		}
		seqs[en.Seq] = true
	}
	rep, err := auditchain.Verify(e.ctx, e.s, nil, e.clock.Now)
	if err != nil || !rep.OK() || rep.Entries != int64(len(es)) || rep.Head != int64(len(es)) {
		t.Fatalf("Verify = %+v, %v; want %d entries that verify", rep, err, len(es))
	}

	// A checkpoint signed over the head, and checked with its key.
	pub, priv, _ := ed25519.GenerateKey(nil)
	cp := auditchain.Checkpointer{Store: e.s, Signer: priv, Key: "sign-audit@1", Now: e.clock.Now}
	got, ok, err := cp.Once(e.ctx)
	if err != nil || !ok || got.Seq != rep.Head {
		t.Fatalf("Checkpointer.Once = %+v, %v, %v", got, ok, err)
	}
	if _, ok, err := cp.Once(e.ctx); ok || err != nil {
		t.Errorf("a second checkpoint of the same head: %v, %v; want none", ok, err)
	}
	keys := func(_ context.Context, key string) (ed25519.PublicKey, error) {
		if key != "sign-audit@1" {
			return nil, fmt.Errorf("no key %s", key)
		}
		return pub, nil
	}
	e.register()
	rep, err = auditchain.Verify(e.ctx, e.s, keys, e.clock.Now)
	if err != nil || !rep.OK() || rep.Checkpoints != 1 || !rep.Signed || rep.LastCheckpoint.Seq != got.Seq {
		t.Fatalf("Verify with the checkpoint = %+v, %v", rep, err)
	}
	if err := e.s.AddAuditCheckpoint(e.ctx, got); !errors.Is(err, registry.ErrDuplicate) {
		t.Errorf("a second checkpoint at one entry = %v; want ErrDuplicate", err)
	}
	// The chain survives a restart.
	e.reopen()
	e.register()
	if rep, err := auditchain.Verify(e.ctx, e.s, keys, e.clock.Now); err != nil || !rep.OK() {
		t.Fatalf("Verify after reopen = %+v, %v", rep, err)
	}
}

// testTextIsNFC: names and purposes are stored in NFC, a name typed in
// NFD finds the one stored in NFC, and invisible or direction-changing
// characters are refused.
func testTextIsNFC(t *testing.T, e *env) {
	p := e.person()
	p.Name = "Коваленко И\u0306осип" // Й as И and a combining breve: NFD
	r, err := e.s.AddResident(e.ctx, desk, p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "Коваленко Йосип" {
		t.Errorf("stored name %q; want NFC %q", r.Name, "Коваленко Йосип")
	}
	d, err := e.s.Resident(e.ctx, desk, r.ID)
	if err != nil || d.Resident.Name != "Коваленко Йосип" {
		t.Errorf("read back %q, %v", d.Resident.Name, err)
	}
	found, err := e.s.FindResidents(e.ctx, desk, registry.Search{NamePrefix: "коваленко и\u0306о"})
	if err != nil || len(found) != 1 || found[0].ID != r.ID {
		t.Errorf("search in NFD = %+v, %v; want the NFC record", found, err)
	}
	for _, name := range []string{"Ivan \u202eovoK", "Iva\u200bn", "Ivan\x00", "Iva\xffn"} {
		q := e.person()
		q.Name = name
		before := e.state()
		if _, err := e.s.AddResident(e.ctx, desk, q); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("AddResident(%q) = %v; want ErrInvalid", name, err)
		}
		if e.state() != before {
			t.Errorf("a refused name %q wrote something", name)
		}
	}
	for _, purpose := range []string{"check\r\nFORGED LINE", "nul\x00", "bidi \u202e", "bad \xff"} {
		if _, err := e.s.Resident(e.ctx, as(deskActor, purpose), r.ID); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("Resident with purpose %q = %v; want ErrInvalid", purpose, err)
		}
	}
	// The purpose is kept in NFC.
	if _, err := e.s.Resident(e.ctx, as(deskActor, "заява Йосипа"), r.ID); err != nil {
		t.Fatal(err)
	}
	es, _ := e.s.Audit(e.ctx, auditor, registry.AuditQuery{Resident: r.ID})
	if last := es[len(es)-1]; last.Purpose != "заява Йосипа" {
		t.Errorf("audit purpose %q; want it in NFC", last.Purpose)
	}
}

// testConflictsNameNobody: a conflict answer does not say who already
// holds a registry number or which card a person has.
func testConflictsNameNobody(t *testing.T, e *env) {
	c := e.cardIn(registry.StatusActive)
	d, err := e.s.Resident(e.ctx, desk, c.ResidentID)
	if err != nil {
		t.Fatal(err)
	}
	dup := e.person()
	dup.RegistryNumber = d.Resident.RegistryNumber
	_, err = e.s.AddResident(e.ctx, desk, dup)
	if !errors.Is(err, registry.ErrDuplicate) {
		t.Fatalf("duplicate registration = %v", err)
	}
	_, err2 := e.s.OrderCard(e.ctx, desk, c.ResidentID)
	if !errors.Is(err2, registry.ErrConflict) {
		t.Fatalf("second card = %v", err2)
	}
	for _, msg := range []string{err.Error(), err2.Error()} {
		for _, secret := range []string{fmt.Sprint(c.ResidentID), c.Number.String(), c.Number.Grouped(), d.Resident.Name, d.Resident.RegistryNumber} {
			if strings.Contains(msg, secret) {
				t.Errorf("conflict answer %q names %q", msg, secret)
			}
		}
	}
}

// Raw runs SQL statements on the store's database directly, with the
// audit log's append-only triggers set aside, as someone with the
// database's keys would.
type Raw func(t *testing.T, statements ...string)

// TamperOpen opens an empty store of the test's own and the way around
// it.
type TamperOpen func(t *testing.T, opt store.Options) (store.Store, Raw)

// RunTamper edits, deletes, inserts, reorders and truncates audit
// entries by hand, one way per test, and checks that Verify names the
// first entry touched.
func RunTamper(t *testing.T, open TamperOpen) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	keys := func(context.Context, string) (ed25519.PublicKey, error) { return pub, nil }
	for _, tc := range []struct {
		name string
		sql  []string
		kind auditchain.Kind
		seq  int64 // the first bad entry
	}{
		{"edit a purpose", []string{"UPDATE audit_log SET purpose = 'nothing to see' WHERE seq = 4"}, auditchain.Edited, 4},
		{"edit who", []string{"UPDATE audit_log SET user_name = 'someone.else' WHERE seq = 3"}, auditchain.Edited, 3},
		{"delete one", []string{"DELETE FROM audit_log WHERE seq = 5"}, auditchain.Missing, 5},
		{"insert a copy", []string{`INSERT INTO audit_log (at, user_name, role, resident_id, record, action, purpose)
			SELECT at, user_name, role, resident_id, record, action, 'forged' FROM audit_log WHERE seq = 2`}, auditchain.Inserted, 0},
		{"swap two", []string{"UPDATE audit_log SET seq = -1 WHERE seq = 3", "UPDATE audit_log SET seq = 3 WHERE seq = 4",
			"UPDATE audit_log SET seq = 4 WHERE seq = -1"}, auditchain.Relinked, 3},
		{"delete the newest and the head with it", []string{
			"UPDATE audit_head SET seq = seq - 1, hash = (SELECT prev_hash FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log))",
			"DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)"}, auditchain.Truncated, 8},
		{"delete the newest", []string{"DELETE FROM audit_log WHERE seq = 8"}, auditchain.Truncated, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), Timeout)
			defer cancel()
			clock := &Clock{now: start}
			st, raw := open(t, store.Options{Issuer: Issuer, Now: clock.Now})
			t.Cleanup(func() { st.Close() })
			e := &env{t: t, ctx: ctx, s: st, clock: clock}
			r := e.register() // 1 entry
			for i := range 7 {
				clock.Set(start.Add(time.Duration(i+1) * time.Minute))
				if _, err := st.Resident(ctx, as(deskActor, fmt.Sprintf("visit %d", i+1)), r.ID); err != nil {
					t.Fatal(err)
				}
			}
			// Entries 1..8, the newest signed.
			if _, _, err := (&auditchain.Checkpointer{Store: st, Signer: priv, Key: "sign-audit@1"}).Once(ctx); err != nil {
				t.Fatal(err)
			}
			if rep, err := auditchain.Verify(ctx, st, keys, nil); err != nil || !rep.OK() || rep.Head != 8 {
				t.Fatalf("before tampering: %+v, %v", rep, err)
			}
			raw(t, tc.sql...)
			rep, err := auditchain.Verify(ctx, st, keys, nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || rep.First == nil || rep.First.Kind != tc.kind || rep.First.Seq != tc.seq {
				t.Fatalf("after tampering: first problem %+v of %d; want %s at entry %d", rep.First, rep.Problems, tc.kind, tc.seq)
			}
			if err := rep.Err(); !errors.Is(err, auditchain.ErrBroken) || !strings.Contains(err.Error(), fmt.Sprintf("audit entry %d", tc.seq)) {
				t.Errorf("Err() = %v; want it to name entry %d", err, tc.seq)
			}
		})
	}

	// Rewriting the log from an entry on, with every hash recomputed,
	// keeps the chain whole: the signed checkpoint catches it.
	t.Run("rewrite with hashes recomputed", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		clock := &Clock{now: start}
		st, raw := open(t, store.Options{Issuer: Issuer, Now: clock.Now})
		t.Cleanup(func() { st.Close() })
		e := &env{t: t, ctx: ctx, s: st, clock: clock}
		r := e.register()
		for i := range 5 {
			if _, err := st.Resident(ctx, as(deskActor, fmt.Sprintf("visit %d", i+1)), r.ID); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := (&auditchain.Checkpointer{Store: st, Signer: priv, Key: "sign-audit@1"}).Once(ctx); err != nil {
			t.Fatal(err)
		}
		var es []registry.AuditEntry
		if err := st.AuditChain(ctx, 0, func(e *registry.AuditEntry) error { es = append(es, *e); return nil }); err != nil {
			t.Fatal(err)
		}
		// Entry 3 gets another purpose; it and every later hash are
		// recomputed, and the head follows.
		es[2].Purpose = "rewritten"
		prev := es[1].Hash
		var stmts []string
		for i := 2; i < len(es); i++ {
			auditchain.Link(&es[i], es[i].Seq-1, prev)
			prev = es[i].Hash
			stmts = append(stmts, fmt.Sprintf("UPDATE audit_log SET purpose = '%s', prev_hash = %s, hash = %s WHERE seq = %d",
				es[i].Purpose, blob(es[i].Prev), blob(es[i].Hash), es[i].Seq))
		}
		stmts = append(stmts, fmt.Sprintf("UPDATE audit_head SET hash = %s", blob(prev)))
		raw(t, stmts...)
		rep, err := auditchain.Verify(ctx, st, nil, nil)
		if err != nil || rep.OK() || rep.First.Kind != auditchain.Rewritten || rep.First.Seq != 6 {
			t.Fatalf("after a rewrite: %+v, %v; want the checkpoint at entry 6 to catch it", rep.First, err)
		}
	})
}

// blob writes bytes as an SQL literal X'..' (SQLite's); a Raw for
// another database rewrites it.
func blob(b []byte) string { return fmt.Sprintf("X'%X'", b) }
