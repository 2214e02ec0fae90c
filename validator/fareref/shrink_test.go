package fareref_test

import (
	"maps"
	"slices"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/validator/fareref"
)

// shrink makes a disagreeing case smaller while it still disagrees and its
// tariff is still one the files express: fewer taps, tariff rules,
// categories, carriers and card slots, plainer numbers.
func shrink(c *diffCase) *diffCase {
	return shrinkKeeping(c, func(n *diffCase) bool {
		_, diff, _ := runCase(n)
		return diff != ""
	})
}

// shrinkKeeping makes c smaller while keep holds.
func shrinkKeeping(c *diffCase, keep func(*diffCase) bool) *diffCase {
	for {
		better := false
		for _, next := range simpler(c) {
			if expressible(next) && keep(next) {
				c, better = next, true
				break
			}
		}
		if !better {
			return c
		}
	}
}

func expressible(c *diffCase) bool {
	files, err := tariffFiles(c.Tariff)
	if err != nil {
		return false
	}
	back, err := parseFiles(files)
	if err != nil || !sameTariff(c.Tariff, back) {
		return false
	}
	if err := c.Contract.Validate(); err != nil {
		return false
	}
	return c.Prev == nil || c.Prev.Validate() == nil
}

// simpler lists the cases one step simpler than c, the biggest steps
// first.
func simpler(c *diffCase) []*diffCase {
	var out []*diffCase
	try := func(f func(*diffCase)) {
		n := cloneCase(c)
		f(n)
		out = append(out, n)
	}
	// Taps: drop the later ones first, then any; then plainer taps.
	for i := len(c.Taps) - 1; i >= 0 && len(c.Taps) > 1; i-- {
		try(func(n *diffCase) { n.Taps = slices.Delete(n.Taps, i, i+1) })
	}
	for i, tp := range c.Taps {
		if tp.Torn {
			try(func(n *diffCase) { n.Taps[i].Torn = false })
		}
		if tp.Listing != fareref.NotListed {
			try(func(n *diffCase) { n.Taps[i].Listing = fareref.NotListed })
		}
		if tp.Time.Nanosecond() != 0 {
			try(func(n *diffCase) { n.Taps[i].Time = tp.Time.Truncate(time.Second) })
		}
	}
	// The card.
	if c.Prev != nil {
		try(func(n *diffCase) { n.Prev = nil })
		for i, k := range c.Prev.Counts {
			if k != (card.Counter{}) {
				try(func(n *diffCase) { n.Prev.Counts[i] = card.Counter{} })
			}
		}
	}
	for i, e := range c.Contract.Entitlements {
		if !e.Empty() {
			try(func(n *diffCase) { n.Contract.Entitlements[i] = card.Entitlement{} })
			if e.Limit != 0 {
				try(func(n *diffCase) { n.Contract.Entitlements[i].Limit = 0 })
			}
		}
	}
	for i, p := range c.Contract.Passes {
		if !p.Empty() {
			try(func(n *diffCase) { n.Contract.Passes[i] = card.Pass{} })
		}
	}
	if c.Contract.Status != card.StatusActive {
		try(func(n *diffCase) { n.Contract.Status = card.StatusActive })
	}
	if c.PurseKop != 100_00 {
		try(func(n *diffCase) { n.PurseKop = 100_00 })
	}
	// The tariff.
	t := c.Tariff
	for i := range t.Transfers {
		try(func(n *diffCase) { n.Tariff.Transfers = slices.Delete(n.Tariff.Transfers, i, i+1) })
	}
	for i, l := range t.Legs {
		try(func(n *diffCase) { n.Tariff.Legs = slices.Delete(n.Tariff.Legs, i, i+1) })
		if l.Priority != 0 {
			try(func(n *diffCase) { n.Tariff.Legs[i].Priority = 0 })
		}
		if l.Timeframe != "" {
			try(func(n *diffCase) { n.Tariff.Legs[i].Timeframe = "" })
		}
		if l.LegGroup != "" {
			try(func(n *diffCase) { n.Tariff.Legs[i].LegGroup = "" })
		}
	}
	for i := range t.Timeframes {
		try(func(n *diffCase) { n.Tariff.Timeframes = slices.Delete(n.Tariff.Timeframes, i, i+1) })
	}
	for _, k := range slices.Sorted(maps.Keys(t.Categories)) {
		cat := t.Categories[k]
		try(func(n *diffCase) { delete(n.Tariff.Categories, k) })
		if cat.FixedCompensation {
			try(func(n *diffCase) {
				cc := n.Tariff.Categories[k]
				cc.FixedCompensation, cc.CompensationKop = false, 0
				n.Tariff.Categories[k] = cc
			})
		}
		if len(cat.Networks) > 0 || len(cat.Carriers) > 0 {
			try(func(n *diffCase) {
				cc := n.Tariff.Categories[k]
				cc.Networks, cc.Carriers = nil, nil
				n.Tariff.Categories[k] = cc
			})
		}
		if cat.MonthlyRides != 0 {
			try(func(n *diffCase) {
				cc := n.Tariff.Categories[k]
				cc.MonthlyRides = 0
				n.Tariff.Categories[k] = cc
			})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(t.Passes)) {
		try(func(n *diffCase) { delete(n.Tariff.Passes, k) })
	}
	for _, id := range slices.Sorted(maps.Keys(t.Carriers)) {
		cr := t.Carriers[id]
		try(func(n *diffCase) { delete(n.Tariff.Carriers, id) })
		if len(cr.Routes) > 0 {
			try(func(n *diffCase) {
				cc := n.Tariff.Carriers[id]
				cc.Routes = nil
				n.Tariff.Carriers[id] = cc
			})
		}
	}
	if t.Passback != 0 {
		try(func(n *diffCase) { n.Tariff.Passback = 0 })
	}
	// The fleet: a device that is a vehicle of its own.
	for _, d := range slices.Sorted(maps.Keys(c.Fleet)) {
		try(func(n *diffCase) { delete(n.Fleet, d) })
	}
	return out
}

func cloneCase(c *diffCase) *diffCase {
	n := *c
	t := *c.Tariff
	t.Carriers = maps.Clone(c.Tariff.Carriers)
	for id, cr := range t.Carriers {
		cr.Routes = slices.Clone(cr.Routes)
		t.Carriers[id] = cr
	}
	t.Categories = maps.Clone(c.Tariff.Categories)
	for k, cat := range t.Categories {
		cat.Networks, cat.Carriers = slices.Clone(cat.Networks), slices.Clone(cat.Carriers)
		t.Categories[k] = cat
	}
	t.Passes = maps.Clone(c.Tariff.Passes)
	t.Legs = slices.Clone(c.Tariff.Legs)
	t.Timeframes = slices.Clone(c.Tariff.Timeframes)
	t.Transfers = slices.Clone(c.Tariff.Transfers)
	n.Tariff = &t
	if c.Prev != nil {
		p := *c.Prev
		n.Prev = &p
	}
	n.Fleet = maps.Clone(c.Fleet)
	n.Taps = slices.Clone(c.Taps)
	return &n
}
