package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/hsm"
)

// newStatementCmd returns the statement commands. They use the database
// flags of sf when given (as a subcommand of clearing), or their own.
func newStatementCmd(sf *storeFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "statement",
		Short: "Close, show and verify the monthly compensation statements",
		Long: `A period's statement is a draft while the period is open: its lines grow as taps arrive. Closing it
freezes the lines, hashes their canonical form and signs the hash with the sign-statement key in the HSM.
A closed statement never changes: rides of the period that arrive later go into an adjustment statement
of the next open period, which names the period it adjusts.`,
	}
	if sf == nil {
		sf = &storeFlags{}
		sf.register(cmd)
	}
	var hf hsmFlags
	hf.register(cmd)

	var (
		period string
		early  bool
		key    string
		format string
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
		Use:   "close --period YYYY-MM",
		Short: "Close a month: freeze, hash and sign its statements",
		Long: `Close a month after it ended in the city's time zone (--early closes it before, on purpose). Its own
statement and the adjustment statements booked into it are frozen, hashed and signed with the newest
sign-statement key (or --key label@version), and the signatures are checked before the command returns.`,
		Example: `  TRANSIT_KEYSTORE_PASSPHRASE=... transit clearing statement close --period 2026-11 --db sqlite:clearing.db --keystore keys.json`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			svc, done, err := service(c, true)
			if err != nil {
				return err
			}
			defer done()
			sts, err := svc.Close(c.Context(), period, early)
			if errors.Is(err, statement.ErrNotOver) {
				return fmt.Errorf("%w (that is --early)", err)
			}
			if err != nil {
				return err
			}
			return report.WriteStatements(c.OutOrStdout(), format, sts)
		},
	}
	closeCmd.Flags().BoolVar(&early, "early", false, "close the month before it ended")
	closeCmd.Flags().StringVar(&key, "key", "", "signing key, label@version (default: newest sign-statement)")

	var canonical bool
	show := &cobra.Command{
		Use:   "show --period YYYY-MM",
		Short: "Print a month's statements: drafts while open, as signed once closed",
		Long: `Print a month's own statement and its adjustment statements. --canonical prints each closed statement's
canonical form instead: the exact text whose SHA-256 is the content hash, for auditors to recompute.`,
		Example: `  transit clearing statement show --period 2026-11 --db sqlite:clearing.db
  transit clearing statement show --period 2026-11 --canonical --db sqlite:clearing.db | sha256sum`,
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
				return report.WriteStatements(c.OutOrStdout(), format, sts)
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

	var deep bool
	verify := &cobra.Command{
		Use:   "verify --period YYYY-MM",
		Short: "Check a closed month's hashes and signatures (and with --deep, its roll-up and raw taps)",
		Long: `Recompute each closed statement's content hash from its stored lines and verify the signature with the
public half of the key that made it. --deep also compares the lines with the roll-up and with sums over
the raw taps of the month (a scan of the month's taps). Exits 1 when any check fails.`,
		Example: `  TRANSIT_KEYSTORE_PASSPHRASE=... transit clearing statement verify --period 2026-11 --deep --db sqlite:clearing.db --keystore keys.json`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			svc, done, err := service(c, true)
			if err != nil {
				return err
			}
			defer done()
			vs, err := svc.Verify(c.Context(), period, deep)
			if err != nil {
				return err
			}
			bad := 0
			for _, v := range vs {
				name := v.Statement.Period
				if v.Statement.Adjusts != "" {
					name += " (adjusting " + v.Statement.Adjusts + ")"
				}
				if v.OK() {
					checks := "hash and signature by " + v.Statement.KeyRef
					if deep {
						checks += ", roll-up, raw taps"
					}
					fmt.Fprintf(c.OutOrStdout(), "%s: OK (%s)\n", name, checks)
					continue
				}
				bad++
				fmt.Fprintf(c.OutOrStdout(), "%s: FAILED: %s\n", name, strings.Join(v.Problems, "; "))
			}
			if bad > 0 {
				return errors.New("verification failed: the statement or the data under it was changed after the close; investigate before paying")
			}
			return nil
		},
	}
	verify.Flags().BoolVar(&deep, "deep", false, "also compare with the roll-up and the raw taps")

	for _, sub := range []*cobra.Command{closeCmd, show, verify} {
		sub.Flags().StringVar(&period, "period", "", "the month, YYYY-MM")
	}
	for _, sub := range []*cobra.Command{closeCmd, show} {
		sub.Flags().StringVar(&format, "format", "table", "table or json")
	}
	cmd.AddCommand(closeCmd, show, verify)
	return cmd
}
