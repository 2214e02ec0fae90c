package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/importcsv"
)

// newRegistryImportCmd is `transit registry import FILE`: the national
// benefit register's CSV, previewed by default and applied with --apply.
func newRegistryImportCmd(rf *registryFlags) *cobra.Command {
	var (
		apply   bool
		yes     bool
		actor   string
		purpose string
	)
	cmd := &cobra.Command{
		Use:   "import FILE --db URL [--apply [--yes]]",
		Short: "Import the national benefit register's CSV export: a dry run unless --apply",
		Long: `Read the national social-benefits register's export (format in registry/IMPORT.md) and show what it
would change in the registry: new residents, new, changed and ended entitlements, with the file's line
numbers, and every row the registry refuses, with its line, column and why. Without --apply nothing is
changed (the dry run writes only the audit entries of the residents it compared: it read their records).

With --apply it shows the same preview, asks for confirmation (or takes --yes, for scripts) and imports:
all rows or, when one is refused, none. The audit log records who imported (--actor, or the OS user;
root names no person and is refused), as cli:NAME with the supervisor role, and --purpose; every person
whose entitlements changed gets a card event, so clearing and the next hotlist see the new categories.

The database must exist (transit registry migrate creates it): a mistyped path is an error, not a new
empty registry into which every person would be imported as new.`,
		Example: `  transit registry import benefit-recipients.csv --db sqlite:registry.db
  transit registry import benefit-recipients.csv --db sqlite:registry.db --apply --actor olena.k
  transit registry import export-2026-12.csv --db postgres://registry@db/transit --apply --yes --actor import-timer`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			path := args[0]
			who, err := importActor(actor)
			if err != nil {
				return err
			}
			if purpose == "" {
				purpose = "benefit register import of " + filepath.Base(path)
			}
			if purpose, err = registry.CleanPurpose(purpose); err != nil {
				return usagef("--purpose: %v", err)
			}
			a := registry.Access{Actor: registry.Actor{User: "cli:" + who, Role: registry.RoleSupervisor}, Purpose: purpose}
			if err := a.Actor.Validate(); err != nil {
				return usagef("--actor %q: %v", who, err)
			}
			if yes && !apply {
				return usagef("--yes confirms an import: give it with --apply (without --apply nothing is changed)")
			}
			// Read the file before opening the store: a bad file needs
			// no database.
			rows, err := readImportFile(path, c.OutOrStdout(), rf.location())
			if err != nil {
				return err
			}
			rf.existing = true
			st, _, err := rf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			out := c.OutOrStdout()
			if !apply || !yes {
				rep, err := st.Import(c.Context(), a, rows, true)
				if err != nil {
					return importRefused(out, path, err)
				}
				writeImportReport(out, path, rep)
				if !apply {
					if changes(rep) == 0 {
						fmt.Fprintln(out, "dry run: the file changes nothing in the registry")
						return nil
					}
					fmt.Fprintln(out, "dry run: nothing was changed; run again with --apply to import")
					return nil
				}
				if changes(rep) == 0 {
					fmt.Fprintln(out, "nothing to import: the file changes nothing in the registry")
					return nil
				}
				ok, err := confirm(c, fmt.Sprintf("Import %s as %s: %s? Type yes: ", filepath.Base(path), a.Actor.User, summary(rep)))
				if err != nil {
					return err
				}
				if !ok {
					return usagef("nothing imported: confirm with yes, or give --yes")
				}
			}
			rep, err := st.Import(c.Context(), a, rows, false)
			if err != nil {
				return importRefused(out, path, err)
			}
			if yes {
				writeImportReport(out, path, rep)
			}
			fmt.Fprintf(out, "imported %s as %s at %s: %s\n", filepath.Base(path), a.Actor.User,
				time.Now().In(rf.location()).Format(time.DateTime), summary(rep))
			return nil
		},
	}
	cmd.Flags().BoolVar(&apply, "apply", false, "import (after the preview and a confirmation); without it nothing is changed")
	cmd.Flags().BoolVar(&yes, "yes", false, "with --apply: import without the preview and the question, for scripts")
	cmd.Flags().StringVar(&actor, "actor", "", "who imports, as the audit log records it (default: the OS user, unless root)")
	cmd.Flags().StringVar(&purpose, "purpose", "", `why the residents' records are read, for the audit log (default "benefit register import of FILE")`)
	return cmd
}

// location is the city's time zone, or UTC when --tz is wrong (open
// reports that).
func (f *registryFlags) location() *time.Location {
	loc, err := time.LoadLocation(f.tz)
	if err != nil {
		return time.UTC
	}
	return loc
}

// importActor is who imports from the command line: --actor, or the OS
// user when that names a person (as closingActor decides for a close).
func importActor(flag string) (string, error) {
	who := strings.TrimSpace(flag)
	if who != "" {
		return who, nil
	}
	u, err := user.Current()
	if err != nil || u.Username == "" || u.Username == "root" || u.Uid == "0" {
		return "", usagef("say who imports: --actor NAME (the OS user is root or unknown, which names no person)")
	}
	return u.Username, nil
}

// readImportFile opens and parses the register's export. A file the
// parser refuses has its problems listed on out, by line and column.
func readImportFile(path string, out io.Writer, loc *time.Location) ([]registry.ImportRow, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: no such file; check the path of the register's CSV export", path)
	case err != nil:
		return nil, fmt.Errorf("read the register's export: %w", err)
	case fi.IsDir():
		return nil, fmt.Errorf("%s is a directory; give the register's CSV export file", path)
	case fi.Size() == 0:
		return nil, fmt.Errorf("%s is empty (0 bytes); export the register again, with its header line", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the register's export: %w", err)
	}
	defer f.Close()
	rows, err := importcsv.Parse(f, registry.Today(time.Now(), loc))
	if err != nil {
		return nil, importRefused(out, path, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s has a header but no rows; nothing to import: check that the export is complete", path)
	}
	return rows, nil
}

// importRefused lists the rows an import refuses, when err names them,
// and says that nothing was imported.
func importRefused(out io.Writer, path string, err error) error {
	var problems registry.ImportErrors
	if !errors.As(err, &problems) {
		return err
	}
	name := filepath.Base(path)
	fmt.Fprintf(out, "%s: %d row problem(s)%s; nothing was imported:\n", name, len(problems), stopped(len(problems)))
	for _, p := range problems {
		fmt.Fprintf(out, "  %s\n", p)
	}
	what := "fix the file"
	if errors.Is(err, registry.ErrConflict) {
		what = "these rows contradict the registry's records: check them at a desk, or correct the file,"
	}
	return fmt.Errorf("%s: %d problem(s), listed above; nothing was imported: %s and run again", name, len(problems), what)
}

func stopped(n int) string {
	if n >= registry.MaxImportErrors {
		return " (the first; it stopped counting)"
	}
	return ""
}

// changes counts what an import changes.
func changes(rep registry.ImportReport) int {
	return rep.NewResidents + rep.NewEntitlements + rep.ChangedEntitlements + rep.EndedEntitlements
}

// summary says what an import does in one line.
func summary(rep registry.ImportReport) string {
	return fmt.Sprintf("%d row(s): %d new resident(s), %d new, %d changed and %d ended entitlement(s); %d unchanged, %d ignored",
		rep.Rows, rep.NewResidents, rep.NewEntitlements, rep.ChangedEntitlements, rep.EndedEntitlements, rep.Unchanged, rep.Ignored)
}

// changeNames are how the report names kinds of change.
var changeNames = map[registry.ChangeKind]string{
	registry.NewResident:        "new resident",
	registry.NewEntitlement:     "new entitlement",
	registry.ChangedEntitlement: "changed entitlement",
	registry.EndedEntitlement:   "ended entitlement",
}

// writeImportReport prints what an import does or would do, change by
// change; like the API's report it names lines, resident ids and
// decisions, never a person's name or registry number.
func writeImportReport(out io.Writer, path string, rep registry.ImportReport) {
	mode := "import"
	if rep.DryRun {
		mode = "dry run"
	}
	fmt.Fprintf(out, "%s (%s): %d row(s)\n", filepath.Base(path), mode, rep.Rows)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	for _, l := range []struct {
		name string
		n    int
	}{{"new residents", rep.NewResidents}, {"new entitlements", rep.NewEntitlements},
		{"changed entitlements", rep.ChangedEntitlements}, {"ended entitlements", rep.EndedEntitlements},
		{"unchanged", rep.Unchanged}, {"ignored (ends of decisions the registry never had)", rep.Ignored}} {
		fmt.Fprintf(tw, "  %s:\t%d\n", l.name, l.n)
	}
	tw.Flush() //nolint:errcheck // written to out, as every line here
	if len(rep.Changes) > 0 {
		tw = tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LINE\tCHANGE\tRESIDENT\tDECISION\tCATEGORY\tFIELDS")
		for _, ch := range rep.Changes {
			res := "new"
			if ch.Resident != 0 {
				res = fmt.Sprint(ch.Resident)
			}
			cat := ""
			if ch.Category != 0 {
				cat = fmt.Sprint(ch.Category)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", ch.Line, changeNames[ch.Kind], res, ch.Decision, cat, strings.Join(ch.Fields, ", "))
		}
		tw.Flush() //nolint:errcheck
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
}
