//go:build cgo

package main

// cgoBuilt: card/pcsc and the PKCS#11 backend are real in a cgo build
// (their implementations carry the same build constraint).
const cgoBuilt = true
