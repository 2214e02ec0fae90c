package console_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/citycard/transit/simulator/testenv"
)

// axeSource is axe-core's script, read once.
var axeSource = sync.OnceValues(func() ([]byte, error) {
	return os.ReadFile(os.Getenv(testenv.AxeVar))
})

// axeViolation is what axe-core reports of one rule a page breaks.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []string `json:"target"`
	} `json:"nodes"`
}

// accessible runs axe-core (the WCAG 2.1 A and AA rules) on the page the
// tab shows and fails the test for every rule the page breaks, naming
// the elements. The script goes in through the DevTools protocol, which
// the console's Content-Security-Policy (no scripts) does not govern.
func accessible(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	if os.Getenv(testenv.AxeVar) == "" && !testenv.Required() {
		// The rest of the browser test still runs; the harness always
		// gives axe-core (.ci/test.sh), so CI never takes this path.
		t.Logf("%s: accessibility not checked: no axe-core (%s)", what, testenv.AxeVar)
		return
	}
	testenv.Axe(t)
	src, err := axeSource()
	must(t, "read axe-core", err)
	if !run(t, ctx, "axe loaded", chromedp.Evaluate[bool](`typeof axe === "object"`)) {
		run(t, ctx, "load axe-core", chromedp.Evaluate[bool](string(src)+";true"))
	}
	vs := run(t, ctx, "axe "+what, chromedp.Evaluate[[]axeViolation](
		`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}).then(r => r.violations)`,
		chromedp.EvalAwaitPromise))
	for _, v := range vs {
		var targets []string
		for _, n := range v.Nodes {
			targets = append(targets, strings.Join(n.Target, " "))
		}
		t.Errorf("%s breaks %s (%s): %s, at %s", what, v.ID, v.Impact, v.Help, strings.Join(targets, "; "))
	}
}
