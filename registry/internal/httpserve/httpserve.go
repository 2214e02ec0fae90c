// Package httpserve is what the registry's HTTP services (the API, the
// validators' publishing handler, the console) share: serving until a
// context ends with a graceful stop, and recording a response's status
// for the request log.
package httpserve

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Serve answers requests on ln with h until ctx is done, then stops
// accepting and waits up to 10 s for requests in flight. readTimeout
// bounds reading a request (an upload); errors are prefixed with name.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, name string, readTimeout time.Duration) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      2 * time.Minute, // an export of a busy month
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("%s: %w", name, err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		return fmt.Errorf("%s: shut down: %w", name, err)
	}
	<-done
	return nil
}

// StatusWriter records the status a handler answers with.
type StatusWriter struct {
	http.ResponseWriter
	// Status is the status sent, 0 until the handler writes.
	Status int
}

// WriteHeader implements http.ResponseWriter.
func (w *StatusWriter) WriteHeader(code int) {
	if w.Status == 0 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
