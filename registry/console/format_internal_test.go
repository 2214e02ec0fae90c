package console

import (
	"testing"
	"time"

	_ "time/tzdata" // Europe/Kyiv without the system's tzdata

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/store/sqlstore"
)

func TestFormats(t *testing.T) {
	kyiv, err := time.LoadLocation("Europe/Kyiv")
	if err != nil {
		t.Fatal(err)
	}
	day := registry.Date{Year: 1948, Month: time.November, Day: 2}
	// 22:30 UTC on 31 October is already 1 November in Kyiv (UTC+2).
	at := time.Date(2026, time.October, 31, 22, 30, 0, 0, time.UTC)
	summer := time.Date(2026, time.July, 1, 6, 5, 0, 0, time.UTC) // UTC+3
	for _, c := range []struct{ name, got, want string }{
		{"uk day", formatDate("uk", day), "02.11.1948"},
		{"en day", formatDate("en", day), "1948-11-02"},
		{"zero day", formatDate("uk", registry.Date{}), ""},
		{"uk time across midnight", formatTime("uk", at, kyiv), "01.11.2026 00:30"},
		{"en time", formatTime("en", at, kyiv), "2026-11-01 00:30"},
		{"uk summer time", formatTime("uk", summer, kyiv), "01.07.2026 09:05"},
		{"uk zero", formatUAH("uk", 0), "0,00"},
		{"uk kopiyka", formatUAH("uk", 1), "0,01"},
		{"uk hundreds", formatUAH("uk", 99999), "999,99"},
		{"uk thousands", formatUAH("uk", 123450), "1\u00a0234,50"},
		{"uk millions", formatUAH("uk", 15000000000), "150\u00a0000\u00a0000,00"},
		{"uk negative", formatUAH("uk", -123450), "-1\u00a0234,50"},
		{"en thousands", formatUAH("en", 123450), "1,234.50"},
		{"en small", formatUAH("en", 850), "8.50"},
		{"en negative", formatUAH("en", -100000001), "-1,000,000.01"},
		{"card", formatCard(card.Number(9643100000000018)), "9643\u00a01000\u00a00000\u00a00018"},
		{"card with leading zeros", formatCard(card.Number(12)), "0000\u00a00000\u00a00000\u00a00012"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestAuditAction(t *testing.T) {
	for _, c := range []struct{ lang, stored, want string }{
		{"uk", "read resident", "переглянуто запис мешканця"},
		{"en", "read resident", "read the resident's record"},
		{"uk", "card active -> lost", "картка: активна → втрачена"},
		{"en", "card personalised -> active", "card: personalised → active"},
		{"uk", "replace card by 1001000000000031 carrying 123450 kop from clearing",
			"картку замінено на 1001\u00a00000\u00a00000\u00a00031, перенесено 1\u00a0234,50 грн (за даними клірингу)"},
		{"en", "replace card by 1001000000000031 carrying 50 kop from card",
			"card replaced by 1001\u00a00000\u00a00000\u00a00031, 0.50 UAH carried (as the card holds it)"},
		{"uk", "import benefit recipients (dry run)", "пробний імпорт отримувачів пільг (без змін)"},
		// What the catalogue does not know shows as stored, never hidden.
		{"uk", "card active -> melted", "card active -> melted"},
		{"uk", "send a notice", "send a notice"},
		{"uk", "replace card by 1001000000000031 carrying 5 kop from guess", "replace card by 1001000000000031 carrying 5 kop from guess"},
	} {
		if got := auditAction(c.lang, c.stored); got != c.want {
			t.Errorf("%s %q: %q, want %q", c.lang, c.stored, got, c.want)
		}
	}
}

// TestNoticeActionsTranslated keeps the notice runner's audit actions in
// the catalogue: a resident's page must not show them in English.
func TestNoticeActionsTranslated(t *testing.T) {
	for _, a := range []string{sqlstore.ActionNoticeQueued, sqlstore.ActionNoticeContactRead, sqlstore.ActionNoticeSent,
		sqlstore.ActionNoticeDropped, sqlstore.ActionNoticesOptOut, sqlstore.ActionNoticesOptIn, sqlstore.ActionNoticesRead} {
		if got := auditAction("uk", a); got == a {
			t.Errorf("audit action %q has no Ukrainian text", a)
		}
	}
}
