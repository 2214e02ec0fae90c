package publish

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/citycard/transit/registry/internal/httpserve"
)

// Handler serves the validator URL contract relative to its base: GET
// /hotlist and GET /tariff (mount it with http.StripPrefix). Either
// publisher may be nil; its path then answers 404 saying so.
type Handler struct {
	Hotlists *Hotlists
	Tariff   *Tariff
	// Log gets one debug line per request (validators poll often) and
	// every failure; nil means slog.Default().
	Log *slog.Logger
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &httpserve.StatusWriter{ResponseWriter: w}
	defer func() {
		h.log().Debug("validator request", "path", r.URL.Path, "status", sw.Status, "duration", time.Since(start).Round(time.Microsecond))
	}()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		sw.Header().Set("Allow", "GET, HEAD")
		plain(sw, http.StatusMethodNotAllowed, "validator files are fetched with GET")
		return
	}
	switch r.URL.Path {
	case "/hotlist":
		h.hotlist(sw, r)
	case "/tariff":
		h.tariff(sw, r)
	default:
		plain(sw, http.StatusNotFound, "no such validator file; validators fetch hotlist and tariff")
	}
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

// since reads the optional since parameter.
func since(r *http.Request, bits int) (uint64, error) {
	v := r.URL.Query().Get("since")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("since=%.40q: want the version the validator holds, a whole number", v)
	}
	return n, nil
}

func (h *Handler) hotlist(w http.ResponseWriter, r *http.Request) {
	if h.Hotlists == nil {
		plain(w, http.StatusNotFound, "this registry publishes no hotlist")
		return
	}
	v, err := since(r, 64)
	if err != nil {
		plain(w, http.StatusBadRequest, err.Error())
		return
	}
	f, err := h.Hotlists.Get(r.Context(), v)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	hd := w.Header()
	hd.Set("X-Hotlist-Version", strconv.FormatUint(f.Version, 10))
	if f.NotModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Length", strconv.Itoa(len(f.Data)))
	hd.Set("X-Hotlist-Kind", f.Kind.String())
	w.WriteHeader(http.StatusOK)
	w.Write(f.Data) //nolint:errcheck // the validator went away; it polls again
}

func (h *Handler) tariff(w http.ResponseWriter, r *http.Request) {
	if h.Tariff == nil {
		plain(w, http.StatusNotFound, "this registry publishes no tariff; start it with --tariff DIR")
		return
	}
	v, err := since(r, 32)
	if err != nil {
		plain(w, http.StatusBadRequest, err.Error())
		return
	}
	data, version, notModified, err := h.Tariff.Get(r.Context(), uint32(v))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	hd := w.Header()
	hd.Set("X-Tariff-Version", strconv.FormatUint(uint64(version), 10))
	if notModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", "application/zip")
	hd.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	w.Write(data) //nolint:errcheck // the validator went away; it polls again
}

// fail answers an error of a publisher: the kinds validators can act on
// (or a person, through the validator's log) say why; the rest are logged
// here with an id.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNoHotlist):
		w.Header().Set("Retry-After", "60")
		plain(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, ErrAhead):
		h.log().Warn("validator holds a newer version than published", "path", r.URL.Path, "err", err)
		plain(w, http.StatusConflict, err.Error())
	default:
		var b [6]byte
		rand.Read(b[:]) //nolint:errcheck // crypto/rand.Read does not fail
		id := hex.EncodeToString(b[:])
		h.log().Error("validator request failed", "path", r.URL.Path, "error", err, "id", id)
		plain(w, http.StatusInternalServerError, "the registry failed (error id "+id+"); the validator retries")
	}
}

// plain writes a short text answer, which validator/update quotes in its
// log.
func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}
