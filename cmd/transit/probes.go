package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/citycard/transit/clearing/health"
	rstore "github.com/citycard/transit/registry/store"
)

// registryProbes are the probes of a service over the registry store:
// ready when the store answers a read that touches no personal data (the
// card events after an offset no registry reaches). They fail from the
// moment ctx ends, while the server shuts down.
func registryProbes(ctx context.Context, st rstore.Store, more ...health.Check) *health.Probes {
	p := &health.Probes{Log: slog.Default(), Checks: append([]health.Check{{Name: "registry store", Fn: func(ctx context.Context) error {
		if _, err := st.CardEvents(ctx, 1<<62, 1); err != nil {
			return fmt.Errorf("read card events: %w", err)
		}
		return nil
	}}}, more...)}
	context.AfterFunc(ctx, p.Stopping)
	return p
}
