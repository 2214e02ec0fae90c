package console

import (
	"strings"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/registry"
)

// Formats of days, instants and money on pages. Ukrainian pages write
// them as Ukrainian documents do (DD.MM.YYYY, a decimal comma, hryvnias
// grouped by three), the way the register's import and the statements'
// PDFs already write them; English pages keep ISO days and a decimal
// point, which read the same everywhere. Instants are always in the
// city's time zone. The money and grouping rules are clearing/report's
// and card's, shared rather than written twice.
const (
	dateUK = "02.01.2006"
	dateEN = "2006-01-02"
	timeUK = "02.01.2006 15:04"
	timeEN = "2006-01-02 15:04"
)

// formatDate shows a registry day in lang; the zero day shows as "".
func formatDate(lang string, d registry.Date) string {
	if d.IsZero() {
		return ""
	}
	if lang == "uk" {
		return d.Time().Format(dateUK)
	}
	return d.Time().Format(dateEN)
}

// formatTime shows an instant in loc, in lang.
func formatTime(lang string, t time.Time, loc *time.Location) string {
	if lang == "uk" {
		return t.In(loc).Format(timeUK)
	}
	return t.In(loc).Format(timeEN)
}

// formatUAH shows kopiyky as hryvnias in lang: "1 234,50" (no-break
// spaces between groups of three) on Ukrainian pages, "1,234.50" on
// English ones. Amounts are exact: they never pass through a float.
func formatUAH(lang string, kop int64) string {
	s := report.UAHComma(kop)
	if lang == "uk" {
		return s
	}
	return strings.NewReplacer("\u00a0", ",", ",", ".").Replace(s)
}

// formatCard shows a card number as printed on the card: four groups of
// four digits, with no-break spaces so that a number never breaks over
// two lines. Forms, links and ids keep the bare 16 digits.
func formatCard(n card.Number) string { return strings.ReplaceAll(n.Grouped(), " ", "\u00a0") }
