package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/auditchain"
	"github.com/citycard/transit/registry/password"
	"github.com/citycard/transit/registry/store"
)

// auditFlags say how a service that serves the audit log checks it.
type auditFlags struct {
	allowBroken     bool
	verifyEvery     time.Duration
	checkpointEvery time.Duration
	mon             *auditchain.Monitor
}

func (f *auditFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.allowBroken, "allow-broken-audit", false,
		"serve even when the audit log fails verification (it is said loudly, and shown to residents); for an investigation only")
	cmd.Flags().DurationVar(&f.verifyEvery, "audit-verify-every", auditchain.DefaultVerifyEvery, "how often the whole audit chain is verified again")
	cmd.Flags().DurationVar(&f.checkpointEvery, "audit-checkpoint-every", auditchain.DefaultCheckpointEvery,
		"how often the chain's head is signed with the HSM's sign-audit key")
}

func (f *auditFlags) check() error {
	if f.verifyEvery < time.Minute || f.verifyEvery > 7*24*time.Hour {
		return usagef("--audit-verify-every %s: want 1m to 168h", f.verifyEvery)
	}
	if f.checkpointEvery < time.Second || f.checkpointEvery > 24*time.Hour {
		return usagef("--audit-checkpoint-every %s: want 1s to 24h", f.checkpointEvery)
	}
	return nil
}

// auditKeys returns the checkpoint-signature check with km's public
// keys, or nil without km (the chain alone is checked then).
func auditKeys(km hsm.KeyManager) auditchain.PublicKeys {
	if km == nil {
		return nil
	}
	if _, err := hsm.Resolve(context.Background(), km, hsm.Ref{Label: hsm.LabelSignAudit}); err != nil {
		return nil
	}
	return func(ctx context.Context, key string) (ed25519.PublicKey, error) {
		ref, err := hsm.ParseRef(key)
		if err != nil {
			return nil, err
		}
		return km.PublicKey(ctx, ref)
	}
}

// start verifies the audit chain before serving: an altered log is
// refused unless --allow-broken-audit, which is then said loudly.
func (f *auditFlags) start(ctx context.Context, st store.Store, km hsm.KeyManager, stderr io.Writer) (*auditchain.Monitor, error) {
	f.mon = &auditchain.Monitor{Source: st, Keys: auditKeys(km), Every: f.verifyEvery, Log: slog.Default()}
	rep, err := f.mon.Check(ctx)
	if err != nil {
		return nil, err
	}
	if !rep.OK() {
		if !f.allowBroken {
			return nil, fmt.Errorf("refusing to serve: %w (to serve it anyway while it is investigated, add --allow-broken-audit)", rep.Err())
		}
		fmt.Fprintf(stderr, "transit: WARNING: SERVING AN ALTERED AUDIT LOG (--allow-broken-audit): %v\n", rep.Err())
	}
	fmt.Fprintf(stderr, "audit log verified: %d entries, %d signed checkpoint(s) passed%s\n", rep.Entries, rep.Checkpoints,
		map[bool]string{true: "", false: " (signatures not checked: no sign-audit key)"}[rep.Signed])
	return f.mon, nil
}

// serve runs run with the audit chain watched: checkpoints signed with
// km's sign-audit key (a warning without one), and the chain verified
// at intervals; an altered log stops the service unless
// --allow-broken-audit.
func (f *auditFlags) serve(ctx context.Context, km hsm.KeyManager, st store.Store, run func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	// The checkpointer signs once more as the service stops: wait for it
	// before the store closes.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	broken := make(chan error, 1)
	wg.Go(func() {
		if err := f.mon.Run(ctx, !f.allowBroken); errors.Is(err, auditchain.ErrBroken) {
			broken <- err
			cancel()
		}
	})
	if km == nil {
		slog.Warn("no HSM: the audit chain's checkpoints are not signed, so a rewrite of the whole log would go unnoticed; give --keystore or --pkcs11-module")
	} else {
		info, err := hsm.Resolve(ctx, km, hsm.Ref{Label: hsm.LabelSignAudit})
		if err != nil {
			return fmt.Errorf("the HSM has no %s key to sign the audit log's checkpoints: %w; create it (transit hsm keygen %s)",
				hsm.LabelSignAudit, err, hsm.LabelSignAudit)
		}
		signer, err := km.Signer(ctx, info.Ref)
		if err != nil {
			return err
		}
		cp := &auditchain.Checkpointer{Store: st, Signer: signer, Key: info.Ref.String(), Every: f.checkpointEvery, Log: slog.Default()}
		wg.Go(func() { cp.Run(ctx) }) //nolint:errcheck // ends with ctx, signing once more
	}
	err := run(ctx)
	select {
	case b := <-broken:
		return fmt.Errorf("stopped serving: %w", b)
	default:
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// parseTTL reads a lifetime: "90d", "12h", "720h30m".
func parseTTL(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q: want a number of days such as 90d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q: want a lifetime such as 90d or 12h", s)
	}
	return v, nil
}

// cliAccess is who the audit log and revocations record for an
// administrator at the command line: the machine's user, as the
// supervisor role.
func cliAccess() registry.Access {
	u := os.Getenv("USER")
	if u == "" {
		u = "admin"
	}
	return registry.Access{Actor: registry.Actor{User: "cli:" + u, Role: registry.RoleSupervisor}}
}

func newRegistryTokenListCmd(rf *registryFlags) *cobra.Command {
	var (
		all  bool
		user string
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List API tokens and sign-in sessions: who, role, when made, when they end, last use",
		Long: `List the registry's tokens, newest first: machine tokens (transit registry token create) and the
sessions of people who signed in. Live ones only, unless --all. The id names a token for revoke; it
does not let anyone use it.`,
		Example: `  transit registry token list --db sqlite:registry.db
  transit registry token list --db postgres://postgres@127.0.0.1/transit --user olena.k --all`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			st, loc, err := rf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			ts, err := st.Tokens(c.Context(), cliAccess(), registry.TokenQuery{All: all, User: user})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tUSER\tROLE\tKIND\tCREATED\tENDS\tLAST USED\tSTATE\tNOTE")
			now := time.Now()
			for _, t := range ts {
				state := "live"
				switch {
				case !t.Revoked.IsZero():
					state = "revoked " + t.Revoked.In(loc).Format(time.DateTime) + " by " + t.RevokedBy
				case !t.Live(now):
					state = "ended"
				}
				last := "never"
				if !t.LastUsed.IsZero() {
					last = t.LastUsed.In(loc).Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Actor.User, t.Actor.Role, t.Kind,
					t.Created.In(loc).Format(time.DateTime), t.Expires.In(loc).Format(time.DateTime), last, state, t.Note)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&all, "all", false, "include ended and revoked tokens")
	list.Flags().StringVar(&user, "user", "", "only this user's tokens")
	return list
}

func newRegistryTokenRevokeCmd(rf *registryFlags) *cobra.Command {
	var yes bool
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token at once (it cannot be undone)",
		Long: `Revoke the token with this id (transit registry token list shows it): every request with it is refused
from now on, and a person's session ends. The registry records when and by whom. Revoking cannot be
undone, so it asks for confirmation, or takes --yes.`,
		Example: `  transit registry token revoke 3fa9c0d2e1b45a77 --db sqlite:registry.db`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			st, _, err := rf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if !yes {
				ok, err := confirm(c, fmt.Sprintf("Revoke token %s? This cannot be undone. Type yes: ", args[0]))
				if err != nil {
					return err
				}
				if !ok {
					return usagef("not revoked: confirm with yes, or give --yes")
				}
			}
			ti, err := st.RevokeToken(c.Context(), cliAccess(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "token %s of %s (%s) revoked\n", ti.ID, ti.Actor.User, ti.Actor.Role)
			return nil
		},
	}
	revoke.Flags().BoolVar(&yes, "yes", false, "revoke without asking")
	return revoke
}

// confirm asks a yes/no question on the terminal.
func confirm(c *cobra.Command, question string) (bool, error) {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return false, usagef("no terminal to confirm on: give --yes")
	}
	fmt.Fprint(c.ErrOrStderr(), question)
	line, err := bufio.NewReader(c.InOrStdin()).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return strings.TrimSpace(strings.ToLower(line)) == "yes", nil
}

// newPassword reads a new password from TRANSIT_STAFF_PASSWORD (for
// scripts), or twice from the terminal; never from the command line.
func newPassword(stderr io.Writer) (string, error) {
	pw := os.Getenv("TRANSIT_STAFF_PASSWORD")
	if pw == "" {
		b, err := passphrase("TRANSIT_STAFF_PASSWORD", "the new password", true, stderr)
		if err != nil {
			return "", err
		}
		pw = string(b)
	}
	if err := password.Check(pw); err != nil {
		return "", usageError{err}
	}
	return pw, nil
}

func newRegistryStaffCmd(rf *registryFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "staff",
		Short: "Manage named staff accounts: add, set a password, disable, list",
		Long: `Staff sign in to the console and the API with their own account: a user name, a role (desk, supervisor,
finance, auditor or operator) and a password, kept only as an Argon2id hash. Passwords are read from the
terminal (twice) or from TRANSIT_STAFF_PASSWORD, never from the command line; at least 12 characters.`,
	}
	var role string
	add := &cobra.Command{
		Use:     "add USER --role ROLE",
		Short:   "Create a staff account and set its password",
		Example: `  transit registry staff add olena.k --role desk --db sqlite:registry.db`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			acc := registry.StaffAccount{User: args[0], Role: registry.Role(role)}
			pw, err := newPassword(c.ErrOrStderr())
			if err != nil {
				return err
			}
			if acc.PasswordHash, err = password.Hash(pw, password.Default); err != nil {
				return err
			}
			if err := acc.Validate(); err != nil {
				return usageError{err}
			}
			st, _, err := rf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.AddStaff(c.Context(), acc); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "staff account %s (%s) created\n", acc.User, acc.Role)
			return nil
		},
	}
	add.Flags().StringVar(&role, "role", "", "desk, supervisor, finance, auditor or operator")
	passwd := &cobra.Command{
		Use:     "passwd USER",
		Short:   "Set a staff account's password",
		Example: `  transit registry staff passwd olena.k --db sqlite:registry.db`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			pw, err := newPassword(c.ErrOrStderr())
			if err != nil {
				return err
			}
			h, err := password.Hash(pw, password.Default)
			if err != nil {
				return err
			}
			st, _, err := rf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.SetStaffPassword(c.Context(), args[0], h); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "password of %s set\n", args[0])
			return nil
		},
	}
	toggle := func(disable bool) *cobra.Command {
		use, short := "enable USER", "Let a disabled staff account sign in again"
		if disable {
			use, short = "disable USER", "Stop a staff account signing in, and end its sessions and tokens at once"
		}
		return &cobra.Command{
			Use:     use,
			Short:   short,
			Example: "  transit registry staff " + strings.Fields(use)[0] + " olena.k --db sqlite:registry.db",
			Args:    cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				st, _, err := rf.open(c.Context())
				if err != nil {
					return err
				}
				defer st.Close()
				if err := st.DisableStaff(c.Context(), args[0], cliAccess().Actor.User, disable); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "staff account %s %sd\n", args[0], strings.Fields(use)[0])
				return nil
			},
		}
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List staff accounts",
		Example: `  transit registry staff list --db sqlite:registry.db`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			st, loc, err := rf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			accs, err := st.StaffAccounts(c.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tROLE\tCREATED\tPASSWORD SET\tSTATE")
			for _, a := range accs {
				state := "active"
				if !a.Disabled.IsZero() {
					state = "disabled " + a.Disabled.In(loc).Format(time.DateTime) + " by " + a.DisabledBy
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.User, a.Role, a.Created.In(loc).Format(time.DateTime),
					a.PasswordChanged.In(loc).Format(time.DateTime), state)
			}
			return tw.Flush()
		},
	}
	cmd.AddCommand(add, passwd, toggle(true), toggle(false), list)
	return cmd
}

func newRegistryAuditCmd(rf *registryFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The audit log of every access to personal data",
	}
	var hf hsmFlags
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit log's hash chain and signed checkpoints; name the first bad entry",
		Long: `Walk the whole audit log: every entry's hash, every link to the entry before, no gap and no stray
entry, the head the registry recorded, and every checkpoint. With the HSM (--keystore or
--pkcs11-module) the checkpoints' signatures are checked too, which finds a log rewritten with its
hashes recomputed. Prints the chain's head (keep it: comparing with a printout finds entries deleted
after the newest checkpoint). Exit status 0 when the log verified, 1 when it did not; an edited,
deleted, inserted or reordered entry is named, with its place in the chain and its database id.`,
		Example: `  transit registry audit verify --db sqlite:registry.db
  TRANSIT_KEYSTORE_PASSPHRASE=... transit registry audit verify --db postgres://postgres@127.0.0.1/transit --keystore city.keys`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			st, loc, err := rf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			var keys auditchain.PublicKeys
			if hf.keystore != "" || hf.module != "" {
				km, done, err := hf.open(c.ErrOrStderr())
				if err != nil {
					return err
				}
				defer done()
				if keys = auditKeys(km); keys == nil {
					return fmt.Errorf("the HSM has no %s key, so checkpoint signatures cannot be checked", hsm.LabelSignAudit)
				}
			}
			rep, err := auditchain.Verify(c.Context(), st, keys, nil)
			if err != nil {
				return err
			}
			out := c.OutOrStdout()
			fmt.Fprintf(out, "entries:     %d\nhead:        entry %d, hash %s\ncheckpoints: %d passed", rep.Entries, rep.Head, rep.HeadHash, rep.Checkpoints)
			if rep.LastCheckpoint != nil {
				fmt.Fprintf(out, ", newest at entry %d signed %s with %s", rep.LastCheckpoint.Seq,
					rep.LastCheckpoint.At.In(loc).Format(time.DateTime), rep.LastCheckpoint.Key)
			}
			if !rep.Signed {
				fmt.Fprint(out, " (signatures not checked: give the HSM)")
			}
			fmt.Fprintln(out)
			if !rep.OK() {
				fmt.Fprintf(out, "BROKEN: %d problem(s); the first: %s\n", rep.Problems, rep.First)
				return rep.Err()
			}
			fmt.Fprintln(out, "the audit log verified")
			return nil
		},
	}
	hf.register(verify)
	cmd.AddCommand(verify)
	return cmd
}
