package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/validator/tariff"
)

func newTariffCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tariff",
		Short: "Check and sign tariff directories (GTFS-Fares v2 files plus x_ extensions)",
		Long: `A tariff is a directory of GTFS-Fares v2 files plus x_ extension files, documented in
validator/tariff/FORMAT.md. Validators load only signed tariffs outside development.`,
	}
	check := &cobra.Command{
		Use:     "check DIR",
		Short:   "Validate a tariff directory and summarise it",
		Long:    "Parse every file of the tariff; report the first error with file, line and column, or a summary.",
		Example: `  transit tariff check testdata/tariff`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			tf, err := tariff.Parse(os.DirFS(args[0]))
			if errors.Is(err, tariff.ErrInvalid) {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if err != nil {
				return err
			}
			out := c.OutOrStdout()
			fmt.Fprintf(out, "tariff version %d, time zone %s, anti-passback %s\n", tf.Version, tf.Location, tf.Passback)
			cats := make([]string, 0, len(tf.Categories))
			for code := range tf.Categories {
				cats = append(cats, code)
			}
			sort.Strings(cats)
			fmt.Fprintf(out, "%d carriers, %d fare leg rules, %d timeframes, %d transfer rules, %d passes\n",
				len(tf.Carriers), len(tf.Legs), len(tf.Timeframes), len(tf.Transfers), len(tf.Passes))
			fmt.Fprintf(out, "benefit categories: %v\n", cats)
			return nil
		},
	}
	var hf hsmFlags
	var keyName string
	sign := &cobra.Command{
		Use:   "sign DIR",
		Short: "Sign a tariff directory with the sign-tariff key (writes DIR/tariff.sig)",
		Long: `Validate the tariff, compute the digest of its files and write a manifest signed with the
sign-tariff key (the newest version unless --key names one) into the directory.`,
		Example: `  transit tariff sign testdata/tariff --keystore city.keys`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			dir := args[0]
			fsys := os.DirFS(dir)
			tf, err := tariff.Parse(fsys)
			if err != nil {
				return fmt.Errorf("%s: %w", dir, err)
			}
			ref, err := hsm.ParseRef(keyName)
			if err != nil {
				return usageError{err}
			}
			km, done, err := hf.open(c.ErrOrStderr())
			if err != nil {
				return err
			}
			defer done()
			info, err := hsm.Resolve(c.Context(), km, ref)
			if err != nil {
				return err
			}
			signer, err := km.Signer(c.Context(), info.Ref)
			if err != nil {
				return err
			}
			digest, err := tariff.Digest(fsys)
			if err != nil {
				return err
			}
			manifest, err := tariff.Sign(digest, tf.Version, info.Ref, signer)
			if err != nil {
				return err
			}
			path := filepath.Join(dir, tariff.SignatureFile)
			if err := os.WriteFile(path, manifest, 0o644); err != nil {
				return fmt.Errorf("write the signature: %w", err)
			}
			fmt.Fprintf(c.OutOrStdout(), "signed tariff version %d with %s: %s\n", tf.Version, info.Ref, path)
			return nil
		},
	}
	hf.register(sign)
	sign.Flags().StringVar(&keyName, "key", hsm.LabelSignTariff, "signing key, label[@version]")
	cmd.AddCommand(check, sign)
	return cmd
}
