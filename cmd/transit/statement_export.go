package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/hsm"
)

// newStatementExportCmd is `transit statement export`: a carrier's copy
// of a closed month, as the PDF sent to it and the bundle that proves it.
func newStatementExportCmd(sf *storeFlags, hf *hsmFlags) *cobra.Command {
	var (
		period, carrier, names, publicKey, out string
		discloseAll                            bool
	)
	cmd := &cobra.Command{
		Use:   "export --period YYYY-MM --carrier ID --register DIR --public-key FILE --out PREFIX",
		Short: "Write a carrier's copy of a closed month: its statement PDF and the bundle that proves it",
		Long: `Write PREFIX.pdf, the statement document for one carrier (--carrier) or for every carrier on pages of
its own: its legal details from the finance register (--register), its lines by category and funding,
its subtotal, when and by whom the month was closed, the seal (content hash, signing key fingerprint,
signature) and approval lines; and PREFIX.bundle, the month's signed statements with their signatures
and the public key, which the carrier checks offline:

  transit statement verify --bundle PREFIX.bundle --public-key city-statements.pem

A carrier's copy (--carrier) holds that carrier's lines alone: the signed statement names each
carrier's part by a salted digest, and the bundle holds the signed statement, its signature and this
carrier's part, so the carrier checks its own lines against the signature and learns nothing of the
others'. Without --carrier the bundle holds every carrier's part: the city's archive, an auditor's copy.
Statements closed before parts existed (form 1 and 2) are signed over every carrier's lines and can
only travel whole: a carrier's copy of them is refused unless --disclose-all-carriers says to send the
whole statement anyway.

The public key is --public-key FILE (the city's published key) or the keystore's; the statements are
verified with it before anything is written. Both files are written 0600.`,
		Example: `  transit statement export --period 2026-11 --carrier ATP-1 --register finance/ --public-key city-statements.pem \
      --out atp1-2026-11 --db sqlite:clearing.db`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := needPeriod(period); err != nil {
				return err
			}
			if out == "" {
				return usagef("give where to write: --out PREFIX (PREFIX.pdf and PREFIX.bundle)")
			}
			if names == "" {
				return usagef("a carrier's statement needs its legal details: give --register DIR (the finance register)")
			}
			reg, err := loadRegister(names)
			if err != nil {
				return err
			}
			var pub ed25519.PublicKey
			switch {
			case publicKey != "":
				if pub, err = readPublicKey(publicKey); err != nil {
					return err
				}
			case hf.keystore != "" || hf.module != "":
				km, done, err := hf.open(c.ErrOrStderr())
				if err != nil {
					return err
				}
				defer done()
				info, err := hsm.Resolve(c.Context(), km, hsm.Ref{Label: hsm.LabelSignStatement})
				if err != nil {
					return fmt.Errorf("statement key: %w", err)
				}
				if pub, err = km.PublicKey(c.Context(), info.Ref); err != nil {
					return err
				}
			default:
				return usagef("give the city's public statement key (--public-key FILE) or the keystore (--keystore FILE)")
			}
			loc, err := sf.location()
			if err != nil {
				return err
			}
			st, err := sf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			sts, err := statementsOf(c, st, period)
			if err != nil {
				return err
			}
			var bundle statement.Bundle
			switch {
			case carrier == "":
				bundle, err = statement.NewBundle(sts, pub)
			default:
				bundle, err = statement.NewCarrierBundle(sts, pub, carrier)
				if errors.Is(err, statement.ErrWholeOnly) && discloseAll {
					fmt.Fprintf(c.ErrOrStderr(), "warning: %v; the bundle for %s holds every carrier's lines (--disclose-all-carriers)\n", err, carrier)
					bundle, err = statement.NewBundle(sts, pub)
				} else if errors.Is(err, statement.ErrWholeOnly) {
					return fmt.Errorf("%w; nothing written: export it without --carrier for an auditor, or add --disclose-all-carriers to send %s every carrier's lines", err, carrier)
				}
			}
			if err != nil {
				return fmt.Errorf("the statements of %s do not verify with the key %s: %w; nothing written", period, statement.Fingerprint(pub), err)
			}
			rep, err := report.BuildCompensation(c.Context(), st, report.Query{Period: period, Carrier: carrier, Detail: report.Detail{Category: true}, Names: reg})
			if err != nil {
				return err
			}
			rep.Location, rep.PerCarrier, rep.Created = loc, carrier == "", time.Now()
			// The PDF shows what the bundle proves: the closed lines.
			w, done, err := output(c, out+".pdf", true)
			if err != nil {
				return err
			}
			if err := done(report.WriteCompensationPDF(w, rep, sts)); err != nil {
				return err
			}
			w, done, err = output(c, out+".bundle", false)
			if err != nil {
				return err
			}
			if err := done(bundle.Write(w, loc)); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "wrote %s.pdf and %s.bundle (%d statement(s), key %s)\n", filepath.Clean(out), filepath.Clean(out), len(sts), statement.Fingerprint(pub))
			return nil
		},
	}
	cmd.Flags().StringVar(&period, "period", "", "the closed month, YYYY-MM")
	cmd.Flags().StringVar(&carrier, "carrier", "", "the carrier whose copy it is (default: every carrier, each on its own pages)")
	cmd.Flags().StringVar(&names, "register", "", "the finance register directory (carriers' legal details)")
	cmd.Flags().StringVar(&publicKey, "public-key", "", "the city's public statement key, PEM (or use the keystore)")
	cmd.Flags().StringVar(&out, "out", "", "write PREFIX.pdf and PREFIX.bundle")
	cmd.Flags().BoolVar(&discloseAll, "disclose-all-carriers", false, "for a month closed before per-carrier parts: send the carrier the whole statement, every carrier's lines")
	return cmd
}
