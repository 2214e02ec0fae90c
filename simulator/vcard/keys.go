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
	switch {
	case c.sess == nil:
		return false, desfire.StatusAuthenticationError
	case c.sess.KeyNo != 0:
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

func (c *Card) authenticateStart(data []byte) []byte {
	c.sess = nil
	clear(c.tx)
	if len(data) != 1 {
		return c.fail(desfire.StatusLengthError)
	}
	a := c.current()
	keyNo := data[0]
	if int(keyNo) >= len(a.keys) {
		return c.fail(desfire.StatusNoSuchKey)
	}
	rndB := make([]byte, 16)
	if _, err := io.ReadFull(c.rand, rndB); err != nil {
		return c.fail(desfire.StatusPICCIntegrity)
	}
	block := newBlock(a.keys[keyNo].k)
	encB, iv := desfire.AuthStep(block, make([]byte, 16), rndB, true)
	c.auth = &authInProgress{keyNo: keyNo, block: block, rndB: rndB, iv: iv}
	return frame(encB, desfire.StatusAdditionalFrame)
}

func (c *Card) authenticateFinish(data []byte) []byte {
	a := c.auth
	c.auth = nil
	if len(data) != 32 {
		return c.fail(desfire.StatusLengthError)
	}
	token, iv := desfire.AuthStep(a.block, a.iv, data, false)
	rndA, rotB := token[:16], token[16:]
	if subtle.ConstantTimeCompare(rotB, desfire.RotateLeft(a.rndB)) != 1 {
		return c.fail(desfire.StatusAuthenticationError)
	}
	encA, _ := desfire.AuthStep(a.block, iv, desfire.RotateLeft(rndA), true)
	s, err := desfire.NewSession(a.keyNo, desfire.SessionKey(rndA, a.rndB))
	if err != nil {
		return c.fail(desfire.StatusPICCIntegrity)
	}
	c.sess = s
	return frame(encA, desfire.StatusOK)
}

func (c *Card) selectApplication(data []byte) []byte {
	c.sess = nil
	clear(c.tx)
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

// Production data GetVersion reports: NXP DESFire EV1 8K, v1.4.
var (
	versionHW = []byte{0x04, 0x01, 0x01, 0x01, 0x00, 0x1A, 0x05}
	versionSW = []byte{0x04, 0x01, 0x01, 0x01, 0x04, 0x1A, 0x05}
)

func (c *Card) getVersion(data []byte) []byte {
	if len(data) != 0 {
		return c.fail(desfire.StatusLengthError)
	}
	v := append(append([]byte(nil), versionHW...), versionSW...)
	v = append(v, c.uid[:]...)
	v = append(v, 0xBA, 0x7C, 0x00, 0x00, 0x01) // batch number
	v = append(v, 0x47, 0x26)                   // week 47, 2026 (BCD)
	return c.ok(v, desfire.CommPlain, 7, 7)
}

func (c *Card) getCardUID(data []byte) []byte {
	if len(data) != 0 {
		return c.fail(desfire.StatusLengthError)
	}
	if c.sess == nil {
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
	return c.ok(out, desfire.CommPlain)
}

func (c *Card) createApplication(data []byte) []byte {
	if len(data) != 5 {
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
	if aid == (desfire.AID{}) || data[4]&0xF0 != 0x80 || n < 1 || n > maxKeys {
		return c.fail(desfire.StatusParameterError)
	}
	if c.app(aid) != nil {
		return c.fail(desfire.StatusDuplicateError)
	}
	if len(c.apps) >= maxApps {
		return c.fail(desfire.StatusCountError)
	}
	if c.used()+appBlocks > Capacity {
		return c.fail(desfire.StatusOutOfEEPROM)
	}
	c.apps = append(c.apps, &application{aid: aid, settings: desfire.KeySettings(data[3]), keys: make([]key, n)})
	return c.ok(nil, desfire.CommPlain)
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
	resp := c.ok(nil, desfire.CommPlain)
	if c.sel == a {
		c.sel, c.sess = nil, nil
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
	return c.ok(nil, desfire.CommPlain)
}

func (c *Card) getKeySettings(data []byte) []byte {
	if len(data) != 0 {
		return c.fail(desfire.StatusLengthError)
	}
	if ok, st := c.allowedBy(desfire.FreeDirectoryList); !ok {
		return c.fail(st)
	}
	a := c.current()
	return c.ok([]byte{byte(a.settings), 0x80 | byte(len(a.keys))}, desfire.CommPlain)
}

func (c *Card) changeKeySettings(data []byte) []byte {
	if ok, st := c.masterSession(); !ok {
		return c.fail(st)
	}
	a := c.current()
	if a.settings&desfire.ConfigurationChangeable == 0 {
		return c.fail(desfire.StatusPermissionDenied)
	}
	if len(data) != 16 {
		return c.fail(desfire.StatusLengthError)
	}
	s, ok, err := c.sess.DecipherData(data, []byte{desfire.InsChangeKeySettings}, 1)
	if err != nil || !ok {
		return c.fail(desfire.StatusIntegrityError)
	}
	a.settings = desfire.KeySettings(s[0])
	return c.ok(nil, desfire.CommPlain)
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
	return c.ok([]byte{a.keys[k].version}, desfire.CommPlain)
}

// mayChangeKey applies the change-key access nibble of the key settings.
func (c *Card) mayChangeKey(a *application, k byte) bool {
	s := c.sess.KeyNo
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

func (c *Card) changeKey(data []byte) []byte {
	if len(data) != 33 {
		return c.fail(desfire.StatusLengthError)
	}
	if c.sess == nil {
		return c.fail(desfire.StatusAuthenticationError)
	}
	a := c.current()
	wireNo := data[0]
	k := wireNo
	if c.sel == nil {
		if wireNo&0xC0 != 0x80 { // AES is the only key type
			return c.fail(desfire.StatusParameterError)
		}
		k = wireNo & 0x3F
	}
	if int(k) >= len(a.keys) {
		return c.fail(desfire.StatusNoSuchKey)
	}
	if !c.mayChangeKey(a, k) {
		return c.fail(desfire.StatusPermissionDenied)
	}
	plain, err := c.sess.Decrypt(data[1:])
	if err != nil {
		return c.fail(desfire.StatusLengthError)
	}
	same := k == c.sess.KeyNo
	var newKey [16]byte
	crcIn := append([]byte{desfire.InsChangeKey, wireNo}, plain[:17]...)
	good := binary.LittleEndian.Uint32(plain[17:]) == desfire.CRC32(crcIn)
	padFrom := 21
	if same {
		copy(newKey[:], plain[:16])
	} else {
		subtle.XORBytes(newKey[:], plain[:16], a.keys[k].k[:])
		good = good && binary.LittleEndian.Uint32(plain[21:]) == desfire.CRC32(newKey[:])
		padFrom = 25
	}
	if !good || !bytes.Equal(plain[padFrom:], make([]byte, 32-padFrom)) {
		return c.fail(desfire.StatusIntegrityError)
	}
	a.keys[k] = key{k: newKey, version: plain[16]}
	if same {
		c.sess = nil
		return frame(nil, desfire.StatusOK)
	}
	return c.ok(nil, desfire.CommPlain)
}
