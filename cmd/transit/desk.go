package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/pcsc"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/desk"
)

// tokenEnv holds the desk staff member's registry API token, so that it
// need not appear on a command line, which other users of the machine can
// see.
const tokenEnv = registryTokenEnv

// deskFlags are what desk commands share: the registry API and its
// token, and, for commands that touch a card, the reader and the HSM.
type deskFlags struct {
	registry string
	ca       string
	token    tokenFlags
	reader   string
	wait     time.Duration
	hsm      hsmFlags
	stderr   io.Writer
}

func (f *deskFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.registry, "registry", "http://127.0.0.1:8081", "registry API URL (transit registry serve); https:// over a network")
	cmd.PersistentFlags().StringVar(&f.ca, "registry-ca", "", "PEM file of the CA that signed the registry's TLS certificate (default: the system's roots)")
	f.token.register(cmd.PersistentFlags(), "token", "the desk staff member's registry API token")
}

// registerCard adds the flags of commands that use a card reader.
func (f *deskFlags) registerCard(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.reader, "reader", "", "PC/SC reader name, as `pcsc_scan` or the error listing the readers shows it")
	cmd.Flags().DurationVar(&f.wait, "wait", 2*time.Minute, "how long to wait for the card on the reader")
	// The registry token is --token here, so the PKCS#11 token label is
	// --pkcs11-token.
	cmd.Flags().StringVar(&f.hsm.keystore, "keystore", "", "the desk's keystore file: the issuer's (transit hsm export-role issuer); passphrase from TRANSIT_KEYSTORE_PASSPHRASE or a prompt")
	cmd.Flags().StringVar(&f.hsm.module, "pkcs11-module", "", "PKCS#11 module of the desk's HSM (PIN from TRANSIT_HSM_PIN)")
	cmd.Flags().StringVar(&f.hsm.token, "pkcs11-token", "", "PKCS#11 token label")
}

// client returns the registry API client.
func (f *deskFlags) client() (*desk.Client, error) {
	stderr := f.stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	token, err := f.token.read("token", stderr)
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, usagef("no registry API token: set %s (or --token-file) to the desk staff member's token", tokenEnv)
	}
	hc, err := clientWithCA(f.ca, time.Minute)
	if err != nil {
		return nil, err
	}
	c, err := desk.NewClient(f.registry, token, hc)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// open returns a desk for the commands that touch a card, with the HSM's
// card keys and the PC/SC reader, and a function that releases both. The
// HSM opens first: a wrong passphrase or PIN stops everything before the
// registry is asked for anything.
func (f *deskFlags) open(stderr io.Writer) (*desk.Desk, desk.Reader, func(), error) {
	if f.reader == "" {
		return nil, nil, nil, usagef("name the card reader: --reader NAME")
	}
	switch {
	case f.hsm.keystore != "" && f.hsm.module != "":
		return nil, nil, nil, usagef("choose one key backend: --keystore or --pkcs11-module, not both")
	case f.hsm.keystore == "" && f.hsm.module == "":
		return nil, nil, nil, usagef("no card keys: give --keystore FILE (the issuer keystore) or --pkcs11-module MODULE --pkcs11-token LABEL")
	case f.hsm.module != "" && f.hsm.token == "":
		return nil, nil, nil, usagef("--pkcs11-module needs --pkcs11-token LABEL")
	}
	c, err := f.client()
	if err != nil {
		return nil, nil, nil, err
	}
	km, closeKeys, err := f.hsm.open(stderr)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open the desk's keys: %w; nothing was read from the registry and no card was touched", err)
	}
	rd := pcsc.Open(f.reader)
	d := &desk.Desk{Registry: c, Keys: cardkey.New(km), Log: slog.Default(),
		Prompt: func(msg string) { fmt.Fprintf(stderr, "%s (reader %q)\n", msg, f.reader) }}
	return d, desk.PCSC(rd), func() { rd.Close(); closeKeys() }, nil
}

// withWait bounds a card command by --wait plus the time the card work
// takes.
func (f *deskFlags) withWait(ctx context.Context) (context.Context, context.CancelFunc) {
	if f.wait <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, f.wait+time.Minute)
}

func parseCard(s string) (card.Number, error) {
	if s == "" {
		return 0, usagef("name the card: --card NUMBER (the 16 digits printed on it)")
	}
	n, err := card.ParseNumber(s)
	if err != nil {
		return 0, usageError{err}
	}
	return n, nil
}

// newDeskCmd is `transit desk`: what an issuance desk does with cards,
// through the registry API.
func newDeskCmd() *cobra.Command {
	var f deskFlags
	cmd := &cobra.Command{
		Use:   "desk",
		Short: "Issuance desk: personalise, wipe, block and replace cards through the registry",
		Long: `What an issuance desk does with cards: personalise a card on a PC/SC reader with the data the registry
holds for it, hand it over, wipe a card for re-issue, block a lost or stolen card (it goes on the next
hotlist) and order its replacement, carrying its balance.

Every command talks to the registry API (transit registry serve) with the desk staff member's token, so
the registry's role checks apply and every read of the holder's data is audited with the stated purpose.
The token comes from TRANSIT_REGISTRY_TOKEN or --token-file FILE; --token works but shows it to every
user of the machine (ps), and says so. Over a network the registry is https:// (--registry-ca names the
city's CA if it runs its own).
Commands that write cards need the issuer's card keys: the issuer keystore (transit hsm export-role
issuer) or the city's PKCS#11 token.`,
	}
	f.register(cmd)
	cmd.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		f.stderr = c.ErrOrStderr()
		// The root's pre-run sets up logging; cobra runs only the
		// nearest one.
		if p := c.Root().PersistentPreRunE; p != nil {
			return p(c, args)
		}
		return nil
	}

	var (
		number, purpose string
		handOver        bool
	)
	personalise := &cobra.Command{
		Use:   "personalise --card NUMBER --purpose TEXT --reader NAME --keystore FILE",
		Short: "Write an ordered card's data onto the card on the reader, then record it in the registry",
		Long: `Read the card's data from the registry (an audited read: --purpose says why), wait for a blank card on
the reader, write the card, read it all back, lock it with the issuer key, and only then record it as
personalised in the registry and, unless --hand-over=false, as active: handed to its holder.

Nothing is half-written: a wrong passphrase or PIN, an unknown card number, a card that is not ordered,
a card of another system or one personalised with other data stop before anything is written. A card
taken away half-way leaves the registry unchanged: put it back and run the same command again.`,
		Example: `  TRANSIT_REGISTRY_TOKEN=rgt_... TRANSIT_KEYSTORE_PASSPHRASE=... transit desk personalise \
      --card "1001 0000 0000 0015" --purpose "card issue, ticket 4711" \
      --reader "ACS ACR122U 00 00" --keystore issuer.keys --registry http://registry:8081`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			n, err := parseCard(number)
			if err != nil {
				return err
			}
			if strings.TrimSpace(purpose) == "" {
				return usagef("state why the holder's data is read: --purpose TEXT (recorded in the audit log)")
			}
			d, rd, done, err := f.open(c.ErrOrStderr())
			if err != nil {
				return err
			}
			defer done()
			ctx, cancel := f.withWait(c.Context())
			defer cancel()
			got, err := d.Personalise(ctx, rd, desk.Request{Number: n, Purpose: purpose, HandOver: handOver})
			if err != nil {
				return err
			}
			what := "personalised; it stays personalised until handed over (transit desk activate)"
			if got.Status == registry.StatusActive {
				what = "personalised and handed over (active)"
			}
			fmt.Fprintf(c.OutOrStdout(), "card %s %s, UID %X\n", n.Grouped(), what, got.UID)
			return nil
		},
	}
	personalise.Flags().StringVar(&number, "card", "", "card number to personalise (ordered in the registry)")
	personalise.Flags().StringVar(&purpose, "purpose", "", "why the holder's data is read, for the audit log")
	personalise.Flags().BoolVar(&handOver, "hand-over", true, "the holder takes the card now: make it active (false for cards sent by post)")
	f.registerCard(personalise)

	wipe := &cobra.Command{
		Use:   "wipe --reader NAME --keystore FILE",
		Short: "Return one of this system's cards to the factory state, for re-issue",
		Long: `Wipe the card on the reader: delete its applications and restore the factory PICC key, so it can be
personalised again. Cards in use in the registry (active, blocked, lost, stolen) are refused: they may
hold a balance and benefits; block and replace them first. Use it for a card personalised with the wrong
data, one left half-wiped, or a replaced card to re-use.`,
		Example: `  transit desk wipe --reader "ACS ACR122U 00 00" --keystore issuer.keys`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			d, rd, done, err := f.open(c.ErrOrStderr())
			if err != nil {
				return err
			}
			defer done()
			ctx, cancel := f.withWait(c.Context())
			defer cancel()
			w, err := d.Wipe(ctx, rd)
			if err != nil {
				return err
			}
			switch {
			case w.Number == 0:
				fmt.Fprintf(c.OutOrStdout(), "card UID %X wiped; it carried no card number\n", w.UID)
			case w.Status == "":
				fmt.Fprintf(c.OutOrStdout(), "card UID %X wiped; it carried number %s, which the registry does not know\n", w.UID, w.Number.Grouped())
			default:
				fmt.Fprintf(c.OutOrStdout(), "card UID %X wiped; it carried card %s, %s in the registry\n", w.UID, w.Number.Grouped(), w.Status)
			}
			return nil
		},
	}
	f.registerCard(wipe)

	var reason, note string
	block := &cobra.Command{
		Use:     "block --card NUMBER --reason lost|stolen|fraud|benefit-revoked|blocked-by-desk",
		Short:   "Block a card; validators refuse it once their hotlist is updated",
		Example: `  transit desk block --card 1001000000000015 --reason lost --note "holder called, ticket 4712"`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			n, err := parseCard(number)
			if err != nil {
				return err
			}
			if !slices.Contains(registry.BlockReasons, registry.Reason(reason)) {
				return usagef("--reason %q: want lost, stolen, fraud, benefit-revoked or blocked-by-desk", reason)
			}
			cl, err := f.client()
			if err != nil {
				return err
			}
			got, err := (&desk.Desk{Registry: cl}).Block(c.Context(), n, registry.Reason(reason), note)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "card %s is %s (%s); replace it with transit desk replace\n", n.Grouped(), got.Status, got.Reason)
			return nil
		},
	}
	block.Flags().StringVar(&number, "card", "", "card number")
	block.Flags().StringVar(&reason, "reason", "", "lost, stolen, fraud, benefit-revoked or blocked-by-desk")
	block.Flags().StringVar(&note, "note", "", "free text kept with the card")

	var (
		clearingKop int64
		cardKop     int64
	)
	replace := &cobra.Command{
		Use:   "replace --card NUMBER --clearing-balance-kop N [--reader NAME --keystore FILE | --card-balance-kop N]",
		Short: "Order the replacement of a blocked, lost or stolen card, carrying its balance",
		Long: `Order a new card for the holder of a blocked, lost or stolen card; the old card becomes replaced and the
new one is ordered with the old balance to credit when it is personalised (transit desk personalise
--card NEW). The balance is the one clearing knows (--clearing-balance-kop, required), unless the holder
brought the old card: with --reader the desk reads its purse, which also counts taps not yet uploaded.`,
		Example: `  transit desk replace --card 1001000000000015 --clearing-balance-kop 4250
  transit desk replace --card 1001000000000015 --clearing-balance-kop 4250 --reader "ACS ACR122U 00 00" --keystore issuer.keys`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			n, err := parseCard(number)
			if err != nil {
				return err
			}
			if !c.Flags().Changed("clearing-balance-kop") {
				return usagef("give the balance clearing knows for the card: --clearing-balance-kop N (kopiyky; 0 if none)")
			}
			b := registry.Balance{ClearingKop: clearingKop}
			if c.Flags().Changed("card-balance-kop") {
				if f.reader != "" {
					return usagef("--card-balance-kop or --reader, not both: the desk reads the balance from the card")
				}
				b.CardKop = &cardKop
			}
			var d *desk.Desk
			if f.reader != "" {
				var rd desk.Reader
				var done func()
				if d, rd, done, err = f.open(c.ErrOrStderr()); err != nil {
					return err
				}
				defer done()
				ctx, cancel := f.withWait(c.Context())
				defer cancel()
				kop, err := d.ReadBalance(ctx, rd, n)
				if err != nil {
					return err
				}
				b.CardKop = &kop
			} else {
				cl, err := f.client()
				if err != nil {
					return err
				}
				d = &desk.Desk{Registry: cl}
			}
			_, repl, err := d.Replace(c.Context(), n, b)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "card %s replaced by %s (ordered), carrying %s from %s; personalise it with transit desk personalise --card %s\n",
				n.Grouped(), repl.Number.Grouped(), card.Money(repl.CarriedKop), repl.BalanceSource, repl.Number)
			return nil
		},
	}
	replace.Flags().StringVar(&number, "card", "", "card number of the blocked, lost or stolen card")
	replace.Flags().Int64Var(&clearingKop, "clearing-balance-kop", 0, "the card's last balance clearing knows, in kopiyky")
	replace.Flags().Int64Var(&cardKop, "card-balance-kop", 0, "the balance read from the card elsewhere, in kopiyky")
	f.registerCard(replace)

	activate := &cobra.Command{
		Use:     "activate --card NUMBER",
		Short:   "Record that the holder took a personalised card",
		Example: `  transit desk activate --card 1001000000000015`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			n, err := parseCard(number)
			if err != nil {
				return err
			}
			cl, err := f.client()
			if err != nil {
				return err
			}
			if _, err := (&desk.Desk{Registry: cl}).Activate(c.Context(), n); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "card %s is active\n", n.Grouped())
			return nil
		},
	}
	activate.Flags().StringVar(&number, "card", "", "card number")

	cmd.AddCommand(personalise, wipe, block, replace, activate, newDeskLoginCmd(&f))
	return cmd
}
