package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	splitsandbox "github.com/flagsync/flagsync/internal/split/sandbox"
)

var sandboxSynopsis = `Usage: flagsync sandbox [--vendor kameleoon|split] [flags]

Serve a local, Kameleoon-compatible Automation API for feature flags: OAuth client
credentials, list/search/get/create/patch/delete of flags, rule patches, Kameleoon's rate
limits. For tests, the quick start and CI. Flags live in memory, or in --state between runs.
Without credentials it accepts client id "sandbox" with client secret "sandbox".

--strict switches on stricter readings of what Kameleoon's docs leave open, to test a
client against each (comma-separated, or "all"):
` + strictHelp() + `

With --vendor split it serves a Split-compatible (Harness FME) Admin API instead: flags
and their definitions per environment under /internal/api/v2, RFC 6902 JSON Patch applied
exactly (a failed test answers 409 and changes nothing), offset/limit paging, rate limits
with X-RateLimit-Reset-Seconds-* headers. It accepts the admin API key "sandbox" unless
FLAGSYNC_SANDBOX_API_KEY (or _FILE) sets another; point flagsync at it with
SPLIT_API_URL=http://ADDR SPLIT_ADMIN_API_KEY=sandbox.

Examples:
  flagsync sandbox
  flagsync sandbox --listen 127.0.0.1:8089 --state .flagsync/sandbox.json --sites pzllysfw2f
  FLAGSYNC_SANDBOX_CLIENT_SECRET=s3cret flagsync sandbox --client-id ci
  flagsync sandbox --strict env-patch-required,order-index
  flagsync sandbox --strict all
  flagsync sandbox --vendor split --environments Staging,Production --workspaces ws-1`

// sandboxShutdownTimeout bounds how long calls in flight may take once the context ends.
const sandboxShutdownTimeout = 5 * time.Second

// cmdSandbox serves a sandbox until ctx ends, then shuts it down gracefully.
func cmdSandbox(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("sandbox", sandboxSynopsis)
	listen := fs.String("listen", a.envDefault("FLAGSYNC_SANDBOX_LISTEN", "127.0.0.1:8089"), "address to listen on (env FLAGSYNC_SANDBOX_LISTEN)")
	state := fs.String("state", a.envDefault("FLAGSYNC_SANDBOX_STATE", ""), "JSON file the flags are loaded from and saved to after each write (env FLAGSYNC_SANDBOX_STATE; default: memory only)")
	sites := fs.String("sites", a.envDefault("FLAGSYNC_SANDBOX_SITES", ""), "comma-separated site codes of the account (env FLAGSYNC_SANDBOX_SITES; default: any 10-character code)")
	clientID := fs.String("client-id", a.envDefault("FLAGSYNC_SANDBOX_CLIENT_ID", ""), "accepted OAuth client id (env FLAGSYNC_SANDBOX_CLIENT_ID; default \"sandbox\")")
	clientSecret := fs.String("client-secret", "", "accepted OAuth client secret (prefer env FLAGSYNC_SANDBOX_CLIENT_SECRET or FLAGSYNC_SANDBOX_CLIENT_SECRET_FILE; default \"sandbox\")")
	envs := fs.String("environments", a.envDefault("FLAGSYNC_SANDBOX_ENVIRONMENTS", ""), "comma-separated environment keys of the project, in the order flags list them (env FLAGSYNC_SANDBOX_ENVIRONMENTS; default "+strings.Join(ksandbox.DefaultEnvironments, ",")+")")
	rate10s := fs.Int("rate-10s", 0, "calls allowed per 10 seconds (0: Kameleoon's 50; negative: unlimited)")
	rateHour := fs.Int("rate-hour", 0, "calls allowed per hour (0: Kameleoon's 1000; negative: unlimited)")
	strict := fs.String("strict", a.envDefault("FLAGSYNC_SANDBOX_STRICT", ""), "comma-separated strict variants to follow, or \"all\" (env FLAGSYNC_SANDBOX_STRICT; default: none, the lenient reading of each)")
	vendor := fs.String("vendor", a.envDefault("FLAGSYNC_SANDBOX_VENDOR", "kameleoon"), "the API to serve: kameleoon or split (env FLAGSYNC_SANDBOX_VENDOR)")
	workspaces := fs.String("workspaces", a.envDefault("FLAGSYNC_SANDBOX_WORKSPACES", ""), "with --vendor split: comma-separated workspace ids (default: any)")
	trafficTypes := fs.String("traffic-types", a.envDefault("FLAGSYNC_SANDBOX_TRAFFIC_TYPES", ""), "with --vendor split: comma-separated traffic types (default "+strings.Join(splitsandbox.DefaultTrafficTypes, ",")+")")
	rateSecond := fs.Int("rate-second", 0, "with --vendor split: calls of the account allowed per second (0: 10; negative: unlimited)")
	rateMinute := fs.Int("rate-minute", 0, "with --vendor split: calls of one address allowed per minute (0: 400; negative: unlimited)")
	lf := a.addLogFlags(fs)
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	logger, err := a.logger(lf)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync sandbox: %v\n", err)
		return exitUsage
	}
	switch *vendor {
	case "kameleoon":
	case "split":
		if *clientID != "" || *clientSecret != "" || *sites != "" || *rate10s != 0 || *rateHour != 0 || *strict != "" {
			fmt.Fprintln(a.stderr, "flagsync sandbox: --client-id, --client-secret, --sites, --rate-10s, --rate-hour and --strict are Kameleoon's; the Split sandbox takes an API key (FLAGSYNC_SANDBOX_API_KEY), --workspaces, --rate-second and --rate-minute")
			return exitUsage
		}
		key, err := a.secret("FLAGSYNC_SANDBOX_API_KEY")
		if err != nil {
			fmt.Fprintf(a.stderr, "flagsync sandbox: %v\n", err)
			return exitFail
		}
		return a.serveSplitSandbox(ctx, logger, *listen, splitsandbox.Options{
			APIKey: key, Workspaces: splitList(*workspaces), Environments: splitList(*envs), TrafficTypes: splitList(*trafficTypes),
			RatePerSecond: *rateSecond, RatePerMinute: *rateMinute, StatePath: *state, Logger: logger,
		})
	default:
		fmt.Fprintf(a.stderr, "flagsync sandbox: --vendor %q: want kameleoon or split\n", *vendor)
		return exitUsage
	}
	secret := *clientSecret
	if secret == "" {
		if secret, err = a.secret("FLAGSYNC_SANDBOX_CLIENT_SECRET"); err != nil {
			fmt.Fprintf(a.stderr, "flagsync sandbox: %v\n", err)
			return exitFail
		}
	}
	if (*clientID == "") != (secret == "") {
		fmt.Fprintln(a.stderr, "flagsync sandbox: give both a client id and a client secret, or neither (then \"sandbox\"/\"sandbox\" is accepted)")
		return exitUsage
	}
	variants, err := ksandbox.ParseVariants(*strict)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync sandbox: --strict: %v\n", err)
		return exitUsage
	}
	opts := ksandbox.Options{
		Strict:       variants,
		Sites:        splitList(*sites),
		ClientID:     *clientID,
		ClientSecret: secret,
		Environments: splitList(*envs),
		RatePer10s:   *rate10s,
		RatePerHour:  *rateHour,
		StatePath:    *state,
		Logger:       logger,
	}
	if *state != "" {
		if err := os.MkdirAll(filepath.Dir(*state), 0o755); err != nil {
			fmt.Fprintf(a.stderr, "flagsync sandbox: create the state directory: %v\n", err)
			return exitFail
		}
	}
	sb, err := ksandbox.New(opts)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync sandbox: %v\n", err)
		return exitFail
	}
	if err := serveSandbox(ctx, sb, *listen, opts, logger); err != nil {
		logger.Error("sandbox stopped", "err", err)
		return exitFail
	}
	return exitOK
}

// serveSandbox listens on addr and serves sb until ctx ends.
func serveSandbox(ctx context.Context, sb *ksandbox.Server, addr string, opts ksandbox.Options, logger *slog.Logger) error {
	return serveUntilDone(ctx, sb, addr, logger, func(where string) {
		state := opts.StatePath
		if state == "" {
			state = "(memory only)"
		}
		logger.Info("sandbox listening", "addr", where, "url", "http://"+where, "state", state,
			"environments", strings.Join(sb.Environments(), ","), "sites", siteList(opts.Sites), "strict", strictList(sb.Strict()))
		if opts.ClientID == "" {
			logger.Info("sandbox accepts the default credentials", "client_id", ksandbox.DefaultClientID, "client_secret", ksandbox.DefaultClientSecret)
		} else {
			logger.Info("sandbox accepts the configured credentials", "client_id", opts.ClientID)
		}
	})
}

// serveSplitSandbox serves a Split sandbox on addr until ctx ends.
func (a *app) serveSplitSandbox(ctx context.Context, logger *slog.Logger, addr string, opts splitsandbox.Options) int {
	if opts.StatePath != "" {
		if err := os.MkdirAll(filepath.Dir(opts.StatePath), 0o755); err != nil {
			fmt.Fprintf(a.stderr, "flagsync sandbox: create the state directory: %v\n", err)
			return exitFail
		}
	}
	sb, err := splitsandbox.New(opts)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync sandbox: %v\n", err)
		return exitFail
	}
	err = serveUntilDone(ctx, sb, addr, logger, func(where string) {
		state := opts.StatePath
		if state == "" {
			state = "(memory only)"
		}
		logger.Info("sandbox listening", "vendor", "split", "addr", where, "url", "http://"+where, "state", state,
			"environments", strings.Join(sb.Environments(), ","), "workspaces", siteList(opts.Workspaces))
		if opts.APIKey == "" {
			logger.Info("Split sandbox accepts the default admin API key", "api_key", splitsandbox.DefaultAPIKey)
		} else {
			logger.Info("Split sandbox accepts the configured admin API key")
		}
	})
	if err != nil {
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

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// strictHelp lists the strict variants with what each changes, for the help text.
func strictHelp() string {
	const width, indent = 90, 27
	var b strings.Builder
	for _, v := range ksandbox.Variants {
		line := fmt.Sprintf("  %-24s", v)
		for _, word := range strings.Fields(v.Description()) {
			if len(line)+1+len(word) > width {
				b.WriteString(line + "\n")
				line = strings.Repeat(" ", indent-1)
			}
			line += " " + word
		}
		b.WriteString(line + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// strictList renders the variants a sandbox follows for its start-up log line.
func strictList(vs []ksandbox.Variant) string {
	if len(vs) == 0 {
		return "none"
	}
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = string(v)
	}
	return strings.Join(names, ",")
}

func siteList(sites []string) string {
	if len(sites) == 0 {
		return "any"
	}
	return strings.Join(sites, ",")
}
