package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // to read the registry's file around the store
)

// sampleCSV is the register's sample export: 6 rows, 4 people, 5 active
// decisions and one ended that the registry never had.
const sampleCSV = "../../testdata/registry/benefit-recipients.csv"

// registryContents dumps what an import may change in a sqlite registry:
// residents, entitlements and card events (not the audit log, which a
// dry run adds to when it compares existing residents).
func registryContents(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	for _, table := range []string{"residents", "entitlements", "card_events"} {
		rows, err := db.Query("SELECT * FROM " + table + " ORDER BY 1")
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		fmt.Fprintf(&b, "%s:\n", table)
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, vals...)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return b.String()
}

func countRows(t *testing.T, path, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRegistryImport: the dry run shows what the sample would change and
// changes nothing; --apply --yes imports it, recording who; the same file
// again changes nothing.
func TestRegistryImport(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "registry.db")
	db := "sqlite:" + path
	transit(t, ctx, 0, "registry", "migrate", "--db", db)
	before := registryContents(t, path)

	out := transit(t, ctx, 0, "registry", "import", sampleCSV, "--db", db, "--actor", "olena.k")
	for _, want := range []string{"benefit-recipients.csv (dry run): 6 row(s)", "new residents:", "ПФУ-2016-000123",
		"УБД-2016-000777", "dry run: nothing was changed; run again with --apply"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	// Line 4 is the second decision of the person on line 3: a new
	// entitlement of a resident the import creates.
	if !containsLine(out, "4", "new entitlement", "new", "УБД-2016-000777", "12") {
		t.Errorf("dry run does not list line 4's new entitlement:\n%s", out)
	}
	for _, secret := range []string{"Шевченко", "1870010029"} {
		if strings.Contains(out, secret) {
			t.Errorf("the report shows personal data %q:\n%s", secret, out)
		}
	}
	if after := registryContents(t, path); after != before {
		t.Fatalf("the dry run changed the registry:\nbefore %s\nafter %s", before, after)
	}

	out = transit(t, ctx, 0, "registry", "import", sampleCSV, "--db", db, "--apply", "--yes", "--actor", "olena.k",
		"--purpose", "monthly import, December")
	if !strings.Contains(out, "imported benefit-recipients.csv as cli:olena.k") ||
		!strings.Contains(out, "6 row(s): 4 new resident(s), 5 new, 0 changed and 0 ended entitlement(s); 0 unchanged, 1 ignored") {
		t.Errorf("apply output:\n%s", out)
	}
	if n := countRows(t, path, "residents"); n != 4 {
		t.Errorf("%d residents after the import; want 4", n)
	}
	if n := countRows(t, path, "entitlements"); n != 5 {
		t.Errorf("%d entitlements after the import; want 5", n)
	}
	if n := countAudit(t, path, "cli:olena.k", "monthly import, December"); n != 4 {
		t.Errorf("%d audit entries name cli:olena.k and the purpose; want one per new resident (4)", n)
	}

	// The register ends one benefit and changes another's limit.
	b, err := os.ReadFile(sampleCSV)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(b), "31.12.2099;state;0;УБД-2016-000777;active", "30.11.2026;state;0;УБД-2016-000777;ended", 1)
	next = strings.Replace(next, "city;60;МСЕК-2024-012345", "city;40;МСЕК-2024-012345", 1)
	file := filepath.Join(t.TempDir(), "december.csv")
	if err := os.WriteFile(file, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	imported := registryContents(t, path)
	out = transit(t, ctx, 0, "registry", "import", file, "--db", db, "--actor", "olena.k")
	if !containsLine(out, "4", "ended entitlement", "2", "УБД-2016-000777", "12", "valid_to") ||
		!containsLine(out, "5", "changed entitlement", "3", "МСЕК-2024-012345", "21", "monthly_limit") {
		t.Errorf("dry run of the next month:\n%s", out)
	}
	if after := registryContents(t, path); after != imported {
		t.Errorf("the second dry run changed the registry")
	}
	transit(t, ctx, 0, "registry", "import", file, "--db", db, "--actor", "olena.k", "--apply", "--yes")
	if out = transit(t, ctx, 0, "registry", "import", file, "--db", db, "--actor", "olena.k"); !strings.Contains(out, "the file changes nothing") {
		t.Errorf("the same file again:\n%s", out)
	}
}

// containsLine reports whether out has a line whose fields start with
// fields, in order (a table row).
func containsLine(out string, fields ...string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Join(strings.Fields(line), " ") == strings.Join(fields, " ") ||
			strings.HasPrefix(strings.Join(strings.Fields(line), " "), strings.Join(fields, " ")+" ") {
			return true
		}
	}
	return false
}

func countAudit(t *testing.T, path, user, purpose string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM audit_log WHERE user_name = ? AND purpose = ?", user, purpose).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRegistryImportRefusesBadInput: a bad file, a missing one, an empty
// one, a missing database: each changes nothing and says why.
func TestRegistryImportRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "registry.db")
	db := "sqlite:" + path
	transit(t, ctx, 0, "registry", "migrate", "--db", db)
	sample, err := os.ReadFile(sampleCSV)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	lines := strings.SplitAfter(string(sample), "\n")
	bad := strings.Replace(string(sample), ";state;", ";oblast;", 1)
	bad = strings.Replace(bad, "02.11.1948", "31.11.1948", 1)
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		err   string   // in the one line on stderr
		lines []string // on stdout: the rows refused
	}{
		{"bad rows", []string{write("bad.csv", bad)}, 1, "bad.csv: 2 problem(s), listed above; nothing was imported: fix the file",
			[]string{`line 2, funding: "oblast"; want city or state`, `line 3, birth_date: "1948-11-31" is not an existing date`}},
		{"bad quotes", []string{write("quotes.csv", lines[0]+strings.Replace(lines[1], "Шевченко", `Шев"ченко`, 1))}, 1, "quotes.csv: 1 problem(s)",
			[]string{`line 2, last_name: bare " in non-quoted-field (character 15 of the line)`}},
		{"unknown column", []string{write("columns.csv", strings.Replace(string(sample), "monthly_limit", "limit", 1))}, 1, "columns.csv: 1 problem(s)",
			[]string{`line 1: unknown column "limit"`}},
		{"missing file", []string{filepath.Join(dir, "nope.csv")}, 1, "nope.csv: no such file; check the path", nil},
		{"a directory", []string{dir}, 1, "is a directory", nil},
		{"empty file", []string{write("empty.csv", "")}, 1, "empty.csv is empty (0 bytes)", nil},
		{"header only", []string{write("header.csv", lines[0])}, 1, "has a header but no rows", nil},
		{"missing database", []string{sampleCSV, "--db", "sqlite:" + filepath.Join(dir, "other.db")}, 1, "--db sqlite:", nil},
		{"--yes without --apply", []string{sampleCSV, "--yes"}, 2, "--yes confirms an import: give it with --apply", nil},
		{"no actor", []string{sampleCSV, "--actor", " "}, 2, "", nil},
		{"bad purpose", []string{sampleCSV, "--purpose", "a\nb"}, 2, "--purpose", nil},
		{"apply with no terminal", []string{sampleCSV, "--apply"}, 2, "no terminal to confirm on: give --yes", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "no actor" && os.Getuid() != 0 {
				t.Skip("the OS user names a person here")
			}
			args := append([]string{"registry", "import"}, tc.args...)
			if !strings.Contains(strings.Join(args, " "), "--db") {
				args = append(args, "--db", db)
			}
			if !strings.Contains(strings.Join(args, " "), "--actor") {
				args = append(args, "--actor", "olena.k")
			}
			before := registryContents(t, path)
			var out, errb syncBuffer
			code := run(ctx, args, &out, &errb)
			msg := errb.String()
			if code != tc.code || !strings.Contains(msg, tc.err) || strings.Count(strings.TrimSpace(msg), "\n") != 0 {
				t.Errorf("exit %d, stderr %q; want exit %d and one line with %q", code, msg, tc.code, tc.err)
			}
			for _, l := range tc.lines {
				if !strings.Contains(out.String(), "  "+l) {
					t.Errorf("stdout lacks %q:\n%s", l, out.String())
				}
			}
			if after := registryContents(t, path); after != before {
				t.Errorf("the registry changed:\nbefore %s\nafter %s", before, after)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "other.db")); err == nil {
		t.Errorf("the import made a new database at a mistyped path")
	}
}
