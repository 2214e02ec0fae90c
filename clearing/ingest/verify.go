package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/hsm/cmac"
)

// KeyVerifier checks batch MACs with device keys diversified from the
// batch master key in an hsm.KeyManager (hsm.DeviceKey), so clearing needs
// no table of device keys. Derived keys are cached per device and key
// version: diversifying on a PKCS#11 token is a round trip.
type KeyVerifier struct {
	Keys hsm.KeyManager
	// Devices, when not nil, lists the devices clearing accepts batches
	// from; a batch from any other is reported as ErrUnknownDevice.
	Devices map[string]bool

	mu    sync.Mutex
	cache map[deviceKey]*cmac.MAC
}

type deviceKey struct {
	device  string
	version uint32
}

// VerifyBatch implements Verifier.
func (v *KeyVerifier) VerifyBatch(ctx context.Context, device string, keyVersion uint32, body, mac []byte) error {
	if v.Devices != nil && !v.Devices[device] {
		return fmt.Errorf("device %q is not registered with clearing: %w", device, ErrUnknownDevice)
	}
	m, err := v.mac(ctx, device, keyVersion)
	if err != nil {
		return err
	}
	if !m.Verify(body, mac) {
		return fmt.Errorf("batch from %q, key version %d: %w", device, keyVersion, ErrBadMAC)
	}
	return nil
}

func (v *KeyVerifier) mac(ctx context.Context, device string, keyVersion uint32) (*cmac.MAC, error) {
	k := deviceKey{device, keyVersion}
	v.mu.Lock()
	m, ok := v.cache[k]
	v.mu.Unlock()
	if ok {
		return m, nil
	}
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
	m, err = cmac.New(key[:])
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if v.cache == nil {
		v.cache = make(map[deviceKey]*cmac.MAC)
	}
	v.cache[k] = m
	v.mu.Unlock()
	return m, nil
}
