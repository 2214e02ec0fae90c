package statement

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Fingerprint names a public key for people and documents: "sha256:" and
// the hex SHA-256 of its DER SubjectPublicKeyInfo, which is the PEM file
// `transit hsm export-public` writes, decoded. Anyone can recompute it
// without this program:
//
//	openssl pkey -pubin -in sign-statement.pem -outform DER | sha256sum
func Fingerprint(pub ed25519.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		// An ed25519.PublicKey of the wrong length; it verifies nothing.
		return "sha256:invalid-key"
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// GroupFingerprint writes a fingerprint's digits in groups of four, as a
// document prints it so that a person can compare it by eye.
func GroupFingerprint(fp string) string {
	digits, ok := strings.CutPrefix(fp, "sha256:")
	if !ok {
		return fp
	}
	var b strings.Builder
	b.WriteString("sha256:")
	for i := 0; i < len(digits); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(digits[i:min(i+4, len(digits))])
	}
	return b.String()
}

// MaxPublicKeyFile bounds a public key file.
const MaxPublicKeyFile = 64 << 10

// ParsePublicKey reads an Ed25519 public key from PEM ("PUBLIC KEY", as
// `transit hsm export-public` writes it).
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	if len(data) > MaxPublicKeyFile {
		return nil, fmt.Errorf("public key: larger than %d bytes: not a PEM public key", MaxPublicKeyFile)
	}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("public key: no PEM PUBLIC KEY block (write one with 'transit hsm export-public sign-statement')")
		}
		if b.Type != "PUBLIC KEY" {
			continue
		}
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key: a %T, not Ed25519: statements are signed with Ed25519", k)
		}
		return pub, nil
	}
}

// EncodePublicKey writes pub as PEM, as `transit hsm export-public` does.
func EncodePublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
