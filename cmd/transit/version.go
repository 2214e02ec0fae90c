package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
)

// buildInfo is what `transit version` prints and the validator's
// build_info metric carries: enough to tell which code runs on a vehicle.
type buildInfo struct {
	Module    string `json:"module"`
	Version   string `json:"version"`            // module version; "(devel)" for a build from a checkout without a tag
	Revision  string `json:"revision,omitempty"` // VCS commit
	Time      string `json:"time,omitempty"`     // commit time
	Modified  bool   `json:"modified"`           // built from a checkout with uncommitted changes
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"` // GOOS/GOARCH, with the ARM version
	Cgo       bool   `json:"cgo"`
	// PCSC says whether card readers work: the PC/SC transport needs cgo
	// and libpcsclite; without it the validator and the desk refuse to start.
	PCSC bool `json:"pcsc"`
	// PKCS11 says whether hardware HSMs work (cgo as well); the software
	// keystore works in every build.
	PKCS11 bool `json:"pkcs11"`
}

// vcsRevision is the commit when the build stamps none itself (a git
// worktree, which the go command does not recognise, or a source
// tarball): go build -ldflags "-X main.vcsRevision=$(git rev-parse HEAD)",
// as make cross does, with "+modified" for uncommitted changes. A
// variable only because the linker can set nothing else.
var vcsRevision string

func readBuildInfo() (b buildInfo) {
	b = buildInfo{GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		Cgo: cgoBuilt, PCSC: cgoBuilt, PKCS11: cgoBuilt, Version: "(unknown)"}
	defer func() {
		if b.Revision == "" && vcsRevision != "" {
			b.Revision, b.Modified = strings.CutSuffix(vcsRevision, "+modified")
		}
	}()
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.Module, b.Version = bi.Main.Path, bi.Main.Version
	if b.Module == "" { // a test binary
		b.Module = bi.Path
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		case "GOARM":
			b.Platform += "/v" + strings.TrimPrefix(s.Value, "v")
		}
	}
	return b
}

func (b buildInfo) shortRevision() string {
	r := b.Revision
	if len(r) > 12 {
		r = r[:12]
	}
	if r != "" && b.Modified {
		r += "+modified"
	}
	return r
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the build: module version, VCS revision, Go version, and whether PC/SC and PKCS#11 are built in",
		Long: `Print what this binary is: the module version and the commit it was built from (with "+modified" when
the checkout had uncommitted changes), the Go version and platform, and whether it was built with cgo, which
card readers (PC/SC, through pcscd and libpcsclite) and hardware HSMs (PKCS#11) need. A build without cgo
runs the demo, clearing, the registry and the reports, but cannot read cards.`,
		Example: `  transit version
  transit version --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return writeVersion(c.OutOrStdout(), readBuildInfo(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func writeVersion(w io.Writer, b buildInfo, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(b)
	}
	yes := func(v bool, what string) string {
		if v {
			return "built in (" + what + ")"
		}
		return "not built in: needs cgo (" + what + ")"
	}
	rev := b.shortRevision()
	if rev == "" {
		rev = "unknown"
	}
	if b.Time != "" {
		rev += " of " + b.Time
	}
	_, err := fmt.Fprintf(w, "transit %s\nmodule   %s\nrevision %s\ngo       %s %s\ncgo      %v\nPC/SC    %s\nPKCS#11  %s\n",
		b.Version, b.Module, rev, b.GoVersion, b.Platform, b.Cgo,
		yes(b.PCSC, "card readers through pcscd and libpcsclite"), yes(b.PKCS11, "hardware HSMs"))
	return err
}

// newBuildInfoGauge returns NAME_build_info, 1 with the build as labels,
// as Prometheus exporters do (e.g. prometheus_build_info).
func newBuildInfoGauge(name string, b buildInfo) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name + "_build_info",
		Help: "Always 1; the labels say which build runs: version, revision, goversion, platform, and whether cgo and PC/SC are built in.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.shortRevision(), "goversion": b.GoVersion,
			"platform": b.Platform, "cgo": fmt.Sprint(b.Cgo), "pcsc": fmt.Sprint(b.PCSC)}})
	g.Set(1)
	return g
}
