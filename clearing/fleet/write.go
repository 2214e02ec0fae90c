package fleet

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Formats are the formats Write takes.
var Formats = []string{"table", "csv", "json"}

// Write writes v in format (table, csv or json); times are shown in loc
// (the city's time zone), JSON times in UTC. With problemsOnly only the
// devices with a problem are listed; the summary always counts all.
func Write(w io.Writer, format string, v View, loc *time.Location, problemsOnly bool) error {
	if loc == nil {
		loc = time.UTC
	}
	devs := v.Devices
	if problemsOnly {
		devs = v.Problems()
	}
	switch format {
	case "table":
		return writeTable(w, v, devs, loc)
	case "csv":
		return writeCSV(w, devs, loc)
	case "json":
		return writeJSON(w, v, devs, problemsOnly)
	}
	return fmt.Errorf("fleet: format %q: want one of %s", format, strings.Join(Formats, ", "))
}

func stamp(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(loc).Format("2006-01-02 15:04:05 -07:00")
}

// Ago formats a silence: "45s", "3h20m", "2d4h", "never" for a device
// never heard from.
func Ago(d Device) string {
	if d.HeardAt.IsZero() {
		return "never"
	}
	s := d.Silent.Round(time.Second)
	switch {
	case s < time.Minute:
		return fmt.Sprintf("%ds", int(s.Seconds()))
	case s < time.Hour:
		return fmt.Sprintf("%dm", int(s.Minutes()))
	case s < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(s.Hours()), int(s.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(s.Hours())/24, int(s.Hours())%24)
}

// Flags names a device's problems, comma-separated; "" when none.
func Flags(d Device) string {
	var f []string
	if d.Offline {
		f = append(f, "offline")
	}
	if d.OldHotlist {
		f = append(f, "old-hotlist")
	}
	if d.OldTariff {
		f = append(f, "old-tariff")
	}
	if d.ClockSkewed {
		f = append(f, "clock")
	}
	return strings.Join(f, ",")
}

func offset(d Device) string {
	if d.LastBatch.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%+.1fs", d.ClockOffset.Seconds())
}

func writeTable(w io.Writer, v View, devs []Device, loc *time.Location) error {
	s := v.Summary
	fmt.Fprintf(w, "Fleet at %s: %d devices, %d offline (silent over %s)\n", stamp(v.At, loc), s.Devices, s.Offline, v.Options.Offline)
	fmt.Fprintf(w, "Silent over 1h: %d, over 24h: %d, over 7d: %d\n", s.SilentOver[0], s.SilentOver[1], s.SilentOver[2])
	fmt.Fprintf(w, "Newest hotlist %d, on an older one: %d; newest tariff %d, on an older one: %d; clock off by over %s: %d\n\n",
		v.NewestHotlist, s.OldHotlist, v.NewestTariff, s.OldTariff, v.Options.ClockSkew, s.ClockSkewed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tSILENT\tLAST BATCH\tLAST TAP\tLAST SEQ\tTARIFF\tHOTLIST\tCLOCK\tPROBLEMS")
	for _, d := range devs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", d.Device, Ago(d), stamp(d.LastBatch, loc), stamp(d.LastTap, loc),
			d.LastSeq, d.TariffVersion, d.HotlistVersion, offset(d), Flags(d))
	}
	return tw.Flush()
}

// cell keeps a spreadsheet from taking a cell for a formula: a value that
// starts with =, +, -, @, a tab or a carriage return (after any spaces)
// gets a leading apostrophe, as OWASP recommends. Device names come from
// the field.
func cell(s string) string {
	t := strings.TrimLeft(s, " ")
	if t != "" && strings.ContainsRune("=+-@\t\r", rune(t[0])) {
		return "'" + s
	}
	return s
}

func writeCSV(w io.Writer, devs []Device, loc *time.Location) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"device", "silent_seconds", "last_batch", "batch_created", "last_tap", "last_seq", //nolint:errcheck // Flush reports
		"tariff_version", "hotlist_version", "clock_offset_ms", "offline", "old_hotlist", "old_tariff", "clock_skewed"})
	iso := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(loc).Format(time.RFC3339)
	}
	for _, d := range devs {
		silent := ""
		if !d.HeardAt.IsZero() {
			silent = strconv.FormatInt(int64(d.Silent.Seconds()), 10)
		}
		cw.Write([]string{cell(d.Device), silent, iso(d.LastBatch), iso(d.BatchCreated), iso(d.LastTap), //nolint:errcheck // Flush reports
			strconv.FormatUint(d.LastSeq, 10), strconv.FormatUint(uint64(d.TariffVersion), 10), strconv.FormatUint(d.HotlistVersion, 10),
			strconv.FormatInt(d.ClockOffset.Milliseconds(), 10), strconv.FormatBool(d.Offline), strconv.FormatBool(d.OldHotlist),
			strconv.FormatBool(d.OldTariff), strconv.FormatBool(d.ClockSkewed)})
	}
	cw.Flush()
	return cw.Error()
}

// DeviceJSON is one device in the JSON form.
type DeviceJSON struct {
	Device         string     `json:"device"`
	LastBatch      *time.Time `json:"last_batch"`
	BatchCreated   *time.Time `json:"batch_created"`
	LastTap        *time.Time `json:"last_tap"`
	SilentSeconds  *int64     `json:"silent_seconds"`
	LastSeq        uint64     `json:"last_seq"`
	TariffVersion  uint32     `json:"tariff_version"`
	HotlistVersion uint64     `json:"hotlist_version"`
	ClockOffsetMS  int64      `json:"clock_offset_ms"`
	Offline        bool       `json:"offline"`
	OldHotlist     bool       `json:"old_hotlist"`
	OldTariff      bool       `json:"old_tariff"`
	ClockSkewed    bool       `json:"clock_skewed"`
}

// ViewJSON is the JSON form of a View.
type ViewJSON struct {
	At                time.Time    `json:"at"`
	OfflineAfterSec   int64        `json:"offline_after_seconds"`
	Devices           int          `json:"devices"`
	Offline           int          `json:"offline"`
	SilentOver1h      int          `json:"silent_over_1h"`
	SilentOver24h     int          `json:"silent_over_24h"`
	SilentOver7d      int          `json:"silent_over_7d"`
	NewestHotlist     uint64       `json:"newest_hotlist"`
	NewestTariff      uint32       `json:"newest_tariff"`
	OnOldHotlist      int          `json:"on_old_hotlist"`
	OnOldTariff       int          `json:"on_old_tariff"`
	ClockSkewed       int          `json:"clock_skewed"`
	ListedDevices     []DeviceJSON `json:"list"`
	ListedProblemOnly bool         `json:"problems_only"`
}

func ptime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func writeJSON(w io.Writer, v View, devs []Device, problemsOnly bool) error {
	s := v.Summary
	doc := ViewJSON{At: v.At.UTC(), OfflineAfterSec: int64(v.Options.Offline.Seconds()), Devices: s.Devices, Offline: s.Offline,
		SilentOver1h: s.SilentOver[0], SilentOver24h: s.SilentOver[1], SilentOver7d: s.SilentOver[2],
		NewestHotlist: v.NewestHotlist, NewestTariff: v.NewestTariff, OnOldHotlist: s.OldHotlist, OnOldTariff: s.OldTariff,
		ClockSkewed: s.ClockSkewed, ListedDevices: []DeviceJSON{}, ListedProblemOnly: problemsOnly}
	for _, d := range devs {
		j := DeviceJSON{Device: d.Device, LastBatch: ptime(d.LastBatch), BatchCreated: ptime(d.BatchCreated), LastTap: ptime(d.LastTap),
			LastSeq: d.LastSeq, TariffVersion: d.TariffVersion, HotlistVersion: d.HotlistVersion, ClockOffsetMS: d.ClockOffset.Milliseconds(),
			Offline: d.Offline, OldHotlist: d.OldHotlist, OldTariff: d.OldTariff, ClockSkewed: d.ClockSkewed}
		if !d.HeardAt.IsZero() {
			n := int64(d.Silent.Seconds())
			j.SilentSeconds = &n
		}
		doc.ListedDevices = append(doc.ListedDevices, j)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
