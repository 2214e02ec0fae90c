package vcard

import (
	"encoding/binary"

	"github.com/citycard/transit/card/desfire"
)

func get24(b []byte) int { return int(b[0]) | int(b[1])<<8 | int(b[2])<<16 }

// fileOf returns file no of the selected application.
func (c *Card) fileOf(no byte) (*file, desfire.Status) {
	if c.sel == nil {
		return nil, desfire.StatusIllegalCommand
	}
	if no >= maxFiles {
		return nil, desfire.StatusParameterError
	}
	f := c.sel.files[no]
	if f == nil {
		return nil, desfire.StatusFileNotFound
	}
	return f, desfire.StatusOK
}

// access decides whether the session may use f through any of the given
// access nibbles and, if so, in which communication mode: the file's own
// with a matching key, plain when the right is free.
func (c *Card) access(f *file, nibbles ...byte) (desfire.CommMode, desfire.Status) {
	free, keyed := false, false
	for _, n := range nibbles {
		switch {
		case n == desfire.AccessFree:
			free = true
		case n < desfire.AccessFree:
			keyed = true
			if k, open := c.session(); open && k == n {
				return f.comm, desfire.StatusOK
			}
		}
	}
	switch {
	case free:
		return desfire.CommPlain, desfire.StatusOK
	case keyed && c.sess == nil && c.ev2 == nil:
		return 0, desfire.StatusAuthenticationError
	}
	return 0, desfire.StatusPermissionDenied
}

// txOf returns f's pending change, creating it.
func (c *Card) txOf(f *file) *pending {
	p := c.tx[f]
	if p == nil {
		p = &pending{}
		c.tx[f] = p
	}
	return p
}

func (c *Card) getFileIDs(data []byte) []byte {
	if len(data) != 0 {
		return c.fail(desfire.StatusLengthError)
	}
	if c.sel == nil {
		return c.fail(desfire.StatusIllegalCommand)
	}
	if ok, st := c.allowedBy(desfire.FreeDirectoryList); !ok {
		return c.fail(st)
	}
	var ids []byte
	for no, f := range c.sel.files {
		if f != nil {
			ids = append(ids, byte(no))
		}
	}
	return c.ok(ids, cmdMode)
}

func (c *Card) getFileSettings(data []byte) []byte {
	if len(data) != 1 {
		return c.fail(desfire.StatusLengthError)
	}
	if c.sel == nil {
		return c.fail(desfire.StatusIllegalCommand)
	}
	if ok, st := c.allowedBy(desfire.FreeDirectoryList); !ok {
		return c.fail(st)
	}
	f, st := c.fileOf(data[0])
	if f == nil {
		return c.fail(st)
	}
	return c.ok(f.settings(), cmdMode)
}

func put24(b []byte, v int) []byte { return append(b, byte(v), byte(v>>8), byte(v>>16)) }

func (f *file) settings() []byte {
	ar := f.rights.Bytes()
	b := []byte{byte(f.typ), byte(f.comm), ar[0], ar[1]}
	switch f.typ {
	case desfire.FileValue:
		b = binary.LittleEndian.AppendUint32(b, uint32(f.lower))
		b = binary.LittleEndian.AppendUint32(b, uint32(f.upper))
		b = binary.LittleEndian.AppendUint32(b, uint32(f.limit))
		lc := byte(0)
		if f.limitedEnabled {
			lc = 1
		}
		return append(b, lc)
	case desfire.FileCyclicRecord, desfire.FileLinearRecord:
		return put24(put24(put24(b, f.recordSize), f.maxRecords), len(f.records))
	case desfire.FileTransactionMAC:
		return append(b, 0x02, f.tmKeyVer) // TMKeyOption AES, key version
	}
	return put24(b, len(f.data))
}

// createFile creates a data, value or record file: FileNo [|| ISO file
// ID] || CommSett || AccessRights || the type's parameters. The ISO file
// ID (least significant byte first) is there only in an application
// created with ISO file IDs, and never for a value file.
func (c *Card) createFile(ins byte, data []byte) []byte {
	want := map[byte]int{
		desfire.InsCreateStdDataFile: 7, desfire.InsCreateBackupDataFile: 7,
		desfire.InsCreateValueFile: 17, desfire.InsCreateCyclicRecordFile: 10, desfire.InsCreateLinearRecordFile: 10,
	}[ins]
	withFID := len(data) == want+2 && ins != desfire.InsCreateValueFile && c.sel != nil && c.sel.iso
	if len(data) != want && !withFID {
		return c.fail(desfire.StatusLengthError)
	}
	if c.sel == nil {
		return c.fail(desfire.StatusIllegalCommand)
	}
	if ok, st := c.allowedBy(desfire.FreeCreateDelete); !ok {
		return c.fail(st)
	}
	f := &file{no: data[0]}
	if withFID {
		f.hasFID, f.fid = true, desfire.ISOFileID(binary.LittleEndian.Uint16(data[1:3]))
		data = append([]byte{data[0]}, data[3:]...)
	}
	f.comm, f.rights = desfire.CommMode(data[1]), desfire.ParseAccessRights([2]byte{data[2], data[3]})
	if f.no >= maxFiles || !f.comm.Valid() || (f.hasFID && !f.fid.Valid()) {
		return c.fail(desfire.StatusParameterError)
	}
	rest := data[4:]
	switch ins {
	case desfire.InsCreateStdDataFile, desfire.InsCreateBackupDataFile:
		f.typ = desfire.FileStdData
		if ins == desfire.InsCreateBackupDataFile {
			f.typ = desfire.FileBackupData
		}
		n := get24(rest)
		if n == 0 || n > Capacity {
			return c.fail(desfire.StatusParameterError)
		}
		f.data = make([]byte, n)
	case desfire.InsCreateValueFile:
		f.typ = desfire.FileValue
		f.lower = int32(binary.LittleEndian.Uint32(rest))
		f.upper = int32(binary.LittleEndian.Uint32(rest[4:]))
		f.value = int32(binary.LittleEndian.Uint32(rest[8:]))
		f.limitedEnabled = rest[12]&1 != 0
		if f.lower > f.upper || f.value < f.lower || f.value > f.upper || rest[12]&^1 != 0 {
			return c.fail(desfire.StatusParameterError)
		}
	case desfire.InsCreateCyclicRecordFile, desfire.InsCreateLinearRecordFile:
		f.typ = desfire.FileCyclicRecord
		least := 2 // a cyclic file keeps one record spare
		if ins == desfire.InsCreateLinearRecordFile {
			f.typ, least = desfire.FileLinearRecord, 1
		}
		f.recordSize, f.maxRecords = get24(rest), get24(rest[3:])
		if f.recordSize == 0 || f.maxRecords < least || f.recordSize*f.maxRecords > Capacity {
			return c.fail(desfire.StatusParameterError)
		}
	}
	switch {
	case c.sel.files[f.no] != nil:
		return c.fail(desfire.StatusDuplicateError)
	case f.hasFID && (c.sel.fileByFID(f.fid) != nil || f.fid == c.sel.fid):
		return c.fail(desfire.StatusDuplicateError)
	case c.used()+f.footprint() > Capacity:
		return c.fail(desfire.StatusOutOfEEPROM)
	}
	c.sel.files[f.no] = f
	return c.ok(nil, cmdMode)
}

// getISOFileIDs lists the ISO file IDs of the selected application's
// files, in file number order, least significant byte first.
func (c *Card) getISOFileIDs(data []byte) []byte {
	if len(data) != 0 {
		return c.fail(desfire.StatusLengthError)
	}
	if c.sel == nil {
		return c.fail(desfire.StatusIllegalCommand)
	}
	if ok, st := c.allowedBy(desfire.FreeDirectoryList); !ok {
		return c.fail(st)
	}
	var ids []byte
	for _, f := range c.sel.files {
		if f != nil && f.hasFID {
			ids = binary.LittleEndian.AppendUint16(ids, uint16(f.fid))
		}
	}
	return c.ok(ids, cmdMode)
}

// isRecord reports whether f is a cyclic or linear record file.
func (f *file) isRecord() bool {
	return f.typ == desfire.FileCyclicRecord || f.typ == desfire.FileLinearRecord
}

func (c *Card) deleteFile(data []byte) []byte {
	if len(data) != 1 {
		return c.fail(desfire.StatusLengthError)
	}
	f, st := c.fileOf(data[0])
	if f == nil {
		return c.fail(st)
	}
	if ok, st := c.allowedBy(desfire.FreeCreateDelete); !ok {
		return c.fail(st)
	}
	delete(c.tx, f)
	c.sel.files[f.no] = nil
	return c.ok(nil, cmdMode)
}

func (c *Card) readData(data []byte) []byte {
	if len(data) < 7 {
		return c.fail(desfire.StatusLengthError)
	}
	f, st := c.fileOf(data[0])
	if f == nil {
		return c.fail(st)
	}
	if f.typ != desfire.FileStdData && f.typ != desfire.FileBackupData && f.typ != desfire.FileTransactionMAC {
		return c.fail(desfire.StatusParameterError)
	}
	mode, st := c.access(f, f.rights.Read, f.rights.ReadWrite)
	if st != desfire.StatusOK {
		return c.fail(st)
	}
	if data, st = c.readHeader(desfire.InsReadData, data, 7, mode); st != desfire.StatusOK {
		return c.fail(st)
	}
	content := f.data
	if f.typ == desfire.FileTransactionMAC {
		content = append(binary.LittleEndian.AppendUint32(nil, f.tmc), f.tmv[:]...)
	}
	off, n := get24(data[1:]), get24(data[4:])
	if off >= len(content) || off+n > len(content) {
		return c.fail(desfire.StatusBoundaryError)
	}
	if n == 0 {
		n = len(content) - off
	}
	// Backup files read their committed image.
	out := append([]byte(nil), content[off:off+n]...)
	c.tmiAdd(f, func(t desfire.TMI) desfire.TMI { return t.ReadData(f.no, off, out) })
	return c.ok(out, mode)
}

// write runs WriteData and WriteRecord, whose data may span frames.
func (c *Card) write(ins byte, data []byte) []byte {
	if len(data) < 7 {
		return c.fail(desfire.StatusLengthError)
	}
	f, st := c.fileOf(data[0])
	if f == nil {
		return c.fail(st)
	}
	size := len(f.data)
	if ins == desfire.InsWriteRecord {
		if !f.isRecord() {
			return c.fail(desfire.StatusParameterError)
		}
		size = f.recordSize
	} else if f.typ != desfire.FileStdData && f.typ != desfire.FileBackupData {
		return c.fail(desfire.StatusParameterError)
	}
	mode, st := c.access(f, f.rights.Write, f.rights.ReadWrite)
	if st != desfire.StatusOK {
		return c.fail(st)
	}
	off, n := get24(data[1:]), get24(data[4:])
	if n == 0 {
		return c.fail(desfire.StatusParameterError)
	}
	if off+n > size {
		return c.fail(desfire.StatusBoundaryError)
	}
	if ins == desfire.InsWriteRecord && f.typ == desfire.FileLinearRecord {
		// A full linear file takes no new record: a card refuses the write
		// itself, not the commit. A pending clear makes room.
		if p := c.tx[f]; (p == nil || !p.clear) && len(f.records) >= f.maxRecords {
			return c.fail(desfire.StatusBoundaryError)
		}
	}
	header := data[:7]
	want := 7 + n
	switch {
	case c.ev2 != nil && mode == desfire.CommMAC:
		want += 8
	case c.ev2 != nil && mode == desfire.CommEnciphered:
		want = 7 + (n/16+1)*16 + 8
	case c.sess != nil && mode == desfire.CommMAC:
		want += 8
	case c.sess != nil && mode == desfire.CommEnciphered:
		want = 7 + c.sess.EncipheredLen(n)
	}
	switch {
	case len(data) < want:
		if c.in == nil && len(data) >= desfire.MaxFrameData {
			return c.needMore(ins, data, want)
		}
		return c.fail(desfire.StatusLengthError)
	case len(data) > want:
		return c.fail(desfire.StatusLengthError)
	}
	payload, st := c.unwrap(ins, header, data[7:], n, mode)
	if st != desfire.StatusOK {
		return c.fail(st)
	}
	c.tmiAdd(f, func(t desfire.TMI) desfire.TMI {
		if ins == desfire.InsWriteRecord {
			return t.WriteRecord(f.no, off, payload)
		}
		return t.WriteData(f.no, off, payload)
	})
	if ins == desfire.InsWriteRecord {
		p := c.txOf(f)
		if p.record == nil {
			p.record = make([]byte, f.recordSize)
		}
		copy(p.record[off:], payload)
	} else if f.typ == desfire.FileBackupData {
		p := c.txOf(f)
		if p.data == nil {
			p.data = append([]byte(nil), f.data...)
		}
		copy(p.data[off:], payload)
	} else {
		copy(f.data[off:], payload)
	}
	return c.ok(nil, respMode(mode))
}

// unwrap checks and strips the protection of n data bytes sent in mode.
func (c *Card) unwrap(ins byte, header, wire []byte, n int, mode desfire.CommMode) ([]byte, desfire.Status) {
	if c.ev2 != nil {
		switch mode {
		case desfire.CommEnciphered:
			return c.fullData(ins, header, wire, n)
		case desfire.CommMAC:
			d, ok := c.ev2MAC(ins, append(append([]byte(nil), header...), wire...))
			if !ok || len(d) != len(header)+n {
				return nil, desfire.StatusIntegrityError
			}
			return d[len(header):], desfire.StatusOK
		}
		if len(wire) != n {
			return nil, desfire.StatusLengthError
		}
		return wire, desfire.StatusOK
	}
	s := c.sess
	if s == nil {
		if len(wire) != n {
			return nil, desfire.StatusLengthError
		}
		return wire, desfire.StatusOK
	}
	prefix := append([]byte{ins}, header...)
	switch mode {
	case desfire.CommEnciphered:
		if len(wire) != s.EncipheredLen(n) {
			return nil, desfire.StatusLengthError
		}
		d, ok, err := s.DecipherData(wire, prefix, n)
		if err != nil || !ok {
			return nil, desfire.StatusIntegrityError
		}
		return d, desfire.StatusOK
	case desfire.CommMAC:
		if len(wire) != n+8 {
			return nil, desfire.StatusLengthError
		}
		if !s.VerifyMAC(append(prefix, wire[:n]...), wire[n:]) {
			return nil, desfire.StatusIntegrityError
		}
		return wire[:n], desfire.StatusOK
	}
	if len(wire) != n {
		return nil, desfire.StatusLengthError
	}
	s.CMAC(append(prefix, wire...))
	return wire, desfire.StatusOK
}

func (c *Card) getValue(data []byte) []byte {
	if len(data) < 1 {
		return c.fail(desfire.StatusLengthError)
	}
	f, st := c.fileOf(data[0])
	if f == nil {
		return c.fail(st)
	}
	if f.typ != desfire.FileValue {
		return c.fail(desfire.StatusParameterError)
	}
	mode, st := c.access(f, f.rights.Read, f.rights.Write, f.rights.ReadWrite)
	if st != desfire.StatusOK {
		return c.fail(st)
	}
	if _, st = c.readHeader(desfire.InsGetValue, data, 1, mode); st != desfire.StatusOK {
		return c.fail(st)
	}
	c.tmiAdd(f, func(t desfire.TMI) desfire.TMI { return t.Value(desfire.InsGetValue, f.no, f.value) })
	return c.ok(binary.LittleEndian.AppendUint32(nil, uint32(f.value)), mode)
}

func (c *Card) valueOp(ins byte, data []byte) []byte {
	if len(data) < 1 {
		return c.fail(desfire.StatusLengthError)
	}
	f, st := c.fileOf(data[0])
	if f == nil {
		return c.fail(st)
	}
	if f.typ != desfire.FileValue {
		return c.fail(desfire.StatusParameterError)
	}
	r := f.rights
	var mode desfire.CommMode
	switch ins {
	case desfire.InsCredit:
		mode, st = c.access(f, r.ReadWrite)
	case desfire.InsDebit:
		mode, st = c.access(f, r.Read, r.Write, r.ReadWrite)
	default:
		mode, st = c.access(f, r.Write, r.ReadWrite)
	}
	if st != desfire.StatusOK {
		return c.fail(st)
	}
	v, st := c.unwrap(ins, data[:1], data[1:], 4, mode)
	if st != desfire.StatusOK {
		return c.fail(st)
	}
	amount := int64(int32(binary.LittleEndian.Uint32(v)))
	if amount < 0 {
		return c.fail(desfire.StatusParameterError)
	}
	p := c.txOf(f)
	next := int64(f.value) + p.credit + p.limited - p.debit
	switch ins {
	case desfire.InsDebit:
		if next-amount < int64(f.lower) {
			return c.fail(desfire.StatusBoundaryError)
		}
		p.debit += amount
	case desfire.InsCredit:
		if next+amount > int64(f.upper) {
			return c.fail(desfire.StatusBoundaryError)
		}
		p.credit += amount
	default:
		if !f.limitedEnabled {
			return c.fail(desfire.StatusPermissionDenied)
		}
		if next+amount > int64(f.upper) || p.limited+amount > int64(f.limit) {
			return c.fail(desfire.StatusBoundaryError)
		}
		p.limited += amount
	}
	c.tmiAdd(f, func(t desfire.TMI) desfire.TMI { return t.Value(ins, f.no, int32(amount)) })
	return c.ok(nil, respMode(mode))
}

func (c *Card) readRecords(data []byte) []byte {
	if len(data) < 7 {
		return c.fail(desfire.StatusLengthError)
	}
	f, st := c.fileOf(data[0])
	if f == nil {
		return c.fail(st)
	}
	if !f.isRecord() {
		return c.fail(desfire.StatusParameterError)
	}
	mode, st := c.access(f, f.rights.Read, f.rights.ReadWrite)
	if st != desfire.StatusOK {
		return c.fail(st)
	}
	if data, st = c.readHeader(desfire.InsReadRecords, data, 7, mode); st != desfire.StatusOK {
		return c.fail(st)
	}
	have := len(f.records)
	off, n := get24(data[1:]), get24(data[4:])
	if off >= have {
		return c.fail(desfire.StatusBoundaryError)
	}
	if n == 0 {
		n = have - off
	}
	if off+n > have {
		return c.fail(desfire.StatusBoundaryError)
	}
	out := make([]byte, 0, n*f.recordSize)
	for _, r := range f.records[have-off-n : have-off] {
		out = append(out, r...)
	}
	c.tmiAdd(f, func(t desfire.TMI) desfire.TMI { return t.ReadRecords(f.no, off, n, out) })
	return c.ok(out, mode)
}

func (c *Card) clearRecordFile(data []byte) []byte {
	if len(data) != 1 {
		return c.fail(desfire.StatusLengthError)
	}
	f, st := c.fileOf(data[0])
	if f == nil {
		return c.fail(st)
	}
	if !f.isRecord() {
		return c.fail(desfire.StatusParameterError)
	}
	if _, st := c.access(f, f.rights.ReadWrite); st != desfire.StatusOK {
		return c.fail(st)
	}
	p := c.txOf(f)
	p.clear, p.record = true, nil
	c.tmiAdd(f, func(t desfire.TMI) desfire.TMI { return t.ClearRecordFile(f.no) })
	return c.ok(nil, cmdMode)
}

// commit applies every pending change of the transaction at once.
// commit applies every pending change of the transaction at once and,
// in an application with a TransactionMAC file, MACs the transaction in
// the same step. Option 01 (EV2, EV3) answers the new TMC and TMV.
func (c *Card) commit(data []byte) []byte {
	if len(data) > 1 || (len(data) == 1 && (c.gen < EV2 || data[0]&^1 != 0)) {
		return c.fail(desfire.StatusLengthError)
	}
	want := len(data) == 1 && data[0] == 1
	var tm *file
	if c.sel != nil {
		tm = c.sel.tmacFile()
	}
	if want && tm == nil {
		return c.fail(desfire.StatusPermissionDenied)
	}
	if tm != nil && len(c.tmi) > 0 {
		if tm.tmc == 0xFFFFFFFF {
			return c.fail(desfire.StatusPermissionDenied) // the counter limit
		}
		tmv, err := desfire.TransactionMAC(tm.tmKey, tm.tmc+1, c.uid[:], desfire.TMI(c.tmi))
		if err != nil {
			return c.fail(desfire.StatusPICCIntegrity)
		}
		tm.tmc, tm.tmv = tm.tmc+1, tmv
	}
	for f, p := range c.tx {
		switch f.typ {
		case desfire.FileBackupData:
			if p.data != nil {
				f.data = p.data
			}
		case desfire.FileValue:
			f.value = int32(int64(f.value) + p.credit + p.limited - p.debit)
			if p.limited > 0 {
				f.limit = 0
			}
			if p.debit > 0 && f.limitedEnabled {
				f.limit = int32(p.debit)
			}
		case desfire.FileCyclicRecord, desfire.FileLinearRecord:
			if p.clear {
				f.records = nil
			}
			if p.record != nil {
				f.records = append(f.records, p.record)
				if f.typ == desfire.FileCyclicRecord && len(f.records) > f.maxRecords-1 {
					f.records = f.records[1:]
				}
			}
		}
	}
	c.clearTx()
	if want {
		return c.ok(append(binary.LittleEndian.AppendUint32(nil, tm.tmc), tm.tmv[:]...), cmdMode)
	}
	return c.ok(nil, cmdMode)
}

// createTMACFile creates the TransactionMAC file (EV2, EV3): the header
// FileNo || FileOption || AccessRights || TMKeyOption in plain, the key
// and its version enciphered, in an EV2 session with the application
// master key; one per application.
func (c *Card) createTMACFile(data []byte) []byte {
	switch {
	case c.gen < EV2:
		return c.fail(desfire.StatusIllegalCommand)
	case c.sel == nil:
		return c.fail(desfire.StatusIllegalCommand)
	case c.ev2 == nil:
		return c.fail(desfire.StatusPermissionDenied)
	case len(data) < 5:
		return c.fail(desfire.StatusLengthError)
	}
	if ok, st := c.masterSession(); !ok {
		return c.fail(st)
	}
	payload, st := c.fullData(desfire.InsCreateTransactionMACFile, data[:5], data[5:], 17)
	if st != desfire.StatusOK {
		return c.fail(st)
	}
	f := &file{no: data[0], typ: desfire.FileTransactionMAC, comm: desfire.CommMode(data[1]), rights: desfire.ParseAccessRights([2]byte{data[2], data[3]}),
		tmKey: append([]byte(nil), payload[:16]...), tmKeyVer: payload[16]}
	switch {
	case f.no >= maxFiles || !f.comm.Valid() || data[4] != 0x02:
		return c.fail(desfire.StatusParameterError)
	case c.sel.files[f.no] != nil:
		return c.fail(desfire.StatusDuplicateError)
	case c.sel.tmacFile() != nil:
		return c.fail(desfire.StatusDuplicateError)
	case c.used()+f.footprint() > Capacity:
		return c.fail(desfire.StatusOutOfEEPROM)
	}
	c.sel.files[f.no] = f
	return c.ok(nil, cmdMode)
}

func (c *Card) abort(data []byte) []byte {
	if len(data) != 0 {
		return c.fail(desfire.StatusLengthError)
	}
	c.clearTx()
	return c.ok(nil, cmdMode)
}

// changeFileSettings changes a file's communication mode and access
// rights: with the key of its Change right or the application master key,
// enciphered (EV1/ISO: data || CRC32; EV2: Full mode).
func (c *Card) changeFileSettings(data []byte) []byte {
	if len(data) < 2 {
		return c.fail(desfire.StatusLengthError)
	}
	f, st := c.fileOf(data[0])
	if f == nil {
		return c.fail(st)
	}
	k, open := c.session()
	switch {
	case f.rights.Change == desfire.AccessNever:
		return c.fail(desfire.StatusPermissionDenied)
	case !open:
		return c.fail(desfire.StatusAuthenticationError)
	case k != f.rights.Change && k != 0:
		return c.fail(desfire.StatusPermissionDenied)
	}
	p, st := c.fullData(desfire.InsChangeFileSettings, data[:1], data[1:], 3)
	if st != desfire.StatusOK {
		return c.fail(st)
	}
	comm := desfire.CommMode(p[0])
	if !comm.Valid() {
		return c.fail(desfire.StatusParameterError)
	}
	f.comm, f.rights = comm, desfire.ParseAccessRights([2]byte{p[1], p[2]})
	return c.ok(nil, cmdMode)
}

// freeMemory answers the user memory still free, 3 bytes.
func (c *Card) freeMemory(data []byte) []byte {
	if len(data) != 0 {
		return c.fail(desfire.StatusLengthError)
	}
	return c.ok(put24(nil, Capacity-c.used()), cmdMode)
}
