package split

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/flagsync/flagsync/internal/export"
	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/reconcile"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitexport "github.com/flagsync/flagsync/internal/split/export"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
	splitplan "github.com/flagsync/flagsync/internal/split/plan"
	splitsandbox "github.com/flagsync/flagsync/internal/split/sandbox"
)

// defaultSandboxState is where the embedded Split sandbox keeps its flags, relative to
// the current directory; .flagsync/ is gitignored.
const defaultSandboxState = ".flagsync/split-sandbox.json"

// Provider returns Split's provider: its files say vendor: split (in flagsync.yaml or in
// the file), its client is the Admin API's (or the embedded Split sandbox's), and it
// offers export.
func Provider() provider.Provider { return sprovider{} }

type sprovider struct{}

// Name is "split", the vendor: of Split's files.
func (sprovider) Name() string { return splitmodel.Vendor }

// Files is the Split vendor without a client.
func (sprovider) Files() reconcile.Vendor { return Vendor(nil) }

// Help describes Split for the commands.
func (sprovider) Help() provider.Help {
	return provider.Help{
		Service:     splitplan.Service,
		Scope:       "Split workspace",
		Files:       "Split flag files (vendor: split in flagsync.yaml or in the file)",
		Credentials: "Split's admin API key comes from " + splitclient.EnvAdminAPIKey + " (or _FILE)",
		Sandbox:     "a Split-compatible sandbox",
		Automation:  "Split's automation",
	}
}

// Flags are the flags that select the Admin API, or the embedded Split sandbox.
func (sprovider) Flags() []provider.Flag {
	return []provider.Flag{
		{Name: "split-api-url", Default: "", EnvDefault: splitclient.EnvAPIURL, EnvByProvider: true, Usage: "Split Admin API base URL, for Split flag files (default " + splitclient.DefaultBaseURL + "); the admin API key comes from " + splitclient.EnvAdminAPIKey + " (or _FILE)"},
		{Name: "split-sandbox-state", Default: defaultSandboxState, State: true, Usage: "with --sandbox: the file the Split sandbox keeps its flags in between runs"},
	}
}

// Check reports contradictory connection flags.
func (sprovider) Check(in provider.ConnectInput) error {
	if in.Sandbox && in.Values.String("split-api-url") != "" {
		return provider.Usagef("--sandbox excludes --split-api-url")
	}
	return nil
}

// Connect builds the Admin API client: for the embedded Split sandbox (started here,
// with the environments the loaded files use) with --sandbox, otherwise with the key of
// the environment.
func (sprovider) Connect(_ context.Context, in provider.ConnectInput) (*provider.Connection, error) {
	logger := in.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var cfg splitclient.Config
	var where string
	stop := func() {}
	if in.Sandbox {
		state := in.Values.String("split-sandbox-state")
		var err error
		if cfg, stop, err = startSandbox(state, sandboxEnvironments(in.Repo), logger); err != nil {
			return nil, err
		}
		where = "the Split sandbox (" + state + ")"
	} else {
		var err error
		cfg, err = splitclient.ConfigFromEnv(in.Getenv)
		if err != nil {
			return nil, fmt.Errorf("%w\n  To try flagsync without a Split account, add --sandbox: it syncs into a local Split sandbox kept in %s", err, defaultSandboxState)
		}
		if u := in.Values.String("split-api-url"); u != "" {
			cfg.BaseURL = u
		}
		if cfg.BaseURL == "" {
			cfg.BaseURL = splitclient.DefaultBaseURL
		}
		where = "Split (" + cfg.BaseURL + ")"
	}
	cfg.Logger = logger
	cfg.Observer = in.Observe
	c, err := splitclient.New(cfg)
	if err != nil {
		stop()
		return nil, err
	}
	return &provider.Connection{Vendor: Vendor(c), Where: where, Budget: c.Budget(), Close: stop}, nil
}

// sandboxEnvironments are the environments of the embedded Split sandbox: its defaults
// plus every environment the loaded Split files use.
func sandboxEnvironments(loaded reconcile.Repo) []string {
	envs := slices.Clone(splitsandbox.DefaultEnvironments)
	if r, ok := loaded.(*repo); ok {
		for _, k := range r.desired.EnvironmentNames() {
			if !slices.Contains(envs, k) {
				envs = append(envs, k)
			}
		}
	}
	return envs
}

// startSandbox serves a Split sandbox on a loopback port, with its flags kept in
// statePath, and returns the client configuration that reaches it and a function that
// stops it. The admin API key is random for each process.
func startSandbox(statePath string, envs []string, logger *slog.Logger) (splitclient.Config, func(), error) {
	if err := provider.StateDir(statePath); err != nil {
		return splitclient.Config{}, nil, fmt.Errorf("start Split sandbox: %w", err)
	}
	cfg := splitclient.Config{APIKey: provider.RandomSecret()}
	sb, err := splitsandbox.New(splitsandbox.Options{StatePath: statePath, Environments: envs, Logger: logger, APIKey: cfg.APIKey})
	if err != nil {
		return splitclient.Config{}, nil, fmt.Errorf("start Split sandbox: %w (delete %s to start with an empty sandbox)", err, statePath)
	}
	base, stop, err := provider.ServeLoopback(sb, "the embedded Split sandbox, not Split", statePath, logger)
	cfg.BaseURL = base
	return cfg, stop, err
}

// Sandbox is Split's sandbox for flagsync sandbox --vendor split: a Split-compatible
// Admin API.
func (sprovider) Sandbox() provider.Sandbox {
	return provider.Sandbox{
		Usage: provider.Usage{Text: `--vendor split serves a Split-compatible (Harness FME) Admin API: flags and their
definitions per environment under /internal/api/v2, RFC 6902 JSON Patch applied exactly (a
failed test answers 409 and changes nothing), offset/limit paging, rate limits with
X-RateLimit-Reset-Seconds-* headers. It accepts the admin API key "sandbox" unless
FLAGSYNC_SANDBOX_API_KEY (or _FILE) sets another; point flagsync at it with
SPLIT_API_URL=http://ADDR SPLIT_ADMIN_API_KEY=sandbox.`,
			Examples: []string{"flagsync sandbox --vendor split --environments Staging,Production --workspaces ws-1"}},
		DefaultEnvironments: splitsandbox.DefaultEnvironments,
		Flags: []provider.Flag{
			{Name: "workspaces", Default: "", EnvDefault: "FLAGSYNC_SANDBOX_WORKSPACES", Usage: "with --vendor split: comma-separated workspace ids (default: any)"},
			{Name: "traffic-types", Default: "", EnvDefault: "FLAGSYNC_SANDBOX_TRAFFIC_TYPES", Usage: "with --vendor split: comma-separated traffic types (default " + strings.Join(splitsandbox.DefaultTrafficTypes, ",") + ")"},
			{Name: "rate-second", Default: 0, Usage: "with --vendor split: calls of the account allowed per second (0: 10; negative: unlimited)"},
			{Name: "rate-minute", Default: 0, Usage: "with --vendor split: calls of one address allowed per minute (0: 400; negative: unlimited)"},
		},
		New: newSandbox,
	}
}

// newSandbox builds the Split sandbox the command serves.
func newSandbox(in provider.SandboxInput) (*provider.Server, error) {
	key, err := provider.Secret(in.Getenv, "FLAGSYNC_SANDBOX_API_KEY")
	if err != nil {
		return nil, err
	}
	v := in.Values
	opts := splitsandbox.Options{
		APIKey: key, Workspaces: provider.SplitList(v.String("workspaces")), Environments: in.Environments,
		TrafficTypes: provider.SplitList(v.String("traffic-types")), RatePerSecond: v.Int("rate-second"), RatePerMinute: v.Int("rate-minute"),
		StatePath: in.StatePath, Logger: in.Logger,
	}
	if err := provider.StateDir(opts.StatePath); err != nil {
		return nil, err
	}
	sb, err := splitsandbox.New(opts)
	if err != nil {
		return nil, err
	}
	return &provider.Server{Handler: sb, Listening: func(addr string) {
		state := opts.StatePath
		if state == "" {
			state = "(memory only)"
		}
		workspaces := "any"
		if len(opts.Workspaces) > 0 {
			workspaces = strings.Join(opts.Workspaces, ",")
		}
		in.Logger.Info("sandbox listening", "vendor", splitmodel.Vendor, "addr", addr, "url", "http://"+addr, "state", state,
			"environments", strings.Join(sb.Environments(), ","), "workspaces", workspaces)
		if opts.APIKey == "" {
			in.Logger.Info("Split sandbox accepts the default admin API key", "api_key", splitsandbox.DefaultAPIKey)
		} else {
			in.Logger.Info("Split sandbox accepts the configured admin API key")
		}
	}}, nil
}

// ExportUsage says what a Split export reads and writes.
func (sprovider) ExportUsage() provider.Usage {
	return provider.Usage{Text: `--vendor split exports a Split (Harness FME) --workspace: one list of flags and one list
of definitions per environment (--environments, or every environment of the workspace),
written as a Split repository: DIR/flagsync.yaml (vendor: split, workspace, trafficType,
environments) and DIR/<name>.yaml.`,
		Examples: []string{"flagsync export --vendor split --workspace 5a3e… --environments Staging,Production --out flags"}}
}

// ExportFlags are export's flags for Split: the workspace and its environments.
func (sprovider) ExportFlags() []provider.Flag {
	return []provider.Flag{
		{Name: "workspace", Default: "", Usage: "with --vendor split: the workspace (project) id to export"},
		{Name: "environments", Default: "", Usage: "with --vendor split: comma-separated environment names to export, in apply order (default: every environment of the workspace)"},
	}
}

// CheckExport checks that one workspace is named.
func (sprovider) CheckExport(v provider.Values) error {
	if v.String("workspace") == "" {
		return provider.Usagef("--vendor split exports one --workspace")
	}
	return nil
}

// Export reads one workspace (one list of flags and one list of definitions per
// environment: --environments, or every environment of the workspace) and builds the
// files and their check.
func (sprovider) Export(ctx context.Context, conn *provider.Connection, v provider.Values, opts export.Options) (*provider.Exported, error) {
	sv, ok := conn.Vendor.(vendor)
	c, isClient := sv.Client.(*splitclient.Client)
	if !ok || !isClient {
		return nil, errors.New("export: not connected to Split")
	}
	workspace := v.String("workspace")
	envs := provider.SplitList(v.String("environments"))
	if len(envs) == 0 {
		var err error
		if envs, err = c.ListEnvironments(ctx, workspace); err != nil {
			return nil, err
		}
	}
	w, err := splitexport.Read(ctx, c, workspace, envs)
	if err != nil {
		return nil, err
	}
	if len(w.Flags) == 0 {
		return nil, fmt.Errorf("nothing to export: workspace %s has no flags in %s (is the workspace id right?)", workspace, conn.Where)
	}
	e, err := splitexport.Build(w, opts)
	if err != nil {
		return nil, err
	}
	check, err := splitexport.Verify(e, w)
	if err != nil {
		return nil, err
	}
	return &provider.Exported{Export: e, Check: check, What: "workspace " + workspace, Noun: "workspace"}, nil
}
