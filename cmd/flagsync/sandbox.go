package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/flagsync/flagsync/internal/cli"
	"github.com/flagsync/flagsync/internal/provider"
)

// sandboxSynopsis is sandbox's help: each service's sandbox.
func (a *app) sandboxSynopsis() string {
	var usages []provider.Usage
	for _, p := range a.providers.All() {
		usages = append(usages, p.Sandbox().Usage)
	}
	return "Usage: flagsync sandbox [--vendor " + strings.Join(a.providers.Names(), "|") + "] [flags]\n\n" +
		"Serves a local sandbox of a flag service's API (--vendor; default " + a.providers.Default().Name() + "), for tests,\n" +
		"the quick start and CI. Flags live in memory, or in --state between runs.\n\n" +
		joinUsages(usages, "", "flagsync sandbox")
}

// sandboxShutdownTimeout bounds how long calls in flight may take once the context ends.
const sandboxShutdownTimeout = 5 * time.Second

// sandboxFlags are the flags of every provider's sandbox.
type sandboxFlags struct {
	values   func() provider.Values
	owners   map[string]provider.Provider // flag → its provider (nil: several's)
	byVendor map[string][]provider.Flag
}

func (a *app) addSandboxFlags(fs *cli.FlagSet) *sandboxFlags {
	f := &sandboxFlags{owners: map[string]provider.Provider{}, byVendor: map[string][]provider.Flag{}}
	var all []provider.Flag
	for _, p := range a.providers.All() {
		for _, fl := range p.Sandbox().Flags {
			if _, dup := f.owners[fl.Name]; dup {
				f.owners[fl.Name] = nil // several sandboxes take it
				continue
			}
			all = append(all, fl)
			f.owners[fl.Name] = p
		}
		f.byVendor[p.Name()] = p.Sandbox().Flags
	}
	f.values = a.addProviderFlags(fs, all)
	return f
}

// environmentsHelp names each sandbox's default environments.
func (a *app) environmentsHelp() string {
	var defaults []string
	for _, p := range a.providers.All() {
		if envs := p.Sandbox().DefaultEnvironments; len(envs) > 0 {
			defaults = append(defaults, p.Name()+": "+strings.Join(envs, ","))
		}
	}
	return "comma-separated environment keys of the sandbox's project, in the order flags list them (default " + strings.Join(defaults, "; ") + ")"
}

// cmdSandbox serves a sandbox until ctx ends, then shuts it down gracefully.
func cmdSandbox(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("sandbox", a.sandboxSynopsis())
	// The sandbox is a server of its own: its settings are FLAGSYNC_SANDBOX_*.
	fs.SetEnvPrefix("FLAGSYNC_SANDBOX_")
	listen := fs.String("listen", "127.0.0.1:8089", "address to listen on")
	state := fs.String("state", "", "JSON file the flags are loaded from and saved to after each write (default: memory only)")
	envs := fs.String("environments", "", a.environmentsHelp())
	vendor := fs.String("vendor", a.providers.Default().Name(), "the API to serve: "+strings.Join(a.providers.Names(), " or "))
	fs.Enum("vendor", a.providers.Names()...)
	sf := a.addSandboxFlags(fs)
	lf := a.addLogFlags(fs)
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	logger, err := a.logger(lf)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync sandbox: %v\n", err)
		return exitUsage
	}
	p, ok := a.providers.Lookup(*vendor)
	if !ok {
		fmt.Fprintf(a.stderr, "flagsync sandbox: --vendor %q: want %s\n", *vendor, strings.Join(a.providers.Names(), " or "))
		return exitUsage
	}
	if msg := foreignFlags(fs, p, sf.byVendor, sf.owners); msg != "" {
		fmt.Fprintf(a.stderr, "flagsync sandbox: %s\n", msg)
		return exitUsage
	}
	if none := p.Sandbox().None; none != "" {
		fmt.Fprintf(a.stderr, "flagsync sandbox: %s\n", none)
		return exitUsage
	}
	srv, err := p.Sandbox().New(provider.SandboxInput{Values: sf.values(), Getenv: a.getenv,
		Environments: provider.SplitList(*envs), StatePath: *state, Logger: logger})
	if err != nil {
		return usageOr(a, "flagsync sandbox", err)
	}
	if err := serveUntilDone(ctx, srv.Handler, *listen, logger, srv.Listening); err != nil {
		logger.Error("sandbox stopped", "err", err)
		return exitFail
	}
	return exitOK
}

// serveUntilDone listens on addr and serves h until ctx ends, then shuts down gracefully.
// listening is called once the address is known.
func serveUntilDone(ctx context.Context, h http.Handler, addr string, logger *slog.Logger, listening func(where string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	where := ln.Addr().String()
	listening(where)
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		logger.Warn("sandbox is reachable from other machines: anyone who can reach it and knows the credentials can change its flags", "addr", where)
	}

	select {
	case err := <-served:
		return fmt.Errorf("serve on %s: %w", where, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), sandboxShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	logger.Info("sandbox stopped", "addr", where)
	return nil
}
