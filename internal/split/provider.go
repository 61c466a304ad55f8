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

// The names of Split's connection flags.
const (
	flagAPIURL       = "split-api-url"
	flagSandboxState = "split-sandbox-state"
	// What Split records of each change, and how the key is sent.
	flagTitle        = "split-title"
	flagComment      = "split-comment"
	flagApprovers    = "split-approvers"
	flagApprovalEnvs = "split-approval-environments"
	flagPRURL        = "split-pr-url"
	flagKeyHeader    = "split-key-header"
	// How the embedded sandbox behaves (with --sandbox only).
	flagSandboxApprovals = "split-sandbox-approvals"
	flagSandboxRestrict  = "split-sandbox-restrict-approvers"
	flagSandboxApprove   = "split-sandbox-approve"
	flagSandboxTitled    = "split-sandbox-require-title"
)

// settingFlags are the flags that stand for the client's documented variables: a flag's
// value, the variable's when the command line does not give it, is what the client reads
// as that variable.
var settingFlags = map[string]string{
	flagTitle:        splitclient.EnvChangeTitle,
	flagComment:      splitclient.EnvChangeComment,
	flagApprovers:    splitclient.EnvChangeApprovers,
	flagApprovalEnvs: splitclient.EnvApprovalEnvironments,
	flagPRURL:        splitclient.EnvPRURL,
	flagKeyHeader:    splitclient.EnvKeyHeader,
}

// sandboxOnlyFlags set up the embedded sandbox: they mean nothing without --sandbox.
var sandboxOnlyFlags = []string{flagSandboxApprovals, flagSandboxRestrict, flagSandboxApprove, flagSandboxTitled}

// Provider returns Split's provider: its files say vendor: split (in flagsync.yaml or in
// the file), its client is the Admin API's (or the embedded Split sandbox's), and it
// offers export.
func Provider() provider.Provider { return sprovider{} }

// ProviderSeeingSandbox returns Split's provider that hands every embedded sandbox it
// starts (--sandbox) to seen before serving it, so that a test of the commands can read
// the sandbox's own record: the calls it answered, the change requests filed.
func ProviderSeeingSandbox(seen func(*splitsandbox.Server)) provider.Provider {
	return sprovider{seen: seen}
}

type sprovider struct {
	seen func(*splitsandbox.Server) // optional
}

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

// Flags are the flags that select the Admin API or the embedded Split sandbox, say what
// Split records of each change (title, comment, approvers, pull request) and how the
// key is sent, and set up the embedded sandbox's change control.
func (sprovider) Flags() []provider.Flag {
	return []provider.Flag{
		{Name: flagAPIURL, Default: "", EnvDefault: splitclient.EnvAPIURL, EnvByProvider: true, Usage: "Split Admin API base URL, for Split flag files (default " + splitclient.DefaultBaseURL + "); the admin API key comes from " + splitclient.EnvAdminAPIKey + " (or _FILE)"},
		{Name: flagSandboxState, Default: defaultSandboxState, State: true, Usage: "with --sandbox: the file the Split sandbox keeps its flags in between runs"},
		{Name: flagTitle, Default: "", EnvDefault: splitclient.EnvChangeTitle, Usage: "the title Split records with every definition write and change request: a Go text/template of .Revision, .ShortRevision, .Reason, .Flag, .Environment, .Workspace, .PR and .Action; one that renders nothing sends no title (default " + splitclient.DefaultTitleTemplate + ")"},
		{Name: flagComment, Default: "", EnvDefault: splitclient.EnvChangeComment, Usage: "the comment Split records with every definition write and change request, a template as --split-title's (default " + splitclient.DefaultCommentTemplate + ")"},
		{Name: flagApprovers, Default: "", EnvDefault: splitclient.EnvChangeApprovers, Usage: "approvers (emails, comma-separated) named in the change requests flagsync files in Split environments that require approvals and let submitters choose them; leave empty where the environment restricts who approves"},
		{Name: flagApprovalEnvs, Default: "", EnvDefault: splitclient.EnvApprovalEnvironments, Usage: "Split environments (names, comma-separated) that require approvals: plan and sync list their open change requests from the first read (one call per environment per read), so that a new process shows a change already filed as awaiting approval, and their changes are filed as change requests without a refused write first (default: learned from Split's first 403)"},
		{Name: flagPRURL, Default: "", EnvDefault: splitclient.EnvPRURL, Usage: "the pull request the synced revision comes from: .PR in --split-title and --split-comment (by default linked in every comment, change requests included)"},
		{Name: flagKeyHeader, Default: splitclient.KeyHeaderAuto, EnvDefault: splitclient.EnvKeyHeader,
			// Not an enum of the CLI's, which is exact: the value is read as the client has
			// always read SPLIT_API_KEY_HEADER, ignoring case and surrounding spaces
			// ("X-API-Key", "Bearer"); Check refuses anything else as a usage error.
			Usage: "how the Split API key is sent: auto (a Harness token pat.… or sat.… in x-api-key, any other key as Authorization: Bearer), bearer, or x-api-key (any case)"},
		{Name: flagSandboxApprovals, Default: "", Usage: "with --sandbox: environments of the Split sandbox that require approvals, comma-separated: a definition write there is refused (403), flagsync files a change request and reports the change as awaiting approval (name approvers with --split-approvers unless --split-sandbox-restrict-approvers)"},
		{Name: flagSandboxRestrict, Default: false, Usage: "with --sandbox: the Split sandbox's approval-gated environments restrict who approves, so change requests name no approvers (default: submitters choose at least one)"},
		{Name: flagSandboxApprove, Default: false, Usage: "with --sandbox: before the command runs, the Split sandbox approves every open change request and applies it, as a person approving in Split between two syncs would"},
		{Name: flagSandboxTitled, Default: false, Usage: "with --sandbox: the Split sandbox's workspaces require a title and a comment on every change (Split's workspace setting): a write without both is refused with 400 and an empty body"},
	}
}

// Check reports contradictory connection flags, sandbox flags without --sandbox, a key
// header mode or a template that would stop the run.
func (sprovider) Check(in provider.ConnectInput) error {
	v := in.Values
	if in.Sandbox && v.String(flagAPIURL) != "" {
		return provider.Usagef("--sandbox excludes --split-api-url")
	}
	if !in.Sandbox {
		var given []string
		for _, name := range sandboxOnlyFlags {
			if v.String(name) != "" || v.Bool(name) {
				given = append(given, name)
			}
		}
		switch len(given) {
		case 0:
		case 1:
			return provider.Usagef("%s goes with --sandbox (it sets up the embedded Split sandbox)", provider.JoinFlags(given))
		default:
			return provider.Usagef("%s go with --sandbox (they set up the embedded Split sandbox)", provider.JoinFlags(given))
		}
	}
	if _, err := splitclient.SettingsFromEnv(settingsEnv(in)); err != nil {
		return provider.Usagef("%v", err)
	}
	return nil
}

// settingsEnv is the environment the client's settings are read from: the process's,
// with the value of each flag that stands for a variable (settingFlags) in its place
// when the command line parsed it (a caller that builds no such value leaves the
// variable as it is).
func settingsEnv(in provider.ConnectInput) func(string) string {
	byEnv := map[string]string{}
	for name, env := range settingFlags {
		if s, ok := in.Values[name].(string); ok {
			byEnv[env] = s
		}
	}
	return func(k string) string {
		if s, ok := byEnv[k]; ok {
			return s
		}
		if in.Getenv == nil {
			return ""
		}
		return in.Getenv(k)
	}
}

// Connect builds the Admin API client: for the embedded Split sandbox (started here,
// with the environments the loaded files use and the change control the sandbox flags
// set) with --sandbox, otherwise with the key of the environment. Either way the title,
// comment, approvers, environments that require approvals, pull request link and key
// header come from the flags (or their variables).
func (p sprovider) Connect(_ context.Context, in provider.ConnectInput) (*provider.Connection, error) {
	logger := in.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	getenv := settingsEnv(in)
	var cfg splitclient.Config
	var where string
	stop := func() {}
	if in.Sandbox {
		settings, err := splitclient.SettingsFromEnv(getenv)
		if err != nil {
			return nil, err
		}
		state := in.Values.String(flagSandboxState)
		if cfg, stop, err = p.startSandbox(sandboxOptions(in, state, logger), in.Values.Bool(flagSandboxApprove)); err != nil {
			return nil, err
		}
		cfg.KeyHeader, cfg.TitleTemplate, cfg.CommentTemplate = settings.KeyHeader, settings.TitleTemplate, settings.CommentTemplate
		cfg.PRURL, cfg.Approvers, cfg.RolloutStatusID = settings.PRURL, settings.Approvers, settings.RolloutStatusID
		cfg.ApprovalEnvironments = settings.ApprovalEnvironments
		where = "the Split sandbox (" + state + ")"
	} else {
		var err error
		cfg, err = splitclient.ConfigFromEnv(getenv)
		if err != nil {
			return nil, fmt.Errorf("%w\n  To try flagsync without a Split account, add --sandbox: it syncs into a local Split sandbox kept in %s", err, defaultSandboxState)
		}
		if u := in.Values.String(flagAPIURL); u != "" {
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

// sandboxOptions are the embedded sandbox's options: its state file, the environments
// the loaded files use, and the change control the sandbox flags set.
func sandboxOptions(in provider.ConnectInput, state string, logger *slog.Logger) splitsandbox.Options {
	v := in.Values
	opts := splitsandbox.Options{
		StatePath: state, Environments: sandboxEnvironments(in.Repo), Logger: logger,
		ApprovalEnvironments: provider.SplitList(v.String(flagSandboxApprovals)),
		RestrictedApprovers:  v.Bool(flagSandboxRestrict),
	}
	if v.Bool(flagSandboxTitled) {
		if r, ok := in.Repo.(*repo); ok {
			opts.TitleAndCommentsRequired = r.desired.Workspaces()
		}
	}
	return opts
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

// startSandbox serves a Split sandbox configured by opts on a loopback port, with its
// flags kept in opts.StatePath, and returns the client configuration that reaches it and
// a function that stops it. The admin API key is random for each process. With approve,
// the sandbox first approves (and applies) every open change request.
func (p sprovider) startSandbox(opts splitsandbox.Options, approve bool) (splitclient.Config, func(), error) {
	statePath, logger := opts.StatePath, opts.Logger
	if err := provider.StateDir(statePath); err != nil {
		return splitclient.Config{}, nil, fmt.Errorf("start Split sandbox: %w", err)
	}
	cfg := splitclient.Config{APIKey: provider.RandomSecret()}
	opts.APIKey = cfg.APIKey
	sb, err := splitsandbox.New(opts)
	if err != nil {
		return splitclient.Config{}, nil, fmt.Errorf("start Split sandbox: %w (delete %s to start with an empty sandbox)", err, statePath)
	}
	if approve {
		approveOpen(sb, logger)
	}
	if p.seen != nil {
		p.seen(sb)
	}
	base, stop, err := provider.ServeLoopback(sb, "the embedded Split sandbox, not Split", statePath, logger)
	cfg.BaseURL = base
	return cfg, stop, err
}

// approveOpen approves every open change request of sb, as the environment's approver;
// one whose change no longer applies is left open, with a warning.
func approveOpen(sb *splitsandbox.Server, logger *slog.Logger) {
	for _, cr := range sb.ChangeRequests() {
		if cr.Status != splitsandbox.StatusRequested {
			continue
		}
		if err := sb.Approve(cr.ID); err != nil {
			logger.Warn("Split sandbox: change request not approved", "change_request", cr.ID, "flag", cr.Flag, "env", cr.Environment, "error", err)
			continue
		}
		logger.Info("Split sandbox approved a change request", "change_request", cr.ID, "flag", cr.Flag, "env", cr.Environment, "operation", cr.OperationType)
	}
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
