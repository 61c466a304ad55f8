package fake

import (
	"context"
	"log/slog"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// Provider returns the fake service's provider; every connection reaches svc.
func Provider(svc *Server) provider.Provider { return fprovider{svc} }

type fprovider struct{ svc *Server }

// Name is "fake".
func (fprovider) Name() string { return Name }

// Files is the fake vendor without a client.
func (fprovider) Files() reconcile.Vendor { return Vendor(nil) }

// Help describes the fake service.
func (fprovider) Help() provider.Help {
	return provider.Help{Service: Service, Scope: "space", Files: "fake flag files (vendor: fake)",
		Credentials: "The fake service needs no credentials", Sandbox: "an in-memory fake service"}
}

// Flags has the fake service's one connection flag: its budget.
func (fprovider) Flags() []provider.Flag {
	return []provider.Flag{{Name: "fake-calls-per-hour", Default: 1000, Usage: "calls the fake service allows per hour"}}
}

// Check checks the budget.
func (fprovider) Check(in provider.ConnectInput) error {
	if in.Values.Int("fake-calls-per-hour") < 1 {
		return provider.Usagef("--fake-calls-per-hour must be at least 1")
	}
	return nil
}

// Connect connects to the provider's service, with or without --sandbox: it has no
// other.
func (p fprovider) Connect(_ context.Context, in provider.ConnectInput) (*provider.Connection, error) {
	budget := api.NewBudgetWindows(api.Window{Period: time.Hour, Limit: in.Values.Int("fake-calls-per-hour")})
	c := NewClient(p.svc, budget, in.Observe)
	return &provider.Connection{Vendor: Vendor(c), Where: "the fake service", Budget: budget}, nil
}

// Sandbox serves a new fake service over HTTP.
func (fprovider) Sandbox() provider.Sandbox {
	return provider.Sandbox{
		Usage: provider.Usage{Text: "--vendor fake serves an in-memory fake service: GET /flags lists its flags.",
			Examples: []string{"flagsync sandbox --vendor fake"}},
		New: func(in provider.SandboxInput) (*provider.Server, error) {
			logger := in.Logger
			if logger == nil {
				logger = slog.New(slog.DiscardHandler)
			}
			return &provider.Server{Handler: NewServer(), Listening: func(addr string) {
				logger.Info("sandbox listening", "vendor", Name, "addr", addr)
			}}, nil
		},
	}
}
