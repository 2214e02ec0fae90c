package desfire

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// ISOFileID is an ISO/IEC 7816-4 file identifier of an application (a
// DF) or a file (an EF). Native commands send it least significant byte
// first; ISO SELECT sends it most significant byte first.
type ISOFileID uint16

// File identifiers that ISO/IEC 7816-4 reserves: the MF (the PICC level of
// a DESFire), 3FFF (the current DF) and FFFF. No application or file may
// take them.
const (
	ISOFileIDMF        ISOFileID = 0x3F00
	isoFileIDCurrentDF ISOFileID = 0x3FFF
	isoFileIDReserved  ISOFileID = 0xFFFF
)

// Valid reports whether id may name an application or a file.
func (id ISOFileID) Valid() bool {
	return id != ISOFileIDMF && id != isoFileIDCurrentDF && id != isoFileIDReserved
}

// String returns the ID as four hex digits, as ISO SELECT sends it.
func (id ISOFileID) String() string { return fmt.Sprintf("%04X", uint16(id)) }

func (id ISOFileID) le() []byte { return binary.LittleEndian.AppendUint16(nil, uint16(id)) }

// MaxDFNameLen is the longest DF name an application may have.
const MaxDFNameLen = 16

// PICCDFName returns the DF name of a DESFire's PICC level (the ISO/IEC
// 7816-4 application identifier NXP registered for DESFire): ISO SELECT of
// it selects the PICC level, as SelectApplication of AID 000000 does.
func PICCDFName() []byte { return []byte{0xD2, 0x76, 0x00, 0x00, 0x85, 0x01, 0x00} }

// appISOFileIDs is the bit of CreateApplication's second key settings
// byte that says an ISO file ID (and optionally a DF name) follows and
// that the application's files may have ISO file IDs.
const appISOFileIDs = 0x20

// ISOApplication is one entry of GetDFNames: an application with ISO/IEC
// 7816-4 identifiers.
type ISOApplication struct {
	AID    AID
	FileID ISOFileID
	// DFName is 1..16 bytes, or empty when the application was created
	// with a file ID and no DF name.
	DFName []byte
}

// ParseDFNames decodes GetDFNames' answer: one application per response
// frame, AID (3 bytes) || ISO file ID (2, least significant first) || DF
// name (0..16).
func ParseDFNames(frames [][]byte) ([]ISOApplication, error) {
	out := make([]ISOApplication, 0, len(frames))
	for i, f := range frames {
		if len(f) < 5 || len(f) > 5+MaxDFNameLen {
			return nil, fmt.Errorf("%w: GetDFNames frame %d of %d bytes, want 5..%d", ErrMalformedResponse, i+1, len(f), 5+MaxDFNameLen)
		}
		a := ISOApplication{AID: AID{f[0], f[1], f[2]}, FileID: ISOFileID(binary.LittleEndian.Uint16(f[3:5]))}
		if len(f) > 5 {
			a.DFName = append([]byte(nil), f[5:]...)
		}
		out = append(out, a)
	}
	return out, nil
}

// ParseISOFileIDs decodes GetISOFileIDs' answer: 2-byte file IDs, least
// significant byte first.
func ParseISOFileIDs(b []byte) ([]ISOFileID, error) {
	if len(b)%2 != 0 {
		return nil, fmt.Errorf("%w: ISO file ID list of %d bytes, want an even number", ErrMalformedResponse, len(b))
	}
	ids := make([]ISOFileID, 0, len(b)/2)
	for i := 0; i < len(b); i += 2 {
		ids = append(ids, ISOFileID(binary.LittleEndian.Uint16(b[i:])))
	}
	return ids, nil
}

// CreateISOApplication is CreateApplication for an application with an
// ISO/IEC 7816-4 file ID and, unless dfName is empty, a DF name of 1..16
// bytes, both unique on the card: ISO SELECT finds the application by
// either, and its files may have ISO file IDs (CreateISOStdDataFile...).
func (c *Card) CreateISOApplication(aid AID, settings KeySettings, numKeys int, fid ISOFileID, dfName []byte) error {
	switch {
	case numKeys < 1 || numKeys > 14:
		return fmt.Errorf("desfire: CreateApplication %s: %d keys, want 1..14", aid, numKeys)
	case !fid.Valid():
		return fmt.Errorf("desfire: CreateApplication %s: ISO file ID %s is reserved by ISO/IEC 7816-4; choose another", aid, fid)
	case len(dfName) > MaxDFNameLen:
		return fmt.Errorf("desfire: CreateApplication %s: DF name of %d bytes, at most %d", aid, len(dfName), MaxDFNameLen)
	}
	b := []byte{aid[0], aid[1], aid[2], byte(settings), 0x80 | appISOFileIDs | byte(numKeys)}
	b = append(append(b, fid.le()...), dfName...)
	_, err := c.plain(InsCreateApplication, b...)
	return err
}

// GetDFNames lists the applications that have ISO identifiers (PICC
// level; needs the PICC master key unless the directory is free). The
// card sends one application per frame, so a long list costs a 91 AF
// exchange per application.
func (c *Card) GetDFNames() ([]ISOApplication, error) {
	b, sizes, err := c.callFrames(InsGetDFNames, nil, nil, commandMode, commandMode, -1)
	if err != nil {
		return nil, err
	}
	if sizes == nil && len(b) > 0 {
		sizes = []int{len(b)} // one frame
	}
	frames := make([][]byte, 0, len(sizes))
	for _, n := range sizes {
		frames = append(frames, b[:n:n])
		b = b[n:]
	}
	return ParseDFNames(frames)
}

// GetISOFileIDs lists the ISO file IDs of the selected application's
// files that have one, in file number order.
func (c *Card) GetISOFileIDs() ([]ISOFileID, error) {
	b, err := c.plain(InsGetISOFileIDs)
	if err != nil {
		return nil, err
	}
	return ParseISOFileIDs(b)
}

// isoFileHeader is fileHeader with the file's ISO file ID after its
// number.
func isoFileHeader(fileNo byte, fid ISOFileID, comm CommMode, r AccessRights) ([]byte, error) {
	if !fid.Valid() {
		return nil, fmt.Errorf("desfire: create file %d: ISO file ID %s is reserved by ISO/IEC 7816-4; choose another", fileNo, fid)
	}
	ar := r.Bytes()
	return append(append([]byte{fileNo}, fid.le()...), byte(comm), ar[0], ar[1]), nil
}

// CreateISOStdDataFile is CreateStdDataFile with an ISO file ID, in an
// application created with CreateISOApplication.
func (c *Card) CreateISOStdDataFile(fileNo byte, fid ISOFileID, comm CommMode, r AccessRights, size int) error {
	h, err := isoFileHeader(fileNo, fid, comm, r)
	if err != nil {
		return err
	}
	_, err = c.plain(InsCreateStdDataFile, put24(h, size)...)
	return err
}

// CreateISOBackupDataFile is CreateBackupDataFile with an ISO file ID.
func (c *Card) CreateISOBackupDataFile(fileNo byte, fid ISOFileID, comm CommMode, r AccessRights, size int) error {
	h, err := isoFileHeader(fileNo, fid, comm, r)
	if err != nil {
		return err
	}
	_, err = c.plain(InsCreateBackupDataFile, put24(h, size)...)
	return err
}

// CreateISOCyclicRecordFile is CreateCyclicRecordFile with an ISO file ID.
func (c *Card) CreateISOCyclicRecordFile(fileNo byte, fid ISOFileID, comm CommMode, r AccessRights, recordSize, maxRecords int) error {
	h, err := isoFileHeader(fileNo, fid, comm, r)
	if err != nil {
		return err
	}
	_, err = c.plain(InsCreateCyclicRecordFile, put24(put24(h, recordSize), maxRecords)...)
	return err
}

// CreateLinearRecordFile creates a linear record file of maxRecords
// records of recordSize bytes. Unlike a cyclic file it keeps every record
// and no spare: once full, WriteRecord fails with ErrBoundary until
// ClearRecordFile empties it.
func (c *Card) CreateLinearRecordFile(fileNo byte, comm CommMode, r AccessRights, recordSize, maxRecords int) error {
	b := put24(put24(fileHeader(fileNo, comm, r), recordSize), maxRecords)
	_, err := c.plain(InsCreateLinearRecordFile, b...)
	return err
}

// CreateISOLinearRecordFile is CreateLinearRecordFile with an ISO file ID.
func (c *Card) CreateISOLinearRecordFile(fileNo byte, fid ISOFileID, comm CommMode, r AccessRights, recordSize, maxRecords int) error {
	h, err := isoFileHeader(fileNo, fid, comm, r)
	if err != nil {
		return err
	}
	_, err = c.plain(InsCreateLinearRecordFile, put24(put24(h, recordSize), maxRecords)...)
	return err
}

// insISOSelectFile is ISO/IEC 7816-4 SELECT, class 00.
const insISOSelectFile byte = 0xA4

// ISO SELECT's P1: how the data names the file.
const (
	selectByFileID byte = 0x00 // MF, DF or EF by file ID
	selectEF       byte = 0x02 // EF under the current DF
	selectByDFName byte = 0x04 // DF by name
)

// SelectByDFName selects, with ISO/IEC 7816-4 SELECT (00 A4 04 0C), the
// application whose DF name is name, or the PICC level for PICCDFName().
// Like SelectApplication it closes any session; a name the card does not
// know fails with ErrISOFileNotFound. The validator's path keeps the
// native SelectApplication: the AID is shorter and its answer is a
// DESFire status.
func (c *Card) SelectByDFName(name []byte) error {
	if len(name) < 1 || len(name) > MaxDFNameLen {
		return fmt.Errorf("desfire: ISO SELECT: DF name of %d bytes, want 1..%d", len(name), MaxDFNameLen)
	}
	if err := c.isoSelect(selectByDFName, name); err != nil {
		return fmt.Errorf("select DF name %X: %w", name, err)
	}
	c.aid, c.app = AID{}, !bytes.Equal(name, PICCDFName())
	return nil
}

// SelectByFileID selects by ISO file ID (00 A4 00 0C): ISOFileIDMF is the
// PICC level, an application's file ID that application, and a file's ID
// that file of the selected application (native commands then still see
// the application). It closes any session.
func (c *Card) SelectByFileID(fid ISOFileID) error {
	if err := c.isoSelect(selectByFileID, binary.BigEndian.AppendUint16(nil, uint16(fid))); err != nil {
		return fmt.Errorf("select ISO file %s: %w", fid, err)
	}
	if fid == ISOFileIDMF || !c.app {
		// An EF's ID at PICC level would not be found, so success there is
		// the MF or an application.
		c.aid, c.app = AID{}, fid != ISOFileIDMF
	}
	return nil
}

// SelectEF selects a file of the selected application by its ISO file ID
// (00 A4 02 0C); the application stays selected. It closes any session.
func (c *Card) SelectEF(fid ISOFileID) error {
	if err := c.isoSelect(selectEF, binary.BigEndian.AppendUint16(nil, uint16(fid))); err != nil {
		return fmt.Errorf("select ISO file %s: %w", fid, err)
	}
	return nil
}

// isoSelect sends SELECT with P2 0C (no FCI: an EV1 has none to give). The
// session ends whatever the answer, as NXP's reader library assumes.
func (c *Card) isoSelect(p1 byte, data []byte) error {
	c.forgetSession()
	cmd := append([]byte{0x00, insISOSelectFile, p1, 0x0C, byte(len(data))}, data...)
	c.apdus++
	raw, err := c.t.Transmit(cmd)
	if err != nil {
		return fmt.Errorf("desfire: %s: %w", commandName(insISOSelectFile), err)
	}
	if len(raw) != 2 {
		return fmt.Errorf("%w: %s answered %d bytes, want a status word alone", ErrMalformedResponse, commandName(insISOSelectFile), len(raw))
	}
	if sw := uint16(raw[0])<<8 | uint16(raw[1]); sw != 0x9000 {
		return &ISOError{Command: insISOSelectFile, SW: sw}
	}
	return nil
}
