package vcard

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"io"

	"github.com/citycard/transit/card/desfire"
)

// masterSession reports whether the session holds key 0 of the current
// application (or of the PICC); st is the status to give when not.
func (c *Card) masterSession() (ok bool, st desfire.Status) {
	k, open := c.session()
	switch {
	case !open:
		return false, desfire.StatusAuthenticationError
	case k != 0:
		return false, desfire.StatusPermissionDenied
	}
	return true, desfire.StatusOK
}

// allowedBy grants an operation that the key settings may make free
// (directory listing, create/delete) or else reserve to the master key.
func (c *Card) allowedBy(free desfire.KeySettings) (bool, desfire.Status) {
	if c.current().settings&free != 0 {
		return true, desfire.StatusOK
	}
	return c.masterSession()
}

// authenticateStart answers the first frame of AuthenticateAES (AA),
// AuthenticateISO (1A) and AuthenticateEV2First/NonFirst (71/77): the
// key's type must fit the command, and the EV2 ones need an EV2 or EV3.
func (c *Card) authenticateStart(ins byte, data []byte) []byte {
	prev := c.ev2
	c.endSession()
	c.clearTx()
	ev2 := ins == desfire.InsAuthenticateEV2First || ins == desfire.InsAuthenticateEV2NonFirst
	switch {
	case ev2 && c.gen < EV2:
		return c.fail(desfire.StatusIllegalCommand)
	case ins == desfire.InsAuthenticateEV2First && len(data) < 2,
		ins == desfire.InsAuthenticateEV2First && len(data) != 2+int(data[1]),
		ins != desfire.InsAuthenticateEV2First && len(data) != 1:
		return c.fail(desfire.StatusLengthError)
	case ins == desfire.InsAuthenticateEV2NonFirst && prev == nil:
		return c.fail(desfire.StatusPermissionDenied)
	}
	a := c.current()
	keyNo := data[0]
	if int(keyNo) >= len(a.keys) {
		return c.fail(desfire.StatusNoSuchKey)
	}
	k := a.keys[keyNo]
	if (k.typ == desfire.KeyAES) != (ins != desfire.InsAuthenticateISO) {
		return c.fail(desfire.StatusAuthenticationError)
	}
	n := 16
	if k.typ == desfire.KeyDES {
		n = 8
	}
	rndB := make([]byte, n)
	if _, err := io.ReadFull(c.rand, rndB); err != nil {
		return c.fail(desfire.StatusPICCIntegrity)
	}
	block := newBlock(k)
	encB, iv := desfire.AuthStep(block, make([]byte, block.BlockSize()), rndB, true)
	c.auth = &authInProgress{ins: ins, keyNo: keyNo, key: k, block: block, rndB: rndB, iv: iv}
	if ins == desfire.InsAuthenticateEV2NonFirst {
		c.auth.prev = prev
	}
	return frame(encB, desfire.StatusAdditionalFrame)
}

func (c *Card) authenticateFinish(data []byte) []byte {
	a := c.auth
	c.auth = nil
	n := len(a.rndB)
	if len(data) != 2*n {
		return c.fail(desfire.StatusLengthError)
	}
	ev2 := a.ins == desfire.InsAuthenticateEV2First || a.ins == desfire.InsAuthenticateEV2NonFirst
	iv := a.iv
	if ev2 {
		iv = make([]byte, 16) // EV2 encrypts each message with IV zero
	}
	token, iv := desfire.AuthStep(a.block, iv, data, false)
	rndA, rotB := token[:n], token[n:]
	if subtle.ConstantTimeCompare(rotB, desfire.RotateLeft(a.rndB)) != 1 {
		return c.fail(desfire.StatusAuthenticationError)
	}
	switch a.ins {
	case desfire.InsAuthenticateAES:
		encA, _ := desfire.AuthStep(a.block, iv, desfire.RotateLeft(rndA), true)
		s, err := desfire.NewSession(a.keyNo, desfire.SessionKey(rndA, a.rndB))
		if err != nil {
			return c.fail(desfire.StatusPICCIntegrity)
		}
		c.sess = s
		return frame(encA, desfire.StatusOK)
	case desfire.InsAuthenticateISO:
		encA, _ := desfire.AuthStep(a.block, iv, desfire.RotateLeft(rndA), true)
		_, sb, err := desfire.ISOSessionKey(a.key.typ, a.key.k, rndA, a.rndB)
		if err != nil {
			return c.fail(desfire.StatusPICCIntegrity)
		}
		c.sess = desfire.NewSessionCipher(a.keyNo, a.key.typ, sb)
		return frame(encA, desfire.StatusOK)
	}
	enc, mac, err := desfire.EV2SessionKeys(a.key.k, rndA, a.rndB)
	if err != nil {
		return c.fail(desfire.StatusPICCIntegrity)
	}
	zero := make([]byte, 16)
	if a.ins == desfire.InsAuthenticateEV2NonFirst {
		e, _ := desfire.NewEV2Session(a.keyNo, enc[:], mac[:], a.prev.TI[:])
		e.CmdCtr = a.prev.CmdCtr
		c.ev2 = e
		out, _ := desfire.AuthStep(a.block, zero, desfire.RotateLeft(rndA), true)
		return frame(out, desfire.StatusOK)
	}
	ti := make([]byte, 4)
	if _, err := io.ReadFull(c.rand, ti); err != nil {
		return c.fail(desfire.StatusPICCIntegrity)
	}
	e, _ := desfire.NewEV2Session(a.keyNo, enc[:], mac[:], ti)
	c.ev2 = e
	return frame(desfire.EV2AuthAnswer(a.block, ti, rndA, [6]byte{}, [6]byte{}), desfire.StatusOK)
}

func (c *Card) selectApplication(data []byte) []byte {
	c.endSession()
	c.clearTx()
	if len(data) != 3 {
		return c.fail(desfire.StatusLengthError)
	}
	aid := desfire.AID{data[0], data[1], data[2]}
	if aid == (desfire.AID{}) {
		c.sel = nil
		return frame(nil, desfire.StatusOK)
	}
	a := c.app(aid)
	if a == nil {
		c.sel = nil
		return c.fail(desfire.StatusApplicationNotFound)
	}
	c.sel = a
	return frame(nil, desfire.StatusOK)
}

// Production data GetVersion reports, 8K cards: hardware and software
// major versions 01 (EV1, v1.4), 12 (EV2) and 33 (EV3), as NXP numbers them.
var versions = map[Generation][2][]byte{
	EV1: {{0x04, 0x01, 0x01, 0x01, 0x00, 0x1A, 0x05}, {0x04, 0x01, 0x01, 0x01, 0x04, 0x1A, 0x05}},
	EV2: {{0x04, 0x01, 0x01, 0x12, 0x00, 0x1A, 0x05}, {0x04, 0x01, 0x01, 0x02, 0x01, 0x1A, 0x05}},
	EV3: {{0x04, 0x01, 0x01, 0x33, 0x00, 0x1A, 0x05}, {0x04, 0x01, 0x01, 0x03, 0x00, 0x1A, 0x05}},
}

func (c *Card) getVersion(data []byte) []byte {
	if len(data) != 0 {
		return c.fail(desfire.StatusLengthError)
	}
	hs := versions[c.gen]
	v := append(append([]byte(nil), hs[0]...), hs[1]...)
	v = append(v, c.uid[:]...)
	v = append(v, 0xBA, 0x7C, 0x00, 0x00, 0x01) // batch number
	v = append(v, 0x47, 0x26)                   // week 47, 2026 (BCD)
	return c.ok(v, cmdMode, 7, 7)
}

func (c *Card) getCardUID(data []byte) []byte {
	if len(data) != 0 {
		return c.fail(desfire.StatusLengthError)
	}
	if _, open := c.session(); !open {
		return c.fail(desfire.StatusAuthenticationError)
	}
	return c.ok(c.uid[:], desfire.CommEnciphered)
}

func (c *Card) getApplicationIDs(data []byte) []byte {
	if len(data) != 0 {
		return c.fail(desfire.StatusLengthError)
	}
	if c.sel != nil {
		return c.fail(desfire.StatusIllegalCommand)
	}
	if ok, st := c.allowedBy(desfire.FreeDirectoryList); !ok {
		return c.fail(st)
	}
	out := make([]byte, 0, 3*len(c.apps))
	for _, a := range c.apps {
		out = append(out, a.aid[:]...)
	}
	return c.ok(out, cmdMode)
}

// createApplication takes AID || KeySett1 || KeySett2 and, when KeySett2
// has the ISO flag (20), the application's ISO file ID (least
// significant byte first) and 0..16 bytes of DF name.
func (c *Card) createApplication(data []byte) []byte {
	iso := len(data) >= 5 && data[4]&isoFlag != 0
	switch {
	case len(data) < 5,
		!iso && len(data) != 5,
		iso && (len(data) < 7 || len(data) > 7+desfire.MaxDFNameLen):
		return c.fail(desfire.StatusLengthError)
	}
	if c.sel != nil {
		return c.fail(desfire.StatusIllegalCommand)
	}
	if ok, st := c.allowedBy(desfire.FreeCreateDelete); !ok {
		return c.fail(st)
	}
	aid := desfire.AID{data[0], data[1], data[2]}
	n := int(data[4] & 0x0F)
	// Bits 7-6 the key type (AES only here), bit 5 ISO, bit 4 reserved.
	if aid == (desfire.AID{}) || data[4]&0xD0 != 0x80 || n < 1 || n > maxKeys {
		return c.fail(desfire.StatusParameterError)
	}
	a := &application{aid: aid, settings: desfire.KeySettings(data[3]), iso: iso}
	if iso {
		a.fid = desfire.ISOFileID(binary.LittleEndian.Uint16(data[5:7]))
		a.dfName = append([]byte(nil), data[7:]...)
		if !a.fid.Valid() {
			return c.fail(desfire.StatusParameterError)
		}
	}
	switch {
	case c.app(aid) != nil:
		return c.fail(desfire.StatusDuplicateError)
	case iso && c.isoApp(a.fid) != nil,
		len(a.dfName) > 0 && (c.namedApp(a.dfName) != nil || bytes.Equal(a.dfName, desfire.PICCDFName())):
		return c.fail(desfire.StatusDuplicateError)
	case len(c.apps) >= maxApps:
		return c.fail(desfire.StatusCountError)
	case c.used()+appBlocks > Capacity:
		return c.fail(desfire.StatusOutOfEEPROM)
	}
	a.keys = make([]key, n)
	for i := range a.keys {
		a.keys[i] = aesKey(make([]byte, 16), 0)
	}
	c.apps = append(c.apps, a)
	return c.ok(nil, cmdMode)
}

// isoFlag is KeySett2's bit for ISO file IDs (CreateApplication).
const isoFlag = 0x20

// getDFNames answers one frame per application with ISO identifiers:
// AID || ISO file ID (least significant byte first) || DF name. The MAC
// of a session closes the last frame.
func (c *Card) getDFNames(data []byte) []byte {
	if len(data) != 0 {
		return c.fail(desfire.StatusLengthError)
	}
	if c.sel != nil {
		return c.fail(desfire.StatusIllegalCommand)
	}
	if ok, st := c.allowedBy(desfire.FreeDirectoryList); !ok {
		return c.fail(st)
	}
	var out []byte
	var sizes []int
	for _, a := range c.apps {
		if !a.iso {
			continue
		}
		e := append(append(a.aid[:0:0], a.aid[:]...), byte(a.fid), byte(a.fid>>8))
		e = append(e, a.dfName...)
		out = append(out, e...)
		sizes = append(sizes, len(e))
	}
	if len(sizes) > 0 {
		sizes = sizes[:len(sizes)-1] // the last frame: what is left, with the MAC
	}
	return c.ok(out, cmdMode, sizes...)
}

func (c *Card) deleteApplication(data []byte) []byte {
	if len(data) != 3 {
		return c.fail(desfire.StatusLengthError)
	}
	aid := desfire.AID{data[0], data[1], data[2]}
	a := c.app(aid)
	if a == nil {
		return c.fail(desfire.StatusApplicationNotFound)
	}
	// The PICC master key (or free deletion) at PICC level, or the
	// application's own master key with the application selected.
	if c.sel == nil {
		if ok, st := c.allowedBy(desfire.FreeCreateDelete); !ok {
			return c.fail(st)
		}
	} else {
		if c.sel != a {
			return c.fail(desfire.StatusPermissionDenied)
		}
		if ok, st := c.masterSession(); !ok {
			return c.fail(st)
		}
	}
	for i, x := range c.apps {
		if x == a {
			c.apps = append(c.apps[:i], c.apps[i+1:]...)
			break
		}
	}
	resp := c.ok(nil, cmdMode)
	if c.sel == a {
		c.sel = nil
		c.endSession()
	}
	return resp
}

func (c *Card) formatPICC(data []byte) []byte {
	if len(data) != 0 {
		return c.fail(desfire.StatusLengthError)
	}
	if c.sel != nil {
		return c.fail(desfire.StatusPermissionDenied)
	}
	if ok, st := c.masterSession(); !ok {
		return c.fail(st)
	}
	c.apps = nil
	return c.ok(nil, cmdMode)
}

func (c *Card) getKeySettings(data []byte) []byte {
	if len(data) != 0 {
		return c.fail(desfire.StatusLengthError)
	}
	if ok, st := c.allowedBy(desfire.FreeDirectoryList); !ok {
		return c.fail(st)
	}
	a := c.current()
	return c.ok([]byte{byte(a.settings), byte(a.keys[0].typ) | byte(len(a.keys))}, cmdMode)
}

func (c *Card) changeKeySettings(data []byte) []byte {
	if ok, st := c.masterSession(); !ok {
		return c.fail(st)
	}
	a := c.current()
	if a.settings&desfire.ConfigurationChangeable == 0 {
		return c.fail(desfire.StatusPermissionDenied)
	}
	s, st := c.fullData(desfire.InsChangeKeySettings, nil, data, 1)
	if st != desfire.StatusOK || len(s) != 1 {
		return c.fail(desfire.StatusIntegrityError)
	}
	a.settings = desfire.KeySettings(s[0])
	return c.ok(nil, cmdMode)
}

func (c *Card) getKeyVersion(data []byte) []byte {
	if len(data) != 1 {
		return c.fail(desfire.StatusLengthError)
	}
	a := c.current()
	k := data[0]
	if c.sel == nil {
		k &= 0x3F
	}
	if int(k) >= len(a.keys) {
		return c.fail(desfire.StatusNoSuchKey)
	}
	return c.ok([]byte{a.keys[k].version}, cmdMode)
}

// mayChangeKey applies the change-key access nibble of the key settings.
func (c *Card) mayChangeKey(a *application, k byte) bool {
	s, _ := c.session()
	if k == 0 {
		return s == 0 && a.settings&desfire.AllowChangeMasterKey != 0
	}
	switch ca := a.settings.ChangeKeyAccess(); ca {
	case 0x0:
		return s == 0
	case 0xE:
		return s == k
	case 0xF:
		return false
	default:
		return s == ca
	}
}

// changeKey takes the new key, its type and version: in an EV1 or ISO
// session (NewKey or NewKey XOR OldKey) [|| KeyVer] || CRC32(C4 || KeyNo
// || those) [|| CRC32(NewKey)] enciphered; in an EV2 session the same
// without the first CRC, in Full mode. At PICC level the key number's top
// bits give the new key's type; an application's keys stay AES.
func (c *Card) changeKey(data []byte) []byte {
	if len(data) < 9 {
		return c.fail(desfire.StatusLengthError)
	}
	authNo, open := c.session()
	if !open {
		return c.fail(desfire.StatusAuthenticationError)
	}
	a := c.current()
	wireNo := data[0]
	k, typ := wireNo, desfire.KeyAES
	if c.sel == nil {
		typ, k = desfire.KeyType(wireNo&0xC0), wireNo&0x3F
		if !typ.Valid() {
			return c.fail(desfire.StatusParameterError)
		}
	}
	if int(k) >= len(a.keys) {
		return c.fail(desfire.StatusNoSuchKey)
	}
	if !c.mayChangeKey(a, k) {
		return c.fail(desfire.StatusPermissionDenied)
	}
	same := k == authNo
	kl, vl := typ.KeySize(), 0
	if typ == desfire.KeyAES {
		vl = 1
	}
	if !same && a.keys[k].typ != typ {
		return c.fail(desfire.StatusParameterError)
	}
	var plain []byte
	if c.ev2 != nil {
		p, st := c.fullData(desfire.InsChangeKey, data[:1], data[1:], -1)
		if st != desfire.StatusOK {
			return c.fail(st)
		}
		plain = p
		want := kl + vl
		if !same {
			want += 4
		}
		if len(plain) != want {
			return c.fail(desfire.StatusIntegrityError)
		}
	} else {
		p, err := c.sess.Decrypt(data[1:])
		if err != nil {
			return c.fail(desfire.StatusLengthError)
		}
		body := kl + vl
		crcEnd := body + 4
		if !same {
			crcEnd += 4
		}
		if len(p) < crcEnd || len(p)-crcEnd >= c.sess.BlockSize() || !bytes.Equal(p[crcEnd:], make([]byte, len(p)-crcEnd)) {
			return c.fail(desfire.StatusIntegrityError)
		}
		crcIn := append([]byte{desfire.InsChangeKey, wireNo}, p[:body]...)
		if binary.LittleEndian.Uint32(p[body:]) != desfire.CRC32(crcIn) {
			return c.fail(desfire.StatusIntegrityError)
		}
		plain = append(append([]byte(nil), p[:body]...), p[body+4:crcEnd]...)
	}
	newKey := make([]byte, kl)
	if same {
		copy(newKey, plain[:kl])
	} else {
		subtle.XORBytes(newKey, plain[:kl], a.keys[k].k)
		if binary.LittleEndian.Uint32(plain[kl+vl:]) != desfire.CRC32(newKey) {
			return c.fail(desfire.StatusIntegrityError)
		}
	}
	nk := key{typ: typ, k: newKey}
	if vl == 1 {
		nk.version = plain[kl]
	} else {
		nk.version = desVersion(newKey)
	}
	a.keys[k] = nk
	if same {
		c.endSession()
		return frame(nil, desfire.StatusOK)
	}
	return c.ok(nil, cmdMode)
}

// desVersion is the version a DES key carries in its parity bits (the
// low bit of its first eight bytes), as GetKeyVersion reports it.
func desVersion(k []byte) byte {
	var v byte
	for _, b := range k[:8] {
		v = v<<1 | b&1
	}
	return v
}
