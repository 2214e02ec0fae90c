package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/citycard/transit/simulator/testenv"
	"github.com/citycard/transit/validator/config"
)

// unitFile is a parsed systemd unit: section -> key -> values in order.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		case section == "":
			t.Fatalf("%s:%d: %q before any section", path, n, line)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || strings.HasSuffix(line, `\`) {
				t.Fatalf("%s:%d: %q is not KEY=VALUE on one line", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u unitFile) last(section, key string) (string, bool) {
	vs := u[section][key]
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

var envRef = regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)\}`)

// TestSystemdUnits checks the units in cmd/transit/systemd: one per
// service, each sandboxed under a user of its own, each ExecStart a
// command line the binary accepts; and, with systemd's own tools, that
// systemd reads them without complaint and rates their exposure low.
func TestSystemdUnits(t *testing.T) {
	units, err := filepath.Glob(filepath.Join("systemd", "*.service"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range units {
		names = append(names, filepath.Base(u))
	}
	for _, want := range []string{"transit-validator.service", "transit-clearing.service", "transit-registry.service", "transit-console.service"} {
		if !slices.Contains(names, want) {
			t.Errorf("no unit %s in cmd/transit/systemd", want)
		}
	}
	sysusers, err := os.ReadFile(filepath.Join("systemd", "transit.sysusers.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// What every service must have, as systemd spells it.
	required := map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "", "RestrictSUIDSGID": "yes",
		"ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
		"RestrictNamespaces": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
		"SystemCallArchitectures": "native", "UMask": "0077",
	}
	for _, path := range units {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			u := parseUnit(t, path)
			for key, want := range required {
				if got, ok := u.last("Service", key); !ok || got != want {
					t.Errorf("%s=%q, want %q", key, got, want)
				}
			}
			user, _ := u.last("Service", "User")
			if user == "" || user == "root" || !strings.HasPrefix(user, "transit-") {
				t.Errorf("User=%q: want a system user of its own (transit-...)", user)
			}
			if !regexp.MustCompile(`(?m)^u\s+` + regexp.QuoteMeta(user) + `\s`).Match(sysusers) {
				t.Errorf("user %s is not in transit.sysusers.conf", user)
			}
			if sd, _ := u.last("Service", "StateDirectory"); !strings.HasPrefix(sd, "transit/") {
				t.Errorf("StateDirectory=%q: want transit/SERVICE", sd)
			}
			if u["Service"]["SystemCallFilter"] == nil || u["Service"]["RestrictAddressFamilies"] == nil {
				t.Error("no SystemCallFilter or RestrictAddressFamilies")
			}
			if _, ok := u.last("Install", "WantedBy"); !ok {
				t.Error("no [Install] WantedBy: systemctl enable would do nothing")
			}
			// ExecStart with the unit's own defaults for ${VAR}.
			env := map[string]string{}
			for _, e := range u["Service"]["Environment"] {
				k, v, _ := strings.Cut(e, "=")
				env[k] = v
			}
			exec, _ := u.last("Service", "ExecStart")
			var missing []string
			exec = envRef.ReplaceAllStringFunc(exec, func(ref string) string {
				k := envRef.FindStringSubmatch(ref)[1]
				v, ok := env[k]
				if !ok {
					missing = append(missing, k)
				}
				return v
			})
			if len(missing) > 0 {
				t.Errorf("ExecStart uses %v, which the unit gives no default with Environment=", missing)
			}
			argv := strings.Fields(exec)
			if len(argv) < 2 || argv[0] != "/usr/bin/transit" {
				t.Fatalf("ExecStart=%q: want /usr/bin/transit COMMAND ...", exec)
			}
			root := newRootCmd(io.Discard, io.Discard)
			cmd, rest, err := root.Find(argv[1:])
			if err != nil || cmd.RunE == nil {
				t.Fatalf("ExecStart: transit %s is not a command: %v", strings.Join(argv[1:], " "), err)
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Fatalf("ExecStart: %s: %v", cmd.CommandPath(), err)
			}
			if args := cmd.Flags().Args(); len(args) > 0 {
				t.Fatalf("ExecStart: %s takes no arguments, the unit gives %q", cmd.CommandPath(), args)
			}
		})
	}
	// The validator configuration the units' README installs.
	if _, err := config.Load(filepath.Join("systemd", "validator.json")); err != nil {
		t.Errorf("systemd/validator.json: %v", err)
	}

	t.Run("systemd-analyze", func(t *testing.T) {
		analyze, err := exec.LookPath("systemd-analyze")
		if err != nil {
			if testenv.Required() {
				t.Fatal("systemd-analyze is not installed (Debian package systemd, in .ci/test.sh's APT_PACKAGES)")
			}
			t.Skip("systemd-analyze is not installed (Debian package systemd)")
		}
		// A root of its own: the units, a stand-in for /usr/bin/transit,
		// and the system's own units they depend on.
		root := t.TempDir()
		for _, d := range []string{"etc/systemd/system", "usr/bin", "usr/lib/systemd"} {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(root, "usr/bin/transit"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, sys := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
			if _, err := os.Stat(filepath.Join(sys, "multi-user.target")); err == nil {
				if err := os.CopyFS(filepath.Join(root, "usr/lib/systemd/system"), os.DirFS(sys)); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		for _, path := range units {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "etc/systemd/system", filepath.Base(path)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, path := range units {
			name := filepath.Base(path)
			// verify warns about unknown keys and bad values but still
			// exits 0: any output is a failure.
			out, err := exec.Command(analyze, "verify", "--man=no", "--root="+root, "/etc/systemd/system/"+name).CombinedOutput()
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
			}
			// Exposure 0.0 (locked down) to 10.0 (root, unrestricted);
			// "OK" is below 2.0 (the threshold is in tenths).
			out, err = exec.Command(analyze, "security", "--offline=yes", "--root="+root, "--threshold=20", name).CombinedOutput()
			if err != nil {
				t.Errorf("systemd-analyze security %s: %v (exposure above 2.0)\n%s", name, err, out)
			} else if i := strings.LastIndex(string(out), "Overall exposure level"); i >= 0 {
				t.Logf("%s", strings.TrimSpace(string(out[i:])))
			}
		}
	})
}
