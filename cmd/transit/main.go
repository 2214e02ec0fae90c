// Command transit is the city card platform in one binary: the bus
// validator agent, the clearing service, key custody, reports and a demo
// that runs the whole path on embedded defaults.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	// The city's time zone decides which month a tap is accounted to;
	// embedded so a machine without tzdata gets it right.
	_ "time/tzdata"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the process exit code: 0 on
// success, 1 when the work failed, 2 when the command line was wrong.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsageError(err) {
		fmt.Fprintf(stderr, "transit: %s (see 'transit --help')\n", oneLine(err))
		return 2
	}
	fmt.Fprintf(stderr, "transit: %s\n", oneLine(err))
	return 1
}

// usageError marks an error in how the command was called.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// isCobraUsageError recognises cobra's own errors for unknown commands,
// flags and argument counts, which it does not type.
func isCobraUsageError(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument",
		"invalid argument", "accepts ", "requires at least", "required flag"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// oneLine folds an error onto one line; cobra's suggestions come on
// separate lines.
func oneLine(err error) string {
	s := strings.TrimSpace(err.Error())
	s = strings.ReplaceAll(s, "\n\nDid you mean this?\n\t", "; did you mean ")
	s = strings.ReplaceAll(s, "\n\t", ", ")
	return strings.ReplaceAll(s, "\n", "; ")
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	var logLevel string
	root := &cobra.Command{
		Use:   "transit",
		Short: "City smart-card platform: validators, clearing, key custody and compensation reports",
		Long: `transit runs the city's contactless card platform.

A card is a bus ticket, a purse and proof of the holder's right to benefits.
Validators decide every tap offline and send their taps in authenticated
batches to clearing; clearing stores them exactly once and produces the
monthly compensation the city owes each carrier for benefit rides.`,
		Example: `  # Run the whole path on embedded defaults (no servers needed)
  transit demo

  # Print November's compensation per carrier from PostgreSQL
  transit report compensation --period 2026-11 --db postgres://localhost/transit`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return usagef("--log-level %q: want debug, info, warn or error", logLevel)
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})))
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newDemoCmd(),
		newReportCmd(),
		newClearingCmd(),
		newValidatorCmd(),
		newHSMCmd(),
		newTariffCmd(),
		newRegistryCmd(),
		newStatementCmd(nil),
		newConsoleCmd(),
		newDeskCmd(),
		newSimCmd(),
		newVersionCmd(),
	)
	return root
}
