package console

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/citycard/transit/clearing/report"
	cstore "github.com/citycard/transit/clearing/store"
)

// chartMonths is how many months the finance chart shows, ending with
// the chosen period: a year, so that a month can be compared with the
// same month of the year before.
const chartMonths = 12

// carrierMonths is the compensation owed to each carrier in each of
// consecutive months, read from the roll-up.
type carrierMonths struct {
	Months   []string // "YYYY-MM", oldest first
	Closed   []bool   // per month
	Carriers []string // sorted
	// Kop[m][c] is what carrier c is owed for month m, adjustments of
	// earlier months booked into m included, as its statements say.
	Kop [][]int64
}

// monthsUpTo returns the n months that end with period, oldest first;
// months before year 1 are left out.
func monthsUpTo(period string, n int) ([]string, error) {
	p, err := cstore.ParsePeriod(period)
	if err != nil {
		return nil, err
	}
	var out []string
	for i := n - 1; i >= 0; i-- {
		m := p.AddDate(0, -i, 0)
		if m.Year() < 1 {
			continue
		}
		out = append(out, m.Format("2006-01"))
	}
	return out, nil
}

// readCarrierMonths reads the compensation of the chartMonths months up
// to period, one roll-up query per month (never the raw taps).
func readCarrierMonths(ctx context.Context, st cstore.Store, period string) (carrierMonths, error) {
	months, err := monthsUpTo(period, chartMonths)
	if err != nil {
		return carrierMonths{}, err
	}
	closed, err := st.ClosedPeriods(ctx)
	if err != nil {
		return carrierMonths{}, fmt.Errorf("closed periods: %w", err)
	}
	cm := carrierMonths{Months: months}
	byMonth := make([][]cstore.Line, len(months))
	seen := map[string]bool{}
	for i, m := range months {
		lines, err := st.Compensation(ctx, cstore.Query{Period: m})
		if err != nil {
			return carrierMonths{}, fmt.Errorf("compensation of %s: %w", m, err)
		}
		byMonth[i] = report.PerCarrier(lines)
		for _, l := range byMonth[i] {
			seen[l.Carrier] = true
		}
		cm.Closed = append(cm.Closed, slices.Contains(closed, m))
	}
	for c := range seen {
		cm.Carriers = append(cm.Carriers, c)
	}
	slices.Sort(cm.Carriers)
	for i := range months {
		row := make([]int64, len(cm.Carriers))
		for _, l := range byMonth[i] {
			j, _ := slices.BinarySearch(cm.Carriers, l.Carrier)
			row[j] = l.CompensationKop
		}
		cm.Kop = append(cm.Kop, row)
	}
	return cm, nil
}

// seriesStyle tells one carrier's line apart from the others without
// relying on colour: each has its own dash pattern and marker shape too.
type seriesStyle struct {
	Color  string // contrast of at least 4.5:1 on white
	Dash   string // stroke-dasharray; "" for a solid line
	Marker string // circle, square, triangle, diamond
	Hollow bool   // the marker is drawn as an outline
}

// seriesStyles are used in turn; past the last, colours repeat but the
// legend and the table still name every carrier.
var seriesStyles = []seriesStyle{
	{"#0a4a8f", "", "circle", false},
	{"#b03a00", "8 4", "square", false},
	{"#1d6b2f", "2 3", "triangle", false},
	{"#6f2c91", "10 3 2 3", "diamond", false},
	{"#8a1c1c", "", "square", true},
	{"#00606b", "8 4", "circle", true},
	{"#5c4a00", "2 3", "diamond", true},
	{"#3d3d3d", "10 3 2 3", "triangle", true},
}

// chart is an SVG line chart of compensation per carrier and month, laid
// out here and drawn by the finance template.
type chart struct {
	Title, Desc   string
	Width, Height float64
	// The plot area.
	Left, Top, Right, Bottom float64
	XTicks, YTicks           []tick
	// Where the axes' labels go: left of the plot, below it.
	YLabelX, XLabelY, UnitY float64
	Series                  []series
	// Table is the same figures for reading: one row per month.
	Carriers []string
	Table    []chartRow
}

// tick is a labelled position on an axis.
type tick struct {
	Pos   float64
	Label string
}

// series is one carrier's line.
type series struct {
	Carrier string
	seriesStyle
	Points string // polyline points
	Marks  []mark
	// The legend's sample line and label.
	LegendY, LegendX1, LegendX2, LegendText float64
	LegendMark                              string
}

// mark is one month's point of a series, with a tooltip that names it.
type mark struct {
	X, Y  float64
	Path  string
	Title string
	Kop   int64
}

// chartRow is one month of the chart's table.
type chartRow struct {
	Month  string
	Closed bool
	Kop    []int64
	Total  int64
}

// Chart geometry in SVG user units (px at 100%).
const (
	chartWidth   = 760.0
	plotLeft     = 96.0
	plotTop      = 32.0 // room above the plot for the axis's unit
	plotHeight   = 260.0
	plotRight    = chartWidth - 24
	legendRow    = 24.0
	legendOffset = 40.0 // from the plot's bottom to the first legend row
	markSize     = 4.5
)

// buildChart lays out cm for lang.
func buildChart(lang string, cm carrierMonths) chart {
	c := chart{Width: chartWidth, Left: plotLeft, Top: plotTop, Right: plotRight, Bottom: plotTop + plotHeight, Carriers: cm.Carriers,
		YLabelX: plotLeft - 8, XLabelY: plotTop + plotHeight + 8, UnitY: plotTop / 2}
	first, last := cm.Months[0], cm.Months[len(cm.Months)-1]
	c.Title = translate(lang, "chart.heading", first, last)
	c.Height = c.Bottom + legendOffset + legendRow*float64(len(cm.Carriers)) + 8

	var lo, hi int64
	for _, row := range cm.Kop {
		for _, v := range row {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	step := niceStep(hi - lo)
	lo, hi = floorTo(lo, step), ceilTo(hi, step)
	if hi == lo {
		hi = lo + 5*step
	}
	y := func(v int64) float64 { return round1(c.Top + plotHeight*float64(hi-v)/float64(hi-lo)) }
	for v := lo; v <= hi; v += step {
		c.YTicks = append(c.YTicks, tick{Pos: y(v), Label: formatUAH(lang, v)})
	}
	dx := (c.Right - c.Left) / float64(max(1, len(cm.Months)-1))
	x := func(i int) float64 {
		if len(cm.Months) == 1 {
			return (c.Left + c.Right) / 2
		}
		return round1(c.Left + dx*float64(i))
	}
	// Months show as YYYY-MM: the same in both languages, and short.
	for i, m := range cm.Months {
		c.XTicks = append(c.XTicks, tick{Pos: x(i), Label: m})
	}

	desc := []string{translate(lang, "chart.desc", first, last)}
	for j, carrier := range cm.Carriers {
		s := series{Carrier: carrier, seriesStyle: seriesStyles[j%len(seriesStyles)]}
		var pts []string
		var sum, best int64
		bestMonth := ""
		for i, m := range cm.Months {
			v := cm.Kop[i][j]
			px, py := x(i), y(v)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px, py))
			s.Marks = append(s.Marks, mark{X: px, Y: py, Kop: v, Path: markerPath(s.Marker, px, py, markSize),
				Title: translate(lang, "chart.point", carrier, m, formatUAH(lang, v))})
			sum += v
			if bestMonth == "" || v > best {
				best, bestMonth = v, m
			}
		}
		s.Points = strings.Join(pts, " ")
		s.LegendY = c.Bottom + legendOffset + legendRow*float64(j)
		s.LegendX1, s.LegendX2, s.LegendText = c.Left, c.Left+48, c.Left+60
		s.LegendMark = markerPath(s.Marker, c.Left+24, s.LegendY, markSize)
		c.Series = append(c.Series, s)
		desc = append(desc, translate(lang, "chart.desc.series", carrier, formatUAH(lang, sum), bestMonth, formatUAH(lang, best)))
	}
	if len(cm.Carriers) == 0 {
		desc = append(desc, translate(lang, "chart.none"))
	}
	desc = append(desc, translate(lang, "chart.desc.table"))
	c.Desc = strings.Join(desc, " ")

	for i, m := range cm.Months {
		r := chartRow{Month: m, Closed: cm.Closed[i], Kop: cm.Kop[i]}
		for _, v := range cm.Kop[i] {
			r.Total += v
		}
		c.Table = append(c.Table, r)
	}
	return c
}

// round1 rounds to a tenth of a unit, finer than a screen shows.
func round1(v float64) float64 { return math.Round(v*10) / 10 }

// niceStep is a step of 1, 2 or 5 times a power of ten (in kopiyky,
// at least 1 UAH) that divides span into at most five parts.
func niceStep(span int64) int64 {
	for p := int64(100); ; p *= 10 {
		for _, k := range []int64{1, 2, 5} {
			if s := k * p; s*5 >= span {
				return s
			}
		}
	}
}

func floorTo(v, step int64) int64 {
	if v >= 0 {
		return v / step * step
	}
	return -ceilTo(-v, step)
}

func ceilTo(v, step int64) int64 {
	if v <= 0 {
		return -floorTo(-v, step)
	}
	return (v + step - 1) / step * step
}

// markerPath draws a marker of shape centred on x, y as an SVG path.
func markerPath(shape string, x, y, r float64) string {
	switch shape {
	case "square":
		return fmt.Sprintf("M%.1f %.1fh%.1fv%.1fh%.1fz", x-r, y-r, 2*r, 2*r, -2*r)
	case "triangle":
		return fmt.Sprintf("M%.1f %.1fL%.1f %.1fL%.1f %.1fz", x, y-r*1.2, x+r*1.1, y+r*0.8, x-r*1.1, y+r*0.8)
	case "diamond":
		return fmt.Sprintf("M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fz", x, y-r*1.3, x+r*1.3, y, x, y+r*1.3, x-r*1.3, y)
	}
	return fmt.Sprintf("M%.1f %.1fa%.1f %.1f 0 1 0 %.1f 0a%.1f %.1f 0 1 0 %.1f 0z", x-r, y, r, r, 2*r, r, r, -2*r)
}
