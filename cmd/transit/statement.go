package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/hsm"
)

// newStatementCmd returns the statement commands. They use the database
// flags of sf when given (as a subcommand of clearing), or their own.
func newStatementCmd(sf *storeFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "statement",
		Short: "Close, show, verify and export the monthly compensation statements",
		Long: `A period's statement is a draft while the period is open: its lines grow as taps arrive. Closing it
freezes the lines, and signs, with who closed it and when and the signing key's fingerprint, a salted
digest of each carrier's lines (its part) with the sign-statement key in the HSM. A closed statement
never changes and a closed period is never reopened: rides of the period that arrive later go into an
adjustment statement of the next open period, which names the period it adjusts.

A carrier's copy ('statement export --carrier') holds the signed statement and that carrier's part
alone: the carrier checks its lines against the signature and learns nothing of the other carriers'
lines. A carrier or an auditor checks a copy with the city's public statement key alone, in three
commands:

  transit hsm export-public sign-statement --keystore city.keys > city-statements.pem   (the city, once; publish it)
  openssl pkey -pubin -in city-statements.pem -outform DER | sha256sum                  (compare with the key fingerprint the city publishes and the PDF prints)
  transit statement verify --bundle atp1-2026-11.bundle --public-key city-statements.pem`,
	}
	if sf == nil {
		sf = &storeFlags{}
		sf.register(cmd)
	}
	var hf hsmFlags
	hf.register(cmd)

	var (
		period, key, format string
		early, yes          bool
		actor               string
	)
	service := func(c *cobra.Command, needKeys bool) (*statement.Service, func(), error) {
		if err := needPeriod(period); err != nil {
			return nil, nil, err
		}
		loc, err := sf.location()
		if err != nil {
			return nil, nil, err
		}
		svc := &statement.Service{Location: loc}
		var closers []func()
		done := func() {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
		if needKeys {
			km, closeKeys, err := hf.open(c.ErrOrStderr())
			if err != nil {
				return nil, nil, err
			}
			closers = append(closers, closeKeys)
			svc.Keys = km
			// Closing judges what is queued first, EV2/EV3 rides with
			// the card's Transaction MAC.
			if err := sf.useCardMACs(c.Context(), km, slog.Default()); err != nil {
				done()
				return nil, nil, err
			}
			if key != "" {
				if svc.Key, err = hsm.ParseRef(key); err != nil {
					done()
					return nil, nil, usageError{err}
				}
			}
		}
		st, err := sf.open(c.Context())
		if err != nil {
			done()
			return nil, nil, err
		}
		closers = append(closers, func() { st.Close() })
		svc.Store = st
		return svc, done, nil
	}

	closeCmd := &cobra.Command{
		Use:   "close --period YYYY-MM --yes [--actor NAME]",
		Short: "Close a month for good: freeze, hash and sign its statements, with who closed it",
		Long: `Close a month after it ended in the city's time zone (--early closes it before, on purpose). Its own
statement and the adjustment statements booked into it are frozen, hashed and signed with the newest
sign-statement key (or --key label@version), and the signatures are checked before the command returns.

Closing cannot be undone. Without --yes the command only prints what it would close (the statements,
their rides and compensation per carrier) and exits 2 having changed nothing; with --yes it closes
exactly those figures, and fails if rides were booked meanwhile.

Who closed it is signed with the statements: --actor NAME, or else the operating-system user running
the command. A root or unknown OS user is not a person: then --actor is required.`,
		Example: `  transit statement close --period 2026-11 --db sqlite:clearing.db --keystore keys.json        # shows what it would close
  TRANSIT_KEYSTORE_PASSPHRASE=... transit statement close --period 2026-11 --yes --actor o.koval --db sqlite:clearing.db --keystore keys.json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			who, err := closingActor(actor)
			if err != nil {
				return err
			}
			if err := needPeriod(period); err != nil {
				return err
			}
			if !yes {
				// The preview needs no key: nothing is signed.
				svc, done, err := service(c, false)
				if err != nil {
					return err
				}
				defer done()
				p, err := svc.Preview(c.Context(), period)
				if err != nil {
					return err
				}
				writePreview(c.OutOrStdout(), p, svc.Location, who)
				return usagef("nothing closed: closing %s cannot be undone; check the figures above and run again with --yes", period)
			}
			svc, done, err := service(c, true)
			if err != nil {
				return err
			}
			defer done()
			p, err := svc.Preview(c.Context(), period)
			if err != nil {
				return err
			}
			writePreview(c.ErrOrStderr(), p, svc.Location, who)
			sts, err := svc.Close(c.Context(), period, statement.Closing{Early: early, Actor: who, Confirmed: true, Expect: p.Token()})
			if errors.Is(err, statement.ErrNotOver) {
				return fmt.Errorf("%w (that is --early)", err)
			}
			if err != nil {
				return err
			}
			return report.WriteStatements(c.OutOrStdout(), format, sts, svc.Location)
		},
	}
	closeCmd.Flags().BoolVar(&early, "early", false, "close the month before it ended")
	closeCmd.Flags().BoolVar(&yes, "yes", false, "close for good (without it, only show what would be closed)")
	closeCmd.Flags().StringVar(&actor, "actor", "", "who closes, signed with the statements (default: the OS user, unless root)")
	closeCmd.Flags().StringVar(&key, "key", "", "signing key, label@version (default: newest sign-statement)")

	var canonical bool
	show := &cobra.Command{
		Use:   "show --period YYYY-MM",
		Short: "Print a month's statements: drafts while open, as signed once closed",
		Long: `Print a month's own statement and its adjustment statements. --canonical prints each closed statement's
canonical form instead: the exact text whose SHA-256 is the content hash, for auditors to recompute.`,
		Example: `  transit statement show --period 2026-11 --db sqlite:clearing.db
  transit statement show --period 2026-11 --canonical --db sqlite:clearing.db | sha256sum`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			svc, done, err := service(c, false)
			if err != nil {
				return err
			}
			defer done()
			sts, err := svc.Store.Statements(c.Context(), period)
			if err != nil {
				return err
			}
			if !canonical {
				return report.WriteStatements(c.OutOrStdout(), format, sts, svc.Location)
			}
			if !sts[0].Closed {
				return fmt.Errorf("%s is open: only a closed statement has a canonical form; close it first", period)
			}
			for i := range sts {
				if _, err := c.OutOrStdout().Write(statement.Canonical(&sts[i])); err != nil {
					return err
				}
			}
			return nil
		},
	}
	show.Flags().BoolVar(&canonical, "canonical", false, "print the canonical form of each closed statement")

	var (
		deep              bool
		publicKey, bundle string
	)
	verify := &cobra.Command{
		Use:   "verify (--period YYYY-MM --db URL | --bundle FILE) [--public-key FILE]",
		Short: "Check closed statements' hashes and signatures, with the public key alone if need be",
		Long: `Recompute each closed statement's content hash and verify its signature. The key is the city's public
statement key (--public-key FILE, from 'transit hsm export-public sign-statement'), which needs no
secret, or the keystore's; either way it is named by its fingerprint, and a statement signed by
another key is reported as such, not as a changed statement.

--bundle FILE checks the file 'transit statement export' writes, offline: no database, no keystore,
only --public-key. --deep (with --db) also compares the lines with the roll-up and with sums over the
raw taps of the month (a scan of the month's taps). Exits 1 when any check fails.`,
		Example: `  transit statement verify --bundle statement-2026-11.bundle --public-key city-statements.pem
  transit statement verify --period 2026-11 --deep --db sqlite:clearing.db --public-key city-statements.pem
  TRANSIT_KEYSTORE_PASSPHRASE=... transit statement verify --period 2026-11 --db sqlite:clearing.db --keystore keys.json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			loc, err := sf.location()
			if err != nil {
				return err
			}
			var pub ed25519.PublicKey
			if publicKey != "" {
				if pub, err = readPublicKey(publicKey); err != nil {
					return err
				}
			}
			if bundle != "" {
				if pub == nil {
					return usagef("--bundle needs the city's public statement key: --public-key FILE (a key inside the bundle proves nothing by itself)")
				}
				return verifyBundle(c.OutOrStdout(), bundle, pub, loc)
			}
			svc, done, err := service(c, pub == nil)
			if err != nil {
				return err
			}
			defer done()
			svc.PublicKey = pub
			vs, err := svc.Verify(c.Context(), period, deep)
			if err != nil {
				return err
			}
			bad, other := 0, 0
			for _, v := range vs {
				name := v.Statement.Period
				if v.Statement.Adjusts != "" {
					name += " (adjusting " + v.Statement.Adjusts + ")"
				}
				if v.OK() {
					checks := "hash and signature by " + v.Statement.KeyRef
					if v.Statement.KeyFingerprint != "" {
						checks += " " + v.Statement.KeyFingerprint
					}
					if deep {
						checks += ", roll-up, raw taps"
					}
					fmt.Fprintf(c.OutOrStdout(), "%s: OK (%s; closed %s by %s)\n", name, checks,
						v.Statement.ClosedAt.In(loc).Format("02.01.2006 15:04 MST"), orUnrecorded(v.Statement.ClosedBy))
					continue
				}
				bad++
				if v.OtherKey {
					other++
				}
				fmt.Fprintf(c.OutOrStdout(), "%s: FAILED: %s\n", name, strings.Join(v.Problems, "; "))
			}
			switch {
			case bad > 0 && bad == other:
				return errors.New("verification failed: the statements were signed by another key than the one given; verify with the city's statement key (--public-key)")
			case bad > 0:
				return errors.New("verification failed: the statement or the data under it was changed after the close; investigate before paying")
			}
			return nil
		},
	}
	verify.Flags().BoolVar(&deep, "deep", false, "also compare with the roll-up and the raw taps")
	verify.Flags().StringVar(&publicKey, "public-key", "", "the city's public statement key, PEM (transit hsm export-public sign-statement)")
	verify.Flags().StringVar(&bundle, "bundle", "", "check this statement bundle offline (transit statement export), with --public-key")

	for _, sub := range []*cobra.Command{closeCmd, show, verify} {
		sub.Flags().StringVar(&period, "period", "", "the month, YYYY-MM")
	}
	for _, sub := range []*cobra.Command{closeCmd, show} {
		sub.Flags().StringVar(&format, "format", "table", "table or json")
	}
	cmd.AddCommand(closeCmd, show, verify, newStatementExportCmd(sf, &hf))
	return cmd
}

// closingActor is who closes a period from the command line: --actor,
// or the OS user when that names a person.
func closingActor(flag string) (string, error) {
	who := strings.TrimSpace(flag)
	if who == "" {
		u, err := user.Current()
		if err != nil || u.Username == "" || u.Username == "root" || u.Uid == "0" {
			return "", usagef("say who closes the period: --actor NAME (the OS user is root or unknown, which names no person)")
		}
		who = u.Username
	}
	if err := statement.CheckActor(who); err != nil {
		return "", usagef("--actor: %v", err)
	}
	return who, nil
}

func orUnrecorded(s string) string {
	if s == "" {
		return "(not recorded: closed before actors were)"
	}
	return s
}

// writePreview prints what a close would freeze.
func writePreview(w io.Writer, p statement.Preview, loc *time.Location, who string) {
	fmt.Fprintf(w, "Closing %s freezes and signs, as closed by %s:\n", p.Period, who)
	for _, st := range p.Statements {
		name := "  statement " + st.Period
		if st.Adjusts != "" {
			name = "  adjustment of " + st.Adjusts
		}
		t := st.Total()
		fmt.Fprintf(w, "%s: %d benefit rides, compensation %s UAH\n", name, t.Rides, report.UAH(t.CompensationKop))
		for _, l := range report.PerCarrier(st.Lines) {
			fmt.Fprintf(w, "    %s: %d rides, %s UAH\n", l.Carrier, l.Rides, report.UAH(l.CompensationKop))
		}
		writeHeld(w, "    ", st.Held)
	}
	fmt.Fprintf(w, "  total: %d benefit rides, compensation %s UAH\n", p.Total.Rides, report.UAH(p.Total.CompensationKop))
	if p.Early {
		fmt.Fprintf(w, "  %s has not ended yet (it ends %s): closing it now needs --early\n", p.Period, p.Ends.In(loc).Format("02.01.2006 15:04 MST"))
	}
}

// writeHeld prints the rides a statement holds back, per carrier and
// reason: signed with it (form 4), paid by no one (clearing/rerate).
func writeHeld(w io.Writer, indent string, held []store.HeldLine) {
	for _, h := range held {
		fmt.Fprintf(w, "%s%s: held back, not paid (%s): %d rides claiming %s UAH\n", indent, h.Carrier, h.Reason, h.Rides, report.UAH(h.ClaimedKop))
	}
}

// readPublicKey reads a PEM public key file.
func readPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := readSmallFile(path, statement.MaxPublicKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--public-key: %w", err)
	}
	pub, err := statement.ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("--public-key %s: %w", path, err)
	}
	return pub, nil
}

// readSmallFile reads a file of at most limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

// verifyBundle checks a bundle file with pub and prints what it holds.
func verifyBundle(w io.Writer, path string, pub ed25519.PublicKey, loc *time.Location) error {
	data, err := readSmallFile(path, statement.MaxBundle)
	if err != nil {
		return fmt.Errorf("--bundle: %w", err)
	}
	b, err := statement.ReadBundle(data)
	if err != nil {
		return fmt.Errorf("--bundle %s: %w", path, err)
	}
	vs, err := b.Verify(pub)
	if err != nil {
		return fmt.Errorf("--bundle %s: verification failed: %w", path, err)
	}
	fmt.Fprintf(w, "OK: signed by the key %s\n", statement.Fingerprint(pub))
	for _, v := range vs {
		st := v.Statement
		name := "statement " + st.Period
		if st.Adjusts != "" {
			name = "adjustment of " + st.Adjusts + " booked in " + st.Period
		}
		fmt.Fprintf(w, "%s: closed %s by %s; content hash %x\n", name, st.ClosedAt.In(loc).Format("02.01.2006 15:04 MST"), orUnrecorded(st.ClosedBy), st.Hash)
		for _, l := range report.PerCarrier(st.Lines) {
			fmt.Fprintf(w, "  %s: %d benefit rides, compensation %s UAH\n", l.Carrier, l.Rides, report.UAH(l.CompensationKop))
		}
		writeHeld(w, "  ", st.Held)
		switch {
		case len(v.Carriers) == 0:
			fmt.Fprintf(w, "  no carrier has lines in it\n")
		case v.Whole():
			t := st.Total()
			fmt.Fprintf(w, "  total: %d benefit rides, compensation %s UAH\n", t.Rides, report.UAH(t.CompensationKop))
		default:
			var others []string
			for _, c := range v.Carriers {
				if !slices.Contains(v.Disclosed, c) {
					others = append(others, c)
				}
			}
			if len(v.Disclosed) == 0 {
				fmt.Fprintf(w, "  none of its lines are in this copy\n")
			}
			fmt.Fprintf(w, "  the signature also covers the lines of %s, which are not in this copy\n", strings.Join(others, ", "))
		}
	}
	return nil
}

// statementsOf returns the closed statements of period, or an error
// saying it is open.
func statementsOf(c *cobra.Command, st store.Store, period string) ([]store.Statement, error) {
	sts, err := st.Statements(c.Context(), period)
	if err != nil {
		return nil, err
	}
	if len(sts) == 0 || !sts[0].Closed {
		return nil, fmt.Errorf("%s is open: only a closed period's statements are signed; close it first (transit statement close)", period)
	}
	return sts, nil
}
