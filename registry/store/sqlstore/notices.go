package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/citycard/transit/registry"
)

// noticeAccess is how the audit log names the notice runner.
var noticeAccess = registry.Access{Actor: registry.NoticesActor, Purpose: registry.PurposeNotice}

// The audit log's actions about notices. They are fixed texts, so that
// a page can translate them; what was sent to whom, and why a notice was
// dropped, is on the notice (the record the entry names).
const (
	ActionNoticeQueued      = "benefit-ending notice queued"
	ActionNoticeContactRead = "read contact to send a benefit-ending notice"
	ActionNoticeSent        = "benefit-ending notice sent"
	ActionNoticeDropped     = "benefit-ending notice dropped"
	ActionNoticesOptOut     = "notices: opted out"
	ActionNoticesOptIn      = "notices: opted in"
	ActionNoticesRead       = "read notices"
)

func noticeRecord(id int64) string { return fmt.Sprintf("notice/%d", id) }

const noticeColumns = `n.id, n.kind, n.resident_id, n.entitlement_id, n.category, n.ends, n.contact, n.created_at, n.attempts,
	n.next_attempt_at, n.last_error, n.sent_at, n.sent_to, n.sender, n.dropped_at, n.drop_reason`

func noticeDest(n *registry.Notice, cat *int64) []any {
	return []any{&n.ID, &n.Kind, &n.Resident, &n.Entitlement, cat, dateCol{&n.Ends}, &n.Contact, timeCol{&n.Created}, &n.Attempts,
		timeCol{&n.NextAttempt}, &n.LastError, timeCol{&n.Sent}, &n.SentTo, &n.Sender, timeCol{&n.Dropped}, &n.DropReason}
}

// queueChunk is how many candidates one transaction of QueueNotices
// reads: a city's first run, with every benefit of the next month to
// queue, holds the registry's write lock for a moment at a time.
const queueChunk = 500

// QueueNotices implements store.Store. It reads the candidates in
// transactions of queueChunk, by entitlement id, and calls decide once
// for each; a failure leaves the notices of earlier transactions queued,
// which the next pass would queue anyway.
func (s *Store) QueueNotices(ctx context.Context, from, to registry.Date, decide func([]registry.NoticeCandidate) []registry.Notice) ([]registry.Notice, error) {
	if from.IsZero() || to.IsZero() || to.Before(from) {
		return nil, &registry.FieldError{Field: "window", Problem: fmt.Sprintf("%s..%s is empty; give a window of at least one day", from, to)}
	}
	var (
		out   []registry.Notice
		after int64
	)
	for {
		var read int
		err := s.write(ctx, "queue notices", func(t *tx) error {
			cands, err := t.noticeCandidates(from, to, after)
			if err != nil {
				return err
			}
			read = len(cands)
			if read > 0 {
				after = cands[read-1].Entitlement
			}
			queued, err := t.queue(cands, decide(cands))
			out = append(out, queued...)
			return err
		})
		if err != nil {
			return out, err
		}
		if read < queueChunk {
			return out, nil
		}
	}
}

// noticeCandidates reads up to queueChunk entitlements after the id
// after that end in [from, to] and have no notice about that end.
func (t *tx) noticeCandidates(from, to registry.Date, after int64) ([]registry.NoticeCandidate, error) {
	rows, err := t.query(`SELECT e.id, e.resident_id, e.category, e.valid_to, r.contact,
			CASE WHEN o.resident_id IS NULL THEN 0 ELSE 1 END
		FROM entitlements e JOIN residents r ON r.id = e.resident_id
		LEFT JOIN notice_opt_outs o ON o.resident_id = e.resident_id
		WHERE e.valid_to >= $1 AND e.valid_to <= $2 AND e.id > $4
		AND NOT EXISTS (SELECT 1 FROM notices n WHERE n.kind = $3 AND n.entitlement_id = e.id AND n.ends = e.valid_to)
		ORDER BY e.id LIMIT $5`, t.date(from), t.date(to), registry.NoticeBenefitEnding, after, queueChunk)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cands []registry.NoticeCandidate
	for rows.Next() {
		var (
			c        registry.NoticeCandidate
			cat, opt int64
		)
		if err := rows.Scan(&c.Entitlement, &c.Resident, &cat, dateCol{&c.Ends}, &c.Contact, &opt); err != nil {
			return nil, err
		}
		c.Category, c.OptedOut = uint16(cat), opt != 0
		cands = append(cands, c)
	}
	return cands, rows.Err()
}

// queue records what the rule chose among cands, notices to send and
// notices dropped at once, with one audit entry each.
func (t *tx) queue(cands []registry.NoticeCandidate, chosen []registry.Notice) ([]registry.Notice, error) {
	byEnt := make(map[int64]registry.NoticeCandidate, len(cands))
	for _, c := range cands {
		byEnt[c.Entitlement] = c
	}
	var (
		out     []registry.Notice
		entries []registry.AuditEntry
	)
	for _, n := range chosen {
		// The rule picks among the candidates; what is queued comes from
		// the database, not from the rule.
		c, ok := byEnt[n.Entitlement]
		if !ok || n.Kind != registry.NoticeBenefitEnding {
			return nil, fmt.Errorf("the notice rule chose %s for entitlement %d, which is not a candidate", n.Kind, n.Entitlement)
		}
		delete(byEnt, n.Entitlement)
		q := registry.Notice{Kind: n.Kind, Resident: c.Resident, Entitlement: c.Entitlement, Category: c.Category, Ends: c.Ends,
			Contact: c.Contact, Created: t.now, NextAttempt: t.now}
		var dropped any
		action := ActionNoticeQueued
		if n.DropReason != "" {
			q.Dropped, q.DropReason, dropped, action = t.now, noticeText(n.DropReason), t.time(t.now), ActionNoticeDropped
		}
		err := t.queryRow(`INSERT INTO notices (kind, resident_id, entitlement_id, category, ends, contact, created_at, next_attempt_at,
				dropped_at, drop_reason)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (kind, entitlement_id, ends) DO NOTHING RETURNING id`,
			q.Kind, q.Resident, q.Entitlement, int64(q.Category), t.date(q.Ends), q.Contact, t.time(t.now), t.time(t.now),
			dropped, q.DropReason).Scan(&q.ID)
		if errors.Is(err, sql.ErrNoRows) {
			continue // queued meanwhile
		}
		if err != nil {
			return nil, err
		}
		entries = append(entries, t.noticeEntry(q.Resident, q.ID, action))
		out = append(out, q)
	}
	if err := t.appendAudit(entries); err != nil {
		return nil, err
	}
	return out, nil
}

// noticeEntry is the audit entry of the notice runner's action on notice
// id of resident.
func (t *tx) noticeEntry(resident, id int64, action string) registry.AuditEntry {
	return registry.AuditEntry{At: t.now, User: noticeAccess.Actor.User, Role: noticeAccess.Actor.Role, Resident: resident,
		Record: noticeRecord(id), Action: action, Purpose: noticeAccess.Purpose}
}

// ClaimNotices implements store.Store.
func (s *Store) ClaimNotices(ctx context.Context, limit, maxAttempts int, retry func(attempts int) time.Duration) ([]registry.NoticeClaim, error) {
	if limit <= 0 || maxAttempts <= 0 || retry == nil {
		return nil, &registry.FieldError{Field: "claim", Problem: "give a limit, a number of attempts and a retry delay"}
	}
	var out []registry.NoticeClaim
	err := s.write(ctx, "claim notices", func(t *tx) error {
		// A resident or entitlement that is gone (LEFT JOIN) reads as no
		// contact and no end: the runner drops the notice.
		rows, err := t.query(`SELECT `+noticeColumns+`, COALESCE(r.contact, ''),
				CASE WHEN o.resident_id IS NULL THEN 0 ELSE 1 END, e.valid_to
			FROM notices n LEFT JOIN residents r ON r.id = n.resident_id
			LEFT JOIN entitlements e ON e.id = n.entitlement_id
			LEFT JOIN notice_opt_outs o ON o.resident_id = n.resident_id
			WHERE n.sent_at IS NULL AND n.dropped_at IS NULL AND n.next_attempt_at <= $1
			ORDER BY n.next_attempt_at, n.id LIMIT $2`, t.time(t.now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		var claims []registry.NoticeClaim
		for rows.Next() {
			var (
				c        registry.NoticeClaim
				cat, opt int64
			)
			dest := append(noticeDest(&c.Notice, &cat), &c.CurrentContact, &opt, dateCol{&c.CurrentEnds})
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			c.Category, c.OptedOut = uint16(cat), opt != 0
			claims = append(claims, c)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		var entries []registry.AuditEntry
		for _, c := range claims {
			if c.Attempts >= maxAttempts {
				reason := noticeText(fmt.Sprintf("%s%d attempts: %s", registry.NoticeGaveUp, c.Attempts, c.LastError))
				if _, err := t.exec("UPDATE notices SET dropped_at = $1, drop_reason = $2 WHERE id = $3", t.time(t.now), reason, c.ID); err != nil {
					return err
				}
				entries = append(entries, t.noticeEntry(c.Resident, c.ID, ActionNoticeDropped))
				continue
			}
			c.Attempts++
			c.NextAttempt = t.now.Add(retry(c.Attempts))
			if _, err := t.exec("UPDATE notices SET attempts = $1, next_attempt_at = $2 WHERE id = $3",
				c.Attempts, t.time(c.NextAttempt), c.ID); err != nil {
				return err
			}
			entries = append(entries, t.noticeEntry(c.Resident, c.ID, ActionNoticeContactRead))
			out = append(out, c)
		}
		return t.appendAudit(entries)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FinishNotice implements store.Store.
func (s *Store) FinishNotice(ctx context.Context, id int64, o registry.NoticeOutcome) error {
	set := 0
	for _, v := range []string{o.SentTo, o.Error, o.Drop} {
		if v != "" {
			set++
		}
	}
	if set != 1 || (o.SentTo != "") != (o.Sender != "") {
		return &registry.FieldError{Field: "outcome", Problem: "give exactly one of sent (with its sender), an error or a reason to drop"}
	}
	return s.write(ctx, fmt.Sprintf("record notice %d", id), func(t *tx) error {
		var (
			resident      int64
			sent, dropped time.Time
		)
		err := t.queryRow("SELECT resident_id, sent_at, dropped_at FROM notices WHERE id = $1", id).Scan(&resident, timeCol{&sent}, timeCol{&dropped})
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("no notice %d", id)
		}
		if err != nil {
			return err
		}
		switch {
		case !sent.IsZero():
			return fmt.Errorf("%w: notice %d was sent already; it is not sent again", registry.ErrConflict, id)
		case !dropped.IsZero():
			return fmt.Errorf("%w: notice %d was dropped already", registry.ErrConflict, id)
		}
		switch {
		case o.SentTo != "":
			if _, err := t.exec("UPDATE notices SET sent_at = $1, sent_to = $2, sender = $3, last_error = '' WHERE id = $4",
				t.time(t.now), noticeText(o.SentTo), noticeText(o.Sender), id); err != nil {
				return err
			}
			return t.audit(noticeAccess, resident, noticeRecord(id), ActionNoticeSent)
		case o.Error != "":
			_, err := t.exec("UPDATE notices SET last_error = $1 WHERE id = $2", noticeText(o.Error), id)
			return err
		default:
			reason := noticeText(o.Drop)
			if _, err := t.exec("UPDATE notices SET dropped_at = $1, drop_reason = $2 WHERE id = $3", t.time(t.now), reason, id); err != nil {
				return err
			}
			return t.audit(noticeAccess, resident, noticeRecord(id), ActionNoticeDropped)
		}
	})
}

// noticeText keeps what a mail server or sender said as one bounded line
// of valid text: it came from outside.
func noticeText(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > registry.MaxNoticeText {
		cut := registry.MaxNoticeText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// SetNoticeOptOut implements store.Store.
func (s *Store) SetNoticeOptOut(ctx context.Context, a registry.Access, resident int64, optOut bool) error {
	if a.Actor.Role == registry.RoleResident {
		if err := a.Permit(registry.ActOwnData, resident); err != nil {
			return err
		}
	} else if err := a.Permit(registry.ActRegister, resident); err != nil {
		return err
	}
	return s.write(ctx, fmt.Sprintf("set resident %d's notices", resident), func(t *tx) error {
		if err := t.residentExists(resident); err != nil {
			return err
		}
		action := ActionNoticesOptIn
		if optOut {
			action = ActionNoticesOptOut
			if _, err := t.exec(`INSERT INTO notice_opt_outs (resident_id, at, by_user) VALUES ($1, $2, $3)
				ON CONFLICT (resident_id) DO NOTHING`, resident, t.time(t.now), a.Actor.User); err != nil {
				return err
			}
		} else if _, err := t.exec("DELETE FROM notice_opt_outs WHERE resident_id = $1", resident); err != nil {
			return err
		}
		return t.audit(a, resident, residentRecord(resident), action)
	})
}

// MaxResidentNotices bounds the notices ResidentNotices returns.
const MaxResidentNotices = 100

// ResidentNotices implements store.Store.
func (s *Store) ResidentNotices(ctx context.Context, a registry.Access, resident int64) (registry.ResidentNotices, error) {
	if a.Actor.Role == registry.RoleResident {
		if err := a.Permit(registry.ActOwnData, resident); err != nil {
			return registry.ResidentNotices{}, err
		}
		if strings.TrimSpace(a.Purpose) == "" {
			a.Purpose = registry.PurposeOwnView
		}
	} else if err := a.PermitRead(registry.ActReadPersonal, resident); err != nil {
		return registry.ResidentNotices{}, err
	}
	out := registry.ResidentNotices{Notices: []registry.Notice{}}
	err := s.read(ctx, fmt.Sprintf("read resident %d's notices", resident), func(t *tx) error {
		if err := t.residentExists(resident); err != nil {
			return err
		}
		var opt int64
		if err := t.queryRow("SELECT count(*) FROM notice_opt_outs WHERE resident_id = $1", resident).Scan(&opt); err != nil {
			return err
		}
		out.OptedOut = opt != 0
		rows, err := t.query(`SELECT `+noticeColumns+` FROM notices n WHERE n.resident_id = $1 ORDER BY n.id DESC LIMIT $2`,
			resident, MaxResidentNotices)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				n   registry.Notice
				cat int64
			)
			if err := rows.Scan(noticeDest(&n, &cat)...); err != nil {
				return err
			}
			n.Category = uint16(cat)
			out.Notices = append(out.Notices, n)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return t.audit(a, resident, residentRecord(resident), ActionNoticesRead)
	})
	if err != nil {
		return registry.ResidentNotices{}, err
	}
	return out, nil
}
