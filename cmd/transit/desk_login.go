package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// newDeskLoginCmd is `transit desk login`: a staff member signs in with
// their account and keeps the session token in a file of their own, for
// the other desk commands' --token-file.
func newDeskLoginCmd(f *deskFlags) *cobra.Command {
	var user, out string
	cmd := &cobra.Command{
		Use:   "login --user NAME --out FILE",
		Short: "Sign in with your staff account and keep the session token in a file (0600) for --token-file",
		Long: `Sign in to the registry with your named staff account (transit registry staff add): the password is
read from the terminal, or from TRANSIT_STAFF_PASSWORD, never from the command line. The session token
the registry gives (it ends after 12 hours, or when revoked) is written to FILE, readable by you only;
give it to the other desk commands as --token-file FILE.`,
		Example: `  transit desk login --user olena.k --out ~/.transit-token --registry https://registry.city:8443
  transit desk block --card 1001000000000015 --reason lost --token-file ~/.transit-token --registry https://registry.city:8443`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if user == "" || out == "" {
				return usagef("give your user name and where to keep the token: --user NAME --out FILE")
			}
			pw := os.Getenv("TRANSIT_STAFF_PASSWORD")
			if pw == "" {
				b, err := passphrase("TRANSIT_STAFF_PASSWORD", "your password", false, c.ErrOrStderr())
				if err != nil {
					return err
				}
				pw = string(b)
			}
			hc, err := clientWithCA(f.ca, time.Minute)
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]string{"user": user, "password": pw})
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(f.registry), "/"), "/v1")
			resp, err := hc.Post(base+"/v1/auth/login", "application/json", bytes.NewReader(body))
			if err != nil {
				return fmt.Errorf("registry at %s: %w; check --registry and that the registry runs", base, err)
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			var s struct {
				Token   string    `json:"token"`
				Expires time.Time `json:"expires"`
				Error   string    `json:"error"`
			}
			if err := json.Unmarshal(data, &s); err != nil || resp.StatusCode != http.StatusOK {
				if s.Error == "" {
					s.Error = resp.Status
				}
				return fmt.Errorf("sign-in refused: %s", s.Error)
			}
			fh, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return fmt.Errorf("keep the token: %w", err)
			}
			if err := fh.Chmod(0o600); err != nil {
				fh.Close()
				return fmt.Errorf("keep the token: %w", err)
			}
			if _, err := fmt.Fprintln(fh, s.Token); err != nil {
				fh.Close()
				return fmt.Errorf("keep the token: %w", err)
			}
			if err := fh.Close(); err != nil {
				return fmt.Errorf("keep the token: %w", err)
			}
			fmt.Fprintf(c.OutOrStdout(), "signed in as %s until %s; the token is in %s (use --token-file %s)\n",
				user, s.Expires.Local().Format(time.DateTime), out, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "your staff user name")
	cmd.Flags().StringVar(&out, "out", "", "file to keep the session token in (written 0600)")
	return cmd
}
