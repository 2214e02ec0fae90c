package vcard_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/citycard/transit/card/apdu"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/simulator/vcard"
)

// A transport application shaped like card/LAYOUT.md's, with test keys.
var (
	testUID      = []byte{0x04, 0x44, 0x0F, 0x32, 0x76, 0x31, 0x80}
	transportAID = desfire.AID{0x03, 0xC1, 0xF4}
	zeroKey      = make([]byte, 16)
)

// Key numbers of the roles.
const (
	keyIssuer byte = iota
	keyValidator
	keyTopUp
	keyDesk
	keyInspector
)

// File numbers and sizes.
const (
	fileContract byte = 1
	filePurse    byte = 2
	fileCounters byte = 3
	fileTapLog   byte = 4

	contractSize = 44
	countersSize = 24
	recordSize   = 24
	maxRecords   = 11
	initialPurse = 10000
	fare         = 800
)

func roleKey(k byte) []byte { return bytes.Repeat([]byte{0xA0 + k}, 16) }

func contractBytes() []byte {
	b := make([]byte, contractSize)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return b
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// personalise builds the transport application on a fresh card the way an
// issuance desk would, through card/desfire.
func personalise(t testing.TB, card *vcard.Card) {
	t.Helper()
	c := desfire.New(card)
	must(t, "select PICC", c.SelectApplication(desfire.AID{}))
	must(t, "PICC auth", c.AuthenticateISO(0, desfire.KeyDES, desfire.FactoryPICCKey()))
	must(t, "create app", c.CreateApplication(transportAID, 0x09, 5))
	must(t, "select app", c.SelectApplication(transportAID))
	must(t, "app auth", c.AuthenticateAES(keyIssuer, zeroKey))
	rights := func(r, w, rw byte) desfire.AccessRights {
		return desfire.AccessRights{Read: r, Write: w, ReadWrite: rw, Change: keyIssuer}
	}
	must(t, "contract", c.CreateStdDataFile(fileContract, desfire.CommEnciphered, rights(keyValidator, keyTopUp, keyDesk), contractSize))
	must(t, "purse", c.CreateValueFile(filePurse, desfire.CommMAC, rights(keyValidator, desfire.AccessNever, keyTopUp),
		desfire.ValueLimits{Lower: 0, Upper: 500000}))
	must(t, "counters", c.CreateBackupDataFile(fileCounters, desfire.CommEnciphered, rights(keyDesk, keyDesk, keyValidator), countersSize))
	must(t, "taplog", c.CreateCyclicRecordFile(fileTapLog, desfire.CommEnciphered, rights(keyInspector, desfire.AccessNever, keyValidator), recordSize, maxRecords))
	for k := keyValidator; k <= keyInspector; k++ {
		must(t, "change role key", c.ChangeKey(k, roleKey(k), 1, zeroKey))
	}
	must(t, "change issuer key", c.ChangeKey(keyIssuer, roleKey(keyIssuer), 1, nil))

	must(t, "top-up auth", c.AuthenticateAES(keyTopUp, roleKey(keyTopUp)))
	must(t, "credit", c.Credit(filePurse, initialPurse, desfire.CommMAC))
	must(t, "commit credit", c.CommitTransaction())
	must(t, "desk auth", c.AuthenticateAES(keyDesk, roleKey(keyDesk)))
	must(t, "write contract", c.WriteData(fileContract, 0, contractBytes(), desfire.CommEnciphered))
}

// tap is the representative validator transaction: 8 APDUs.
func tap(c *desfire.Card, record []byte) error {
	if err := c.SelectApplication(transportAID); err != nil {
		return err
	}
	if err := c.AuthenticateAES(keyValidator, roleKey(keyValidator)); err != nil {
		return err
	}
	if _, err := c.ReadData(fileContract, 0, contractSize, desfire.CommEnciphered); err != nil {
		return err
	}
	if _, err := c.GetValue(filePurse, desfire.CommMAC); err != nil {
		return err
	}
	if err := c.Debit(filePurse, fare, desfire.CommMAC); err != nil {
		return err
	}
	if err := c.WriteRecord(fileTapLog, 0, record, desfire.CommEnciphered); err != nil {
		return err
	}
	return c.CommitTransaction()
}

// snapshot reads purse and tap log with a fresh session.
func snapshot(t testing.TB, card *vcard.Card) (int32, [][]byte) {
	t.Helper()
	c := desfire.New(card)
	must(t, "select", c.SelectApplication(transportAID))
	must(t, "auth", c.AuthenticateAES(keyValidator, roleKey(keyValidator)))
	v, err := c.GetValue(filePurse, desfire.CommMAC)
	must(t, "get value", err)
	recs, err := c.ReadRecords(fileTapLog, 0, 0, recordSize, desfire.CommEnciphered)
	if errors.Is(err, desfire.ErrBoundary) { // empty log
		return v, nil
	}
	must(t, "read records", err)
	return v, recs
}

// tamper flips a bit of the n-th response (1-based) through a transport.
type tamper struct {
	t       apdu.Transport
	n, seen int
	cmd     bool // flip the command's last data byte instead
}

func (tp *tamper) Transmit(cmd []byte) ([]byte, error) {
	tp.seen++
	if tp.seen == tp.n && tp.cmd && len(cmd) > 6 {
		cmd = append([]byte(nil), cmd...)
		cmd[len(cmd)-2] ^= 0x01
	}
	resp, err := tp.t.Transmit(cmd)
	if tp.seen == tp.n && !tp.cmd && len(resp) > 2 {
		resp = append([]byte(nil), resp...)
		resp[0] ^= 0x01
	}
	return resp, err
}
