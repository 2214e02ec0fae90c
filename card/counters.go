package card

import (
	"fmt"
)

// Counter counts the benefit rides of one entitlement slot in one month.
// It names the category it counts for, so that a slot the desk re-used for
// another benefit does not inherit a stale count. The counters travel in
// the tap log's newest record (TapRecord.Counts).
type Counter struct {
	Category uint16
	Month    Month
	Used     uint8
}

func (c Counter) validate(slot int) error {
	if c == (Counter{}) {
		return nil
	}
	f := func(field string) string { return fmt.Sprintf("counts[%d].%s", slot, field) }
	switch {
	case c.Category == 0:
		return fieldErr("taplog", f("category"), ErrValue, "0 in a used slot")
	case c.Month == 0 || !c.Month.Valid():
		return fieldErr("taplog", f("month"), ErrDate, "%#04x", uint16(c.Month))
	}
	return nil
}

// UsedIn returns the rides counted in month m for category in slot; a
// counter of another month or category counts as zero.
func (r *TapRecord) UsedIn(slot int, category uint16, m Month) uint8 {
	if r == nil || slot < 0 || slot >= MaxEntitlements {
		return 0
	}
	c := r.Counts[slot]
	if c.Category != category || c.Month != m {
		return 0
	}
	return c.Used
}

// CountsAfter returns the ride counts that the record of a ride in month
// m carries forward from prev, the card's newest record (nil for an empty
// log). A slot's counter changes only when a ride is counted on it: when
// counted is a slot (not NoSlot), it becomes one ride of category in m
// more than prev.UsedIn gives (so a new month or another category starts
// again at one); every other counter is carried as it is.
func CountsAfter(prev *TapRecord, m Month, counted uint8, category uint16) ([MaxEntitlements]Counter, error) {
	var out [MaxEntitlements]Counter
	if prev != nil {
		out = prev.Counts
	}
	if counted == NoSlot {
		return out, nil
	}
	slot := int(counted)
	switch {
	case slot >= MaxEntitlements:
		return out, fmt.Errorf("counts: slot %d, want 0..%d", slot, MaxEntitlements-1)
	case category == 0 || m == 0 || !m.Valid():
		return out, fmt.Errorf("counts: slot %d: category %d month %s: %w", slot, category, m, ErrValue)
	}
	used := prev.UsedIn(slot, category, m)
	if used == 0xFF {
		return out, fmt.Errorf("counts: slot %d: 255 rides in %s already", slot, m)
	}
	out[slot] = Counter{Category: category, Month: m, Used: used + 1}
	return out, nil
}
