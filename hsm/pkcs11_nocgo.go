//go:build !cgo

package hsm

import (
	"errors"
)

// PKCS11Config locates a token.
type PKCS11Config struct {
	Module string // path of the PKCS#11 module
	Token  string // token label
	PIN    string // user PIN
}

// PKCS11 is the PKCS#11 backend; this build has no cgo, so it cannot load a module.
type PKCS11 struct{ Admin }

// OpenPKCS11 fails: the PKCS#11 backend needs cgo.
func OpenPKCS11(PKCS11Config) (*PKCS11, error) {
	return nil, errors.New("pkcs11: transit was built without cgo; rebuild with CGO_ENABLED=1 or use --keystore")
}

// Close does nothing.
func (p *PKCS11) Close() error { return nil }
