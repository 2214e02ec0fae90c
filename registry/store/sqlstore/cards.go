package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/store"
)

const cardColumns = `number, resident_id, status, reason, note, issued, expires, replaces, replaced_by,
	carried_kop, balance_source, updated_at`

func scanCard(sc interface{ Scan(...any) error }) (registry.Card, error) {
	var (
		c                    registry.Card
		num                  int64
		status, reason, src  string
		replaces, replacedBy sql.NullInt64
	)
	err := sc.Scan(&num, &c.ResidentID, &status, &reason, &c.Note, dateCol{&c.Issued}, dateCol{&c.Expires},
		&replaces, &replacedBy, &c.CarriedKop, &src, timeCol{&c.Updated})
	c.Number, c.Status, c.Reason, c.BalanceSource = card.Number(num), registry.Status(status), registry.Reason(reason), registry.BalanceSource(src)
	c.Replaces, c.ReplacedBy = card.Number(replaces.Int64), card.Number(replacedBy.Int64)
	return c, err
}

// cards returns the cards matching a WHERE clause.
func (t *tx) cards(where string, args ...any) ([]registry.Card, error) {
	rows, err := t.query("SELECT "+cardColumns+" FROM cards WHERE "+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []registry.Card
	for rows.Next() {
		c, err := scanCard(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// card returns one card, or ErrNotFound.
func (t *tx) card(n card.Number) (registry.Card, error) {
	c, err := scanCard(t.queryRow("SELECT "+cardColumns+" FROM cards WHERE number = $1", int64(n)))
	if errors.Is(err, sql.ErrNoRows) {
		return c, notFound("no card %s; check the number printed on the card", n)
	}
	return c, err
}

// liveCard returns the resident's live card, if any.
func (t *tx) liveCard(resident int64) (registry.Card, bool, error) {
	cs, err := t.cards("resident_id = $1 AND status NOT IN ('replaced', 'expired')", resident)
	if err != nil || len(cs) == 0 {
		return registry.Card{}, false, err
	}
	return cs[0], true, nil
}

// newNumber takes the next card serial.
func (t *tx) newNumber() (card.Number, error) {
	if t.s.issuer == 0 {
		return 0, errors.New("this registry has no card issuer code; start it with the city's code (--issuer)")
	}
	serial, err := t.next("card_serial")
	if err != nil {
		return 0, err
	}
	n, err := card.NewNumber(t.s.issuer, uint64(serial))
	if err != nil {
		return 0, fmt.Errorf("%w; the issuer's card serials are used up", err)
	}
	return n, nil
}

func (t *tx) insertCard(c *registry.Card) error {
	_, err := t.exec(`INSERT INTO cards (number, resident_id, status, reason, note, issued, expires, replaces,
			carried_kop, balance_source, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		int64(c.Number), c.ResidentID, string(c.Status), string(c.Reason), c.Note, t.date(c.Issued), t.date(c.Expires),
		nullNumber(c.Replaces), c.CarriedKop, string(c.BalanceSource), t.time(c.Updated))
	if err != nil && t.s.d.IsUnique(err) {
		return fmt.Errorf("%w: this resident already has a card in use; block and replace it instead of ordering another", registry.ErrConflict)
	}
	return err
}

func nullNumber(n card.Number) any {
	if n == 0 {
		return nil
	}
	return int64(n)
}

func cardRecord(n card.Number) string { return "card/" + n.String() }

// OrderCard implements store.Store.
func (s *Store) OrderCard(ctx context.Context, a registry.Access, resident int64) (registry.Card, error) {
	if err := a.Permit(registry.ActCards, resident); err != nil {
		return registry.Card{}, err
	}
	var c registry.Card
	err := s.write(ctx, fmt.Sprintf("order a card for resident %d", resident), func(t *tx) error {
		var err error
		c, err = t.orderCard(a, resident)
		return err
	})
	if err != nil {
		return registry.Card{}, err
	}
	return c, nil
}

// orderCard orders a card for resident, who must have no live card
// (OrderCard, and an accepted online application).
func (t *tx) orderCard(a registry.Access, resident int64) (registry.Card, error) {
	var c registry.Card
	err := func() error {
		if err := t.residentExists(resident); err != nil {
			return err
		}
		live, ok, err := t.liveCard(resident)
		if err != nil {
			return err
		}
		if ok {
			how := "block it and order its replacement"
			if live.Status == registry.StatusLost || live.Status == registry.StatusStolen {
				how = "order its replacement, which carries its balance"
			}
			// The card's number is not said: the holder's record, read
			// with a purpose, shows it.
			return fmt.Errorf("%w: this resident already has a card (%s); a person has one card: %s",
				registry.ErrConflict, live.Status, how)
		}
		num, err := t.newNumber()
		if err != nil {
			return err
		}
		today := t.today()
		c = registry.Card{Number: num, ResidentID: resident, Status: registry.StatusOrdered,
			Issued: today, Expires: today.AddYears(t.s.years), Updated: t.now}
		if err := t.insertCard(&c); err != nil {
			return err
		}
		if err := t.emit(c, registry.EventStatus); err != nil {
			return err
		}
		return t.audit(a, resident, cardRecord(num), "order card")
	}()
	return c, err
}

// Transition implements store.Store.
func (s *Store) Transition(ctx context.Context, a registry.Access, number card.Number, ch registry.Change) (registry.Card, error) {
	if err := registry.PermitTransition(&a, ch); err != nil {
		return registry.Card{}, err
	}
	if err := ch.Validate(); err != nil {
		return registry.Card{}, err
	}
	var c registry.Card
	err := s.write(ctx, fmt.Sprintf("make card %s %s", number, ch.To), func(t *tx) error {
		var err error
		if c, err = t.card(number); err != nil {
			return err
		}
		if a.Actor.Role == registry.RoleResident && c.ResidentID != a.Actor.Resident {
			// A child's card may be blocked by their guardian. Someone
			// else's card reads as no card at all: the answer tells
			// nothing about whose it is or whether it exists.
			ok, err := t.guards(a.Actor.Resident, c.ResidentID)
			if err != nil {
				return err
			}
			if !ok {
				return notFound("no card %s among your cards or your children's; check the number printed on the card", number)
			}
		}
		if !registry.CanTransition(c.Status, ch.To) {
			return &registry.TransitionError{Card: number, From: c.Status, To: ch.To}
		}
		if ch.To == registry.StatusExpired && t.today().Before(c.Expires) {
			return fmt.Errorf("%w: card %s is valid until %s; to stop it earlier, block it with a reason", registry.ErrTransition, number, c.Expires)
		}
		from := c.Status
		c.Status, c.Reason, c.Note, c.Updated = ch.To, ch.Reason, ch.Note, t.now
		if err := t.updateStatus(c, from); err != nil {
			return err
		}
		if err := t.emit(c, registry.EventStatus); err != nil {
			return err
		}
		return t.audit(a, c.ResidentID, cardRecord(number), fmt.Sprintf("card %s -> %s", from, ch.To))
	})
	if err != nil {
		return registry.Card{}, err
	}
	return c, nil
}

// updateStatus writes c's status, reason, note and replaced_by, provided
// the card is still in status from.
func (t *tx) updateStatus(c registry.Card, from registry.Status) error {
	res, err := t.exec(`UPDATE cards SET status = $1, reason = $2, note = $3, replaced_by = $4, updated_at = $5
		WHERE number = $6 AND status = $7`,
		string(c.Status), string(c.Reason), c.Note, nullNumber(c.ReplacedBy), t.time(c.Updated), int64(c.Number), string(from))
	if err != nil {
		if t.s.d.IsUnique(err) {
			return fmt.Errorf("%w: the card's holder already has another card in use", registry.ErrConflict)
		}
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("%w: card %s changed at the same moment; look at it again and retry", registry.ErrConflict, c.Number)
	}
	return nil
}

// Replace implements store.Store.
func (s *Store) Replace(ctx context.Context, a registry.Access, number card.Number, b registry.Balance) (old, replacement registry.Card, err error) {
	if err := a.Permit(registry.ActCards, 0); err != nil {
		return old, replacement, err
	}
	kop, src, err := b.Carried()
	if err != nil {
		return old, replacement, err
	}
	err = s.write(ctx, fmt.Sprintf("replace card %s", number), func(t *tx) error {
		var err error
		if old, err = t.card(number); err != nil {
			return err
		}
		if !registry.CanTransition(old.Status, registry.StatusReplaced) {
			e := &registry.TransitionError{Card: number, From: old.Status, To: registry.StatusReplaced}
			if old.Status == registry.StatusActive {
				return fmt.Errorf("%w; block it first with the reason (lost, stolen, blocked-by-desk...)", e)
			}
			return e
		}
		from := old.Status
		old.Status, old.Reason, old.Updated = registry.StatusReplaced, registry.ReasonReplaced, t.now
		// Out of the live set first, so the replacement can be inserted.
		if err := t.updateStatus(old, from); err != nil {
			return err
		}
		num, err := t.newNumber()
		if err != nil {
			return err
		}
		today := t.today()
		replacement = registry.Card{Number: num, ResidentID: old.ResidentID, Status: registry.StatusOrdered,
			Issued: today, Expires: today.AddYears(s.years), Replaces: number, CarriedKop: kop, BalanceSource: src, Updated: t.now}
		if err := t.insertCard(&replacement); err != nil {
			return err
		}
		old.ReplacedBy = num
		if err := t.updateStatus(old, registry.StatusReplaced); err != nil {
			return err
		}
		if err := t.emit(old, registry.EventStatus); err != nil {
			return err
		}
		if err := t.emit(replacement, registry.EventStatus); err != nil {
			return err
		}
		return t.audit(a, old.ResidentID, cardRecord(number), fmt.Sprintf("replace card by %s carrying %d kop from %s", num, kop, src))
	})
	if err != nil {
		return registry.Card{}, registry.Card{}, err
	}
	return old, replacement, nil
}

// cardData builds what goes on card c.
func (t *tx) cardData(c registry.Card) (registry.CardData, error) {
	ents, err := t.entitlements(c.ResidentID)
	if err != nil {
		return registry.CardData{}, err
	}
	return registry.CardData{
		Number: c.Number, Status: c.Status, Issued: c.Issued, Expires: c.Expires,
		Entitlements: registry.CardEntitlements(ents, t.today()),
		PurseKop:     c.CarriedKop, HolderRef: c.ResidentID,
	}, nil
}

// Personalisation implements store.Store.
func (s *Store) Personalisation(ctx context.Context, a registry.Access, number card.Number) (registry.Personalisation, error) {
	if err := a.PermitRead(registry.ActPersonalise, 0); err != nil {
		return registry.Personalisation{}, err
	}
	var p registry.Personalisation
	err := s.read(ctx, fmt.Sprintf("read personalisation of card %s", number), func(t *tx) error {
		c, err := t.card(number)
		if err != nil {
			return err
		}
		if c.Status != registry.StatusOrdered && c.Status != registry.StatusPersonalised {
			return fmt.Errorf("%w: card %s is %s; only an ordered card (or a personalised one, again after a failed write) is personalised",
				registry.ErrConflict, number, c.Status)
		}
		if p.Card, err = t.cardData(c); err != nil {
			return err
		}
		if n := len(p.Card.Entitlements); n > card.MaxEntitlements {
			return fmt.Errorf("%w: the holder has %d current entitlements and a card holds %d; end one first",
				registry.ErrConflict, n, card.MaxEntitlements)
		}
		r, err := scanResident(t.queryRow("SELECT "+residentColumns+" FROM residents WHERE id = $1", c.ResidentID))
		if err != nil {
			return err
		}
		p.Holder = registry.Holder{Name: r.Name, BirthDate: r.BirthDate}
		return t.audit(a, c.ResidentID, cardRecord(number), "read personalisation data")
	})
	if err != nil {
		return registry.Personalisation{}, err
	}
	return p, nil
}

// CardState implements store.Store.
func (s *Store) CardState(ctx context.Context, number card.Number) (registry.CardState, error) {
	var st registry.CardState
	err := s.read(ctx, fmt.Sprintf("read card %s", number), func(t *tx) error {
		c, err := t.card(number)
		if err != nil {
			return err
		}
		st = registry.CardState{Number: c.Number, Status: c.Status, Issued: c.Issued, Expires: c.Expires}
		return nil
	})
	return st, err
}

// CardData implements store.Store.
func (s *Store) CardData(ctx context.Context, a registry.Access, number card.Number) (registry.CardData, error) {
	if err := a.PermitRead(registry.ActReadPersonal, 0); err != nil {
		return registry.CardData{}, err
	}
	var d registry.CardData
	err := s.read(ctx, fmt.Sprintf("read card %s", number), func(t *tx) error {
		c, err := t.card(number)
		if err != nil {
			return err
		}
		if d, err = t.cardData(c); err != nil {
			return err
		}
		return t.audit(a, c.ResidentID, cardRecord(number), "read card data")
	})
	return d, err
}

// emit appends a card event with c's state and its holder's current
// entitlements.
func (t *tx) emit(c registry.Card, kind string) error {
	ents, err := t.entitlements(c.ResidentID)
	if err != nil {
		return err
	}
	js, err := json.Marshal(registry.CardEntitlements(ents, t.today()))
	if err != nil {
		return err
	}
	seq, err := t.next("card_event")
	if err != nil {
		return err
	}
	_, err = t.exec(`INSERT INTO card_events (seq, at, kind, card, status, reason, issued, expires, entitlements, replaces, replaced_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		seq, t.time(t.now), kind, int64(c.Number), string(c.Status), string(c.Reason), t.date(c.Issued), t.date(c.Expires),
		string(js), nullNumber(c.Replaces), nullNumber(c.ReplacedBy))
	if err != nil {
		return fmt.Errorf("record card event: %w", err)
	}
	return nil
}

// emitForResident tells consumers that the entitlements on a resident's
// live card changed.
func (t *tx) emitForResident(resident int64) error {
	c, ok, err := t.liveCard(resident)
	if err != nil || !ok {
		return err
	}
	return t.emit(c, registry.EventEntitlements)
}

// CardEvents implements store.Store.
func (s *Store) CardEvents(ctx context.Context, since uint64, limit int) ([]registry.CardEvent, error) {
	if limit <= 0 || limit > store.MaxEventPage {
		return nil, &registry.FieldError{Field: "limit", Problem: fmt.Sprintf("%d; want 1 to %d", limit, store.MaxEventPage)}
	}
	if since > 1<<62 {
		return nil, nil
	}
	var out []registry.CardEvent
	err := s.read(ctx, fmt.Sprintf("read card events after %d", since), func(t *tx) error {
		rows, err := t.query(`SELECT seq, at, kind, card, status, reason, issued, expires, entitlements, replaces, replaced_by
			FROM card_events WHERE seq > $1 ORDER BY seq LIMIT $2`, int64(since), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				e                    registry.CardEvent
				seq, num             int64
				status, reason, js   string
				replaces, replacedBy sql.NullInt64
			)
			if err := rows.Scan(&seq, timeCol{&e.At}, &e.Kind, &num, &status, &reason, dateCol{&e.Issued}, dateCol{&e.Expires},
				&js, &replaces, &replacedBy); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(js), &e.Entitlements); err != nil {
				return fmt.Errorf("card event %d: entitlements: %w", seq, err)
			}
			e.Seq, e.Card, e.Status, e.Reason = uint64(seq), card.Number(num), registry.Status(status), registry.Reason(reason)
			e.Replaces, e.ReplacedBy = card.Number(replaces.Int64), card.Number(replacedBy.Int64)
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Blocked implements store.Store. One statement reads the version and the
// cards, so they are consistent with each other.
func (s *Store) Blocked(ctx context.Context) (registry.Blocklist, error) {
	var bl registry.Blocklist
	err := s.read(ctx, "list blocked cards", func(t *tx) error {
		rows, err := t.query(`SELECT v.value, c.number, c.status, c.reason, c.updated_at
			FROM registry_counters v
			LEFT JOIN cards c ON c.status IN ('blocked', 'lost', 'stolen', 'replaced')
			WHERE v.name = 'card_event'
			ORDER BY c.number`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				version        int64
				num            sql.NullInt64
				status, reason sql.NullString
				b              registry.BlockedCard
			)
			if err := rows.Scan(&version, &num, &status, &reason, timeCol{&b.Since}); err != nil {
				return err
			}
			bl.Version = uint64(version)
			if !num.Valid {
				continue // no blocked card: the one row carries the version
			}
			b.Card, b.Status, b.Reason = card.Number(num.Int64), registry.Status(status.String), registry.Reason(reason.String)
			bl.Cards = append(bl.Cards, b)
		}
		return rows.Err()
	})
	if err != nil {
		return registry.Blocklist{}, err
	}
	return bl, nil
}
