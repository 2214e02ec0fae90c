package upload

import (
	"context"
	"fmt"

	"github.com/citycard/transit/hsm"
)

// KeySealer seals batches with the device's own batch MAC key held in an
// hsm.KeyManager (a validator's role keystore holds it as
// hsm.LabelBatchDevice, see hsm.ExportRole).
type KeySealer struct {
	Keys hsm.KeyManager
	// Key is the batch key to seal with; its version is written into each
	// batch so clearing derives the same key.
	Key hsm.Ref
}

// NewKeySealer finds the newest batch key in km.
func NewKeySealer(ctx context.Context, km hsm.KeyManager) (*KeySealer, error) {
	info, err := hsm.Resolve(ctx, km, hsm.Ref{Label: hsm.LabelBatchDevice})
	if err != nil {
		return nil, fmt.Errorf("batch key: %w; export the validator's keystore with `transit hsm export-role validator --device ID`", err)
	}
	return &KeySealer{Keys: km, Key: info.Ref}, nil
}

// BatchKeyVersion implements Sealer.
func (s *KeySealer) BatchKeyVersion() uint32 { return uint32(s.Key.Version) }

// MACBatch implements Sealer. The device is implied by the key: a
// validator's keystore holds its own batch key only.
func (s *KeySealer) MACBatch(ctx context.Context, _ string, keyVersion uint32, body []byte) ([]byte, error) {
	if keyVersion != uint32(s.Key.Version) {
		return nil, fmt.Errorf("seal with batch key version %d: this sealer holds version %d", keyVersion, s.Key.Version)
	}
	tag, err := s.Keys.MAC(ctx, s.Key, body)
	if err != nil {
		return nil, err
	}
	return tag[:], nil
}
