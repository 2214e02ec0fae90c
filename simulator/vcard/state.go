package vcard

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/citycard/transit/card/desfire"
)

// The state encoding: magic, version, UID, PICC settings and key, then
// each application with its keys, ISO identifiers and files. Only
// committed state is saved; a reloaded card is as after a power cycle.
var stateMagic = [4]byte{'V', 'D', 'F', 'C'}

// stateVersion 3 added ISO file IDs and DF names; version 2 states (which
// have none) still load, so saved cards keep working.
const (
	stateVersion      = 3
	stateVersionNoISO = 2
)

// ErrState is wrapped by every UnmarshalBinary error.
var ErrState = errors.New("vcard: invalid card state")

// MarshalBinary encodes the card's persistent (committed) state.
func (c *Card) MarshalBinary() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := append(stateMagic[:0:0], stateMagic[:]...)
	b = append(b, stateVersion)
	b = append(b, byte(c.gen))
	b = append(b, c.uid[:]...)
	b = appendApp(b, &c.picc)
	b = append(b, byte(len(c.apps)))
	for _, a := range c.apps {
		b = appendApp(b, a)
	}
	return b, nil
}

func appendApp(b []byte, a *application) []byte {
	b = append(b, a.aid[:]...)
	b = append(b, byte(a.settings), byte(len(a.keys)))
	for _, k := range a.keys {
		b = append(append(append(b, byte(k.typ)), k.k...), k.version)
	}
	if a.iso {
		b = binary.BigEndian.AppendUint16(append(b, 1), uint16(a.fid))
		b = append(append(b, byte(len(a.dfName))), a.dfName...)
	} else {
		b = append(b, 0)
	}
	n := 0
	for _, f := range a.files {
		if f != nil {
			n++
		}
	}
	b = append(b, byte(n))
	for _, f := range a.files {
		if f == nil {
			continue
		}
		ar := f.rights.Bytes()
		b = append(b, f.no, byte(f.typ), byte(f.comm), ar[0], ar[1])
		if f.hasFID {
			b = binary.BigEndian.AppendUint16(append(b, 1), uint16(f.fid))
		} else {
			b = append(b, 0)
		}
		switch f.typ {
		case desfire.FileValue:
			b = binary.BigEndian.AppendUint32(b, uint32(f.lower))
			b = binary.BigEndian.AppendUint32(b, uint32(f.upper))
			b = binary.BigEndian.AppendUint32(b, uint32(f.value))
			b = binary.BigEndian.AppendUint32(b, uint32(f.limit))
			lc := byte(0)
			if f.limitedEnabled {
				lc = 1
			}
			b = append(b, lc)
		case desfire.FileCyclicRecord, desfire.FileLinearRecord:
			b = put24(put24(put24(b, f.recordSize), f.maxRecords), len(f.records))
			for _, r := range f.records {
				b = append(b, r...)
			}
		case desfire.FileTransactionMAC:
			b = append(append(b, f.tmKey...), f.tmKeyVer)
			b = binary.BigEndian.AppendUint32(b, f.tmc)
			b = append(b, f.tmv[:]...)
		default:
			b = put24(b, len(f.data))
			b = append(b, f.data...)
		}
	}
	return b
}

// UnmarshalBinary replaces the card's state with one saved by
// MarshalBinary; the card is left as after a power cycle. On error the
// card is unchanged.
func (c *Card) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	var magic [4]byte
	copy(magic[:], r.take(4))
	if r.err == nil && magic != stateMagic {
		return fmt.Errorf("%w: magic %q, want %q", ErrState, magic[:], stateMagic[:])
	}
	v := r.byte()
	if r.err == nil && v != stateVersion && v != stateVersionNoISO {
		return fmt.Errorf("%w: version %d, this build reads %d and %d", ErrState, v, stateVersionNoISO, stateVersion)
	}
	r.iso = v >= stateVersion
	gen := Generation(r.byte())
	if r.err == nil && (gen < EV1 || gen > EV3) {
		return fmt.Errorf("%w: generation %d", ErrState, gen)
	}
	var uid [7]byte
	copy(uid[:], r.take(7))
	picc, err := r.app(true)
	if err != nil {
		return err
	}
	n := int(r.byte())
	if n > maxApps {
		return fmt.Errorf("%w: %d applications, at most %d", ErrState, n, maxApps)
	}
	var apps []*application
	for range n {
		a, err := r.app(false)
		if err != nil {
			return err
		}
		for _, x := range apps {
			if x.aid == a.aid {
				return fmt.Errorf("%w: application %s twice", ErrState, a.aid)
			}
		}
		apps = append(apps, a)
	}
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrState, len(r.b))
	}
	if used := (&Card{apps: apps}).used(); used > Capacity {
		return fmt.Errorf("%w: applications take %d bytes, the card has %d", ErrState, used, Capacity)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen, c.uid, c.picc, c.apps = gen, uid, *picc, apps
	c.reset()
	return nil
}

type reader struct {
	b   []byte
	off int
	err error
	iso bool // the state has ISO identifiers (version 3)
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return make([]byte, n)
	}
	if n > len(r.b) {
		r.err = fmt.Errorf("%w: truncated at byte %d (need %d more, have %d)", ErrState, r.off, n, len(r.b))
		r.b = nil
		return make([]byte, n)
	}
	out := r.b[:n:n]
	r.b, r.off = r.b[n:], r.off+n
	return out
}

func (r *reader) byte() byte { return r.take(1)[0] }
func (r *reader) u24() int   { return get24(r.take(3)) }
func (r *reader) i32() int32 { return int32(binary.BigEndian.Uint32(r.take(4))) }

func (r *reader) app(picc bool) (*application, error) {
	a := &application{}
	copy(a.aid[:], r.take(3))
	a.settings = desfire.KeySettings(r.byte())
	nk := int(r.byte())
	if r.err != nil {
		return nil, r.err
	}
	switch {
	case picc && (a.aid != desfire.AID{} || nk != 1):
		return nil, fmt.Errorf("%w: PICC entry with AID %s and %d keys", ErrState, a.aid, nk)
	case !picc && (a.aid == desfire.AID{} || nk < 1 || nk > maxKeys):
		return nil, fmt.Errorf("%w: application %s with %d keys", ErrState, a.aid, nk)
	}
	a.keys = make([]key, nk)
	for i := range a.keys {
		t := desfire.KeyType(r.byte())
		if r.err == nil && (!t.Valid() || (!picc && t != desfire.KeyAES)) {
			return nil, fmt.Errorf("%w: application %s key %d of type %d", ErrState, a.aid, i, t)
		}
		a.keys[i] = key{typ: t, k: append([]byte(nil), r.take(t.KeySize())...)}
		a.keys[i].version = r.byte()
	}
	if r.iso {
		switch flag := r.byte(); {
		case r.err != nil:
		case flag > 1 || (picc && flag != 0):
			return nil, fmt.Errorf("%w: application %s with ISO flag %d", ErrState, a.aid, flag)
		case flag == 1:
			a.iso, a.fid = true, desfire.ISOFileID(binary.BigEndian.Uint16(r.take(2)))
			n := int(r.byte())
			if r.err == nil && (!a.fid.Valid() || n > desfire.MaxDFNameLen) {
				return nil, fmt.Errorf("%w: application %s with ISO file ID %s and a DF name of %d bytes", ErrState, a.aid, a.fid, n)
			}
			if n > 0 {
				a.dfName = append([]byte(nil), r.take(n)...)
			}
		}
	}
	nf := int(r.byte())
	if r.err != nil {
		return nil, r.err
	}
	if nf > maxFiles || (picc && nf != 0) {
		return nil, fmt.Errorf("%w: application %s with %d files", ErrState, a.aid, nf)
	}
	last := -1
	for range nf {
		f, err := r.file()
		if err != nil {
			return nil, fmt.Errorf("application %s: %w", a.aid, err)
		}
		// Files are saved in ascending order; one encoding per state.
		if int(f.no) <= last {
			return nil, fmt.Errorf("%w: application %s: file %d after file %d", ErrState, a.aid, f.no, last)
		}
		last = int(f.no)
		if f.hasFID && (!a.iso || a.fileByFID(f.fid) != nil || f.fid == a.fid) {
			return nil, fmt.Errorf("%w: application %s: file %d with ISO file ID %s", ErrState, a.aid, f.no, f.fid)
		}
		a.files[f.no] = f
	}
	return a, r.err
}

func (r *reader) file() (*file, error) {
	h := r.take(5)
	if r.err != nil {
		return nil, r.err
	}
	f := &file{no: h[0], typ: desfire.FileType(h[1]), comm: desfire.CommMode(h[2]), rights: desfire.ParseAccessRights([2]byte{h[3], h[4]})}
	if f.no >= maxFiles || !f.comm.Valid() {
		return nil, fmt.Errorf("%w: file %d with communication mode %d", ErrState, f.no, h[2])
	}
	if r.iso {
		switch flag := r.byte(); {
		case r.err != nil:
		case flag > 1:
			return nil, fmt.Errorf("%w: file %d with ISO flag %d", ErrState, f.no, flag)
		case flag == 1:
			f.hasFID, f.fid = true, desfire.ISOFileID(binary.BigEndian.Uint16(r.take(2)))
			if r.err == nil && (!f.fid.Valid() || f.typ == desfire.FileValue || f.typ == desfire.FileTransactionMAC) {
				return nil, fmt.Errorf("%w: %s file %d with ISO file ID %s", ErrState, f.typ, f.no, f.fid)
			}
		}
	}
	switch f.typ {
	case desfire.FileStdData, desfire.FileBackupData:
		n := r.u24()
		if r.err == nil && (n == 0 || n > Capacity) {
			return nil, fmt.Errorf("%w: file %d of %d bytes", ErrState, f.no, n)
		}
		f.data = append([]byte(nil), r.take(n)...)
	case desfire.FileValue:
		f.lower, f.upper, f.value, f.limit = r.i32(), r.i32(), r.i32(), r.i32()
		lc := r.byte()
		f.limitedEnabled = lc == 1
		if r.err == nil && (lc > 1 || f.lower > f.upper || f.value < f.lower || f.value > f.upper || f.limit < 0) {
			return nil, fmt.Errorf("%w: value file %d: limits %d..%d, value %d, limit %d", ErrState, f.no, f.lower, f.upper, f.value, f.limit)
		}
	case desfire.FileCyclicRecord, desfire.FileLinearRecord:
		f.recordSize, f.maxRecords = r.u24(), r.u24()
		n := r.u24()
		least, keep := 2, f.maxRecords-1 // a cyclic file keeps one record spare
		if f.typ == desfire.FileLinearRecord {
			least, keep = 1, f.maxRecords
		}
		if r.err == nil && (f.recordSize == 0 || f.maxRecords < least || f.recordSize*f.maxRecords > Capacity || n > keep) {
			return nil, fmt.Errorf("%w: record file %d: %d of %d records of %d bytes", ErrState, f.no, n, f.maxRecords, f.recordSize)
		}
		for range n {
			if r.err != nil {
				break
			}
			f.records = append(f.records, append([]byte(nil), r.take(f.recordSize)...))
		}
	case desfire.FileTransactionMAC:
		f.tmKey = append([]byte(nil), r.take(16)...)
		f.tmKeyVer = r.byte()
		f.tmc = binary.BigEndian.Uint32(r.take(4))
		copy(f.tmv[:], r.take(8))
	default:
		return nil, fmt.Errorf("%w: file %d of unknown type %d", ErrState, f.no, h[1])
	}
	return f, r.err
}
