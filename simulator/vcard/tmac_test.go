package vcard_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/simulator/vcard"
)

// TestTransactionMAC: on an EV3 every committed transaction of the
// transport application is MACed over exactly what was read and written,
// the counter advances, the TransactionMAC file holds the result, an
// aborted or torn transaction leaves both alone, and an EV1 refuses the
// feature.
func TestTransactionMAC(t *testing.T) {
	tmKey := bytes.Repeat([]byte{0x7E}, 16)
	card := vcard.New(testUID, vcard.WithGeneration(vcard.EV3))
	c := desfire.New(card)
	must(t, "PICC auth", c.AuthenticateISO(0, desfire.KeyDES, desfire.FactoryPICCKey()))
	must(t, "create app", c.CreateApplication(transportAID, 0x09, 5))
	must(t, "select", c.SelectApplication(transportAID))
	must(t, "app auth EV2", c.AuthenticateEV2First(keyIssuer, zeroKey))
	if c.SecureMessaging() != "EV2" {
		t.Fatalf("secure messaging %q", c.SecureMessaging())
	}
	rights := desfire.AccessRights{Read: keyValidator, Write: desfire.AccessNever, ReadWrite: keyTopUp, Change: keyIssuer}
	must(t, "purse", c.CreateValueFile(filePurse, desfire.CommMAC, rights, desfire.ValueLimits{Upper: 500000, Value: 1000}))
	must(t, "taplog", c.CreateCyclicRecordFile(fileTapLog, desfire.CommEnciphered,
		desfire.AccessRights{Read: keyInspector, Write: desfire.AccessNever, ReadWrite: keyValidator, Change: keyIssuer}, recordSize, maxRecords))
	must(t, "tmac file", c.CreateTransactionMACFile(5, desfire.CommPlain,
		desfire.AccessRights{Read: keyValidator, Write: desfire.AccessNever, ReadWrite: desfire.AccessNever, Change: keyIssuer}, tmKey, 1))
	wantErr(t, "second tmac file", c.CreateTransactionMACFile(6, desfire.CommPlain, rights, tmKey, 1), desfire.ErrDuplicate)

	tx := func(amount int32, rec []byte) (uint32, [8]byte, desfire.TMI) {
		t.Helper()
		card.Reset()
		c := desfire.New(card)
		must(t, "select", c.SelectApplication(transportAID))
		must(t, "auth", c.AuthenticateEV2First(keyValidator, zeroKey))
		must(t, "debit", c.Debit(filePurse, amount, desfire.CommMAC))
		must(t, "record", c.WriteRecord(fileTapLog, 0, rec, desfire.CommEnciphered))
		tmc, tmv, err := c.CommitTMAC()
		must(t, "commit", err)
		if c.APDUs() != 6 {
			t.Fatalf("transaction took %d APDUs, want 6", c.APDUs())
		}
		return tmc, tmv, desfire.TMI(nil).Value(desfire.InsDebit, filePurse, amount).WriteRecord(fileTapLog, 0, rec)
	}
	tmc, tmv, tmi := tx(150, pattern(recordSize, 1))
	want, err := desfire.TransactionMAC(tmKey, 1, testUID, tmi)
	must(t, "TMV", err)
	if tmc != 1 || tmv != want {
		t.Fatalf("TMC %d TMV %X, want 1 and %X", tmc, tmv, want)
	}
	if other, _ := desfire.TransactionMAC(tmKey, 1, testUID, desfire.TMI(nil).Value(desfire.InsDebit, filePurse, 151).WriteRecord(fileTapLog, 0, pattern(recordSize, 1))); other == tmv {
		t.Fatal("another amount gives the same TMV")
	}

	// An aborted transaction changes nothing.
	card.Reset()
	c = desfire.New(card)
	must(t, "select", c.SelectApplication(transportAID))
	must(t, "auth", c.AuthenticateEV2First(keyValidator, zeroKey))
	must(t, "debit", c.Debit(filePurse, 5, desfire.CommMAC))
	must(t, "abort", c.AbortTransaction())
	file, err := c.ReadData(5, 0, 12, desfire.CommPlain)
	must(t, "read tmac file", err)
	if !bytes.Equal(file, append([]byte{1, 0, 0, 0}, tmv[:]...)) {
		t.Fatalf("TransactionMAC file %X after an abort", file)
	}
	tmc, _, _ = tx(10, pattern(recordSize, 2))
	if tmc != 2 {
		t.Fatalf("second transaction TMC %d", tmc)
	}

	// EV1: no EV2 authentication, no option byte.
	ev1 := vcard.New(testUID)
	c = desfire.New(ev1)
	if err := c.AuthenticateEV2First(0, desfire.FactoryPICCKey()); !errors.Is(err, desfire.ErrIllegalCommand) {
		t.Fatalf("EV2First on an EV1: %v", err)
	}
	if _, _, err := c.CommitTMAC(); !errors.Is(err, desfire.ErrLength) {
		t.Fatalf("CommitTransaction 01 on an EV1: %v", err)
	}
}

// TestChangeFileSettings: the file's Change key (or the master) changes
// its mode and rights, enciphered, in EV1 and EV2 sessions alike; other
// keys may not.
func TestChangeFileSettings(t *testing.T) {
	for _, g := range []vcard.Generation{vcard.EV1, vcard.EV3} {
		t.Run(g.String(), func(t *testing.T) {
			card := vcard.New(testUID, vcard.WithGeneration(g))
			personalise(t, card)
			c := desfire.New(card)
			must(t, "select", c.SelectApplication(transportAID))
			auth := c.AuthenticateAES
			if g != vcard.EV1 {
				auth = c.AuthenticateEV2First
			}
			must(t, "validator auth", auth(keyValidator, roleKey(keyValidator)))
			r := desfire.AccessRights{Read: keyValidator, Write: keyTopUp, ReadWrite: keyDesk, Change: keyIssuer}
			wantErr(t, "validator changes settings", c.ChangeFileSettings(fileContract, desfire.CommMAC, r), desfire.ErrPermissionDenied)
			must(t, "issuer auth", auth(keyIssuer, roleKey(keyIssuer)))
			must(t, "change settings", c.ChangeFileSettings(fileContract, desfire.CommMAC, r))
			fs, err := c.GetFileSettings(fileContract)
			must(t, "file settings", err)
			if fs.Comm != desfire.CommMAC || fs.Rights != r {
				t.Fatalf("settings %+v", fs)
			}
			must(t, "select PICC", c.SelectApplication(desfire.AID{}))
			free, err := c.FreeMemory()
			must(t, "free memory", err)
			if free <= 0 || free >= vcard.Capacity {
				t.Fatalf("free memory %d", free)
			}
		})
	}
}
