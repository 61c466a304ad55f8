package kameleoon

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kplan "github.com/flagsync/flagsync/internal/kameleoon/plan"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// Name is Kameleoon's name on the command line (sandbox --vendor, export --vendor).
const Name = "kameleoon"

// defaultSandboxState is where the embedded sandbox keeps its flags, relative to the
// current directory; .flagsync/ is gitignored.
const defaultSandboxState = ".flagsync/sandbox.json"

// envSandboxStrict sets --strict when it is not given.
const envSandboxStrict = "FLAGSYNC_SANDBOX_STRICT"

// Provider returns Kameleoon's provider: its files are those no other service claims,
// its client the Automation API's (or the embedded sandbox's), and it offers export and
// doctor.
func Provider() provider.Provider { return kprovider{} }

type kprovider struct{}

// Name is "kameleoon".
func (kprovider) Name() string { return Name }

// Files is the Kameleoon vendor without a client.
func (kprovider) Files() reconcile.Vendor { return Vendor(nil) }

// Help describes Kameleoon for the commands.
func (kprovider) Help() provider.Help {
	return provider.Help{
		Service:     kplan.Service,
		Scope:       "site",
		Files:       "Kameleoon flag files",
		Credentials: "Kameleoon's credentials come from " + kclient.EnvClientID + " and " + kclient.EnvClientSecret + " (or _FILE)",
		Sandbox:     "a Kameleoon-compatible sandbox",
		Automation:  "Kameleoon's automation",
	}
}

// Flags are the flags that select and pace the Automation API, or the embedded sandbox.
func (kprovider) Flags() []provider.Flag {
	return []provider.Flag{
		{Name: "api-url", Default: "", EnvDefault: kclient.EnvAPIURL, EnvByProvider: true, Usage: "Automation API base URL (default " + kclient.DefaultBaseURL + ")"},
		{Name: "rate-10s", Default: kclient.DefaultPer10s, Usage: "client-side budget: API calls per 10 seconds (Kameleoon allows 50)"},
		{Name: "rate-hour", Default: kclient.DefaultPerHour, Usage: "client-side budget: API calls per hour (Kameleoon allows 1000)"},
		{Name: "retry-base", Default: kclient.DefaultBackoffBase, Usage: "first wait before retrying a refused or failed call without Retry-After; doubles each time"},
		{Name: "sandbox-state", Default: defaultSandboxState, State: true, Usage: "with --sandbox: the file the sandbox keeps its flags in between runs"},
		{Name: "strict", Default: "", EnvDefault: envSandboxStrict, EnvByProvider: true, Usage: "with --sandbox: the strict variants the sandbox follows, comma-separated, or \"all\" (see flagsync sandbox -h; default: none)"},
	}
}

// Check reports contradictory connection flags.
func (kprovider) Check(in provider.ConnectInput) error {
	v, sandbox := in.Values, in.Sandbox
	switch {
	case sandbox && v.String("api-url") != "":
		return provider.Usagef("--sandbox excludes --api-url")
	case v.String("strict") != "" && !sandbox:
		return provider.Usagef("--strict goes with --sandbox (it sets how the embedded sandbox reads what Kameleoon's docs leave open)")
	case v.Int("rate-10s") < 1 || v.Int("rate-hour") < 1 || v.Duration("retry-base") <= 0:
		return provider.Usagef("--rate-10s and --rate-hour must be at least 1, --retry-base positive")
	}
	if sandbox {
		if _, err := strictVariants(v, in.Getenv); err != nil {
			return provider.Usagef("--strict: %v", err)
		}
	}
	if in.Getenv != nil {
		if _, err := kclient.TokenCountingFromEnv(in.Getenv); err != nil {
			return provider.Usagef("%v", err)
		}
	}
	return nil
}

// strictVariants are the embedded sandbox's strict variants: --strict, else
// FLAGSYNC_SANDBOX_STRICT.
func strictVariants(v provider.Values, getenv func(string) string) ([]ksandbox.Variant, error) {
	strict := v.String("strict")
	if strict == "" {
		strict = getenv(envSandboxStrict)
	}
	return ksandbox.ParseVariants(strict)
}

// Connect builds the Automation API client: for the embedded sandbox (started here, with
// the environments the loaded files use) with --sandbox, otherwise with the credentials
// of the environment.
func (kprovider) Connect(_ context.Context, in provider.ConnectInput) (*provider.Connection, error) {
	cfg, where, stop, err := clientConfig(in, sandboxEnvironments(in.Repo, in.Environments))
	if err != nil {
		return nil, err
	}
	cfg.Observer = in.Observe
	c, err := kclient.New(cfg)
	if err != nil {
		stop()
		return nil, err
	}
	return &provider.Connection{Vendor: Vendor(c), Where: where, Budget: c.Budget(), Close: stop}, nil
}

// clientConfig is the Automation API client configuration (logger, budget and retry
// pacing included): for the embedded sandbox (started here, with sandboxEnvs and the
// strict variants) with --sandbox, otherwise with the credentials of the environment.
// It returns where the API is, for people, and a function that stops the sandbox.
func clientConfig(in provider.ConnectInput, sandboxEnvs []string) (kclient.Config, string, func(), error) {
	var cfg kclient.Config
	var where string
	stop := func() {}
	logger := in.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if in.Sandbox {
		variants, err := strictVariants(in.Values, in.Getenv)
		if err != nil {
			return kclient.Config{}, "", nil, fmt.Errorf("--strict: %w", err)
		}
		state := in.Values.String("sandbox-state")
		if cfg, stop, err = startSandbox(state, sandboxEnvs, variants, logger); err != nil {
			return kclient.Config{}, "", nil, err
		}
		where = "the sandbox (" + state + ")"
		if len(variants) > 0 {
			where = "the sandbox (" + state + "; strict " + strictList(variants) + ")"
		}
	} else {
		var err error
		cfg, err = kclient.ConfigFromEnv(in.Getenv)
		if err != nil {
			return kclient.Config{}, "", nil, fmt.Errorf("%w\n  To try flagsync without a Kameleoon account, add --sandbox: it syncs into a local sandbox kept in %s", err, defaultSandboxState)
		}
		if u := in.Values.String("api-url"); u != "" {
			cfg.BaseURL = u
		}
		if cfg.BaseURL == "" {
			cfg.BaseURL = kclient.DefaultBaseURL
		}
		where = "Kameleoon (" + cfg.BaseURL + ")"
	}
	if in.Sandbox && in.Getenv != nil {
		// The real API's configuration read it with the credentials (ConfigFromEnv).
		counts, err := kclient.TokenCountingFromEnv(in.Getenv)
		if err != nil {
			stop()
			return kclient.Config{}, "", nil, err
		}
		cfg.TokenCounts = counts
	}
	cfg.Logger = logger
	cfg.Budget = kclient.NewBudget(in.Values.Int("rate-10s"), in.Values.Int("rate-hour"))
	cfg.BackoffBase = in.Values.Duration("retry-base")
	return cfg, where, stop, nil
}

// sandboxEnvironments are the environments the embedded sandbox's project has: the
// sandbox's defaults plus every key the loaded files use (the settings' list and each
// flag's), so that any valid repository can be synced into it, plus extra.
func sandboxEnvironments(repo reconcile.Repo, extra []string) []string {
	envs := slices.Clone(ksandbox.DefaultEnvironments)
	add := func(keys []string) {
		for _, k := range keys {
			if !slices.Contains(envs, k) {
				envs = append(envs, k)
			}
		}
	}
	if r, ok := repo.(*run); ok {
		add(r.desired.Settings.Environments)
		for _, f := range r.desired.Flags {
			add(f.EnvironmentKeys())
		}
	}
	add(extra)
	return envs
}

// startSandbox serves a sandbox on a loopback port, with its flags kept in statePath, and
// returns the client configuration that reaches it and a function that stops it. Its
// rate limits are Kameleoon's; its client secret is random for each process.
func startSandbox(statePath string, envs []string, strict []ksandbox.Variant, logger *slog.Logger) (kclient.Config, func(), error) {
	if err := provider.StateDir(statePath); err != nil {
		return kclient.Config{}, nil, fmt.Errorf("start sandbox: %w", err)
	}
	cfg := kclient.Config{ClientID: ksandbox.DefaultClientID, ClientSecret: provider.RandomSecret()}
	sb, err := ksandbox.New(ksandbox.Options{StatePath: statePath, Environments: envs, Logger: logger,
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Strict: strict})
	if err != nil {
		return kclient.Config{}, nil, fmt.Errorf("start sandbox: %w (delete %s to start with an empty sandbox)", err, statePath)
	}
	base, stop, err := provider.ServeLoopback(sb, "the embedded sandbox, not Kameleoon", statePath, logger)
	cfg.BaseURL = base
	return cfg, stop, err
}

// strictList renders the strict variants a sandbox follows: "none" or a comma-separated
// list.
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
