package vcard

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"

	"github.com/citycard/transit/card/desfire"
)

// ISO/IEC 7816-4 status words for APDUs that are not DESFire commands.
const (
	swOK           = 0x9000
	swWrongLength  = 0x6700
	swWrongP1P2    = 0x6A86
	swINS          = 0x6D00
	swCLA          = 0x6E00
	swFileNotFound = 0x6A82
)

func sw(w uint16) []byte { return []byte{byte(w >> 8), byte(w)} }

// Respond answers one command APDU. It never fails: a malformed or
// forbidden command gets the status word a real card would give.
func (c *Card) Respond(cmd []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.respond(cmd)
}

func (c *Card) respond(cmd []byte) []byte {
	if len(cmd) < 4 {
		return sw(swWrongLength)
	}
	cla, ins, p1, p2 := cmd[0], cmd[1], cmd[2], cmd[3]
	switch cla {
	case 0x90:
	case 0xFF: // PC/SC pseudo-APDUs answered by the reader itself
		if ins != 0xCA {
			return sw(swINS)
		}
		if p1 != 0 || p2 != 0 {
			return sw(swWrongP1P2)
		}
		return append(append([]byte(nil), c.uid[:]...), sw(swOK)...)
	case 0x00:
		return c.iso(ins, p1, p2, cmd[4:])
	default:
		return sw(swCLA)
	}
	if p1 != 0 || p2 != 0 {
		return sw(swWrongP1P2)
	}
	data, ok := body(cmd[4:])
	if !ok {
		return sw(swWrongLength)
	}
	return c.native(ins, data)
}

// body extracts the data of a short APDU after its header: nothing, Le
// alone, Lc and data, or Lc, data and Le.
func body(rest []byte) ([]byte, bool) {
	switch len(rest) {
	case 0, 1:
		return nil, true
	}
	lc := int(rest[0])
	if lc == 0 || (len(rest) != 1+lc && len(rest) != 2+lc) {
		return nil, false
	}
	return rest[1 : 1+lc], true
}

// frame is one native response: data and 91 status.
func frame(data []byte, st desfire.Status) []byte {
	out := make([]byte, 0, len(data)+2)
	return append(append(out, data...), 0x91, byte(st))
}

// native runs one native command frame.
func (c *Card) native(ins byte, data []byte) []byte {
	if ins == desfire.InsAdditionalFrame {
		switch {
		case c.auth != nil:
			return c.authenticateFinish(data)
		case c.in != nil:
			p := c.in
			p.buf = append(p.buf, data...)
			if len(p.buf) < p.want {
				return frame(nil, desfire.StatusAdditionalFrame)
			}
			c.in = nil
			return c.dispatch(p.ins, p.buf)
		case len(c.out) > 0 && len(data) == 0:
			f := c.out[0]
			c.out = c.out[1:]
			return f
		}
		c.out, c.in = nil, nil
		return c.fail(desfire.StatusIllegalCommand)
	}
	// A new command abandons whatever exchange was in progress.
	c.auth, c.out, c.in = nil, nil, nil
	return c.dispatch(ins, data)
}

// fail ends the session and the transaction, as a real card does on any
// error, and answers with st.
func (c *Card) fail(st desfire.Status) []byte {
	c.endSession()
	c.auth, c.in, c.out = nil, nil, nil
	c.clearTx()
	return frame(nil, st)
}

// ok answers success with data protected per mode when a session is open:
// plain and MAC get an 8-byte CMAC over data ‖ 00, enciphered mode gets
// data ‖ CRC32(data ‖ 00) ‖ padding, encrypted. Data longer than one frame
// is split into 91 AF frames.
func (c *Card) ok(data []byte, mode desfire.CommMode, sizes ...int) []byte {
	if e := c.ev2; e != nil {
		switch mode {
		case desfire.CommPlain:
		case desfire.CommEnciphered:
			if len(data) > 0 {
				data = e.EncryptResponse(data)
			}
			data = append(data, e.ResponseMAC(byte(desfire.StatusOK), data)...)
		default:
			data = append(append([]byte(nil), data...), e.ResponseMAC(byte(desfire.StatusOK), data)...)
		}
		e.Advance()
	} else if s := c.sess; s != nil {
		if mode == desfire.CommEnciphered {
			data = s.EncipherData(nil, data, byte(desfire.StatusOK))
		} else {
			mac := s.CMAC(append(append([]byte(nil), data...), byte(desfire.StatusOK)))
			data = append(append([]byte(nil), data...), mac[:8]...)
		}
	}
	var frames [][]byte
	for len(data) > 0 {
		n := desfire.MaxFrameData
		if len(sizes) > 0 {
			n, sizes = sizes[0], sizes[1:]
		}
		n = min(n, len(data))
		frames = append(frames, data[:n])
		data = data[n:]
	}
	if len(frames) <= 1 {
		if len(frames) == 0 {
			return frame(nil, desfire.StatusOK)
		}
		return frame(frames[0], desfire.StatusOK)
	}
	c.out = c.out[:0]
	for i, f := range frames[1:] {
		st := desfire.StatusAdditionalFrame
		if i == len(frames)-2 {
			st = desfire.StatusOK
		}
		c.out = append(c.out, frame(f, st))
	}
	return frame(frames[0], desfire.StatusAdditionalFrame)
}

// cmdMode is the protection of a command's own data, not a file's: in an
// EV1 session the response carries a CMAC, in an EV2 session command and
// response carry a MAC.
const cmdMode desfire.CommMode = 0xFF

// respMode is how the answer to a write in file mode m is protected: not
// at all for a plain file in an EV2 session, with a MAC otherwise.
func respMode(m desfire.CommMode) desfire.CommMode {
	if m == desfire.CommPlain {
		return desfire.CommPlain
	}
	return cmdMode
}

// ev2MAC checks and strips the MAC at the end of an EV2 command.
func (c *Card) ev2MAC(ins byte, data []byte) ([]byte, bool) {
	if len(data) < 8 {
		return nil, false
	}
	n := len(data) - 8
	return data[:n:n], subtle.ConstantTimeCompare(c.ev2.CommandMAC(ins, data[:n], nil), data[n:]) == 1
}

// readHeader checks the length of a read command's header (n bytes) and,
// in an EV2 session on a MAC or Full file, its MAC.
func (c *Card) readHeader(ins byte, data []byte, n int, mode desfire.CommMode) ([]byte, desfire.Status) {
	if c.ev2 != nil && mode != desfire.CommPlain {
		h, ok := c.ev2MAC(ins, data)
		switch {
		case len(h) != n:
			return nil, desfire.StatusLengthError
		case !ok:
			return nil, desfire.StatusIntegrityError
		}
		return h, desfire.StatusOK
	}
	if len(data) != n {
		return nil, desfire.StatusLengthError
	}
	return data, desfire.StatusOK
}

// fullData takes the enciphered data of a Full-mode command after header:
// in an EV2 session ct || MAC, in an EV1/ISO session data || CRC32 ||
// padding enciphered (n: the data length, -1 unknown).
func (c *Card) fullData(ins byte, header, wire []byte, n int) ([]byte, desfire.Status) {
	if c.ev2 != nil {
		ct, ok := c.ev2MAC(ins, append(append([]byte(nil), header...), wire...))
		if !ok {
			return nil, desfire.StatusIntegrityError
		}
		p, ok := c.ev2.DecryptCommand(ct[len(header):])
		if !ok || (n >= 0 && len(p) != n) {
			return nil, desfire.StatusIntegrityError
		}
		return p, desfire.StatusOK
	}
	d, ok, err := c.sess.DecipherData(wire, append([]byte{ins}, header...), n)
	if err != nil || !ok {
		return nil, desfire.StatusIntegrityError
	}
	return d, desfire.StatusOK
}

// needMore keeps a command whose data continues in 90 AF frames.
func (c *Card) needMore(ins byte, data []byte, want int) []byte {
	c.in = &partialCommand{ins: ins, buf: append([]byte(nil), data...), want: want}
	return frame(nil, desfire.StatusAdditionalFrame)
}

// macPlain advances the EV1 session IV over a command sent in plain.
func (c *Card) macPlain(ins byte, data []byte) {
	if c.sess != nil {
		c.sess.CMAC(append([]byte{ins}, data...))
	}
}

// fileData lists the file data commands, whose protection in an EV2
// session follows the file's communication mode.
var fileData = map[byte]bool{desfire.InsReadData: true, desfire.InsGetValue: true, desfire.InsReadRecords: true}

// plainBody lists the commands whose whole data travels in plain; the
// IV advances over them before they run.
var plainBody = map[byte]bool{
	desfire.InsGetVersion: true, desfire.InsGetCardUID: true, desfire.InsGetApplicationIDs: true,
	desfire.InsCreateApplication: true, desfire.InsDeleteApplication: true, desfire.InsFormatPICC: true,
	desfire.InsGetKeySettings: true, desfire.InsGetKeyVersion: true, desfire.InsGetFileIDs: true,
	desfire.InsGetFileSettings: true, desfire.InsCreateStdDataFile: true, desfire.InsCreateBackupDataFile: true,
	desfire.InsCreateValueFile: true, desfire.InsCreateCyclicRecordFile: true, desfire.InsDeleteFile: true,
	desfire.InsReadData: true, desfire.InsGetValue: true, desfire.InsReadRecords: true,
	desfire.InsClearRecordFile: true, desfire.InsCommitTransaction: true, desfire.InsAbortTransaction: true,
	desfire.InsFreeMemory: true, desfire.InsCreateLinearRecordFile: true, desfire.InsGetDFNames: true,
	desfire.InsGetISOFileIDs: true,
}

func (c *Card) dispatch(ins byte, data []byte) []byte {
	if plainBody[ins] {
		if c.ev2 != nil && !fileData[ins] {
			d, ok := c.ev2MAC(ins, data)
			if !ok {
				return c.fail(desfire.StatusIntegrityError)
			}
			data = d
		}
		c.macPlain(ins, data)
	}
	switch ins {
	case desfire.InsAuthenticateAES, desfire.InsAuthenticateISO, desfire.InsAuthenticateEV2First, desfire.InsAuthenticateEV2NonFirst:
		return c.authenticateStart(ins, data)
	case desfire.InsAuthenticateLegacy: // native DES authentication is not emulated
		return c.fail(desfire.StatusAuthenticationError)
	case desfire.InsSelectApplication:
		return c.selectApplication(data)
	case desfire.InsGetVersion:
		return c.getVersion(data)
	case desfire.InsGetCardUID:
		return c.getCardUID(data)
	case desfire.InsGetApplicationIDs:
		return c.getApplicationIDs(data)
	case desfire.InsCreateApplication:
		return c.createApplication(data)
	case desfire.InsDeleteApplication:
		return c.deleteApplication(data)
	case desfire.InsFormatPICC:
		return c.formatPICC(data)
	case desfire.InsGetKeySettings:
		return c.getKeySettings(data)
	case desfire.InsChangeKeySettings:
		return c.changeKeySettings(data)
	case desfire.InsGetKeyVersion:
		return c.getKeyVersion(data)
	case desfire.InsChangeKey:
		return c.changeKey(data)
	case desfire.InsGetFileIDs:
		return c.getFileIDs(data)
	case desfire.InsGetFileSettings:
		return c.getFileSettings(data)
	case desfire.InsCreateStdDataFile, desfire.InsCreateBackupDataFile, desfire.InsCreateValueFile,
		desfire.InsCreateCyclicRecordFile, desfire.InsCreateLinearRecordFile:
		return c.createFile(ins, data)
	case desfire.InsDeleteFile:
		return c.deleteFile(data)
	case desfire.InsReadData:
		return c.readData(data)
	case desfire.InsWriteData, desfire.InsWriteRecord:
		return c.write(ins, data)
	case desfire.InsGetValue:
		return c.getValue(data)
	case desfire.InsCredit, desfire.InsDebit, desfire.InsLimitedCredit:
		return c.valueOp(ins, data)
	case desfire.InsReadRecords:
		return c.readRecords(data)
	case desfire.InsClearRecordFile:
		return c.clearRecordFile(data)
	case desfire.InsCommitTransaction:
		return c.commit(data)
	case desfire.InsAbortTransaction:
		return c.abort(data)
	case desfire.InsCreateTransactionMACFile:
		return c.createTMACFile(data)
	case desfire.InsChangeFileSettings:
		return c.changeFileSettings(data)
	case desfire.InsFreeMemory:
		return c.freeMemory(data)
	case desfire.InsGetDFNames:
		return c.getDFNames(data)
	case desfire.InsGetISOFileIDs:
		return c.getISOFileIDs(data)
	}
	return c.fail(desfire.StatusIllegalCommand)
}

// ISO SELECT's P1 (how the data names the file) and P2 (what to answer).
const (
	selectByFileID = 0x00 // MF (3F00), an application or a file, by file ID
	selectEF       = 0x02 // a file of the selected application
	selectByDFName = 0x04 // the PICC level or an application, by DF name
	selectFCI      = 0x00 // answer the FCI: an EV1 has none, so nothing
	selectNoFCI    = 0x0C
)

// iso answers the ISO/IEC 7816-4 commands. Only SELECT is emulated: by
// DF name (the PICC's or an application's), by file ID (the MF, an
// application's, or a file of the selected application) and of a file
// under the selected application. Any SELECT ends the session and the
// transaction, as on a card, where ISO and native security states are
// one; a failed SELECT leaves the selection as it was (ISO/IEC 7816-4).
// The ISO data commands (READ BINARY, ...) answer 6D00.
func (c *Card) iso(ins, p1, p2 byte, rest []byte) []byte {
	if ins != 0xA4 {
		return sw(swINS)
	}
	if (p1 != selectByFileID && p1 != selectEF && p1 != selectByDFName) || (p2 != selectFCI && p2 != selectNoFCI) {
		return sw(swWrongP1P2)
	}
	data, ok := body(rest)
	if !ok {
		return sw(swWrongLength)
	}
	c.auth, c.out, c.in = nil, nil, nil
	c.endSession()
	c.clearTx()
	if p1 == selectByDFName {
		switch {
		case bytes.Equal(data, desfire.PICCDFName()):
			c.sel = nil
		case len(data) > 0 && c.namedApp(data) != nil:
			c.sel = c.namedApp(data)
		default:
			return sw(swFileNotFound)
		}
		return sw(swOK)
	}
	if len(data) != 2 {
		return sw(swWrongLength)
	}
	id := desfire.ISOFileID(binary.BigEndian.Uint16(data))
	switch {
	case p1 == selectByFileID && id == desfire.ISOFileIDMF:
		c.sel = nil
	case p1 == selectByFileID && c.isoApp(id) != nil:
		c.sel = c.isoApp(id)
	case c.sel != nil && c.sel.fileByFID(id) != nil:
		// Native commands name files by number, so selecting one changes
		// nothing they see.
	default:
		return sw(swFileNotFound)
	}
	return sw(swOK)
}
