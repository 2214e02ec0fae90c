package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/clearing/store/storetest"
)

func TestOpsContract(t *testing.T) {
	var (
		mu    sync.Mutex
		paths = make(map[*testing.T]string)
	)
	storetest.RunOps(t, func(t *testing.T) store.Store {
		mu.Lock()
		path, ok := paths[t]
		if !ok {
			path = filepath.Join(t.TempDir(), "clearing.db")
			paths[t] = path
		}
		mu.Unlock()
		s, err := sqlite.Open(context.Background(), path, storetest.Options(t))
		if err != nil {
			t.Fatalf("Open(%s): %v", path, err)
		}
		return s
	})
}
