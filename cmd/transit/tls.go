package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// listenFlags say how an HTTP service listens: TLS with a certificate
// and key, or plain HTTP on a loopback address (or, told so, behind a
// TLS-terminating proxy).
type listenFlags struct {
	cert, key   string
	behindProxy bool
}

func (f *listenFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.cert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file; with --tls-key")
	cmd.Flags().StringVar(&f.key, "tls-key", "", "the PEM private key of --tls-cert (keep it 0600)")
	cmd.Flags().BoolVar(&f.behindProxy, "behind-tls-proxy", false,
		"serve plain HTTP on a non-loopback address, for a TLS-terminating proxy on a trusted network")
}

// tls reports whether the service serves HTTPS.
func (f *listenFlags) tls() bool { return f.cert != "" }

// listen opens addr for service what: with TLS when given a certificate,
// and refuses plain HTTP beyond loopback unless behind a proxy, since the
// services carry tokens and personal data.
func (f *listenFlags) listen(what, addr string) (net.Listener, error) {
	switch {
	case (f.cert == "") != (f.key == ""):
		return nil, usagef("--tls-cert and --tls-key go together: give both, or neither for plain HTTP on 127.0.0.1")
	case f.cert != "" && f.behindProxy:
		return nil, usagef("--behind-tls-proxy is for plain HTTP; with --tls-cert the %s serves HTTPS itself", what)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, usagef("%s address %q: want host:port, e.g. 127.0.0.1:8081", what, addr)
	}
	if f.cert == "" && !isLoopback(host) && !f.behindProxy {
		return nil, usagef("%s on %s without TLS would carry tokens and personal data in clear: give --tls-cert and --tls-key, "+
			"or listen on 127.0.0.1, or (behind a TLS-terminating proxy on a trusted network) --behind-tls-proxy", what, addr)
	}
	var cfg *tls.Config
	if f.cert != "" {
		if cfg, err = serverTLS(f.cert, f.key); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w; choose another address", addr, err)
	}
	if f.behindProxy {
		slog.Warn(what+" serves plain HTTP on a network address: only a TLS-terminating proxy on a trusted network may reach it", "listen", addr)
	}
	if cfg != nil {
		return tls.NewListener(ln, cfg), nil
	}
	return ln, nil
}

// scheme is the URL scheme the service answers on.
func (f *listenFlags) scheme() string {
	if f.tls() {
		return "https"
	}
	return "http"
}

// certReload is how often a served certificate's file is looked at: a
// renewed certificate is picked up without a restart.
const certReload = time.Minute

// serverTLS is the TLS configuration of a service: TLS 1.2 at least, and
// the certificate reloaded when its file changes.
func serverTLS(certFile, keyFile string) (*tls.Config, error) {
	r := &certReloader{cert: certFile, key: keyFile}
	if err := r.load(); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(keyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		slog.Warn("the TLS key file is readable by others; chmod 600 it", "file", keyFile, "mode", fi.Mode().Perm().String())
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.get}, nil
}

type certReloader struct {
	cert, key string
	mu        sync.Mutex
	c         *tls.Certificate
	mod       time.Time
	checked   time.Time
}

func (r *certReloader) load() error {
	c, err := tls.LoadX509KeyPair(r.cert, r.key)
	if err != nil {
		return fmt.Errorf("TLS certificate %s and key %s: %w", r.cert, r.key, err)
	}
	fi, err := os.Stat(r.cert)
	if err != nil {
		return fmt.Errorf("TLS certificate %s: %w", r.cert, err)
	}
	r.c, r.mod = &c, fi.ModTime()
	return nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= certReload {
		r.checked = now
		if fi, err := os.Stat(r.cert); err == nil && !fi.ModTime().Equal(r.mod) {
			if err := r.load(); err != nil {
				// Keep serving the old one; the log says why.
				slog.Error("could not reload the TLS certificate; serving the previous one", "error", err)
			} else {
				slog.Info("TLS certificate reloaded", "file", r.cert)
			}
		}
	}
	return r.c, nil
}

// clientWithCA returns an HTTP client that trusts the system's roots, or
// with caFile only the authorities in it.
func clientWithCA(caFile string, timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, usagef("CA file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("CA file %s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}

// registryTokenEnv holds a registry API token, so that it need not
// appear on a command line, which other users of the machine can see.
const registryTokenEnv = "TRANSIT_REGISTRY_TOKEN"

// tokenFlags take a registry API token: from the environment or a file,
// or (with a warning) from the command line.
type tokenFlags struct {
	value, file string
}

func (f *tokenFlags) register(flags interface {
	StringVar(p *string, name, value, usage string)
}, name, what string) {
	flags.StringVar(&f.value, name, "", what+" (visible in ps: better set "+registryTokenEnv+" or give --"+name+"-file)")
	flags.StringVar(&f.file, name+"-file", "", "file holding "+what+" (keep it 0600)")
}

// read returns the token: --X-file, then the environment, then --X
// (warning on stderr that the command line shows it).
func (f *tokenFlags) read(name string, stderr io.Writer) (string, error) {
	switch {
	case f.file != "" && f.value != "":
		return "", usagef("give --%s or --%s-file, not both", name, name)
	case f.file != "":
		fi, err := os.Stat(f.file)
		if err != nil {
			return "", usagef("--%s-file: %v", name, err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(stderr, "transit: warning: %s is readable by others (%s); chmod 600 it\n", f.file, fi.Mode().Perm())
		}
		b, err := os.ReadFile(f.file)
		if err != nil {
			return "", usagef("--%s-file: %v", name, err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" || strings.ContainsAny(t, " \n\t") {
			return "", usagef("--%s-file %s: want one token on one line", name, f.file)
		}
		return t, nil
	case f.value != "":
		fmt.Fprintf(stderr, "transit: warning: a token on the command line is visible to every user of this machine (ps); "+
			"set %s or use --%s-file instead\n", registryTokenEnv, name)
		return f.value, nil
	}
	return strings.TrimSpace(os.Getenv(registryTokenEnv)), nil
}
