package desfire

import (
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// plain runs a command whose data travels in plain (MACed response when a
// session is open).
func (c *Card) plain(ins byte, data ...byte) ([]byte, error) {
	return c.call(ins, data, nil, commandMode, commandMode, -1)
}

// GetVersion returns the card's hardware, software and production data.
func (c *Card) GetVersion() (Version, error) {
	b, err := c.plain(InsGetVersion)
	if err != nil {
		return Version{}, err
	}
	return ParseVersion(b)
}

// GetCardUID returns the real 7-byte UID; it needs an open session.
func (c *Card) GetCardUID() ([]byte, error) {
	if _, err := c.requireSession(InsGetCardUID); err != nil {
		return nil, err
	}
	return c.call(InsGetCardUID, nil, nil, commandMode, CommEnciphered, 7)
}

// GetApplicationIDs lists the applications on the card (PICC level).
func (c *Card) GetApplicationIDs() ([]AID, error) {
	b, err := c.plain(InsGetApplicationIDs)
	if err != nil {
		return nil, err
	}
	if len(b)%3 != 0 {
		return nil, fmt.Errorf("%w: application list of %d bytes", ErrMalformedResponse, len(b))
	}
	aids := make([]AID, 0, len(b)/3)
	for i := 0; i < len(b); i += 3 {
		aids = append(aids, AID{b[i], b[i+1], b[i+2]})
	}
	return aids, nil
}

// SelectApplication selects aid (the zero AID selects the PICC level). It
// closes any session, on the card as here.
func (c *Card) SelectApplication(aid AID) error {
	c.forgetSession()
	if _, err := c.exchange(InsSelectApplication, aid[:]); err != nil {
		return fmt.Errorf("select application %s: %w", aid, err)
	}
	c.aid, c.app = aid, aid != AID{}
	return nil
}

// CreateApplication creates an application with numKeys AES keys (1..14),
// all zero, version 0. It needs the PICC master key unless the PICC key
// settings allow free creation.
func (c *Card) CreateApplication(aid AID, settings KeySettings, numKeys int) error {
	if numKeys < 1 || numKeys > 14 {
		return fmt.Errorf("desfire: CreateApplication %s: %d keys, want 1..14", aid, numKeys)
	}
	_, err := c.plain(InsCreateApplication, aid[0], aid[1], aid[2], byte(settings), 0x80|byte(numKeys))
	return err
}

// DeleteApplication deletes aid and all its files.
func (c *Card) DeleteApplication(aid AID) error {
	_, err := c.plain(InsDeleteApplication, aid[0], aid[1], aid[2])
	// At application level a card deletes only the selected application
	// (whose AID an ISO SELECT does not tell), and returns to PICC level.
	if err == nil && c.app {
		c.Forget()
	}
	return err
}

// FormatPICC deletes every application. It needs the PICC master key.
func (c *Card) FormatPICC() error {
	_, err := c.plain(InsFormatPICC)
	return err
}

// GetKeySettings returns the selected application's key settings and its
// number of keys.
func (c *Card) GetKeySettings() (KeySettings, int, error) {
	s, n, _, err := c.GetKeySettingsType()
	return s, n, err
}

// GetKeySettingsType is GetKeySettings with the type of the keys, which
// the second byte carries in its top bits: a factory card answers 0F 01,
// one 2K3DES PICC key.
func (c *Card) GetKeySettingsType() (KeySettings, int, KeyType, error) {
	b, err := c.plain(InsGetKeySettings)
	if err != nil {
		return 0, 0, 0, err
	}
	if len(b) != 2 {
		return 0, 0, 0, fmt.Errorf("%w: key settings of %d bytes", ErrMalformedResponse, len(b))
	}
	return KeySettings(b[0]), int(b[1] & 0x0F), KeyType(b[1] & 0xC0), nil
}

// ChangeKeySettings sets the selected application's key settings; it
// needs a session with the master key.
func (c *Card) ChangeKeySettings(s KeySettings) error {
	if _, err := c.requireSession(InsChangeKeySettings); err != nil {
		return err
	}
	_, err := c.call(InsChangeKeySettings, nil, []byte{byte(s)}, CommEnciphered, commandMode, -1)
	return err
}

// GetKeyVersion returns the version byte of key keyNo.
func (c *Card) GetKeyVersion(keyNo byte) (byte, error) {
	b, err := c.plain(InsGetKeyVersion, keyNo)
	if err != nil {
		return 0, err
	}
	if len(b) != 1 {
		return 0, fmt.Errorf("%w: key version of %d bytes", ErrMalformedResponse, len(b))
	}
	return b[0], nil
}

// ChangeKey sets key keyNo of the selected application to the AES key
// newKey with version. oldKey is the key's current value; it is needed
// only when keyNo is not the key the session was authenticated with (the
// card then receives newKey XOR oldKey and checks a CRC of newKey).
// Changing the session's own key closes the session.
func (c *Card) ChangeKey(keyNo byte, newKey []byte, version byte, oldKey []byte) error {
	return c.ChangeKeyType(keyNo, KeyAES, newKey, version, oldKey)
}

// ChangeKeyType is ChangeKey with the new key's type: at PICC level the
// type bits travel in the key number, so a factory card's 2K3DES master
// key becomes an AES key (and Wipe makes it 2K3DES again). A DES-type key
// keeps its version in its parity bits; version is then not sent.
func (c *Card) ChangeKeyType(keyNo byte, t KeyType, newKey []byte, version byte, oldKey []byte) error {
	if _, err := c.requireSession(InsChangeKey); err != nil {
		return err
	}
	if !t.Valid() || len(newKey) != t.KeySize() {
		return fmt.Errorf("desfire: ChangeKey %d: a new %s key is %d bytes, got %d", keyNo, t, t.KeySize(), len(newKey))
	}
	wireNo := keyNo
	if !c.app {
		wireNo |= byte(t) // PICC master key: its key type
	}
	authNo, _ := c.Authenticated()
	same := keyNo&0x0F == authNo
	if !same && len(oldKey) != len(newKey) {
		return fmt.Errorf("desfire: ChangeKey %d from a session with key %d needs the old key of %d bytes", keyNo, authNo, len(newKey))
	}
	var plain []byte
	if same {
		plain = append(plain, newKey...)
	} else {
		plain = make([]byte, len(newKey))
		subtle.XORBytes(plain, newKey, oldKey)
	}
	if t == KeyAES {
		plain = append(plain, version)
	}
	if c.e != nil {
		return c.changeKeyEV2(keyNo, wireNo, same, plain, newKey)
	}
	s := c.s
	// The first CRC covers command, key number and data; the card also
	// wants a CRC of the new key alone when it gets the XOR.
	crcIn := append([]byte{InsChangeKey, wireNo}, plain...)
	plain = appendCRC32(plain, CRC32(crcIn))
	if !same {
		plain = appendCRC32(plain, CRC32(newKey))
	}
	plain = append(plain, make([]byte, padTo(len(plain), s.BlockSize()))...)
	ct := s.Encrypt(plain)
	body := append([]byte{wireNo}, ct...)
	resp, err := c.exchange(InsChangeKey, body)
	if err != nil {
		return fmt.Errorf("change key %d: %w", keyNo, err)
	}
	if same {
		c.forgetSession()
		if len(resp) != 0 {
			return fmt.Errorf("%w: ChangeKey of the session key answered %d bytes", ErrMalformedResponse, len(resp))
		}
		return nil
	}
	if len(resp) != 8 || !s.VerifyMAC([]byte{byte(StatusOK)}, resp) {
		c.forgetSession()
		return fmt.Errorf("desfire: ChangeKey %d: %w", keyNo, ErrResponseMAC)
	}
	return nil
}

// changeKeyEV2 is ChangeKey in an EV2 session (AN12196 section 5.16):
// Full mode, with a CRC of the new key (no CRC of the command) when the
// key is not the session's; changing the session's key answers without a
// MAC and ends the session.
func (c *Card) changeKeyEV2(keyNo, wireNo byte, same bool, plain, newKey []byte) error {
	e := c.e
	if !same {
		plain = appendCRC32(plain, CRC32(newKey))
	}
	ct := e.EncryptCommand(plain)
	header := []byte{wireNo}
	body := append(append(append([]byte(nil), header...), ct...), e.CommandMAC(InsChangeKey, header, ct)...)
	resp, err := c.exchange(InsChangeKey, body)
	if err != nil {
		return fmt.Errorf("change key %d: %w", keyNo, err)
	}
	if same {
		c.forgetSession()
		if len(resp) != 0 {
			return fmt.Errorf("%w: ChangeKey of the session key answered %d bytes", ErrMalformedResponse, len(resp))
		}
		return nil
	}
	if len(resp) != 8 || subtle.ConstantTimeCompare(e.ResponseMAC(byte(StatusOK), nil), resp) != 1 {
		c.forgetSession()
		return fmt.Errorf("desfire: ChangeKey %d: %w", keyNo, ErrResponseMAC)
	}
	e.Advance()
	return nil
}

// GetFileIDs lists the file numbers of the selected application.
func (c *Card) GetFileIDs() ([]byte, error) { return c.plain(InsGetFileIDs) }

// GetFileSettings returns the settings of file fileNo.
func (c *Card) GetFileSettings(fileNo byte) (FileSettings, error) {
	b, err := c.plain(InsGetFileSettings, fileNo)
	if err != nil {
		return FileSettings{}, err
	}
	return ParseFileSettings(b)
}

func fileHeader(fileNo byte, comm CommMode, r AccessRights) []byte {
	ar := r.Bytes()
	return []byte{fileNo, byte(comm), ar[0], ar[1]}
}

// CreateStdDataFile creates a standard data file of size bytes.
func (c *Card) CreateStdDataFile(fileNo byte, comm CommMode, r AccessRights, size int) error {
	_, err := c.plain(InsCreateStdDataFile, put24(fileHeader(fileNo, comm, r), size)...)
	return err
}

// CreateBackupDataFile creates a backup data file of size bytes; writes
// take effect at CommitTransaction.
func (c *Card) CreateBackupDataFile(fileNo byte, comm CommMode, r AccessRights, size int) error {
	_, err := c.plain(InsCreateBackupDataFile, put24(fileHeader(fileNo, comm, r), size)...)
	return err
}

// CreateValueFile creates a value file with limits and initial value.
func (c *Card) CreateValueFile(fileNo byte, comm CommMode, r AccessRights, l ValueLimits) error {
	b := fileHeader(fileNo, comm, r)
	b = binary.LittleEndian.AppendUint32(b, uint32(l.Lower))
	b = binary.LittleEndian.AppendUint32(b, uint32(l.Upper))
	b = binary.LittleEndian.AppendUint32(b, uint32(l.Value))
	lc := byte(0)
	if l.LimitedCredit {
		lc = 1
	}
	_, err := c.plain(InsCreateValueFile, append(b, lc)...)
	return err
}

// CreateCyclicRecordFile creates a cyclic record file of maxRecords
// records of recordSize bytes; as on a real card one record is kept free
// for the write in progress, so maxRecords-1 are readable.
func (c *Card) CreateCyclicRecordFile(fileNo byte, comm CommMode, r AccessRights, recordSize, maxRecords int) error {
	b := put24(put24(fileHeader(fileNo, comm, r), recordSize), maxRecords)
	_, err := c.plain(InsCreateCyclicRecordFile, b...)
	return err
}

// DeleteFile deletes file fileNo of the selected application.
func (c *Card) DeleteFile(fileNo byte) error {
	_, err := c.plain(InsDeleteFile, fileNo)
	return err
}

// FreeMemory returns the bytes of user memory still free (PICC level).
func (c *Card) FreeMemory() (int, error) {
	b, err := c.plain(InsFreeMemory)
	if err != nil {
		return 0, err
	}
	if len(b) != 3 {
		return 0, fmt.Errorf("%w: free memory of %d bytes", ErrMalformedResponse, len(b))
	}
	return get24(b), nil
}

// ChangeFileSettings sets file fileNo's communication mode and access
// rights. It needs a session with the key of the file's Change right (or
// the application master key), and travels enciphered.
func (c *Card) ChangeFileSettings(fileNo byte, comm CommMode, r AccessRights) error {
	if _, err := c.requireSession(InsChangeFileSettings); err != nil {
		return err
	}
	ar := r.Bytes()
	_, err := c.call(InsChangeFileSettings, []byte{fileNo}, []byte{byte(comm), ar[0], ar[1]}, CommEnciphered, commandMode, -1)
	return err
}
