package ingest

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/hsm/cmac"
)

// DefaultKeyCache is how many device keys a KeyVerifier keeps by default:
// every validator of a large city (5,000 vehicles, two or three
// validators each) with room to spare, about 12 MB when full (measured).
const DefaultKeyCache = 16384

// KeyVerifier checks batch MACs with device keys diversified from the
// batch master key in an hsm.KeyManager (hsm.DeviceKey), so clearing needs
// no table of device keys. Diversifying on a PKCS#11 token is a round
// trip, so keys are cached per device and key version, in a cache of
// bounded size (least recently used out) that takes a key only once a MAC
// made with it verified: a stream of forged batches under made-up device
// names costs a derivation each and leaves nothing behind.
type KeyVerifier struct {
	Keys hsm.KeyManager
	// Devices, when not nil, lists the devices clearing accepts batches
	// from; a batch from any other is reported as ErrUnknownDevice.
	Devices map[string]bool
	// CacheSize bounds the cached keys; 0 means DefaultKeyCache.
	CacheSize int

	mu    sync.Mutex
	cache map[deviceKey]*list.Element // of *cached, most recent at the front
	order list.List
}

type deviceKey struct {
	device  string
	version uint32
}

type cached struct {
	k deviceKey
	m *cmac.MAC
}

// VerifyBatch implements Verifier.
func (v *KeyVerifier) VerifyBatch(ctx context.Context, device string, keyVersion uint32, body, mac []byte) error {
	if device == "" {
		return fmt.Errorf("batch without a device id: %w", ErrUnknownDevice)
	}
	if v.Devices != nil && !v.Devices[device] {
		return fmt.Errorf("device %q is not registered with clearing: %w", device, ErrUnknownDevice)
	}
	k := deviceKey{device, keyVersion}
	if m := v.get(k); m != nil {
		if !m.Verify(body, mac) {
			return fmt.Errorf("batch from %q, key version %d: %w", device, keyVersion, ErrBadMAC)
		}
		return nil
	}
	m, err := v.derive(ctx, device, keyVersion)
	if err != nil {
		return err
	}
	if !m.Verify(body, mac) {
		return fmt.Errorf("batch from %q, key version %d: %w", device, keyVersion, ErrBadMAC)
	}
	v.put(k, m)
	return nil
}

// Cached returns how many device keys are cached.
func (v *KeyVerifier) Cached() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.cache)
}

func (v *KeyVerifier) get(k deviceKey) *cmac.MAC {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.cache[k]
	if !ok {
		return nil
	}
	v.order.MoveToFront(e)
	return e.Value.(*cached).m
}

func (v *KeyVerifier) put(k deviceKey, m *cmac.MAC) {
	size := v.CacheSize
	if size <= 0 {
		size = DefaultKeyCache
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cache == nil {
		v.cache = make(map[deviceKey]*list.Element)
	}
	if e, ok := v.cache[k]; ok { // another worker verified one meanwhile
		v.order.MoveToFront(e)
		return
	}
	v.cache[k] = v.order.PushFront(&cached{k, m})
	for len(v.cache) > size {
		last := v.order.Back()
		v.order.Remove(last)
		delete(v.cache, last.Value.(*cached).k)
	}
}

// derive diversifies the device's batch key. Errors wrapping ErrBadMAC
// mean the batch named a key that cannot exist; any other is the key
// manager's.
func (v *KeyVerifier) derive(ctx context.Context, device string, keyVersion uint32) (*cmac.MAC, error) {
	if keyVersion == 0 || keyVersion > 1<<30 {
		return nil, fmt.Errorf("batch from %q names batch key version %d: %w", device, keyVersion, ErrBadMAC)
	}
	key, err := hsm.DeviceKey(ctx, v.Keys, hsm.Ref{Label: hsm.LabelBatchMaster, Version: int(keyVersion)}, device)
	if errors.Is(err, hsm.ErrNotFound) {
		return nil, fmt.Errorf("batch from %q names batch key version %d, which clearing does not hold: %w", device, keyVersion, ErrBadMAC)
	}
	if err != nil {
		return nil, fmt.Errorf("derive batch key of %q: %w", device, err)
	}
	return cmac.New(key[:])
}
