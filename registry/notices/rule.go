// Package notices tells residents in time that their benefit is ending.
// It has a pure core, [Rule], which decides who is due a notice and what
// to do with a queued one, and a [Runner], the shell that queues due
// notices in the registry's outbox (store.Notices) and sends queued ones
// through a notify.Sender, with retries and a bounded number of attempts.
//
// Delivery is at least once, never more than once by the registry's own
// doing: a notice is claimed (its attempt counted, its next attempt moved
// past the send) before it is sent, and marked sent after. A crash, or a
// lost database, between the sender accepting a message and the registry
// recording it leaves the notice pending, and it is sent again at its
// next attempt. The message carries the notice's id as its Message-ID,
// so that the copy is recognisable.
package notices

import (
	"fmt"
	"strings"
	"time"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/notify"
)

// DefaultDays is how far ahead of a benefit's last day its holder is told.
const DefaultDays = registry.DefaultExpiringDays

// Rule decides who gets a notice. It does no I/O and reads no clock.
type Rule struct {
	// Days: a benefit whose last day is today up to today+Days (the
	// city's days) is due a notice; 0 means DefaultDays.
	Days int
	// Location is the city's time zone, which decides what today is; nil
	// means UTC.
	Location *time.Location
	// Reaches reports whether the configured sender can deliver to a
	// contact; nil means it reaches e-mail addresses and phone numbers.
	Reaches func(contact string) bool
}

// Today returns the city's date at now.
func (r Rule) Today(now time.Time) registry.Date { return registry.Today(now, r.Location) }

// Window returns the first and last day a benefit may end on to be due a
// notice at now.
func (r Rule) Window(now time.Time) (from, to registry.Date) {
	days := r.Days
	if days <= 0 {
		days = DefaultDays
	}
	from = r.Today(now)
	return from, from.AddDays(days)
}

func (r Rule) reaches(contact string) bool {
	if strings.TrimSpace(contact) == "" {
		return false
	}
	if r.Reaches != nil {
		return r.Reaches(contact)
	}
	return notify.Kind(contact) != ""
}

// Due returns what to record for the candidates whose benefit ends in
// the window at now: a notice to send for each whose holder has not
// opted out and has a contact the sender reaches, and for the others one
// dropped at once with the reason (DropReason), so that the outbox and
// the audit log say once why they were not told.
func (r Rule) Due(now time.Time, cs []registry.NoticeCandidate) []registry.Notice {
	from, to := r.Window(now)
	var out []registry.Notice
	for _, c := range cs {
		if c.Ends.Before(from) || c.Ends.After(to) {
			continue
		}
		n := registry.Notice{Kind: registry.NoticeBenefitEnding, Resident: c.Resident, Entitlement: c.Entitlement,
			Category: c.Category, Ends: c.Ends, Contact: c.Contact}
		switch {
		case c.OptedOut:
			n.DropReason = registry.NoticeOptedOut
		case strings.TrimSpace(c.Contact) == "":
			n.DropReason = registry.NoticeNoContact
		case !r.reaches(c.Contact):
			n.DropReason = registry.NoticeUnreachable
		}
		out = append(out, n)
	}
	return out
}

// Judge says what to do with a claimed notice at now: "" to send it to
// the holder's current contact, or why it is dropped. A contact that was
// changed gets the notice at the new one; one that was cleared, or that
// the sender no longer reaches, drops it.
func (r Rule) Judge(now time.Time, c registry.NoticeClaim) (drop string) {
	switch {
	case c.OptedOut:
		return registry.NoticeOptedOut
	case c.CurrentEnds.IsZero():
		return registry.NoticeNoEntitlement
	case c.CurrentEnds != c.Ends:
		// A notice about the new end is queued if it is due.
		return registry.NoticeEndMoved + DMY(c.CurrentEnds)
	case c.Ends.Before(r.Today(now)):
		return registry.NoticeEnded
	case strings.TrimSpace(c.CurrentContact) == "":
		return registry.NoticeContactCleared
	case !r.reaches(c.CurrentContact):
		return registry.NoticeUnreachable
	}
	return ""
}

// DMY writes a date as Ukrainian documents do: DD.MM.YYYY.
func DMY(d registry.Date) string {
	return fmt.Sprintf("%02d.%02d.%04d", d.Day, int(d.Month), d.Year)
}

// categories names the known benefit categories in Ukrainian.
var categories = map[uint16]string{
	registry.CategoryPensioner:  "пенсіонер",
	registry.CategoryVeteran:    "ветеран",
	registry.CategoryDisability: "особа з інвалідністю",
	registry.CategoryStudent:    "студент",
}

// Message returns the notice as it is sent, in Ukrainian, to contact.
func Message(n registry.Notice, contact string) notify.Message {
	cat := fmt.Sprintf("категорія %d", n.Category)
	if name, ok := categories[n.Category]; ok {
		cat = fmt.Sprintf("«%s», категорія %d", name, n.Category)
	}
	ends := DMY(n.Ends)
	text := "Добрий день!\n\n" +
		"Ваша пільга на проїзд у міському транспорті (" + cat + ") діє до " + ends + " включно.\n" +
		"Щоб не втратити її, подайте документи на продовження до цієї дати: у центрі видачі транспортних карток або онлайн у кабінеті мешканця.\n" +
		"Якщо пільгу вже продовжено, це повідомлення можна не брати до уваги.\n\n" +
		"Не бажаєте отримувати такі повідомлення? Вимкніть їх у кабінеті мешканця або скажіть про це в центрі видачі карток.\n\n" +
		"Повідомлення надіслано автоматично, відповідати на нього не потрібно.\n" +
		"Міська транспортна картка\n"
	return notify.Message{To: contact, Subject: "Ваша пільга на проїзд закінчується " + ends, Text: text,
		ID: fmt.Sprintf("notice-%d", n.ID)}
}
