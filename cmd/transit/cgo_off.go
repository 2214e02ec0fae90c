//go:build !cgo

package main

// cgoBuilt: without cgo, card/pcsc and the PKCS#11 backend only return
// errors saying so.
const cgoBuilt = false
