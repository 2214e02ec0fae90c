package vcard

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"io"
	"sync"

	"github.com/citycard/transit/card/desfire"
)

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

	// Persistent state.
	uid  [7]byte
	picc application // AID zero: the PICC master key and settings
	apps []*application

	// Volatile state, lost at Reset.
	sel  *application // nil: PICC level
	sess *desfire.Session
	auth *authInProgress
	tx   map[*file]*pending
	out  [][]byte // response frames still to send (each with status)
	in   *partialCommand
}

type key struct {
	k       [16]byte
	version byte
}

type application struct {
	aid      desfire.AID
	settings desfire.KeySettings
	keys     []key
	files    [maxFiles]*file
}

type file struct {
	no     byte
	typ    desfire.FileType
	comm   desfire.CommMode
	rights desfire.AccessRights

	data []byte // std and backup data files

	lower, upper, value int32 // value files
	limit               int32 // limited credit still allowed
	limitedEnabled      bool

	recordSize, maxRecords int
	records                [][]byte // cyclic record files, oldest first
}

// pending is a file's uncommitted change.
type pending struct {
	data                   []byte // backup file shadow copy
	credit, debit, limited int64  // value file sums
	record                 []byte // record file: the new record
	clear                  bool   // record file: ClearRecordFile
}

type authInProgress struct {
	keyNo byte
	block cipher.Block
	rndB  []byte
	iv    []byte
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

// New returns a factory-fresh card with the given 7-byte UID (a shorter
// UID is zero-padded, a longer one truncated): no applications, PICC
// master key AES zero, PICC key settings 0x0F (everything allowed with the
// master key, directory listing and application creation free).
func New(uid []byte, opts ...Option) *Card {
	c := &Card{rand: rand.Reader}
	copy(c.uid[:], uid)
	c.picc = application{settings: 0x0F, keys: []key{{}}}
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
	c.sel, c.sess, c.auth, c.out, c.in = nil, nil, nil, nil, nil
	clear(c.tx)
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
	case desfire.FileCyclicRecord:
		return roundBlock(f.recordSize * f.maxRecords)
	}
	return roundBlock(len(f.data))
}

func newBlock(k [16]byte) cipher.Block {
	b, _ := aes.NewCipher(k[:]) // a 16-byte key cannot fail
	return b
}
