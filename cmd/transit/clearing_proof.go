package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/citycard/transit/clearing/cardfeed"
	"github.com/citycard/transit/clearing/proofcheck"
	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/tariffs"
	"github.com/citycard/transit/hsm"
)

// The commands and serve wiring of clearing's proof of rides: tariffs,
// the registry's card records, carriers' routes, re-rating, held rides
// and their decisions (clearing/rerate).

// registerFeed adds the flags of a command that reads the registry's
// published tariff or card records: the same --registry, --registry-ca
// and service token as serve's (callerFlags), which serve uses for both.
func (f *callerFlags) registerFeed(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.url, "registry", "", "the registry API (https://host:port) to read from")
	cmd.Flags().StringVar(&f.ca, "registry-ca", "", "PEM file of the CA that signed the registry's TLS certificate (default: the system's roots)")
	f.token.register(cmd.Flags(), "registry-token", "clearing's own service token for the registry (transit registry token create --role service)")
}

// feedClient returns what reading the registry's feeds needs: its URL,
// clearing's service token and an HTTP client trusting --registry-ca.
func (f *callerFlags) feedClient(stderr io.Writer) (string, string, *http.Client, error) {
	if f.url == "" {
		return "", "", nil, usagef("give the registry: --registry URL")
	}
	token, err := f.token.read("registry-token", stderr)
	if err != nil {
		return "", "", nil, err
	}
	if token == "" {
		return "", "", nil, usagef("no service token for the registry: set %s or give --registry-token-file (transit registry token create --role service)", registryTokenEnv)
	}
	hc, err := clientWithCA(f.ca, time.Minute)
	if err != nil {
		return "", "", nil, err
	}
	return strings.TrimRight(f.url, "/"), token, hc, nil
}

// tariffFetcher reads the tariff the registry publishes (GET /v1/tariff).
func tariffFetcher(base, token string, hc *http.Client, km hsm.KeyManager, st store.Store, log *slog.Logger) *tariffs.Fetcher {
	return &tariffs.Fetcher{URL: base + "/v1", Token: token, Client: hc, Keys: km, Store: st, Log: log}
}

// proofFlags are serve's: how often tariffs and card records are read
// from the registry (serve's --registry).
type proofFlags struct {
	tariffEvery   time.Duration
	registryEvery time.Duration
}

func (f *proofFlags) register(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&f.tariffEvery, "tariff-every", 10*time.Minute, "how often to fetch the registry's published tariff (with --registry)")
	cmd.Flags().DurationVar(&f.registryEvery, "registry-every", time.Minute, "how often to read the registry's card records (with --registry)")
}

// startProof runs beside ingest what proves the rides: the re-rating
// checker, and with --registry the tariff fetcher and the card records
// feed, with clearing's service token and the registry's CA. They end
// with ctx.
func startProof(ctx context.Context, f *proofFlags, cf *callerFlags, st store.Store, km hsm.KeyManager, reg prometheus.Registerer, stderr io.Writer, log *slog.Logger) error {
	pm, err := proofcheck.NewMetrics(reg)
	if err != nil {
		return err
	}
	go (&proofcheck.Checker{Store: st, Metrics: pm, Log: log}).Run(ctx) //nolint:errcheck // ends with ctx
	if cf.url == "" {
		log.Warn("no --registry: clearing keeps only the tariffs and card records it is given by hand; rides it cannot prove wait")
		return nil
	}
	base, token, hc, err := cf.feedClient(stderr)
	if err != nil {
		return err
	}
	fm, err := cardfeed.NewMetrics(reg)
	if err != nil {
		return err
	}
	go tariffFetcher(base, token, hc, km, st, log).Run(ctx, f.tariffEvery) //nolint:errcheck // ends with ctx
	feed := &cardfeed.Syncer{Store: st, URL: base, Token: token, Client: hc, Metrics: fm, Log: log}
	go feed.Run(ctx, f.registryEvery) //nolint:errcheck // ends with ctx
	return nil
}

// addProofCmds adds the proof commands to clearing's.
func addProofCmds(cmd *cobra.Command, sf *storeFlags) {
	cmd.AddCommand(newClearingTariffCmd(sf), newTariffsCmd(sf), newRegistrySyncCmd(sf), newRoutesCmd(sf), newRerateCmd(sf),
		newHeldCmd(sf))
}

func newClearingTariffCmd(sf *storeFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tariff",
		Short: "Give clearing a signed tariff to re-rate rides with",
	}
	var hf hsmFlags
	hf.register(cmd)
	add := &cobra.Command{
		Use:   "add DIR",
		Short: "Verify a signed tariff directory and keep it",
		Long: `Verify the signed tariff directory (validator/tariff/FORMAT.md, "Signing") with the sign-tariff verify keys
of the keystore or token, as a validator does, and keep it. Clearing keeps every version it is given:
rides name the version their validator priced them with, and a ride naming a version clearing lacks waits
until that version is added, then is re-rated.`,
		Example: `  TRANSIT_KEYSTORE_PASSPHRASE=... transit clearing tariff add run/tariff --db sqlite:clearing.db --keystore keys.json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			km, done, err := hf.open(c.ErrOrStderr())
			if err != nil {
				return err
			}
			defer done()
			st, err := sf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			tf, added, err := tariffs.AddDir(c.Context(), st, km, args[0], time.Now())
			if err != nil {
				return err
			}
			what := "kept"
			if !added {
				what = "already kept"
			}
			fmt.Fprintf(c.OutOrStdout(), "tariff version %d (signed by %s) %s\n", tf.Version, tf.KeyRef, what)
			return nil
		},
	}
	var rf callerFlags
	fetch := &cobra.Command{
		Use:   "fetch --registry URL",
		Short: "Fetch the tariff the registry publishes, verify it and keep it",
		Example: `  TRANSIT_KEYSTORE_PASSPHRASE=... transit clearing tariff fetch --registry https://registry.example \
      --db sqlite:clearing.db --keystore keys.json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			base, token, hc, err := rf.feedClient(c.ErrOrStderr())
			if err != nil {
				return err
			}
			km, done, err := hf.open(c.ErrOrStderr())
			if err != nil {
				return err
			}
			defer done()
			st, err := sf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			v, added, err := tariffFetcher(base, token, hc, km, st, slog.Default()).Fetch(c.Context())
			if err != nil {
				return err
			}
			if added {
				fmt.Fprintf(c.OutOrStdout(), "tariff version %d kept\n", v)
			} else {
				fmt.Fprintf(c.OutOrStdout(), "nothing new: the registry publishes version %d, which clearing keeps\n", v)
			}
			return nil
		},
	}
	rf.registerFeed(fetch)
	cmd.AddCommand(add, fetch)
	return cmd
}

func newTariffsCmd(sf *storeFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "tariffs",
		Short:   "List the signed tariffs clearing keeps",
		Example: `  transit clearing tariffs --db sqlite:clearing.db`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			st, err := sf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			ts, err := st.Tariffs(c.Context(), false)
			if err != nil {
				return err
			}
			if len(ts) == 0 {
				fmt.Fprintln(c.OutOrStdout(), "no tariff: add one with transit clearing tariff add DIR; until then every benefit ride waits")
				return nil
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "version\tsigned by\tsha256\tadded\tfrom")
			for _, t := range ts {
				fmt.Fprintf(tw, "%d\t%s\t%x\t%s\t%s\n", t.Version, t.KeyRef, t.Digest[:8], t.Added.Format(time.RFC3339), t.Source)
			}
			return tw.Flush()
		},
	}
}

func newRegistrySyncCmd(sf *storeFlags) *cobra.Command {
	var rf callerFlags
	cmd := &cobra.Command{
		Use:   "registry-sync --registry URL",
		Short: "Copy the registry's card records (entitlements, benefit revocations) into clearing now",
		Long: `Read the registry's card records from where clearing's copy stopped until the registry's newest event
(clearing serve --registry does this every minute). The token is a registry token of the service role,
from --registry-token-file or TRANSIT_REGISTRY_TOKEN; the records carry no personal data.`,
		Example: `  TRANSIT_REGISTRY_TOKEN=rgt_... transit clearing registry-sync --registry https://registry.example --db sqlite:clearing.db`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			base, token, hc, err := rf.feedClient(c.ErrOrStderr())
			if err != nil {
				return err
			}
			st, err := sf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := (&cardfeed.Syncer{Store: st, URL: base, Token: token, Client: hc}).Sync(c.Context())
			if err != nil {
				return err
			}
			feed, err := st.Feed(c.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%d card records changed; complete as of %s (registry event %d)\n", n, feed.AsOf.Format(time.RFC3339), feed.Next)
			return nil
		},
	}
	rf.registerFeed(cmd)
	return cmd
}

func newRoutesCmd(sf *storeFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "routes",
		Short: "Show or set the routes each carrier runs; a benefit ride on another route is held",
		Long: `Without arguments, list the carriers clearing holds a list of routes for. With "set CARRIER ROUTE...",
make that the carrier's list; with "set CARRIER" and no routes, drop it, so that its routes are no longer
checked. A carrier without a list is not checked: tariffs name routes only where their network differs.`,
		Example: `  transit clearing routes set ATP-1 12 21 37 --db sqlite:clearing.db
  transit clearing routes --db sqlite:clearing.db`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			st, err := sf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			rs, err := st.Routes(c.Context())
			if err != nil {
				return err
			}
			if len(rs) == 0 {
				fmt.Fprintln(c.OutOrStdout(), "no carrier has a list of routes: routes are not checked")
			}
			for carrier, routes := range rs {
				fmt.Fprintf(c.OutOrStdout(), "%s: %s\n", carrier, strings.Join(routes, " "))
			}
			return nil
		},
	}
	set := &cobra.Command{
		Use:   "set CARRIER [ROUTE...]",
		Short: "Make ROUTE... the carrier's routes (none: stop checking them)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			st, err := sf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.SetRoutes(c.Context(), args[0], args[1:]); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%s: %d routes; its open months' rides are judged again\n", args[0], len(args)-1)
			return nil
		},
	}
	cmd.AddCommand(set)
	return cmd
}

func newRerateCmd(sf *storeFlags) *cobra.Command {
	var hf hsmFlags
	cmd := &cobra.Command{
		Use:   "rerate",
		Short: "Judge now what waits for re-rating (clearing serve does it beside ingest)",
		Long: `Judge now what waits for re-rating, as clearing serve does beside ingest. With clearing's key
backend (--keystore or --pkcs11-module) the Transaction MAC of every ride of an EV2/EV3 card is
verified with its tmac-master; without it such rides wait (card-mac-unchecked).`,
		Example: `  TRANSIT_KEYSTORE_PASSPHRASE=... transit clearing rerate --db sqlite:clearing.db --keystore keys.json`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if hf.keystore != "" || hf.module != "" {
				km, done, err := hf.open(c.ErrOrStderr())
				if err != nil {
					return err
				}
				defer done()
				if err := sf.useCardMACs(c.Context(), km, slog.Default()); err != nil {
					return err
				}
			}
			st, err := sf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			total, err := (&proofcheck.Checker{Store: st}).Drain(c.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "judged %d rides of %d cards; %d records changed\n", total.Rides, total.Cards, total.Changed)
			return nil
		},
	}
	hf.register(cmd)
	return cmd
}

func newHeldCmd(sf *storeFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "held",
		Short: "List held rides and release or reject them, on the record",
		Long: `A benefit ride clearing cannot prove is held: not paid, listed with the reason and the evidence. Nothing
leaves "held" by itself once its month is closed; finance staff release a held ride (it is paid as
re-rated, on a line of its own in the month's statement or, the month closed, in the next open one's
adjustment) or reject it (never paid), with a written reason. Who and when are recorded.`,
	}
	var (
		period, carrier, reason string
		decided                 bool
	)
	list := &cobra.Command{
		Use:     "list --period YYYY-MM",
		Short:   "List a month's held and waiting rides with the reason and evidence",
		Example: `  transit clearing held list --period 2026-11 --db sqlite:clearing.db`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := needPeriod(period); err != nil {
				return err
			}
			st, err := sf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			q := store.HeldQuery{Period: period, Carrier: carrier, Reason: reason, Decided: decided, Limit: store.MaxHeldPage}
			w := c.OutOrStdout()
			n := 0
			for {
				page, err := st.Held(c.Context(), q)
				if err != nil {
					return err
				}
				for _, h := range page {
					n++
					writeHeldRide(w, h)
				}
				if len(page) < q.Limit {
					break
				}
				last := page[len(page)-1].Tap
				q.After = store.Ride{Device: last.Device, Seq: last.Seq}
			}
			if n == 0 {
				fmt.Fprintf(w, "no held rides in %s\n", period)
			}
			return nil
		},
	}
	list.Flags().StringVar(&period, "period", "", "the rides' month, YYYY-MM")
	list.Flags().StringVar(&carrier, "carrier", "", "only this carrier's")
	list.Flags().StringVar(&reason, "reason", "", "only held for this reason (e.g. differs, not-entitled)")
	list.Flags().BoolVar(&decided, "decided", false, "list released and rejected rides too")
	cmd.AddCommand(list, newDecideCmd(sf, true), newDecideCmd(sf, false))
	return cmd
}

func writeHeldRide(w io.Writer, h store.HeldRide) {
	t := h.Tap
	fmt.Fprintf(w, "%s/%d  %s  card %d  %s route %s  %s %s/%s  claims %s UAH  [%s: %s]\n", t.Device, t.Seq,
		t.Time.Format(time.RFC3339), t.Card, t.Carrier, t.Route, t.Product, t.Category, t.Funding, report.UAH(t.CompensationKop), h.State, h.Reason)
	fmt.Fprintf(w, "    %s\n", h.Detail)
	if h.Priced {
		fmt.Fprintf(w, "    a release pays %s UAH\n", report.UAH(h.Release.CompensationKop))
	}
	if h.Confirmed {
		fmt.Fprintln(w, "    a later tap of the card names this ride")
	}
	if h.DecidedBy != "" {
		fmt.Fprintf(w, "    %s by %s at %s: %s\n", h.State, h.DecidedBy, h.DecidedAt.Format(time.RFC3339), h.Note)
	}
}

func newDecideCmd(sf *storeFlags, release bool) *cobra.Command {
	verb, use := "reject", "reject DEVICE/SEQ... --reason TEXT"
	short := "Reject held rides: they are never paid"
	if release {
		verb, use = "release", "release DEVICE/SEQ... --reason TEXT"
		short = "Release held rides: they are paid as re-rated, on a line of their own"
	}
	var (
		note, actor string
		yes         bool
	)
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `. All the rides named or none: a ride that is not held (or, to release, that clearing cannot
price) fails the whole decision. The decision is final and recorded with the written --reason, the time
and who made it: --actor NAME, or else the operating-system user running the command (a root or unknown
OS user names no person: then --actor is required). It asks for confirmation unless --yes.`,
		Example: "  transit clearing held " + verb + " BUS-0417-front/1234 BUS-0417-front/1240 --reason 'checked the trip log' --db sqlite:clearing.db",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if strings.TrimSpace(note) == "" {
				return usagef("give the written reason: --reason TEXT")
			}
			if len(args) > store.MaxDecide {
				return usagef("%d rides: decide at most %d at once", len(args), store.MaxDecide)
			}
			who, err := closingActor(actor)
			if err != nil {
				return err
			}
			d := store.HeldDecision{Release: release, Note: strings.TrimSpace(note), At: time.Now(), By: "cli:" + who}
			for _, a := range args {
				r, err := parseRideArg(a)
				if err != nil {
					return usageError{err}
				}
				d.Rides = append(d.Rides, r)
			}
			if !yes {
				ok, err := confirm(c, fmt.Sprintf("%s %d rides, recorded as %s with the reason %q? This cannot be undone. Type yes: ", verb, len(d.Rides), d.By, d.Note))
				if err != nil {
					return err
				}
				if !ok {
					return usagef("nothing was decided: confirm with yes, or give --yes")
				}
			}
			st, err := sf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			rides, err := st.Decide(c.Context(), d)
			if errors.Is(err, store.ErrNotHeld) || errors.Is(err, store.ErrNotPriced) {
				return fmt.Errorf("%w; nothing was decided (transit clearing held list shows what is held)", err)
			}
			if err != nil {
				return err
			}
			for _, h := range rides {
				writeHeldRide(c.OutOrStdout(), h)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&note, "reason", "", "the written reason for the decision, recorded with it")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	cmd.Flags().StringVar(&actor, "actor", "", "who decides, recorded with the decision (default: the OS user, unless root)")
	return cmd
}

// parseRideArg reads DEVICE/SEQ.
func parseRideArg(s string) (store.Ride, error) {
	i := strings.LastIndexByte(s, '/')
	var seq uint64
	if i > 0 {
		if _, err := fmt.Sscan(s[i+1:], &seq); err != nil {
			seq = 0
		}
	}
	if i <= 0 || seq == 0 || fmt.Sprint(seq) != s[i+1:] {
		return store.Ride{}, fmt.Errorf("ride %q: want DEVICE/SEQ as held list shows them, e.g. BUS-0417-front/1234", s)
	}
	return store.Ride{Device: s[:i], Seq: seq}, nil
}

// newProofReportCmd is report's proof subcommand.
func newProofReportCmd(sf *storeFlags) *cobra.Command {
	var period, format string
	cmd := &cobra.Command{
		Use:   "proof --period YYYY-MM",
		Short: "Print per carrier a month's benefit rides confirmed by the card, unconfirmed, and held",
		Long: `Print per carrier how a month's compensable rides stand: paid, of them confirmed by the card's own later
evidence (a later tap of the card names the ride) or not yet, and held or waiting with what they claim.`,
		Example: `  transit report proof --period 2026-11 --db sqlite:clearing.db`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := needPeriod(period); err != nil {
				return err
			}
			if format != "table" && format != "json" {
				return usagef("--format %q: want table or json", format)
			}
			st, err := sf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			p, err := report.BuildProof(c.Context(), st, period)
			if err != nil {
				return err
			}
			return report.WriteProof(c.OutOrStdout(), format, p)
		},
	}
	cmd.Flags().StringVar(&period, "period", "", "the month, YYYY-MM")
	cmd.Flags().StringVar(&format, "format", "table", "table or json")
	return cmd
}
