// Package desk is the issuance desk: it personalises a city card on a
// PC/SC reader with the data the registry holds for it, wipes a card for
// re-issue, reads an old card's purse for its replacement, and blocks and
// replaces cards, all through the registry API with the desk staff
// member's token (registry/api), so that the registry's role checks and
// its audit of every read of personal data apply to the desk as to any
// other client.
//
// # Personalisation
//
// Desk.Personalise checks that the HSM holds every card master it needs,
// reads the card's personalisation from the registry (an audited read,
// with the stated purpose), waits for a card on the reader, and runs
// card/issue.Personalise, which writes, reads everything back and locks
// the card last. Only a card written and verified moves the registry's
// record from ordered to personalised, and, when the holder takes it at
// once, on to active (the lifecycle has no direct step from ordered to
// active: registry.CanTransition).
//
// Nothing is half-written. A wrong PIN or passphrase fails before the
// registry is asked; an unknown card number or a card not in the ordered
// (or personalised) state fails before a card is touched; a card of
// another system, or one already personalised with other data, is
// refused by card/issue before it writes anything. A card torn away
// half-way leaves the registry as it was: present it again and run the
// same command, which starts the card over or, if the tear came after
// the last write, finds it done and only updates the registry.
//
// # Wiping
//
// Desk.Wipe returns one of this system's cards to the factory state, for
// re-issue. It first reads the card's number and asks the registry: a
// card that is active, blocked, lost or stolen may hold a purse balance
// and benefits, so it is refused until it has been replaced (which moves
// its balance to the new card).
package desk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/apdu"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/card/issue"
	"github.com/citycard/transit/registry"
)

// Registry is what the desk asks of the registry. *Client implements it
// over the HTTP API.
type Registry interface {
	// Personalisation returns what goes on an ordered or personalised
	// card, the holder's personal data included; the registry audits the
	// read with purpose.
	Personalisation(ctx context.Context, n card.Number, purpose string) (registry.Personalisation, error)
	// Card returns a card's status and validity: nothing that names its
	// holder or their benefits.
	Card(ctx context.Context, n card.Number) (registry.CardState, error)
	SetStatus(ctx context.Context, n card.Number, to registry.Status, note string) (registry.Card, error)
	Block(ctx context.Context, n card.Number, reason registry.Reason, note string) (registry.Card, error)
	Replace(ctx context.Context, n card.Number, b registry.Balance) (old, replacement registry.Card, err error)
}

// Reader presents cards: PC/SC (PCSC) or, in tests, a virtual card.
type Reader interface {
	// WaitCard waits until a card is on the reader and connects to it.
	WaitCard(ctx context.Context) (Card, error)
}

// Card is a connected card.
type Card interface {
	apdu.Transport
	// UID returns the card's UID, as the reader reports it.
	UID() ([]byte, error)
	// Close disconnects from the card.
	Close() error
}

// Desk runs desk operations. Registry is required; Keys is needed by the
// operations that touch a card.
type Desk struct {
	Registry Registry
	// Keys derives card keys from the masters in the desk's HSM (the
	// issuer keystore or the city's token).
	Keys *cardkey.Source
	// Prompt tells the operator what to do next ("present card ...");
	// nil says nothing.
	Prompt func(msg string)
	// Log gets what was done (slog.Default() if nil).
	Log *slog.Logger
}

// Errors a desk can act on; test with errors.Is.
var (
	// ErrInUse: the card is in use in the registry (active, blocked,
	// lost or stolen), so wiping it would destroy its balance and
	// benefits.
	ErrInUse = errors.New("card is in use")
	// ErrWrongCard: the card on the reader is not the one named.
	ErrWrongCard = errors.New("not the card named")
)

func (d *Desk) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.Default()
}

func (d *Desk) prompt(format string, args ...any) {
	if d.Prompt != nil {
		d.Prompt(fmt.Sprintf(format, args...))
	}
}

// Request says which card to personalise and why.
type Request struct {
	Number card.Number
	// Purpose is why the desk reads the holder's data, recorded in the
	// registry's audit log: e.g. "card issue, ticket 4711". Required.
	Purpose string
	// HandOver makes the card active: the holder takes it now. Without
	// it the card stays personalised until Activate (cards sent by post).
	HandOver bool
}

// Issued is a personalised card.
type Issued struct {
	Number card.Number
	// Status is the card's status in the registry now: personalised, or
	// active when handed over.
	Status registry.Status
	UID    []byte
}

// Personalise writes the registry's data for req.Number onto the card
// presented on rd and records it in the registry (see the package
// comment).
func (d *Desk) Personalise(ctx context.Context, rd Reader, req Request) (Issued, error) {
	n := req.Number
	if !n.Valid() {
		return Issued{}, fmt.Errorf("card number %d is not valid; copy it from the registry", uint64(n))
	}
	if err := d.checkKeys(ctx, true); err != nil {
		return Issued{}, err
	}
	p, err := d.Registry.Personalisation(ctx, n, req.Purpose)
	if err != nil {
		return Issued{}, fmt.Errorf("card %s: %w", n.Grouped(), err)
	}
	if p.Card.Number != n {
		return Issued{}, fmt.Errorf("card %s: the registry answered with card %s; check --registry", n.Grouped(), p.Card.Number.Grouped())
	}
	if p.Card.Status != registry.StatusOrdered && p.Card.Status != registry.StatusPersonalised {
		return Issued{}, fmt.Errorf("card %s is %s: %w; only an ordered card is personalised", n.Grouped(), p.Card.Status, registry.ErrConflict)
	}
	ip, err := onCard(&p)
	if err != nil {
		return Issued{}, fmt.Errorf("card %s: the registry's data does not fit on a card: %w", n.Grouped(), err)
	}

	d.prompt("Present the blank card for %s on the reader.", n.Grouped())
	c, uid, err := d.connect(ctx, rd)
	if err != nil {
		return Issued{}, err
	}
	defer c.Close()
	if err := issue.Personalise(ctx, c, d.Keys, uid, ip); err != nil {
		return Issued{}, explain(err, n, p.Card.Status)
	}
	d.log().Info("card personalised", "card", n.String(), "uid", fmt.Sprintf("%X", uid))

	done := Issued{Number: n, Status: p.Card.Status, UID: uid}
	if done.Status, err = d.recordIssued(ctx, n, p.Card.Status, uid, req.HandOver); err != nil {
		return done, fmt.Errorf("card %s is written and verified, but the registry was not updated: %w; "+
			"run the same command again with the card on the reader: it finds the card done and updates the registry", n.Grouped(), err)
	}
	return done, nil
}

// recordIssued moves the card to personalised (unless it already is:
// the card was done before and the registry update failed) and, on
// hand-over, to active. It returns the status reached.
func (d *Desk) recordIssued(ctx context.Context, n card.Number, from registry.Status, uid []byte, handOver bool) (registry.Status, error) {
	if from != registry.StatusPersonalised {
		if _, err := d.Registry.SetStatus(ctx, n, registry.StatusPersonalised, fmt.Sprintf("personalised at the desk on card UID %X", uid)); err != nil {
			return from, err
		}
	}
	if !handOver {
		return registry.StatusPersonalised, nil
	}
	if _, err := d.Registry.SetStatus(ctx, n, registry.StatusActive, "handed over at the desk"); err != nil {
		return registry.StatusPersonalised, err
	}
	return registry.StatusActive, nil
}

// onCard turns the registry's personalisation into card files.
func onCard(p *registry.Personalisation) (issue.Personalisation, error) {
	id, err := p.Card.Identity()
	if err != nil {
		return issue.Personalisation{}, err
	}
	holder, err := p.CardHolder()
	if err != nil {
		return issue.Personalisation{}, err
	}
	contract, err := p.Card.Contract()
	if err != nil {
		return issue.Personalisation{}, err
	}
	if p.Card.PurseKop < 0 || p.Card.PurseKop > int64(card.PurseUpper) {
		return issue.Personalisation{}, fmt.Errorf("balance to carry %d kop is outside what a purse holds", p.Card.PurseKop)
	}
	return issue.Personalisation{Identity: id, Holder: holder, Contract: contract, PurseKop: p.Card.PurseKop}, nil
}

// explain turns card/issue's errors into what the desk operator does
// next; the registry is unchanged in every case.
func explain(err error, n card.Number, status registry.Status) error {
	switch {
	case errors.Is(err, issue.ErrForeignCard):
		return fmt.Errorf("the card on the reader belongs to another system; nothing was written to it: take it away and present a blank city card: %w", err)
	case errors.Is(err, issue.ErrAlreadyPersonalised):
		return fmt.Errorf("the card on the reader is already personalised with other data; nothing was written to it. "+
			"Present a blank card, or, only if this card is to be re-issued, wipe it first (transit desk wipe): %w", err)
	case errors.Is(err, issue.ErrPartlyWiped):
		return fmt.Errorf("the card on the reader was left half-wiped; wipe it again (transit desk wipe), then personalise it: %w", err)
	case errors.Is(err, apdu.ErrCardRemoved):
		return fmt.Errorf("the card left the reader before it was finished; the registry still has card %s as %s. "+
			"Put the same card back and run the same command: it carries on: %w", n.Grouped(), status, err)
	}
	return fmt.Errorf("personalise card %s: %w; the registry is unchanged", n.Grouped(), err)
}

// connect waits for a card and reads its UID.
func (d *Desk) connect(ctx context.Context, rd Reader) (Card, []byte, error) {
	c, err := rd.WaitCard(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("wait for a card on the reader: %w", err)
	}
	uid, err := c.UID()
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("read the card's UID: %w; present the card again", err)
	}
	if len(uid) != cardkey.UIDSize {
		c.Close()
		return nil, nil, fmt.Errorf("the card on the reader has a %d-byte UID; city cards have %d-byte UIDs (DESFire EV1 without random ID): present a city card",
			len(uid), cardkey.UIDSize)
	}
	return c, uid, nil
}

// checkKeys makes sure the HSM holds the card masters before anything is
// read or written: every role's for personalisation (all at one
// version, as card/issue requires), the issuer's for a wipe.
func (d *Desk) checkKeys(ctx context.Context, all bool) error {
	if d.Keys == nil {
		return errors.New("desk: no card keys: open the desk's HSM (--keystore or --pkcs11-module)")
	}
	roles := []card.Role{card.RoleIssuer}
	if all {
		for _, a := range card.CityCard().Apps {
			for _, k := range a.Keys {
				if !slices.Contains(roles, k.Role) {
					roles = append(roles, k.Role)
				}
			}
		}
	}
	version := 0
	for _, r := range roles {
		v, err := d.Keys.Newest(ctx, r)
		if err != nil {
			return fmt.Errorf("the desk's HSM cannot give the %s card master (%w); a desk that writes cards needs the issuer keystore "+
				"(transit hsm export-role issuer) or the city's token; nothing was read or written", r, err)
		}
		if version != 0 && v != version {
			return fmt.Errorf("the desk's HSM holds %s card master version %d but %s version %d; every role's master must be rotated together "+
				"(transit hsm rotate); nothing was read or written", card.RoleIssuer, version, r, v)
		}
		version = v
	}
	return nil
}

// wipeable are the registry statuses of a card that holds nothing its
// holder still needs.
var wipeable = []registry.Status{registry.StatusOrdered, registry.StatusPersonalised, registry.StatusReplaced, registry.StatusExpired}

// Wiped is a wiped card.
type Wiped struct {
	UID []byte
	// Number is the card number the card carried, 0 if it carried none
	// readable (blank, half-personalised or half-wiped).
	Number card.Number
	// Status is that card's status in the registry, empty if the
	// registry does not know the number or the card carried none.
	Status registry.Status
}

// Wipe returns the card presented on rd to the factory state (see the
// package comment). The registry's records do not change: a wiped card
// that was personalised can be personalised again with its number.
func (d *Desk) Wipe(ctx context.Context, rd Reader) (Wiped, error) {
	if err := d.checkKeys(ctx, false); err != nil {
		return Wiped{}, err
	}
	d.prompt("Present the card to wipe on the reader.")
	c, uid, err := d.connect(ctx, rd)
	if err != nil {
		return Wiped{}, err
	}
	defer c.Close()
	w := Wiped{UID: uid}
	id, ok, err := readIdentity(c)
	if err != nil {
		return w, fmt.Errorf("read the card's number: %w; present the card again", err)
	}
	if ok {
		w.Number = id.Number
		cd, err := d.Registry.Card(ctx, id.Number)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			d.log().Warn("wiping a card whose number the registry does not know", "card", id.Number.String(), "uid", fmt.Sprintf("%X", uid))
		case err != nil:
			return w, fmt.Errorf("card %s: ask the registry whether it is in use: %w; nothing was wiped", id.Number.Grouped(), err)
		default:
			w.Status = cd.Status
			if !slices.Contains(wipeable, cd.Status) {
				return w, fmt.Errorf("card %s is %s in the registry: %w. Wiping it would destroy its purse and benefits; "+
					"block it and order its replacement first (transit desk block, transit desk replace), then wipe it; nothing was wiped",
					id.Number.Grouped(), cd.Status, ErrInUse)
			}
		}
	}
	if err := issue.Wipe(ctx, c, d.Keys, uid); err != nil {
		switch {
		case errors.Is(err, issue.ErrForeignCard):
			return w, fmt.Errorf("the card on the reader belongs to another system; it was not wiped: %w", err)
		case errors.Is(err, apdu.ErrCardRemoved):
			return w, fmt.Errorf("the card left the reader before the wipe finished; put it back and wipe it again: %w", err)
		}
		return w, fmt.Errorf("wipe the card: %w", err)
	}
	d.log().Info("card wiped", "card", w.Number.String(), "uid", fmt.Sprintf("%X", uid), "registry_status", w.Status)
	return w, nil
}

// readIdentity reads the card's identity file, which anyone may read. ok
// is false for a card without a readable one (blank, half-personalised,
// half-wiped, or another system's).
func readIdentity(tr apdu.Transport) (id card.Identity, ok bool, err error) {
	c := desfire.New(tr)
	if err := c.SelectApplication(card.AIDIdentification.Bytes()); err != nil {
		if errors.Is(err, apdu.ErrCardRemoved) {
			return id, false, err
		}
		return id, false, nil
	}
	raw, err := c.ReadData(card.FileIdentity, 0, card.IdentitySize, desfire.CommPlain)
	if err != nil {
		if errors.Is(err, apdu.ErrCardRemoved) {
			return id, false, err
		}
		return id, false, nil
	}
	if err := id.UnmarshalBinary(raw); err != nil {
		return id, false, nil
	}
	return id, true, nil
}

// ReadBalance reads the purse of card n, presented on rd, for its
// replacement: the exact balance, taps not yet uploaded included.
func (d *Desk) ReadBalance(ctx context.Context, rd Reader, n card.Number) (int64, error) {
	if d.Keys == nil {
		return 0, errors.New("desk: no card keys: open the desk's HSM (--keystore or --pkcs11-module) to read the card")
	}
	d.prompt("Present card %s on the reader to read its balance.", n.Grouped())
	c, uid, err := d.connect(ctx, rd)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	id, ok, err := readIdentity(c)
	switch {
	case err != nil:
		return 0, fmt.Errorf("read the card's number: %w; present the card again", err)
	case !ok:
		return 0, fmt.Errorf("the card on the reader carries no card number: %w; present card %s", ErrWrongCard, n.Grouped())
	case id.Number != n:
		return 0, fmt.Errorf("the card on the reader is %s: %w; present card %s", id.Number.Grouped(), ErrWrongCard, n.Grouped())
	}
	dc := desfire.New(c)
	if err := dc.SelectApplication(card.AIDTransport.Bytes()); err != nil {
		return 0, fmt.Errorf("card %s: select the transport application: %w", n.Grouped(), err)
	}
	ver, err := dc.GetKeyVersion(card.KeyValidator)
	if err != nil {
		return 0, fmt.Errorf("card %s: read its key version: %w", n.Grouped(), err)
	}
	k, err := d.Keys.Key(ctx, card.RoleValidator, uid, card.AIDTransport, int(ver))
	if err != nil {
		return 0, fmt.Errorf("card %s: %w", n.Grouped(), err)
	}
	if err := dc.AuthenticateAES(card.KeyValidator, k.Value[:]); err != nil {
		return 0, fmt.Errorf("card %s: authenticate to read the purse: %w", n.Grouped(), err)
	}
	v, err := dc.GetValue(card.FilePurse, desfire.CommMAC)
	if err != nil {
		return 0, fmt.Errorf("card %s: read the purse: %w", n.Grouped(), err)
	}
	return int64(v), nil
}

// Block blocks card n for reason, which puts it on the next hotlist.
func (d *Desk) Block(ctx context.Context, n card.Number, reason registry.Reason, note string) (registry.Card, error) {
	if !slices.Contains(registry.BlockReasons, reason) {
		return registry.Card{}, fmt.Errorf("reason %q: %w; want one of lost, stolen, fraud, benefit-revoked, blocked-by-desk", reason, registry.ErrInvalid)
	}
	c, err := d.Registry.Block(ctx, n, reason, note)
	if err != nil {
		return c, fmt.Errorf("block card %s: %w", n.Grouped(), err)
	}
	return c, nil
}

// Replace orders the replacement of a blocked, lost or stolen card n,
// carrying its balance, and returns the old and the new card; the new one
// is then personalised like any ordered card.
func (d *Desk) Replace(ctx context.Context, n card.Number, b registry.Balance) (old, replacement registry.Card, err error) {
	old, replacement, err = d.Registry.Replace(ctx, n, b)
	if err != nil {
		return old, replacement, fmt.Errorf("replace card %s: %w", n.Grouped(), err)
	}
	return old, replacement, nil
}

// Activate records that the holder took card n: personalised to active.
func (d *Desk) Activate(ctx context.Context, n card.Number) (registry.Card, error) {
	c, err := d.Registry.SetStatus(ctx, n, registry.StatusActive, "handed over at the desk")
	if err != nil {
		return c, fmt.Errorf("activate card %s: %w", n.Grouped(), err)
	}
	return c, nil
}
