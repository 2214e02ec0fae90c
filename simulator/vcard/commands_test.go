package vcard_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/simulator/vcard"
)

func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// TestEveryCommand runs the whole command set of card/desfire against the
// virtual card, once per communication mode of the files.
func TestEveryCommand(t *testing.T) {
	for _, mode := range []desfire.CommMode{desfire.CommPlain, desfire.CommMAC, desfire.CommEnciphered} {
		t.Run(mode.String(), func(t *testing.T) { everyCommand(t, mode) })
	}
}

func everyCommand(t *testing.T, mode desfire.CommMode) {
	card := vcard.New(testUID)
	c := desfire.New(card)
	k := func(n byte) []byte { return bytes.Repeat([]byte{0x30 + n}, 16) }

	// PICC level.
	v, err := c.GetVersion()
	must(t, "GetVersion", err)
	if v.Hardware[0] != 0x04 || !bytes.Equal(v.UID[:], testUID) {
		t.Fatalf("GetVersion = %+v", v)
	}
	must(t, "PICC auth", c.AuthenticateISO(0, desfire.KeyDES, desfire.FactoryPICCKey()))
	v2, err := c.GetVersion() // now with a MACed, three-frame response
	must(t, "GetVersion in session", err)
	if v2 != v {
		t.Fatalf("GetVersion in session = %+v, want %+v", v2, v)
	}
	uid, err := c.GetCardUID()
	must(t, "GetCardUID", err)
	if !bytes.Equal(uid, testUID) {
		t.Fatalf("GetCardUID = %X", uid)
	}
	aid, other := desfire.AID{1, 2, 3}, desfire.AID{9, 9, 9}
	must(t, "CreateApplication", c.CreateApplication(aid, 0x0B, 4))
	must(t, "CreateApplication 2", c.CreateApplication(other, 0x0F, 1))
	wantErr(t, "duplicate application", c.CreateApplication(other, 0x0F, 1), desfire.ErrDuplicate)
	must(t, "auth after error", c.AuthenticateISO(0, desfire.KeyDES, desfire.FactoryPICCKey()))
	ids, err := c.GetApplicationIDs()
	must(t, "GetApplicationIDs", err)
	if !slices.Equal(ids, []desfire.AID{aid, other}) {
		t.Fatalf("GetApplicationIDs = %v", ids)
	}
	must(t, "DeleteApplication", c.DeleteApplication(other))
	ids, err = c.GetApplicationIDs()
	must(t, "GetApplicationIDs", err)
	if !slices.Equal(ids, []desfire.AID{aid}) {
		t.Fatalf("GetApplicationIDs after delete = %v", ids)
	}

	// Application keys and settings.
	must(t, "select", c.SelectApplication(aid))
	if _, ok := c.Authenticated(); ok {
		t.Fatal("session survived SelectApplication")
	}
	wantErr(t, "wrong key", c.AuthenticateAES(0, k(9)), desfire.ErrAuthentication)
	must(t, "app auth", c.AuthenticateAES(0, zeroKey))
	ks, n, err := c.GetKeySettings()
	must(t, "GetKeySettings", err)
	if ks != 0x0B || n != 4 {
		t.Fatalf("GetKeySettings = %02X, %d", ks, n)
	}
	must(t, "ChangeKeySettings", c.ChangeKeySettings(0x0F))
	if ks, _, _ = c.GetKeySettings(); ks != 0x0F {
		t.Fatalf("key settings after change = %02X", ks)
	}
	for kn := byte(1); kn <= 3; kn++ {
		must(t, "ChangeKey", c.ChangeKey(kn, k(kn), 7, zeroKey))
	}
	if kv, err := c.GetKeyVersion(2); err != nil || kv != 7 {
		t.Fatalf("GetKeyVersion = %d, %v", kv, err)
	}
	wantErr(t, "no such key", c.AuthenticateAES(4, zeroKey), desfire.ErrNoSuchKey)
	must(t, "app auth", c.AuthenticateAES(0, zeroKey))

	// Files.
	r := desfire.AccessRights{Read: 1, Write: 2, ReadWrite: 3, Change: 0}
	must(t, "CreateStdDataFile", c.CreateStdDataFile(1, mode, r, 100))
	must(t, "CreateBackupDataFile", c.CreateBackupDataFile(2, mode, r, 32))
	must(t, "CreateValueFile", c.CreateValueFile(3, mode, r, desfire.ValueLimits{Lower: -100, Upper: 1000, Value: 50, LimitedCredit: true}))
	must(t, "CreateCyclicRecordFile", c.CreateCyclicRecordFile(4, mode, r, 16, 4))
	must(t, "CreateStdDataFile 5", c.CreateStdDataFile(5, mode, r, 8))
	must(t, "DeleteFile", c.DeleteFile(5))
	fids, err := c.GetFileIDs()
	must(t, "GetFileIDs", err)
	if !bytes.Equal(fids, []byte{1, 2, 3, 4}) {
		t.Fatalf("GetFileIDs = %v", fids)
	}
	fs, err := c.GetFileSettings(3)
	must(t, "GetFileSettings", err)
	if fs.Type != desfire.FileValue || fs.Comm != mode || fs.Rights != r || fs.Limits != (desfire.ValueLimits{Lower: -100, Upper: 1000, LimitedCredit: true}) {
		t.Fatalf("GetFileSettings(3) = %+v", fs)
	}
	if fs, _ = c.GetFileSettings(4); fs.RecordSize != 16 || fs.MaxRecords != 4 || fs.Records != 0 {
		t.Fatalf("GetFileSettings(4) = %+v", fs)
	}
	if fs, _ = c.GetFileSettings(1); fs.Type != desfire.FileStdData || fs.Size != 100 {
		t.Fatalf("GetFileSettings(1) = %+v", fs)
	}
	_, err = c.GetFileSettings(9)
	wantErr(t, "missing file", err, desfire.ErrFileNotFound)

	// Write key (2): data spanning several frames, backup data, a record.
	std, backup := pattern(100, 1), pattern(32, 50)
	must(t, "auth W", c.AuthenticateAES(2, k(2)))
	must(t, "WriteData std", c.WriteData(1, 0, std, mode))
	must(t, "WriteData backup", c.WriteData(2, 0, backup, mode))
	must(t, "WriteRecord", c.WriteRecord(4, 0, pattern(16, 100), mode))
	_, err = c.ReadData(1, 0, 0, mode)
	wantErr(t, "write key reads", err, desfire.ErrPermissionDenied)
	must(t, "auth W", c.AuthenticateAES(2, k(2)))
	must(t, "WriteData backup", c.WriteData(2, 0, backup, mode))
	must(t, "WriteRecord", c.WriteRecord(4, 4, pattern(12, 100+4*7), mode))
	must(t, "WriteRecord head", c.WriteRecord(4, 0, pattern(4, 100), mode))
	must(t, "CommitTransaction", c.CommitTransaction())

	// Read key (1).
	must(t, "auth R", c.AuthenticateAES(1, k(1)))
	got, err := c.ReadData(1, 0, 0, mode)
	must(t, "ReadData whole", err)
	if !bytes.Equal(got, std) {
		t.Fatalf("ReadData whole = %X", got)
	}
	if got, err = c.ReadData(1, 10, 5, mode); err != nil || !bytes.Equal(got, std[10:15]) {
		t.Fatalf("ReadData part = %X, %v", got, err)
	}
	if got, err = c.ReadData(2, 0, 32, mode); err != nil || !bytes.Equal(got, backup) {
		t.Fatalf("ReadData backup = %X, %v", got, err)
	}
	recs, err := c.ReadRecords(4, 0, 1, 16, mode)
	if err != nil || len(recs) != 1 || !bytes.Equal(recs[0], pattern(16, 100)) {
		t.Fatalf("ReadRecords = %X, %v", recs, err)
	}
	val, err := c.GetValue(3, mode)
	if err != nil || val != 50 {
		t.Fatalf("GetValue = %d, %v", val, err)
	}
	must(t, "Debit", c.Debit(3, 30, mode))
	if val, _ = c.GetValue(3, mode); val != 50 {
		t.Fatalf("GetValue before commit = %d, want the committed 50", val)
	}
	must(t, "Commit", c.CommitTransaction())
	if val, _ = c.GetValue(3, mode); val != 20 {
		t.Fatalf("GetValue after debit = %d", val)
	}
	wantErr(t, "read key credits", c.Credit(3, 1, mode), desfire.ErrPermissionDenied)
	must(t, "auth R", c.AuthenticateAES(1, k(1)))
	wantErr(t, "read key writes", c.WriteData(1, 0, []byte{1}, mode), desfire.ErrPermissionDenied)

	// Limited credit: at most the last transaction's debits, once.
	must(t, "auth W", c.AuthenticateAES(2, k(2)))
	wantErr(t, "limited credit over", c.LimitedCredit(3, 31, mode), desfire.ErrBoundary)
	must(t, "auth W", c.AuthenticateAES(2, k(2)))
	must(t, "LimitedCredit", c.LimitedCredit(3, 30, mode))
	must(t, "Commit", c.CommitTransaction())
	wantErr(t, "second limited credit", c.LimitedCredit(3, 1, mode), desfire.ErrBoundary)

	// Read&write key (3): credit, limits, records, clear, abort.
	must(t, "auth RW", c.AuthenticateAES(3, k(3)))
	if val, _ = c.GetValue(3, mode); val != 50 {
		t.Fatalf("GetValue after limited credit = %d", val)
	}
	must(t, "Credit", c.Credit(3, 950, mode))
	must(t, "Commit", c.CommitTransaction())
	wantErr(t, "credit over upper", c.Credit(3, 1, mode), desfire.ErrBoundary)
	must(t, "auth RW", c.AuthenticateAES(3, k(3)))
	wantErr(t, "debit under lower", c.Debit(3, 1101, mode), desfire.ErrBoundary)
	must(t, "auth RW", c.AuthenticateAES(3, k(3)))
	for i := range 4 {
		must(t, "WriteRecord", c.WriteRecord(4, 0, pattern(16, byte(i)), mode))
		must(t, "Commit", c.CommitTransaction())
	}
	recs, err = c.ReadRecords(4, 0, 0, 16, mode)
	must(t, "ReadRecords all", err)
	if want := [][]byte{pattern(16, 1), pattern(16, 2), pattern(16, 3)}; !slices.EqualFunc(recs, want, bytes.Equal) {
		t.Fatalf("ReadRecords all = %X, want the 3 newest, oldest first", recs)
	}
	if recs, err = c.ReadRecords(4, 1, 1, 16, mode); err != nil || !bytes.Equal(recs[0], pattern(16, 2)) {
		t.Fatalf("ReadRecords offset 1 = %X, %v", recs, err)
	}
	must(t, "WriteData backup", c.WriteData(2, 0, pattern(32, 9), mode))
	must(t, "AbortTransaction", c.AbortTransaction())
	if got, _ = c.ReadData(2, 0, 0, mode); !bytes.Equal(got, backup) {
		t.Fatalf("backup after abort = %X", got)
	}
	must(t, "ClearRecordFile", c.ClearRecordFile(4))
	must(t, "Commit", c.CommitTransaction())
	_, err = c.ReadRecords(4, 0, 0, 16, mode)
	wantErr(t, "read cleared", err, desfire.ErrBoundary)

	// Each key changes itself (change-key nibble E); changing the
	// session's own key closes the session.
	must(t, "app auth", c.AuthenticateAES(0, zeroKey))
	must(t, "ChangeKeySettings", c.ChangeKeySettings(0xEF))
	must(t, "auth RW", c.AuthenticateAES(3, k(3)))
	must(t, "ChangeKey same", c.ChangeKey(3, k(8), 2, nil))
	if _, ok := c.Authenticated(); ok {
		t.Fatal("session survived changing its own key")
	}
	wantErr(t, "old key", c.AuthenticateAES(3, k(3)), desfire.ErrAuthentication)
	must(t, "new key", c.AuthenticateAES(3, k(8)))
	if kv, _ := c.GetKeyVersion(3); kv != 2 {
		t.Fatalf("key version = %d", kv)
	}
	wantErr(t, "non-master changes key", c.ChangeKey(1, k(5), 1, k(1)), desfire.ErrPermissionDenied)

	// Back to PICC level: change the PICC key, format.
	must(t, "select PICC", c.SelectApplication(desfire.AID{}))
	must(t, "PICC auth", c.AuthenticateISO(0, desfire.KeyDES, desfire.FactoryPICCKey()))
	must(t, "ChangeKey PICC", c.ChangeKey(0, k(0), 3, nil))
	must(t, "PICC auth new", c.AuthenticateAES(0, k(0)))
	must(t, "FormatPICC", c.FormatPICC())
	if ids, err = c.GetApplicationIDs(); err != nil || len(ids) != 0 {
		t.Fatalf("after FormatPICC: %v, %v", ids, err)
	}
	err = c.SelectApplication(aid)
	wantErr(t, "select deleted", err, desfire.ErrApplicationNotFound)
}

func TestAccessRights(t *testing.T) {
	card := vcard.New(testUID)
	personalise(t, card)
	c := desfire.New(card)
	must(t, "select", c.SelectApplication(transportAID))

	_, err := c.ReadData(fileContract, 0, contractSize, desfire.CommEnciphered)
	wantErr(t, "read without session", err, desfire.ErrAuthentication)

	tests := []struct {
		name string
		key  byte
		op   func() error
		want error
	}{
		{"validator debits", keyValidator, func() error { return c.Debit(filePurse, 1, desfire.CommMAC) }, nil},
		{"validator cannot credit", keyValidator, func() error { return c.Credit(filePurse, 1, desfire.CommMAC) }, desfire.ErrPermissionDenied},
		{"validator cannot limited-credit", keyValidator, func() error { return c.LimitedCredit(filePurse, 1, desfire.CommMAC) }, desfire.ErrPermissionDenied},
		{"validator cannot write contract", keyValidator, func() error {
			return c.WriteData(fileContract, 0, []byte{1}, desfire.CommEnciphered)
		}, desfire.ErrPermissionDenied},
		{"validator writes counters", keyValidator, func() error {
			return c.WriteData(fileCounters, 0, make([]byte, countersSize), desfire.CommEnciphered)
		}, nil},
		{"top-up credits", keyTopUp, func() error { return c.Credit(filePurse, 1, desfire.CommMAC) }, nil},
		{"top-up cannot read contract", keyTopUp, func() error {
			_, err := c.ReadData(fileContract, 0, 0, desfire.CommEnciphered)
			return err
		}, desfire.ErrPermissionDenied},
		{"inspector reads log", keyInspector, func() error {
			_, err := c.ReadRecords(fileTapLog, 0, 0, recordSize, desfire.CommEnciphered)
			return err
		}, desfire.ErrBoundary}, // allowed, but the log is empty
		{"inspector cannot write log", keyInspector, func() error {
			return c.WriteRecord(fileTapLog, 0, make([]byte, recordSize), desfire.CommEnciphered)
		}, desfire.ErrPermissionDenied},
		{"desk cannot debit", keyDesk, func() error { return c.Debit(filePurse, 1, desfire.CommMAC) }, desfire.ErrPermissionDenied},
		{"validator cannot list files", keyValidator, func() error { _, err := c.GetFileIDs(); return err }, desfire.ErrPermissionDenied},
		{"validator cannot change keys", keyValidator, func() error {
			return c.ChangeKey(keyTopUp, zeroKey, 0, roleKey(keyTopUp))
		}, desfire.ErrPermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			must(t, "auth", c.AuthenticateAES(tt.key, roleKey(tt.key)))
			err := tt.op()
			if tt.want == nil {
				must(t, tt.name, err)
				must(t, "abort", c.AbortTransaction())
				return
			}
			wantErr(t, tt.name, err, tt.want)
			if _, ok := c.Authenticated(); ok {
				t.Fatal("session survived an error status")
			}
		})
	}
}

// A session with the wrong key material fails in the second pass.
func TestWrongKey(t *testing.T) {
	card := vcard.New(testUID)
	personalise(t, card)
	c := desfire.New(card)
	must(t, "select", c.SelectApplication(transportAID))
	wantErr(t, "wrong key", c.AuthenticateAES(keyValidator, roleKey(keyTopUp)), desfire.ErrAuthentication)
	_, err := c.GetValue(filePurse, desfire.CommMAC)
	wantErr(t, "after failed auth", err, desfire.ErrAuthentication)
}

func TestIntegrityFailures(t *testing.T) {
	card := vcard.New(testUID)
	personalise(t, card)

	// A response corrupted on the way: the reader rejects its MAC.
	tp := &tamper{t: card, n: 4}
	c := desfire.New(tp)
	must(t, "select", c.SelectApplication(transportAID))
	must(t, "auth", c.AuthenticateAES(keyValidator, roleKey(keyValidator)))
	_, err := c.GetValue(filePurse, desfire.CommMAC)
	wantErr(t, "tampered response MAC", err, desfire.ErrResponseMAC)

	// An enciphered response corrupted: CRC fails.
	tp = &tamper{t: card, n: 4}
	c = desfire.New(tp)
	must(t, "select", c.SelectApplication(transportAID))
	must(t, "auth", c.AuthenticateAES(keyValidator, roleKey(keyValidator)))
	_, err = c.ReadData(fileContract, 0, contractSize, desfire.CommEnciphered)
	wantErr(t, "tampered enciphered response", err, desfire.ErrResponseCRC)

	// A command corrupted on the way: the card rejects its MAC.
	tp = &tamper{t: card, n: 4, cmd: true}
	c = desfire.New(tp)
	must(t, "select", c.SelectApplication(transportAID))
	must(t, "auth", c.AuthenticateAES(keyValidator, roleKey(keyValidator)))
	err = c.Debit(filePurse, 1, desfire.CommMAC)
	wantErr(t, "tampered command", err, desfire.ErrIntegrity)
	if v, _ := snapshot(t, card); v != initialPurse {
		t.Fatalf("purse = %d after a rejected debit", v)
	}
}

func TestTransactionDiscarded(t *testing.T) {
	tests := []struct {
		name    string
		discard func(c *desfire.Card, card *vcard.Card)
	}{
		{"abort", func(c *desfire.Card, _ *vcard.Card) { _ = c.AbortTransaction() }},
		{"reset", func(_ *desfire.Card, card *vcard.Card) { card.Reset() }},
		{"reselect", func(c *desfire.Card, _ *vcard.Card) { _ = c.SelectApplication(transportAID) }},
		{"reauthenticate", func(c *desfire.Card, _ *vcard.Card) {
			_ = c.AuthenticateAES(keyValidator, roleKey(keyValidator))
		}},
		{"error", func(c *desfire.Card, _ *vcard.Card) { _ = c.Credit(filePurse, 1, desfire.CommMAC) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			card := vcard.New(testUID)
			personalise(t, card)
			c := desfire.New(card)
			must(t, "select", c.SelectApplication(transportAID))
			must(t, "auth", c.AuthenticateAES(keyValidator, roleKey(keyValidator)))
			must(t, "debit", c.Debit(filePurse, fare, desfire.CommMAC))
			must(t, "record", c.WriteRecord(fileTapLog, 0, pattern(recordSize, 1), desfire.CommEnciphered))
			must(t, "counters", c.WriteData(fileCounters, 0, pattern(countersSize, 1), desfire.CommEnciphered))
			tt.discard(c, card)
			c = desfire.New(card)
			must(t, "select", c.SelectApplication(transportAID))
			must(t, "auth", c.AuthenticateAES(keyValidator, roleKey(keyValidator)))
			// Commit whatever might be left: nothing must be.
			must(t, "commit", c.CommitTransaction())
			if v, recs := snapshot(t, card); v != initialPurse || len(recs) != 0 {
				t.Fatalf("after %s: purse %d, %d records", tt.name, v, len(recs))
			}
			c = desfire.New(card)
			must(t, "select", c.SelectApplication(transportAID))
			must(t, "auth", c.AuthenticateAES(keyValidator, roleKey(keyValidator)))
			got, err := c.ReadData(fileCounters, 0, 0, desfire.CommEnciphered)
			must(t, "read counters", err)
			if !bytes.Equal(got, make([]byte, countersSize)) {
				t.Fatalf("counters changed: %X", got)
			}
		})
	}
}
