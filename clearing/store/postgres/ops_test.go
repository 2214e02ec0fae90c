package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/postgres"
	"github.com/citycard/transit/clearing/store/storetest"
	"github.com/citycard/transit/validator/tap"
)

func TestOpsContract(t *testing.T) {
	var (
		mu   sync.Mutex
		dsns = make(map[*testing.T]string)
	)
	storetest.RunOps(t, func(t *testing.T) store.Store {
		mu.Lock()
		dsn, ok := dsns[t]
		mu.Unlock()
		if !ok {
			dsn = migrated(t)
			mu.Lock()
			dsns[t] = dsn
			mu.Unlock()
		}
		s, err := postgres.Open(context.Background(), dsn, storetest.Options(t))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// TestUnstorableIsMarked: a value PostgreSQL refuses for what it is (text
// with a NUL byte, which ingest refuses before, sent here directly) fails
// AddBatch with ingest.ErrUnstorable, so that ingest quarantines the
// batch instead of retrying it for ever, and stores nothing.
func TestUnstorableIsMarked(t *testing.T) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, migrated(t), storetest.Options(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	b := ingest.Batch{Device: "bus-1", Created: at, Received: at, Taps: []tap.Tap{{Device: "bus-1", Seq: 1, Time: at,
		Route: "1\x002", Result: tap.Accepted}}}
	if _, _, err := s.AddBatch(ctx, b); !errors.Is(err, ingest.ErrUnstorable) {
		t.Fatalf("AddBatch with a NUL in a text: %v, want ingest.ErrUnstorable", err)
	}
	if n, err := s.TapCount(ctx); err != nil || n != 0 {
		t.Errorf("%d taps stored (%v), want none", n, err)
	}
	if f, err := s.Fleet(ctx); err != nil || len(f) != 0 {
		t.Errorf("fleet %+v (%v), want nothing: the state update is in the same transaction", f, err)
	}
}

// TestCheckDurable: the check agrees with what the server says of fsync.
// The harness's servers run with fsync off, so there it must refuse.
func TestCheckDurable(t *testing.T) {
	ctx := context.Background()
	dsn := migrated(t)
	s, err := postgres.Open(ctx, dsn, storetest.Options(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var fsync string
	if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil {
		t.Fatal(err)
	}
	err = s.CheckDurable(ctx)
	switch fsync {
	case "on":
		if err != nil {
			t.Errorf("fsync on: CheckDurable = %v, want nil", err)
		}
	default:
		if !errors.Is(err, postgres.ErrNotDurable) {
			t.Errorf("fsync %s: CheckDurable = %v, want ErrNotDurable", fsync, err)
		}
	}
}

// TestSessionsCommitSynchronously: whatever the URL asks, clearing's
// sessions run with synchronous_commit on.
func TestSessionsCommitSynchronously(t *testing.T) {
	ctx := context.Background()
	dsn := migrated(t) + "&synchronous_commit=off"
	s, err := postgres.Open(ctx, dsn, storetest.Options(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := postgres.SessionSetting(ctx, s, "synchronous_commit")
	if err != nil || got != "on" {
		t.Fatalf("synchronous_commit in a clearing session = %q (%v), want on", got, err)
	}
}
