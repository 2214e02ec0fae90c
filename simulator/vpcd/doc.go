// Package vpcd puts a virtual card into a real pcscd reader by speaking the
// vsmartcard vpcd protocol: pcscd listens, the card connects as a TCP client,
// and every message in both directions is a 2-byte big-endian length followed
// by the payload.
package vpcd
