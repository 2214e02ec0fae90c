package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/citycard/transit/clearing/store"
)

func newReportCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Reports for finance staff: the monthly compensation per carrier",
	}
	sf.register(cmd)

	var period, carrier, format string
	var byCategory bool
	comp := &cobra.Command{
		Use:   "compensation --period YYYY-MM",
		Short: "Print what the city owes each carrier for the benefit rides of a month",
		Long: `Print one line per carrier: the benefit rides recorded on cards in the month (in the city's time zone)
and the compensation owed for them, in hryvnias. --by-category splits each carrier by benefit category
and funding source. Amounts are exact: they are sums of integer kopiyky.`,
		Example: `  transit report compensation --period 2026-11 --db postgres://postgres@127.0.0.1/transit
  transit report compensation --period 2026-11 --carrier ATP-1 --by-category --format csv --db sqlite:clearing.db`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if period == "" {
				return usagef("give the month: --period YYYY-MM, e.g. --period 2026-11")
			}
			if _, err := store.ParsePeriod(period); err != nil {
				return usageError{err}
			}
			switch format {
			case "table", "csv", "json":
			default:
				return usagef("--format %q: want table, csv or json", format)
			}
			st, err := sf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			lines, err := st.Compensation(c.Context(), store.Query{Period: period, Carrier: carrier})
			if err != nil {
				return err
			}
			if !byCategory {
				lines = perCarrier(lines)
			}
			return writeCompensation(c.OutOrStdout(), format, period, lines, byCategory)
		},
	}
	comp.Flags().StringVar(&period, "period", "", "the month, YYYY-MM")
	comp.Flags().StringVar(&carrier, "carrier", "", "only this carrier")
	comp.Flags().StringVar(&format, "format", "table", "table, csv or json")
	comp.Flags().BoolVar(&byCategory, "by-category", false, "one line per carrier, benefit category and funding source")
	cmd.AddCommand(comp)
	return cmd
}

// perCarrier folds lines into one per carrier, keeping the order.
func perCarrier(lines []store.Line) []store.Line {
	idx := map[string]int{}
	var out []store.Line
	for _, l := range lines {
		i, ok := idx[l.Carrier]
		if !ok {
			i = len(out)
			idx[l.Carrier] = i
			out = append(out, store.Line{Carrier: l.Carrier})
		}
		out[i].Rides += l.Rides
		out[i].FareKop += l.FareKop
		out[i].ChargedKop += l.ChargedKop
		out[i].CompensationKop += l.CompensationKop
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Carrier < out[b].Carrier })
	return out
}

// uah formats kopiyky as hryvnias with two decimals, exactly.
func uah(kop int64) string {
	sign := ""
	if kop < 0 {
		sign, kop = "-", -kop
	}
	return fmt.Sprintf("%s%d.%02d", sign, kop/100, kop%100)
}

func writeCompensation(w io.Writer, format, period string, lines []store.Line, byCategory bool) error {
	var total store.Line
	for _, l := range lines {
		total.Rides += l.Rides
		total.CompensationKop += l.CompensationKop
		total.FareKop += l.FareKop
	}
	switch format {
	case "json":
		type jsonLine struct {
			Carrier         string `json:"carrier"`
			Category        string `json:"category,omitempty"`
			Funding         string `json:"funding,omitempty"`
			Rides           int64  `json:"rides"`
			FareKop         int64  `json:"fare_kop"`
			CompensationKop int64  `json:"compensation_kop"`
		}
		doc := struct {
			Period          string     `json:"period"`
			Lines           []jsonLine `json:"lines"`
			Rides           int64      `json:"rides"`
			CompensationKop int64      `json:"compensation_kop"`
		}{Period: period, Lines: []jsonLine{}, Rides: total.Rides, CompensationKop: total.CompensationKop}
		for _, l := range lines {
			doc.Lines = append(doc.Lines, jsonLine{l.Carrier, l.Category, l.Funding, l.Rides, l.FareKop, l.CompensationKop})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	case "csv":
		cw := csv.NewWriter(w)
		head := []string{"period", "carrier"}
		if byCategory {
			head = append(head, "category", "funding")
		}
		cw.Write(append(head, "rides", "compensation_uah"))
		for _, l := range lines {
			row := []string{period, l.Carrier}
			if byCategory {
				row = append(row, l.Category, l.Funding)
			}
			cw.Write(append(row, fmt.Sprint(l.Rides), uah(l.CompensationKop)))
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "Compensation for benefit rides, %s\n", period)
	if byCategory {
		fmt.Fprintln(tw, "carrier\tcategory\tfunding\tbenefit rides\tcompensation, UAH\t")
		for _, l := range lines {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t\n", l.Carrier, l.Category, l.Funding, l.Rides, uah(l.CompensationKop))
		}
		fmt.Fprintf(tw, "TOTAL\t\t\t%d\t%s\t\n", total.Rides, uah(total.CompensationKop))
	} else {
		fmt.Fprintln(tw, "carrier\tbenefit rides\tcompensation, UAH\t")
		for _, l := range lines {
			fmt.Fprintf(tw, "%s\t%d\t%s\t\n", l.Carrier, l.Rides, uah(l.CompensationKop))
		}
		fmt.Fprintf(tw, "TOTAL\t%d\t%s\t\n", total.Rides, uah(total.CompensationKop))
	}
	return tw.Flush()
}
