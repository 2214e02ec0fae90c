package report

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/citycard/transit/clearing/rerate"
	"github.com/citycard/transit/clearing/store"
)

// HeldJSON is one carrier's rides of one reason that a statement does not
// pay.
type HeldJSON struct {
	Carrier    string `json:"carrier"`
	Reason     string `json:"reason"`
	Rides      int64  `json:"rides"`
	ClaimedKop int64  `json:"claimed_kop"`
}

func heldJSON(hs []store.HeldLine) []HeldJSON {
	var out []HeldJSON
	for _, h := range hs {
		out = append(out, HeldJSON{h.Carrier, h.Reason, h.Rides, h.ClaimedKop})
	}
	return out
}

// categoryText is a line's category, marked when people released its
// rides.
func categoryText(l store.Line) string {
	if l.Kind == rerate.KindReleased {
		return l.Category + " (released by decision)"
	}
	return l.Category
}

// writeHeld writes what a statement holds back, when it holds anything.
func writeHeld(w io.Writer, st store.Statement) error {
	if len(st.Held) == 0 {
		return nil
	}
	t := st.HeldTotal()
	fmt.Fprintf(w, "  held back, not paid: %d rides claiming %s UAH\n", t.Rides, UAH(t.ClaimedKop))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "carrier\treason\trides\tclaimed, UAH\t")
	for _, h := range st.Held {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t\n", h.Carrier, h.Reason, h.Rides, UAH(h.ClaimedKop))
	}
	return tw.Flush()
}

// Proof is how the compensable rides of a period stand, per carrier: paid
// and confirmed by the card's own later evidence, paid unconfirmed, and
// held or waiting.
type Proof struct {
	Period string
	Lines  []store.ProofLine
	Total  store.ProofLine
}

// BuildProof reads a period's proof lines.
func BuildProof(ctx context.Context, st store.Store, period string) (Proof, error) {
	lines, err := st.Proof(ctx, period)
	if err != nil {
		return Proof{}, err
	}
	p := Proof{Period: period, Lines: lines, Total: store.ProofLine{Carrier: "TOTAL"}}
	for _, l := range lines {
		p.Total.Paid += l.Paid
		p.Total.Confirmed += l.Confirmed
		p.Total.CompensationKop += l.CompensationKop
		p.Total.Held += l.Held
		p.Total.Waiting += l.Waiting
		p.Total.HeldKop += l.HeldKop
	}
	return p, nil
}

// ProofLineJSON is one carrier's proof line in JSON.
type ProofLineJSON struct {
	Carrier         string `json:"carrier"`
	Paid            int64  `json:"paid"`
	Confirmed       int64  `json:"confirmed"`
	Unconfirmed     int64  `json:"unconfirmed"`
	CompensationKop int64  `json:"compensation_kop"`
	Held            int64  `json:"held"`
	Waiting         int64  `json:"waiting"`
	HeldKop         int64  `json:"held_claimed_kop"`
}

// ProofDoc is a proof report in JSON.
type ProofDoc struct {
	Period string          `json:"period"`
	Lines  []ProofLineJSON `json:"lines"`
	Total  ProofLineJSON   `json:"total"`
}

func proofLineJSON(l store.ProofLine) ProofLineJSON {
	return ProofLineJSON{l.Carrier, l.Paid, l.Confirmed, l.Unconfirmed(), l.CompensationKop, l.Held, l.Waiting, l.HeldKop}
}

// ProofJSON returns p as its JSON document.
func ProofJSON(p Proof) ProofDoc {
	d := ProofDoc{Period: p.Period, Lines: []ProofLineJSON{}, Total: proofLineJSON(p.Total)}
	for _, l := range p.Lines {
		d.Lines = append(d.Lines, proofLineJSON(l))
	}
	return d
}

// WriteProof writes a proof report as a table or JSON.
func WriteProof(w io.Writer, format string, p Proof) error {
	switch format {
	case "json":
		return writeJSON(w, ProofJSON(p))
	case "table":
	default:
		return fmt.Errorf("proof format %q: want table or json", format)
	}
	fmt.Fprintf(w, "Benefit rides of %s and the card's own proof of them\n", p.Period)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "carrier\tpaid\tconfirmed by the card\tunconfirmed\tcompensation, UAH\theld\twaiting\tclaimed by held, UAH\t")
	for _, l := range append(p.Lines, p.Total) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%d\t%d\t%s\t\n", l.Carrier, l.Paid, l.Confirmed, l.Unconfirmed(), UAH(l.CompensationKop),
			l.Held, l.Waiting, UAH(l.HeldKop))
	}
	return tw.Flush()
}
