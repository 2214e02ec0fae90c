package auditchain_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/auditchain"
)

// mem is a chain in memory, as a store keeps it.
type mem struct {
	es   []registry.AuditEntry
	head int64
	hash []byte
	cps  []registry.AuditCheckpoint
}

func (m *mem) AuditChain(_ context.Context, after int64, fn func(*registry.AuditEntry) error) error {
	for i := range m.es {
		if m.es[i].Seq > after || (after == 0 && m.es[i].Seq == 0) {
			e := m.es[i]
			if err := fn(&e); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *mem) AuditHead(context.Context) (int64, []byte, error) { return m.head, m.hash, nil }

func (m *mem) AuditCheckpoints(context.Context) ([]registry.AuditCheckpoint, error) {
	return m.cps, nil
}

func (m *mem) AddAuditCheckpoint(_ context.Context, cp registry.AuditCheckpoint) error {
	m.cps = append(m.cps, cp)
	return nil
}

var t0 = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

// chain makes n linked entries.
func chain(n int) *mem {
	m := &mem{hash: auditchain.Genesis}
	for i := range n {
		e := registry.AuditEntry{ID: int64(i + 1), At: t0.Add(time.Duration(i) * time.Second), User: "olena", Role: registry.RoleDesk,
			Resident: int64(i%7 + 1), Record: fmt.Sprintf("resident/%d", i%7+1), Action: "read resident", Purpose: "visit"}
		auditchain.Link(&e, m.head, m.hash)
		m.es = append(m.es, e)
		m.head, m.hash = e.Seq, e.Hash
	}
	return m
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	pub, priv, _ := ed25519.GenerateKey(nil)
	keys := func(context.Context, string) (ed25519.PublicKey, error) { return pub, nil }
	m := chain(10)
	cp := &auditchain.Checkpointer{Store: m, Signer: priv, Key: "sign-audit@1", Now: func() time.Time { return t0 }}
	if _, ok, err := cp.Once(ctx); !ok || err != nil {
		t.Fatal(ok, err)
	}
	rep, err := auditchain.Verify(ctx, m, keys, nil)
	if err != nil || !rep.OK() || rep.Head != 10 || rep.Checkpoints != 1 || !rep.Signed || !rep.Covers(10) || rep.Covers(11) {
		t.Fatalf("a good chain: %+v, %v", rep, err)
	}
	for _, tc := range []struct {
		name   string
		change func(*mem)
		kind   auditchain.Kind
		seq    int64
	}{
		{"edited", func(m *mem) { m.es[4].Purpose = "nothing" }, auditchain.Edited, 5},
		{"deleted", func(m *mem) { m.es = append(m.es[:3], m.es[4:]...) }, auditchain.Missing, 4},
		{"inserted", func(m *mem) { m.es = append(m.es, registry.AuditEntry{ID: 99}) }, auditchain.Inserted, 0},
		{"reordered", func(m *mem) { m.es[2], m.es[3] = m.es[3], m.es[2]; m.es[2].Seq, m.es[3].Seq = 3, 4 }, auditchain.Relinked, 3},
		{"tail cut with the head", func(m *mem) { m.es = m.es[:8]; m.head, m.hash = 8, m.es[7].Hash }, auditchain.Truncated, 9},
		{"checkpoint forged", func(m *mem) { m.cps[0].Signature = bytes.Repeat([]byte{1}, 64) }, auditchain.Rewritten, 10},
		{"rewritten with hashes", func(m *mem) {
			m.es[6].Purpose = "rewritten"
			for i := 6; i < len(m.es); i++ {
				auditchain.Link(&m.es[i], m.es[i-1].Seq, m.es[i-1].Hash)
			}
			m.hash = m.es[len(m.es)-1].Hash
		}, auditchain.Rewritten, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := chain(10)
			c.cps = append([]registry.AuditCheckpoint(nil), m.cps...)
			tc.change(c)
			rep, err := auditchain.Verify(ctx, c, keys, nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || rep.First.Kind != tc.kind || rep.First.Seq != tc.seq || rep.Covers(1) {
				t.Fatalf("first problem %+v of %d; want %s at %d", rep.First, rep.Problems, tc.kind, tc.seq)
			}
			if !errors.Is(rep.Err(), auditchain.ErrBroken) {
				t.Errorf("Err() = %v", rep.Err())
			}
			// The checkpointer will not sign a broken chain past its last
			// checkpoint.
			if tc.kind == auditchain.Edited || tc.kind == auditchain.Missing {
				c.cps = nil
				if _, _, err := (&auditchain.Checkpointer{Store: c, Signer: priv, Key: "k"}).Once(ctx); !errors.Is(err, auditchain.ErrBroken) {
					t.Errorf("checkpoint over a broken chain: %v", err)
				}
			}
		})
	}
}

func TestMonitor(t *testing.T) {
	m := chain(3)
	mon := &auditchain.Monitor{Source: m}
	if _, ok := mon.Last(); ok {
		t.Fatal("a report before any check")
	}
	if rep, err := mon.Check(context.Background()); err != nil || !rep.OK() {
		t.Fatal(rep, err)
	}
	m.es[1].User = "someone"
	rep, err := mon.Check(context.Background())
	if err != nil || rep.OK() {
		t.Fatal(rep, err)
	}
	if last, ok := mon.Last(); !ok || last.OK() {
		t.Fatalf("last report %+v", last)
	}
}

// BenchmarkVerify verifies a chain of 100,000 entries held in memory:
// the hashing cost of the start-up check, apart from reading the store.
func BenchmarkVerify(b *testing.B) {
	m := chain(100_000)
	b.ResetTimer()
	for range b.N {
		rep, err := auditchain.Verify(context.Background(), m, nil, nil)
		if err != nil || !rep.OK() {
			b.Fatal(rep, err)
		}
	}
	b.ReportMetric(float64(len(m.es))*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
