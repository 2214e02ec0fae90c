package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/citycard/transit/hsm"
)

// hsmFlags selects a key backend: a software keystore file or a PKCS#11 token.
type hsmFlags struct {
	keystore string
	module   string
	token    string
}

func (f *hsmFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.keystore, "keystore", "", "software keystore file (passphrase from TRANSIT_KEYSTORE_PASSPHRASE or a prompt)")
	cmd.PersistentFlags().StringVar(&f.module, "pkcs11-module", "", "PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so (PIN from TRANSIT_HSM_PIN)")
	cmd.PersistentFlags().StringVar(&f.token, "token", "", "PKCS#11 token label")
}

func (f *hsmFlags) check() error {
	switch {
	case f.keystore != "" && f.module != "":
		return usagef("choose one backend: --keystore or --pkcs11-module, not both")
	case f.keystore == "" && f.module == "":
		return usagef("no key backend: give --keystore FILE or --pkcs11-module MODULE --token LABEL")
	case f.module != "" && f.token == "":
		return usagef("--pkcs11-module needs --token LABEL")
	}
	return nil
}

// open opens the chosen backend; close must be called when done.
func (f *hsmFlags) open(stderr io.Writer) (hsm.Admin, func(), error) {
	if err := f.check(); err != nil {
		return nil, nil, err
	}
	if f.keystore != "" {
		pass, err := passphrase("TRANSIT_KEYSTORE_PASSPHRASE", "keystore passphrase", false, stderr)
		if err != nil {
			return nil, nil, err
		}
		ks, err := hsm.OpenKeystore(f.keystore, pass)
		if err != nil {
			return nil, nil, err
		}
		return ks, func() { ks.Close() }, nil
	}
	pin := os.Getenv("TRANSIT_HSM_PIN")
	if pin == "" {
		return nil, nil, errors.New("no token PIN: set TRANSIT_HSM_PIN")
	}
	p, err := hsm.OpenPKCS11(hsm.PKCS11Config{Module: f.module, Token: f.token, PIN: pin})
	if err != nil {
		return nil, nil, err
	}
	return p, func() { p.Close() }, nil
}

// passphrase reads env, or prompts on the terminal (twice when confirm).
func passphrase(env, what string, confirm bool, stderr io.Writer) ([]byte, error) {
	if v := os.Getenv(env); v != "" {
		return []byte(v), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, fmt.Errorf("no %s: set %s or run on a terminal to be prompted", what, env)
	}
	fmt.Fprintf(stderr, "Enter %s: ", what)
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if confirm {
		fmt.Fprintf(stderr, "Repeat %s: ", what)
		q, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		if !bytes.Equal(p, q) {
			return nil, fmt.Errorf("the two %ss differ; try again", what)
		}
	}
	if len(p) == 0 {
		return nil, fmt.Errorf("empty %s", what)
	}
	return p, nil
}

// standardKeys is what 'hsm init' creates: the platform's key set.
func standardKeys() []hsm.KeyInfo {
	var out []hsm.KeyInfo
	for _, r := range hsm.Roles {
		out = append(out, hsm.KeyInfo{Ref: hsm.Ref{Label: hsm.CardMasterLabel(r)}, Kind: hsm.KindCardMaster})
	}
	for _, l := range []string{hsm.LabelSignHotlist, hsm.LabelSignTariff, hsm.LabelSignStatement, hsm.LabelSignAudit} {
		out = append(out, hsm.KeyInfo{Ref: hsm.Ref{Label: l}, Kind: hsm.KindSigning})
	}
	out = append(out, hsm.KeyInfo{Ref: hsm.Ref{Label: hsm.LabelTMACMaster}, Kind: hsm.KindTMACMaster})
	return append(out, hsm.KeyInfo{Ref: hsm.Ref{Label: hsm.LabelBatchMaster}, Kind: hsm.KindBatchMaster})
}

func newHSMCmd() *cobra.Command {
	var f hsmFlags
	cmd := &cobra.Command{
		Use:   "hsm",
		Short: "Key custody: create, list, rotate and export keys in a keystore or PKCS#11 token",
		Long: `Key custody. Keys are named label@version (e.g. card-validator@2); a bare label means the newest version.
Backends: a software keystore file (--keystore) or a PKCS#11 token (--pkcs11-module, --token, PIN in TRANSIT_HSM_PIN).`,
	}
	f.register(cmd)

	var empty bool
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Create a keystore (or prepare a token) with the platform's standard key set",
		Long: `Create a new software keystore, or use an initialised PKCS#11 token, and generate version 1 of every
standard key: card-<role> masters, sign-hotlist, sign-tariff, sign-statement, sign-audit and batch-master.`,
		Example: `  TRANSIT_KEYSTORE_PASSPHRASE=... transit hsm init --keystore keys.json`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			var a hsm.Admin
			if f.keystore != "" {
				pass, err := passphrase("TRANSIT_KEYSTORE_PASSPHRASE", "new keystore passphrase", true, c.ErrOrStderr())
				if err != nil {
					return err
				}
				ks, err := hsm.CreateKeystore(f.keystore, pass, hsm.DefaultKDF)
				if err != nil {
					return err
				}
				defer ks.Close()
				a = ks
			} else {
				b, done, err := f.open(c.ErrOrStderr())
				if err != nil {
					return err
				}
				defer done()
				a = b
			}
			if empty {
				return nil
			}
			return generateMissing(c.Context(), a, c.OutOrStdout())
		},
	}
	initCmd.Flags().BoolVar(&empty, "empty", false, "create no keys")

	var kindName string
	keygen := &cobra.Command{
		Use:   "keygen LABEL",
		Short: "Generate a key (version 1, or the next version if the label exists)",
		Long: `Generate a key under LABEL. Kinds: card-master, batch-master, mac, ed25519.
The kind is guessed from standard labels (card-*, sign-*, batch-master) when --kind is not given.`,
		Example: `  transit hsm keygen sign-hotlist --keystore keys.json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			kind, err := guessKind(args[0], kindName)
			if err != nil {
				return err
			}
			a, done, err := f.open(c.ErrOrStderr())
			if err != nil {
				return err
			}
			defer done()
			ref, err := a.Generate(c.Context(), args[0], kind)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%s\t%s\n", ref, kind)
			return nil
		},
	}
	keygen.Flags().StringVar(&kindName, "kind", "", "card-master, batch-master, mac or ed25519")

	list := &cobra.Command{
		Use:     "list",
		Short:   "List every key with its versions and kind",
		Long:    "List every key version held by the backend, one per line: label@version and kind.",
		Example: `  TRANSIT_HSM_PIN=... transit hsm list --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --token transit`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			a, done, err := f.open(c.ErrOrStderr())
			if err != nil {
				return err
			}
			defer done()
			keys, err := a.Keys(c.Context())
			if err != nil {
				return err
			}
			for _, k := range keys {
				fmt.Fprintf(c.OutOrStdout(), "%s\t%s\n", k.Ref, k.Kind)
			}
			return nil
		},
	}

	exportPublic := &cobra.Command{
		Use:     "export-public LABEL[@VERSION]",
		Short:   "Print a signing key's public key as PEM",
		Long:    "Print the Ed25519 public key of a signing key as a PEM PUBLIC KEY block (newest version unless @VERSION is given).",
		Example: `  transit hsm export-public sign-hotlist@2 --keystore keys.json > hotlist.pub`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ref, err := hsm.ParseRef(args[0])
			if err != nil {
				return usageError{err}
			}
			a, done, err := f.open(c.ErrOrStderr())
			if err != nil {
				return err
			}
			defer done()
			pub, err := a.PublicKey(c.Context(), ref)
			if err != nil {
				return err
			}
			der, err := x509.MarshalPKIXPublicKey(pub)
			if err != nil {
				return fmt.Errorf("encode public key %s: %w", ref, err)
			}
			return pem.Encode(c.OutOrStdout(), &pem.Block{Type: "PUBLIC KEY", Bytes: der})
		},
	}

	rotate := &cobra.Command{
		Use:   "rotate LABEL",
		Short: "Create the next version of a key, keeping older versions usable",
		Long: `Create version n+1 of LABEL with the same kind. Version n stays usable, so cards issued
with it keep working while validators hold both versions during the change-over.`,
		Example: `  transit hsm rotate card-validator --keystore keys.json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			a, done, err := f.open(c.ErrOrStderr())
			if err != nil {
				return err
			}
			defer done()
			keys, err := a.Keys(c.Context())
			if err != nil {
				return err
			}
			cur, err := hsm.Newest(keys, args[0])
			if err != nil {
				return fmt.Errorf("rotate: %w; create it first with 'transit hsm keygen %s'", err, args[0])
			}
			ref, err := a.Generate(c.Context(), args[0], cur.Kind)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%s\t%s (previous %s kept)\n", ref, cur.Kind, cur.Ref)
			return nil
		},
	}

	var out, device string
	exportRole := &cobra.Command{
		Use:   "export-role ROLE --out FILE",
		Short: "Write a keystore holding only what one role needs",
		Long: `Write a new keystore for ROLE (issuer, validator, topup, desk, inspector) with only its card-key
master(s), the hotlist and tariff public keys and, for a validator, its own batch MAC key (--device).
The source must be a software keystore; the new file's passphrase comes from TRANSIT_ROLE_PASSPHRASE or a prompt.`,
		Example: `  transit hsm export-role validator --device bus-0042 --out bus-0042.keys --keystore keys.json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			role, err := hsm.ParseRole(args[0])
			if err != nil {
				return usageError{err}
			}
			if out == "" {
				return usagef("export-role needs --out FILE")
			}
			if role == hsm.RoleValidator && device == "" {
				return usagef("a validator keystore holds the device's own batch MAC key: give --device ID")
			}
			if f.keystore == "" {
				return usagef("export-role reads a software keystore (--keystore); PKCS#11 keys are non-extractable")
			}
			a, done, err := f.open(c.ErrOrStderr())
			if err != nil {
				return err
			}
			defer done()
			pass, err := passphrase("TRANSIT_ROLE_PASSPHRASE", "passphrase for the "+string(role)+" keystore", true, c.ErrOrStderr())
			if err != nil {
				return err
			}
			dst, err := hsm.ExportRole(c.Context(), a.(*hsm.Keystore), role, device, out, pass, hsm.DefaultKDF)
			if err != nil {
				return err
			}
			defer dst.Close()
			keys, _ := dst.Keys(c.Context())
			for _, k := range keys {
				fmt.Fprintf(c.OutOrStdout(), "%s\t%s\n", k.Ref, k.Kind)
			}
			return nil
		},
	}
	exportRole.Flags().StringVar(&out, "out", "", "keystore file to write")
	exportRole.Flags().StringVar(&device, "device", "", "validator device id (for its batch MAC key)")

	cmd.AddCommand(initCmd, keygen, list, exportPublic, rotate, exportRole)
	return cmd
}

func guessKind(label, name string) (hsm.Kind, error) {
	if name != "" {
		switch k := hsm.Kind(name); k {
		case hsm.KindCardMaster, hsm.KindBatchMaster, hsm.KindTMACMaster, hsm.KindMAC, hsm.KindSigning:
			return k, nil
		}
		return "", usagef("unknown --kind %q: use card-master, tmac-master, batch-master, mac or ed25519", name)
	}
	for _, k := range standardKeys() {
		if k.Ref.Label == label {
			return k.Kind, nil
		}
	}
	return "", usagef("cannot tell the kind of %q: give --kind card-master|batch-master|mac|ed25519", label)
}

// generateMissing creates version 1 of each standard key that is absent.
func generateMissing(ctx context.Context, a hsm.Admin, w io.Writer) error {
	keys, err := a.Keys(ctx)
	if err != nil {
		return err
	}
	for _, k := range standardKeys() {
		if _, err := hsm.Newest(keys, k.Ref.Label); err == nil {
			continue
		}
		ref, err := a.Generate(ctx, k.Ref.Label, k.Kind)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\t%s\n", ref, k.Kind)
	}
	return nil
}
