package vcard

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"io"
	"sync"

	"github.com/citycard/transit/card/desfire"
)

// Generation is the DESFire generation a card presents: what GetVersion
// says and which commands it knows.
type Generation byte

// Generations.
const (
	EV1 Generation = 1
	EV2 Generation = 2
	EV3 Generation = 3
)

func (g Generation) String() string {
	switch g {
	case EV1:
		return "EV1"
	case EV2:
		return "EV2"
	case EV3:
		return "EV3"
	}
	return "generation?"
}

// Capacity is the user memory, in bytes, that applications and files may
// take (an EV1 8K card).
const Capacity = 7936

const (
	maxApps    = 28
	maxFiles   = 32
	maxKeys    = 14
	appBlocks  = 64 // bytes an application's directory and keys take
	blockBytes = 32
)

// atr is what a PC/SC reader reports for a DESFire EV1 (ISO 14443-4 type A
// with no historical bytes, as PC/SC Part 3 builds it).
var atr = []byte{0x3B, 0x81, 0x80, 0x01, 0x80, 0x80}

// Card is a virtual DESFire EV1 card.
type Card struct {
	mu   sync.Mutex
	rand io.Reader

	gen Generation

	// Persistent state.
	uid  [7]byte
	picc application // AID zero: the PICC master key and settings
	apps []*application

	// Volatile state, lost at Reset.
	sel  *application        // nil: PICC level
	sess *desfire.Session    // EV1 (AES) or ISO (DES/3DES) session
	ev2  *desfire.EV2Session // EV2 session; never both
	tmi  []byte              // Transaction MAC Input of the transaction in progress
	auth *authInProgress
	tx   map[*file]*pending
	out  [][]byte // response frames still to send (each with status)
	in   *partialCommand
}

type key struct {
	typ     desfire.KeyType
	k       []byte // typ.KeySize() bytes
	version byte
}

func aesKey(k []byte, version byte) key {
	return key{typ: desfire.KeyAES, k: append([]byte(nil), k...), version: version}
}

type application struct {
	aid      desfire.AID
	settings desfire.KeySettings
	keys     []key
	files    [maxFiles]*file

	// iso: created with an ISO file ID (fid) and, when dfName is not
	// empty, a DF name; only then may its files have ISO file IDs.
	iso    bool
	fid    desfire.ISOFileID
	dfName []byte
}

// fileByFID returns the application's file with ISO file ID id, nil if
// none.
func (a *application) fileByFID(id desfire.ISOFileID) *file {
	for _, f := range a.files {
		if f != nil && f.hasFID && f.fid == id {
			return f
		}
	}
	return nil
}

type file struct {
	no     byte
	hasFID bool
	fid    desfire.ISOFileID // ISO file ID, when hasFID
	typ    desfire.FileType
	comm   desfire.CommMode
	rights desfire.AccessRights

	data []byte // std and backup data files

	lower, upper, value int32 // value files
	limit               int32 // limited credit still allowed
	limitedEnabled      bool

	recordSize, maxRecords int
	records                [][]byte // record files, oldest first

	tmKey    []byte  // TransactionMAC file: AppTransactionMACKey
	tmKeyVer byte    //
	tmc      uint32  // Transaction MAC counter of the last committed transaction
	tmv      [8]byte // its Transaction MAC value
}

// tmacFile returns the application's TransactionMAC file, nil if none.
func (a *application) tmacFile() *file {
	for _, f := range a.files {
		if f != nil && f.typ == desfire.FileTransactionMAC {
			return f
		}
	}
	return nil
}

// tmiAdd appends to the Transaction MAC Input when the selected
// application computes Transaction MACs and f is not its TransactionMAC
// file.
func (c *Card) tmiAdd(f *file, update func(desfire.TMI) desfire.TMI) {
	if c.sel == nil || f.typ == desfire.FileTransactionMAC || c.sel.tmacFile() == nil {
		return
	}
	c.tmi = update(desfire.TMI(c.tmi))
}

// pending is a file's uncommitted change.
type pending struct {
	data                   []byte // backup file shadow copy
	credit, debit, limited int64  // value file sums
	record                 []byte // record file: the new record
	clear                  bool   // record file: ClearRecordFile
}

type authInProgress struct {
	ins   byte
	keyNo byte
	key   key
	block cipher.Block
	rndB  []byte
	iv    []byte
	prev  *desfire.EV2Session // AuthenticateEV2NonFirst: the session it renews
}

type partialCommand struct {
	ins  byte
	buf  []byte
	want int
}

// Option configures a Card.
type Option func(*Card)

// WithRand sets the source of the card's challenges (crypto/rand by
// default); tests use it to make exchanges reproducible.
func WithRand(r io.Reader) Option { return func(c *Card) { c.rand = r } }

// WithGeneration makes the card an EV1 (the default), EV2 or EV3: its
// GetVersion, and on EV2 and EV3 EV2 secure messaging and the Transaction
// MAC file.
func WithGeneration(g Generation) Option { return func(c *Card) { c.gen = g } }

// New returns a factory-fresh card with the given 7-byte UID (a shorter
// UID is zero-padded, a longer one truncated), as a real card leaves the
// factory: no applications, PICC master key the 2K3DES zero key (version
// 0), PICC key settings 0x0F (everything allowed with the master key,
// directory listing and application creation free): GetKeySettings
// answers 0F 01.
func New(uid []byte, opts ...Option) *Card {
	c := &Card{rand: rand.Reader, gen: EV1}
	copy(c.uid[:], uid)
	c.picc = application{settings: 0x0F, keys: []key{{typ: desfire.KeyDES, k: desfire.FactoryPICCKey()}}}
	for _, o := range opts {
		o(c)
	}
	c.tx = map[*file]*pending{}
	return c
}

// ATR returns the answer-to-reset a PC/SC reader reports for the card.
func (c *Card) ATR() []byte { return append([]byte(nil), atr...) }

// UID returns the 7-byte UID.
func (c *Card) UID() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.uid[:]...)
}

// Reset power-cycles the card: authentication and selection are dropped
// and uncommitted changes discarded, as when a card leaves the field.
func (c *Card) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
}

func (c *Card) reset() {
	c.sel, c.sess, c.ev2, c.auth, c.out, c.in = nil, nil, nil, nil, nil, nil
	c.clearTx()
}

// Transmit answers cmd; it lets a Card serve as an apdu.Transport in
// process. It never fails.
func (c *Card) Transmit(cmd []byte) ([]byte, error) { return c.Respond(cmd), nil }

// current returns the selected application or the PICC.
func (c *Card) current() *application {
	if c.sel != nil {
		return c.sel
	}
	return &c.picc
}

func (c *Card) app(aid desfire.AID) *application {
	for _, a := range c.apps {
		if a.aid == aid {
			return a
		}
	}
	return nil
}

// isoApp returns the application with ISO file ID id, nil if none.
func (c *Card) isoApp(id desfire.ISOFileID) *application {
	for _, a := range c.apps {
		if a.iso && a.fid == id {
			return a
		}
	}
	return nil
}

// namedApp returns the application with DF name name, nil if none.
func (c *Card) namedApp(name []byte) *application {
	for _, a := range c.apps {
		if len(a.dfName) > 0 && bytes.Equal(a.dfName, name) {
			return a
		}
	}
	return nil
}

func (c *Card) used() int {
	n := 0
	for _, a := range c.apps {
		n += appBlocks
		for _, f := range a.files {
			if f != nil {
				n += f.footprint()
			}
		}
	}
	return n
}

func roundBlock(n int) int { return (n + blockBytes - 1) / blockBytes * blockBytes }

func (f *file) footprint() int {
	switch f.typ {
	case desfire.FileBackupData:
		return 2 * roundBlock(len(f.data))
	case desfire.FileValue:
		return blockBytes
	case desfire.FileCyclicRecord, desfire.FileLinearRecord:
		return roundBlock(f.recordSize * f.maxRecords)
	case desfire.FileTransactionMAC:
		return blockBytes
	}
	return roundBlock(len(f.data))
}

func newBlock(k key) cipher.Block {
	b, _ := desfire.NewKeyCipher(k.typ, k.k) // a stored key has its type's size
	return b
}

// Generation returns the generation the card presents.
func (c *Card) Generation() Generation { return c.gen }

// clearTx discards the transaction in progress and its Transaction MAC
// Input.
func (c *Card) clearTx() {
	clear(c.tx)
	c.tmi = nil
}

// endSession drops any secure-messaging session.
func (c *Card) endSession() { c.sess, c.ev2 = nil, nil }

// session reports whether a session is open and with which key.
func (c *Card) session() (keyNo byte, ok bool) {
	switch {
	case c.ev2 != nil:
		return c.ev2.KeyNo, true
	case c.sess != nil:
		return c.sess.KeyNo, true
	}
	return 0, false
}
