package console

import (
	"math"
	"slices"
	"strconv"
	"testing"
)

// relativeLuminance of a #rrggbb colour (WCAG 2.2).
func relativeLuminance(t *testing.T, hex string) float64 {
	t.Helper()
	if len(hex) != 7 || hex[0] != '#' {
		t.Fatalf("colour %q: want #rrggbb", hex)
	}
	var l [3]float64
	for i := range 3 {
		v, err := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		if err != nil {
			t.Fatalf("colour %q: %v", hex, err)
		}
		c := float64(v) / 255
		if c <= 0.04045 {
			l[i] = c / 12.92
		} else {
			l[i] = math.Pow((c+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*l[0] + 0.7152*l[1] + 0.0722*l[2]
}

// TestSeriesStylesAreDistinguishable: every series colour has at least
// 4.5:1 contrast on the white page (more than the 3:1 WCAG asks of
// graphics, so that thin dashes stay visible), and no two series look
// alike without colour: each pair differs in dash pattern or marker.
func TestSeriesStylesAreDistinguishable(t *testing.T) {
	for _, s := range seriesStyles {
		if ratio := 1.05 / (relativeLuminance(t, s.Color) + 0.05); ratio < 4.5 {
			t.Errorf("%s on white: contrast %.2f:1, want 4.5:1", s.Color, ratio)
		}
		if !slices.Contains([]string{"circle", "square", "triangle", "diamond"}, s.Marker) {
			t.Errorf("marker %q is not drawn by markerPath", s.Marker)
		}
	}
	for i, a := range seriesStyles {
		for _, b := range seriesStyles[i+1:] {
			if a.Color == b.Color {
				t.Errorf("two series share the colour %s", a.Color)
			}
			if a.Dash == b.Dash && a.Marker == b.Marker && a.Hollow == b.Hollow {
				t.Errorf("%s and %s differ only in colour", a.Color, b.Color)
			}
		}
	}
}

func TestMonthsUpTo(t *testing.T) {
	got, err := monthsUpTo("2026-02", 12)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2025-03", "2025-04", "2025-05", "2025-06", "2025-07", "2025-08", "2025-09", "2025-10", "2025-11", "2025-12", "2026-01", "2026-02"}
	if !slices.Equal(got, want) {
		t.Errorf("monthsUpTo(2026-02) = %v", got)
	}
	if got, err := monthsUpTo("0001-03", 12); err != nil || !slices.Equal(got, []string{"0001-01", "0001-02", "0001-03"}) {
		t.Errorf("monthsUpTo(0001-03) = %v, %v; want the months from year 1", got, err)
	}
	if _, err := monthsUpTo("2026-13", 12); err == nil {
		t.Error("monthsUpTo(2026-13): no error")
	}
}

// TestChartScale: the axis starts at zero, ends at or above the largest
// figure, in steps of 1, 2 or 5 times a power of ten (whole hryvnias).
func TestChartScale(t *testing.T) {
	for span, want := range map[int64]int64{0: 100, 1: 100, 500: 100, 501: 200, 2_000: 500, 13_500: 5_000, 1_234_567: 500_000} {
		if got := niceStep(span); got != want {
			t.Errorf("niceStep(%d) = %d, want %d", span, got, want)
		}
	}
	cm := carrierMonths{Months: []string{"2026-10", "2026-11"}, Closed: []bool{true, false}, Carriers: []string{"A", "B"},
		Kop: [][]int64{{0, 4_250}, {13_500, 7}}}
	c := buildChart("en", cm)
	if first, last := c.YTicks[0], c.YTicks[len(c.YTicks)-1]; first.Label != "0.00" || last.Label != "150.00" || first.Pos != c.Bottom || last.Pos != c.Top {
		t.Errorf("y axis from %+v to %+v; want 0.00 at the bottom, 150.00 at the top", first, last)
	}
	if want := c.Bottom - (c.Bottom-c.Top)*135/150; math.Abs(c.Series[0].Marks[1].Y-want) > 0.05 {
		t.Errorf("135.00 drawn at y=%.1f, want %.1f", c.Series[0].Marks[1].Y, want)
	}
	if c.Table[1].Total != 13_507 || !c.Table[0].Closed {
		t.Errorf("table %+v", c.Table)
	}
}
