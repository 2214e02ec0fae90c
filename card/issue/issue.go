// Package issue personalises city cards the way an issuance desk does:
// it builds the applications and files of card.CityCard() on a blank card,
// gives every key slot its role's key diversified for that card, writes
// the identity, holder, contract and counters, credits the purse, reads
// everything back, and only then locks the card with this system's PICC
// master key.
//
// # Blank cards
//
// A blank card is as it leaves the factory: PICC master key the all-zero
// 2K3DES key, version 0, key settings 0x0F (GetKeySettings 0F 01).
// Personalise opens it with ISO authentication and, last of all, turns
// that key into this system's AES issuer key (ChangeKey with the key-type
// flag). Cards a supplier pre-initialised to the AES zero key are taken
// too (GetKeySettings says which).
//
// # Card generations
//
// Personalise asks GetVersion which generation the card is. On an EV2 or
// EV3 it authenticates with AuthenticateEV2First (EV2 secure messaging)
// and gives the transport application its TransactionMAC file
// (card.FileTMAC), with the card's AppTransactionMACKey diversified from
// the HSM's tmac-master (cardkey.TMACKey); an EV1 gets EV1 secure
// messaging and no Transaction MAC.
//
// # The PICC master key
//
// After personalisation the PICC master key is the issuer's key
// diversified for the card with AID 000000 (cardkey.Source.Key with
// card.RoleIssuer and AID 0), its version byte the key generation, and the
// PICC key settings are PICCKeySettings: the application list stays
// readable, but creating or deleting applications and formatting need
// that key. LAYOUT.md gives the PICC to the issuer as well; only the
// issuer's keystore holds that master.
//
// # Interrupted personalisation
//
// Changing the PICC master key is the last write. Until then the card
// still opens with the zero key, so a card torn away at any point is
// recognised on the next Personalise (zero PICC key, some of our
// applications present), formatted and personalised from the start: the
// desk simply presents it again. A card whose PICC key is already ours is
// never formatted by Personalise: if it carries exactly what is being
// personalised, Personalise verifies it and succeeds (the tear hit the
// final answer); otherwise it reports ErrAlreadyPersonalised and the desk
// must Wipe it first, deliberately.
package issue

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/apdu"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/hsm"
)

// Key settings of the PICC level.
const (
	// FactoryKeySettings are a blank card's PICC key settings: everything
	// changeable, directory listing and application creation free.
	FactoryKeySettings = desfire.AllowChangeMasterKey | desfire.FreeDirectoryList |
		desfire.FreeCreateDelete | desfire.ConfigurationChangeable
	// PICCKeySettings are the settings of a personalised card: the master
	// key and the settings stay changeable (rotation, Wipe), the
	// application list stays free to read (AIDs say nothing about the
	// holder), and creating or deleting applications needs the PICC key,
	// so nobody can delete the transport application and plant one of
	// their own.
	PICCKeySettings = desfire.AllowChangeMasterKey | desfire.FreeDirectoryList | desfire.ConfigurationChangeable
)

// Errors a desk can act on; test with errors.Is.
var (
	// ErrAlreadyPersonalised: the card carries this system's PICC key and
	// something other than the requested personalisation. Wipe it to
	// re-issue it.
	ErrAlreadyPersonalised = errors.New("card already personalised")
	// ErrPartlyWiped: the card carries this system's PICC key but not a
	// complete personalisation, as after an interrupted Wipe. Wipe it
	// again.
	ErrPartlyWiped = errors.New("card partly wiped")
	// ErrForeignCard: the card's PICC key is neither the factory key nor
	// this system's, or it holds applications of another system. The desk
	// cannot use it.
	ErrForeignCard = errors.New("card belongs to another system")
	// ErrMismatch: a file read back differs from what was written.
	ErrMismatch = errors.New("card read-back differs from what was written")
)

// Personalisation is what the desk writes on one card.
type Personalisation struct {
	Identity card.Identity
	// Holder is the personal data; only the desk key reads it back.
	Holder card.Holder
	// Contract is the transport contract: status, entitlements, passes.
	// Its KeyVersion is set by Personalise to the key generation used.
	Contract card.Contract
	// PurseKop is the initial purse credit in kopiyky, 0..card.PurseUpper.
	PurseKop int64
	// KeyVersion is the generation of the role keys to put on the card;
	// 0 takes the newest, which must then be the same for every role
	// (LAYOUT.md: all of a card's role keys change together).
	KeyVersion int
}

// item is one file content personalisation writes and verifies.
type item struct {
	app    card.AID
	file   uint8
	role   card.Role // who writes and reads it back
	data   []byte    // std or backup file content
	credit int32     // value file: the credit (and the expected value)
}

type keyID struct {
	role card.Role
	app  card.AID
}

// plan is everything Personalise will write, with every key derived
// before the first APDU, so a missing master fails before the card is
// touched.
type plan struct {
	number card.Number
	gen    int
	layout card.Layout
	items  []item
	keys   map[keyID][]byte
	tmac   *cardkey.Key // EV2/EV3: the card's Transaction MAC key
}

// piccApp is the PICC level's AID in cardkey terms.
const piccApp card.AID = 0

func newPlan(ctx context.Context, keys *cardkey.Source, uid []byte, p Personalisation) (*plan, error) {
	if keys == nil {
		return nil, errors.New("issue: no key source")
	}
	if len(uid) != cardkey.UIDSize {
		return nil, fmt.Errorf("issue: UID %X is %d bytes, want %d", uid, len(uid), cardkey.UIDSize)
	}
	pl := &plan{number: p.Identity.Number, layout: card.CityCard(), keys: map[keyID][]byte{}}
	if err := pl.layout.Validate(); err != nil {
		return nil, fmt.Errorf("issue: card layout: %w", err)
	}
	if p.Contract.Number != p.Identity.Number {
		return nil, fmt.Errorf("issue: contract number %s differs from identity number %s", p.Contract.Number, p.Identity.Number)
	}
	if p.PurseKop < 0 || p.PurseKop > int64(card.PurseUpper) {
		return nil, fmt.Errorf("issue: initial purse credit %d kop outside 0..%d", p.PurseKop, int64(card.PurseUpper))
	}
	id, err := p.Identity.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("issue: identity: %w", err)
	}
	holder, err := p.Holder.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("issue: holder: %w", err)
	}
	if err := p.Contract.Validate(); err != nil {
		return nil, fmt.Errorf("issue: contract: %w", err)
	}
	// The keys come after the checks of p: those need no HSM.
	gen, err := generation(ctx, keys, &pl.layout, p.KeyVersion)
	if err != nil {
		return nil, err
	}
	pl.gen = gen
	contract := p.Contract
	contract.KeyVersion = uint8(gen)
	cb, err := contract.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("issue: contract: %w", err)
	}
	// The issuer holds no data in the holder and transport applications
	// (LAYOUT.md), so those files are written with the keys terminals
	// use: desk for holder and contract, top-up for money. The tap log
	// starts empty: an empty log is zero rides counted.
	pl.items = []item{
		{app: card.AIDIdentification, file: card.FileIdentity, role: card.RoleIssuer, data: id},
		{app: card.AIDHolder, file: card.FileHolder, role: card.RoleDesk, data: holder},
		{app: card.AIDTransport, file: card.FileContract, role: card.RoleDesk, data: cb},
		{app: card.AIDTransport, file: card.FilePurse, role: card.RoleTopUp, credit: int32(p.PurseKop)},
	}
	if err := pl.checkItems(); err != nil {
		return nil, err
	}

	need := []keyID{{card.RoleIssuer, piccApp}}
	for _, a := range pl.layout.Apps {
		for _, k := range a.Keys {
			need = append(need, keyID{k.Role, a.AID})
		}
	}
	for _, id := range need {
		k, err := keys.Key(ctx, id.role, uid, id.app, gen)
		if err != nil {
			return nil, fmt.Errorf("issue: %w", err)
		}
		pl.keys[id] = k.Value[:]
	}
	return pl, nil
}

// generation picks the key generation: the requested one, or the newest,
// which every role of the layout must share.
func generation(ctx context.Context, keys *cardkey.Source, l *card.Layout, want int) (int, error) {
	if want < 0 || want > cardkey.MaxVersion {
		return 0, fmt.Errorf("issue: key version %d outside 1..%d", want, cardkey.MaxVersion)
	}
	if want != 0 {
		return want, nil
	}
	gen := 0
	var first card.Role
	for _, a := range l.Apps {
		for _, k := range a.Keys {
			v, err := keys.Newest(ctx, k.Role)
			if err != nil {
				return 0, fmt.Errorf("issue: %w", err)
			}
			switch {
			case gen == 0:
				gen, first = v, k.Role
			case v != gen:
				return 0, fmt.Errorf("issue: newest %s master is version %d but newest %s master is version %d: "+
					"rotate all card masters together, or set Personalisation.KeyVersion", first, gen, k.Role, v)
			}
		}
	}
	if gen == 0 {
		return 0, errors.New("issue: card layout has no keys")
	}
	return gen, nil
}

// checkItems checks each item against the layout, so a layout change that
// takes a right away fails here, before any card is touched.
func (pl *plan) checkItems() error {
	for _, it := range pl.items {
		a, ok := pl.layout.App(it.app)
		if !ok {
			return fmt.Errorf("issue: layout has no application %s", it.app)
		}
		f, ok := a.File(it.file)
		if !ok {
			return fmt.Errorf("issue: layout has no file %d in application %q", it.file, a.Name)
		}
		k, ok := a.KeyFor(it.role)
		if !ok {
			return fmt.Errorf("issue: layout gives role %s no key in application %q", it.role, a.Name)
		}
		switch f.Type {
		case card.StdData, card.BackupData:
			if !f.Rights.CanWrite(k) || !f.Rights.CanRead(k) {
				return fmt.Errorf("issue: layout: %s key %d cannot write and read back %q", it.role, k, f.Name)
			}
			if len(it.data) != f.Size {
				return fmt.Errorf("issue: %q content is %d bytes, file is %d", f.Name, len(it.data), f.Size)
			}
		case card.Value:
			if !f.Rights.CanCredit(k) {
				return fmt.Errorf("issue: layout: %s key %d cannot credit %q", it.role, k, f.Name)
			}
			if v := f.Initial + card.Money(it.credit); v > f.Upper {
				return fmt.Errorf("issue: %q would hold %s, above its limit %s", f.Name, v, f.Upper)
			}
		default:
			return fmt.Errorf("issue: cannot personalise %s file %q", f.Type, f.Name)
		}
	}
	return nil
}

func (pl *plan) key(r card.Role, app card.AID) []byte { return pl.keys[keyID{r, app}] }

// runner runs named steps against one card, checking ctx between steps
// and naming the failed step in the error.
type runner struct {
	ctx  context.Context
	c    *desfire.Card
	what string // "personalise" or "wipe", for the error text
	ev2  bool   // the card is an EV2 or EV3: EV2 secure messaging
}

// auth authenticates with AES key keyNo of the selected application, in
// EV2 secure messaging when the card offers it.
func (r *runner) auth(keyNo byte, key []byte) error {
	if r.ev2 {
		return r.c.AuthenticateEV2First(keyNo, key)
	}
	return r.c.AuthenticateAES(keyNo, key)
}

// generation asks the card whether it is an EV2 or later (GetVersion's
// hardware major version: 01 EV1, 12 EV2, 33 EV3).
func (r *runner) generation() error {
	var v desfire.Version
	// Select the PICC first: it ends whatever session the card was in.
	if err := r.do("select PICC", func() error { return r.c.SelectApplication(desfire.AID{}) }); err != nil {
		return err
	}
	if err := r.do("get the card's version", func() (err error) { v, err = r.c.GetVersion(); return err }); err != nil {
		return err
	}
	r.ev2 = EV2(v)
	return nil
}

// EV2 reports whether GetVersion says major hardware version 0x12 or
// later (EV2, EV3) of an NXP DESFire.
func EV2(v desfire.Version) bool { return v.Hardware[0] == 0x04 && v.Hardware[3] >= 0x12 }

func (r *runner) do(step string, f func() error) error {
	if err := r.ctx.Err(); err != nil {
		return fmt.Errorf("issue: %s: before %s: %w", r.what, step, err)
	}
	err := f()
	if err == nil {
		return nil
	}
	if errors.Is(err, apdu.ErrCardRemoved) {
		return fmt.Errorf("issue: %s: %s: %w; put the card back and run %s again", r.what, step, err, r.again())
	}
	return fmt.Errorf("issue: %s: %s: %w", r.what, step, err)
}

func (r *runner) again() string {
	if r.what == "wipe" {
		return "Wipe"
	}
	return "Personalise: it starts over, or finds the work done"
}

// factoryKey is a new application's keys (AES zero).
func factoryKey() []byte { return make([]byte, 16) }

// openFactoryPICC authenticates to the PICC with a blank card's master
// key, whose type GetKeySettings reports: the factory 2K3DES zero key, or
// an AES (or 3K3DES) zero key a supplier set.
func (r *runner) openFactoryPICC() error {
	c := r.c
	var t desfire.KeyType
	if err := r.do("get the PICC key settings", func() (err error) { _, _, t, err = c.GetKeySettingsType(); return err }); err != nil {
		return err
	}
	return r.do(fmt.Sprintf("authenticate to the PICC with the factory %s key", t), func() error {
		switch t {
		case desfire.KeyAES:
			return c.AuthenticateAES(0, make([]byte, 16))
		default:
			return c.AuthenticateISO(0, t, make([]byte, t.KeySize()))
		}
	})
}

// Personalise writes p onto the blank card uid through tr, using the
// issuer's keystore behind keys (it needs every role's card master).
//
// Steps: create each application and file of card.CityCard(); change
// every key to its role key diversified for this card (version byte = the
// key generation); write the identity with the issuer key, the holder, the
// contract and the initial counters with the desk key, credit the purse
// with the top-up key and commit; read everything back with fresh
// sessions, proving each key; finally set the PICC key settings and the
// PICC master key. A card torn away at any step can be presented again
// (see the package documentation).
func Personalise(ctx context.Context, tr apdu.Transport, keys *cardkey.Source, uid []byte, p Personalisation) error {
	pl, err := newPlan(ctx, keys, uid, p)
	if err != nil {
		return err
	}
	r := &runner{ctx: ctx, c: desfire.New(tr), what: "personalise"}
	if err := r.generation(); err != nil {
		return err
	}
	if r.ev2 {
		// The Transaction MAC key has the card's key generation, so that a
		// tap's key version names both (cardtx.CardMAC.KeyVersion).
		k, err := keys.TMACKey(ctx, uid, pl.gen)
		if err != nil {
			return fmt.Errorf("issue: the card is a DESFire EV2 or EV3, which gets a Transaction MAC key of key generation %d: %w; "+
				"create (or rotate) the master with 'transit hsm keygen %s' (nothing was written)", pl.gen, err, hsm.LabelTMACMaster)
		}
		pl.tmac = &k
	}
	ver, err := r.openPICC(keys, uid)
	if err != nil {
		return err
	}
	if ver != 0 {
		return pl.alreadyDone(r, ver)
	}
	// The PICC session (factory key) is open: clear what an interrupted
	// run left, then build.
	if err := r.clearPartial(&pl.layout); err != nil {
		return err
	}
	if err := pl.build(r); err != nil {
		return err
	}
	if err := pl.write(r); err != nil {
		return err
	}
	if err := pl.verify(r); err != nil {
		return err
	}
	return pl.lock(r)
}

// openPICC selects the PICC level and authenticates with its master key:
// the factory key when its version is 0, else this system's issuer key of
// that version. It returns the key version.
func (r *runner) openPICC(keys *cardkey.Source, uid []byte) (byte, error) {
	c := r.c
	if err := r.do("select PICC", func() error { return c.SelectApplication(desfire.AID{}) }); err != nil {
		return 0, err
	}
	var ver byte
	if err := r.do("get PICC key version", func() (err error) { ver, err = c.GetKeyVersion(0); return err }); err != nil {
		return 0, err
	}
	if ver == 0 {
		err := r.openFactoryPICC()
		if errors.Is(err, desfire.ErrAuthentication) {
			return 0, fmt.Errorf("%w: the PICC master key is not the factory key (version 0): %w", err, ErrForeignCard)
		}
		return 0, err
	}
	var key []byte
	{
		k, err := keys.Key(r.ctx, card.RoleIssuer, uid, piccApp, int(ver))
		if errors.Is(err, hsm.ErrNotFound) {
			return 0, fmt.Errorf("issue: %s: PICC master key has version %d and no issuer master of that version exists: %w (%w)",
				r.what, ver, ErrForeignCard, err)
		}
		if err != nil {
			return 0, fmt.Errorf("issue: %s: %w", r.what, err)
		}
		key = k.Value[:]
	}
	err := r.do("authenticate to the PICC", func() error { return r.auth(0, key) })
	if errors.Is(err, desfire.ErrAuthentication) {
		return 0, fmt.Errorf("%w: the PICC master key is not this system's issuer key version %d: %w", err, ver, ErrForeignCard)
	}
	return ver, err
}

// clearPartial formats a card left half-personalised by an interrupted
// run (factory PICC key, some of our applications); a card holding any
// other application is refused rather than formatted.
func (r *runner) clearPartial(l *card.Layout) error {
	var aids []desfire.AID
	if err := r.do("list applications", func() (err error) { aids, err = r.c.GetApplicationIDs(); return err }); err != nil {
		return err
	}
	if len(aids) == 0 {
		return nil
	}
	for _, a := range aids {
		aid := card.AID(uint32(a[0]) | uint32(a[1])<<8 | uint32(a[2])<<16)
		if _, ours := l.App(aid); !ours {
			return fmt.Errorf("issue: %s: card holds application %s of another system; it is not formatted: %w", r.what, a, ErrForeignCard)
		}
	}
	// Ours, unfinished: the PICC key was never changed, so nothing on it
	// was ever handed out. Start over.
	return r.do(fmt.Sprintf("format the partly personalised card (%d applications)", len(aids)), r.c.FormatPICC)
}

// build creates the applications, their files and keys. It expects the
// PICC session with the factory key.
func (pl *plan) build(r *runner) error {
	c := r.c
	for _, a := range pl.layout.Apps {
		if err := r.do(fmt.Sprintf("create application %q (%s)", a.Name, a.AID), func() error {
			if a.ISOFileID != 0 {
				return c.CreateISOApplication(a.AID.Bytes(), desfire.KeySettings(a.KeySettings), len(a.Keys), desfire.ISOFileID(a.ISOFileID), a.DFName)
			}
			return c.CreateApplication(a.AID.Bytes(), desfire.KeySettings(a.KeySettings), len(a.Keys))
		}); err != nil {
			return err
		}
	}
	for _, a := range pl.layout.Apps {
		// A new application's keys are all zero, version 0.
		if err := r.do(fmt.Sprintf("select application %q", a.Name), func() error { return c.SelectApplication(a.AID.Bytes()) }); err != nil {
			return err
		}
		if err := r.do(fmt.Sprintf("authenticate to new application %q", a.Name), func() error {
			return r.auth(card.KeyIssuer, factoryKey())
		}); err != nil {
			return err
		}
		for _, f := range a.Files {
			if err := r.do(fmt.Sprintf("create file %d (%s) in %q", f.No, f.Name, a.Name), func() error { return createFile(c, f) }); err != nil {
				return err
			}
		}
		if a.AID == card.AIDTransport && pl.tmac != nil {
			// Before the issuer key changes: it needs the master key's
			// EV2 session.
			rights := desfire.AccessRights{Read: card.KeyValidator, Write: desfire.AccessNever, ReadWrite: desfire.AccessNever, Change: card.KeyIssuer}
			if err := r.do(fmt.Sprintf("create the Transaction MAC file %d in %q", card.FileTMAC, a.Name), func() error {
				return c.CreateTransactionMACFile(card.FileTMAC, desfire.CommPlain, rights, pl.tmac.Value[:], pl.tmac.Version)
			}); err != nil {
				return err
			}
		}
		// Key 0 last: changing the session's own key ends the session.
		for i := len(a.Keys) - 1; i >= 0; i-- {
			k := a.Keys[i]
			var old []byte
			if k.No != card.KeyIssuer {
				old = factoryKey()
			}
			if err := r.do(fmt.Sprintf("change key %d (%s) of %q", k.No, k.Role, a.Name), func() error {
				return c.ChangeKey(k.No, pl.key(k.Role, a.AID), byte(pl.gen), old)
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

func createFile(c *desfire.Card, f card.File) error {
	comm := desfire.CommMode(f.Comm)
	rights := desfire.AccessRights{Read: byte(f.Rights.Read), Write: byte(f.Rights.Write), ReadWrite: byte(f.Rights.ReadWrite), Change: byte(f.Rights.Change)}
	if fid := desfire.ISOFileID(f.ISOFileID); fid != 0 {
		switch f.Type {
		case card.StdData:
			return c.CreateISOStdDataFile(f.No, fid, comm, rights, f.Size)
		case card.BackupData:
			return c.CreateISOBackupDataFile(f.No, fid, comm, rights, f.Size)
		case card.CyclicRecord:
			return c.CreateISOCyclicRecordFile(f.No, fid, comm, rights, f.RecordSize, f.Records)
		case card.LinearRecord:
			return c.CreateISOLinearRecordFile(f.No, fid, comm, rights, f.RecordSize, f.Records)
		}
		return fmt.Errorf("file %d (%s): a %s file takes no ISO file ID", f.No, f.Name, f.Type)
	}
	switch f.Type {
	case card.StdData:
		return c.CreateStdDataFile(f.No, comm, rights, f.Size)
	case card.BackupData:
		return c.CreateBackupDataFile(f.No, comm, rights, f.Size)
	case card.Value:
		return c.CreateValueFile(f.No, comm, rights, desfire.ValueLimits{
			Lower: int32(f.Lower), Upper: int32(f.Upper), Value: int32(f.Initial), LimitedCredit: f.LimitedCredit})
	case card.CyclicRecord:
		return c.CreateCyclicRecordFile(f.No, comm, rights, f.RecordSize, f.Records)
	case card.LinearRecord:
		return c.CreateLinearRecordFile(f.No, comm, rights, f.RecordSize, f.Records)
	}
	return fmt.Errorf("file %d (%s): cannot create a %s file", f.No, f.Name, f.Type)
}

// sessions groups items by application (layout order) and key (slot
// order), so each role authenticates once per application.
func (pl *plan) sessions(fn func(a *card.Application, k card.Key, items []item) error) error {
	for ai := range pl.layout.Apps {
		a := &pl.layout.Apps[ai]
		for _, k := range a.Keys {
			var its []item
			for _, it := range pl.items {
				if it.app == a.AID && it.role == k.Role {
					its = append(its, it)
				}
			}
			if err := fn(a, k, its); err != nil {
				return err
			}
		}
	}
	return nil
}

// write writes every item with its role's key and commits the
// transactional ones (backup and value files).
func (pl *plan) write(r *runner) error {
	c := r.c
	return pl.sessions(func(a *card.Application, k card.Key, items []item) error {
		if len(items) == 0 {
			return nil
		}
		if err := r.do(fmt.Sprintf("select application %q", a.Name), func() error { return c.SelectApplication(a.AID.Bytes()) }); err != nil {
			return err
		}
		if err := r.do(fmt.Sprintf("authenticate with the %s key to %q", k.Role, a.Name), func() error {
			return r.auth(k.No, pl.key(k.Role, a.AID))
		}); err != nil {
			return err
		}
		commit := false
		for _, it := range items {
			f, _ := a.File(it.file) // checkItems made sure
			comm := desfire.CommMode(f.Comm)
			switch f.Type {
			case card.Value:
				if it.credit == 0 {
					continue
				}
				commit = true
				if err := r.do(fmt.Sprintf("credit %s to %q", card.Money(it.credit), f.Name), func() error {
					return c.Credit(f.No, it.credit, comm)
				}); err != nil {
					return err
				}
			default:
				commit = commit || f.Type == card.BackupData
				if err := r.do(fmt.Sprintf("write %q", f.Name), func() error { return c.WriteData(f.No, 0, it.data, comm) }); err != nil {
					return err
				}
			}
		}
		if !commit {
			return nil
		}
		return r.do(fmt.Sprintf("commit the %s key's writes to %q", k.Role, a.Name), c.CommitTransaction)
	})
}

// verify authenticates with every key of every application, which proves
// each key change, and reads back each item with its role's key.
func (pl *plan) verify(r *runner) error {
	c := r.c
	selected := card.AID(0)
	return pl.sessions(func(a *card.Application, k card.Key, items []item) error {
		if selected != a.AID {
			if err := r.do(fmt.Sprintf("select application %q", a.Name), func() error { return c.SelectApplication(a.AID.Bytes()) }); err != nil {
				return err
			}
			selected = a.AID
		}
		if err := r.do(fmt.Sprintf("verify: authenticate with the %s key (key %d) to %q", k.Role, k.No, a.Name), func() error {
			return r.auth(k.No, pl.key(k.Role, a.AID))
		}); err != nil {
			return err
		}
		for _, it := range items {
			f, _ := a.File(it.file)
			comm := desfire.CommMode(f.Comm)
			if f.Type == card.Value {
				var v int32
				if err := r.do(fmt.Sprintf("verify: read %q", f.Name), func() (err error) { v, err = c.GetValue(f.No, comm); return err }); err != nil {
					return err
				}
				if want := int32(f.Initial) + it.credit; v != want {
					return fmt.Errorf("issue: %s: verify %q: holds %s, want %s: %w", r.what, f.Name, card.Money(v), card.Money(want), ErrMismatch)
				}
				continue
			}
			var got []byte
			if err := r.do(fmt.Sprintf("verify: read %q", f.Name), func() (err error) {
				got, err = c.ReadData(f.No, 0, f.Size, comm)
				return err
			}); err != nil {
				return err
			}
			if !bytes.Equal(got, it.data) {
				// Only the offset: the content may be personal data.
				at := 0
				for at < len(got) && at < len(it.data) && got[at] == it.data[at] {
					at++
				}
				return fmt.Errorf("issue: %s: verify %q: differs from byte %d on: %w", r.what, f.Name, at, ErrMismatch)
			}
		}
		return nil
	})
}

// lock sets the PICC key settings and, last of all, the PICC master key.
func (pl *plan) lock(r *runner) error {
	c := r.c
	if err := r.do("select PICC", func() error { return c.SelectApplication(desfire.AID{}) }); err != nil {
		return err
	}
	if err := r.openFactoryPICC(); err != nil {
		return err
	}
	if err := r.do("set the PICC key settings", func() error { return c.ChangeKeySettings(PICCKeySettings) }); err != nil {
		return err
	}
	return r.do("change the PICC master key to this system's AES key", func() error {
		return c.ChangeKeyType(0, desfire.KeyAES, pl.key(card.RoleIssuer, piccApp), byte(pl.gen), nil)
	})
}

// alreadyDone handles a card that already has this system's PICC key
// (version ver): success when it holds exactly what pl would write,
// otherwise the error that tells the desk what to do.
func (pl *plan) alreadyDone(r *runner, ver byte) error {
	c := r.c
	err := r.do("select the identification application", func() error { return c.SelectApplication(card.AIDIdentification.Bytes()) })
	if errors.Is(err, desfire.ErrApplicationNotFound) {
		return fmt.Errorf("issue: %s: card has this system's PICC key (version %d) but no identification application, "+
			"as after an interrupted wipe: run issue.Wipe, then personalise it: %w", r.what, ver, ErrPartlyWiped)
	}
	if err != nil {
		return err
	}
	var raw []byte
	if err := r.do("read the identity", func() (err error) {
		raw, err = c.ReadData(card.FileIdentity, 0, card.IdentitySize, desfire.CommPlain)
		return err
	}); err != nil {
		return err
	}
	var id card.Identity
	if err := id.UnmarshalBinary(raw); err != nil {
		return fmt.Errorf("issue: %s: card has this system's PICC key but an unreadable identity (%w): run issue.Wipe, then personalise it: %w",
			r.what, err, ErrPartlyWiped)
	}
	if id.Number != pl.number {
		return fmt.Errorf("issue: %s: card is already personalised as card %s (wanted %s); to re-issue it, run issue.Wipe first: %w",
			r.what, id.Number.Grouped(), pl.number.Grouped(), ErrAlreadyPersonalised)
	}
	if int(ver) != pl.gen {
		return fmt.Errorf("issue: %s: card %s is already personalised, with key generation %d (wanted %d): %w",
			r.what, id.Number.Grouped(), ver, pl.gen, ErrAlreadyPersonalised)
	}
	// Same card number and generation: most likely our own run, torn
	// after the PICC key change. Done if everything reads back.
	if err := pl.verify(r); err != nil {
		return fmt.Errorf("issue: %s: card %s is already personalised and differs from this personalisation "+
			"(in use, or changed since); run issue.Wipe first to re-issue it: %w: %w", r.what, id.Number.Grouped(), ErrAlreadyPersonalised, err)
	}
	return nil
}

// Wipe formats the card uid: it authenticates to the PICC with its
// current master key (this system's issuer key of the version the card
// reports, or the factory key on a card whose personalisation never
// finished), deletes every application, and returns the PICC key and
// settings to the factory state, so Personalise can start again. Wiping a
// blank card does nothing harmful. A wipe torn away half-way can be run
// again.
func Wipe(ctx context.Context, tr apdu.Transport, keys *cardkey.Source, uid []byte) error {
	if keys == nil {
		return errors.New("issue: wipe: no key source")
	}
	if len(uid) != cardkey.UIDSize {
		return fmt.Errorf("issue: wipe: UID %X is %d bytes, want %d", uid, len(uid), cardkey.UIDSize)
	}
	r := &runner{ctx: ctx, c: desfire.New(tr), what: "wipe"}
	if err := r.generation(); err != nil {
		return err
	}
	if _, err := r.openPICC(keys, uid); err != nil {
		return err
	}
	c := r.c
	if err := r.do("format the card", c.FormatPICC); err != nil {
		return err
	}
	if err := r.do("restore the factory PICC key settings", func() error { return c.ChangeKeySettings(FactoryKeySettings) }); err != nil {
		return err
	}
	return r.do("restore the factory PICC master key (2K3DES zero)", func() error {
		return c.ChangeKeyType(0, desfire.KeyDES, desfire.FactoryPICCKey(), 0, nil)
	})
}
