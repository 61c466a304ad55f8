package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/flagrepo"
	"github.com/flagsync/flagsync/internal/kameleoon"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kload "github.com/flagsync/flagsync/internal/kameleoon/load"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/split"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitload "github.com/flagsync/flagsync/internal/split/load"
	splitsandbox "github.com/flagsync/flagsync/internal/split/sandbox"
)

// defaultMaxChanges is sync's --max-changes: a plan this large is more often a wrong
// --path or site code than an intended change.
const defaultMaxChanges = 500

const syncSynopsis = `Usage: flagsync sync [flags]

Loads and validates the flag files, reads the live flags, prints the plan and applies
it: one create per new flag, one merge patch per changed flag or environment. Prints a
result per change and a summary line; exits 1 if any change failed or Kameleoon does not
match the files afterwards. Nothing is written unless every file is valid.

Credentials come from KAMELEOON_CLIENT_ID and KAMELEOON_CLIENT_SECRET (or _FILE); with
--sandbox, flagsync starts a local Kameleoon-compatible sandbox instead.

Examples:
  flagsync sync --sandbox --repo examples/flags
  flagsync sync --repo . --path flags --dry-run
  KAMELEOON_CLIENT_ID=… KAMELEOON_CLIENT_SECRET=… flagsync sync --path flags`

func cmdSync(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("sync", syncSynopsis)
	src := a.addSourceFlags(fs)
	conn := a.addAPIFlags(fs)
	logf := a.addLogFlags(fs)
	a.quietOnTerminal(fs)
	dryRun := fs.Bool("dry-run", false, "compute the plan and go through every step but send no write")
	format := fs.String("format", "text", "output: text or json")
	maxChanges := fs.Int("max-changes", defaultMaxChanges, "refuse to apply a plan with more changes than this (0: no limit)")
	allowMass := fs.Bool("allow-mass-archive", false, "let pruning archive more flags than the mass-archive guard allows")
	prune := fs.Bool("prune", false, "archive managed flags that were removed from Git (also prune: true in flagsync.yaml)")
	concurrency := fs.Int("concurrency", apply.DefaultConcurrency, "flags applied at once (the changes of one flag always go in order)")
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(a.stderr, "flagsync sync: --format %q: want text or json\n", *format)
		return exitUsage
	}
	if *concurrency < 1 || *maxChanges < 0 {
		fmt.Fprintln(a.stderr, "flagsync sync: --concurrency must be at least 1 and --max-changes at least 0")
		return exitUsage
	}
	if code := conn.check(a); code >= 0 {
		return code
	}
	logger, err := a.logger(logf)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync sync: %v\n", err)
		return exitUsage
	}

	snap, err := src.open(ctx, logger)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync sync: %v\n", err)
		return exitFail
	}
	client, err := conn.connect(a, logger, snap)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync sync: %v\n", err)
		return exitFail
	}
	defer client.close()

	in := reconcile.Input{
		Revision: snap.Revision, FS: snap.FS, Dir: snap.Dir, Vendors: client.vendors,
		DryRun: *dryRun, Prune: *prune, MaxChanges: *maxChanges, AllowMassArchive: *allowMass,
		Concurrency: *concurrency, Calls: client.calls.Load, Logger: logger,
	}
	if *format == "text" {
		in.OnPlan = func(p plan.Plan) {
			_ = plan.RenderText(a.stdout, p, plan.TextOptions{Color: a.isTTY})
		}
	}
	rep, err := reconcile.Run(ctx, in)

	if *format == "json" {
		if werr := writeReportJSON(a.stdout, rep, err); werr != nil {
			fmt.Fprintf(a.stderr, "flagsync sync: write report: %v\n", werr)
			return exitFail
		}
	} else {
		writeResultsText(a.stdout, rep)
	}
	if err != nil {
		a.printRunError("sync", err)
		return exitFail
	}
	if *format == "text" {
		fmt.Fprintln(a.stdout, syncSummaryLine(rep, client.where))
	}
	if rep.Summary.Failed > 0 || (!rep.DryRun && !rep.Converged) {
		return exitFail
	}
	return exitOK
}

// writeResultsText prints one line per change that was applied, failed or skipped, and
// what remains when Kameleoon still differs afterwards.
func writeResultsText(w io.Writer, rep *reconcile.Report) {
	if rep == nil || len(rep.Results) == 0 {
		return
	}
	fmt.Fprintln(w)
	if rep.DryRun {
		fmt.Fprintf(w, "Dry run: %d changes not sent.\n", len(rep.Results))
		return
	}
	fmt.Fprintln(w, "Results:")
	for _, r := range rep.Results {
		line := fmt.Sprintf("  %-8s %-8s %s", r.Status, r.Change.Action, changeTarget(r.Change))
		switch {
		case r.Err != nil:
			line += ": " + r.Err.Error()
		case r.Note != "":
			line += " (" + r.Note + ")"
		}
		fmt.Fprintln(w, line)
	}
	if rep.Verified && len(rep.Remaining) > 0 {
		fmt.Fprintf(w, "\nStill different after applying (%d changes; changed by someone else meanwhile, or refused):\n", len(rep.Remaining))
		for _, c := range rep.Remaining {
			fmt.Fprintf(w, "  %-8s %s: %s\n", c.Action, changeTarget(c), c.Reason)
		}
	}
}

// changeTarget names what a change touches: site/key, or site/key/env.
func changeTarget(c plan.Change) string {
	if c.Environment != "" {
		return c.Flag().String() + "/" + c.Environment
	}
	return c.Flag().String()
}

// syncSummaryLine is the one line a sync ends with.
func syncSummaryLine(rep *reconcile.Report, where string) string {
	var b strings.Builder
	b.WriteString("Sync")
	if rep.DryRun {
		b.WriteString(" (dry run)")
	}
	if rep.Revision != "" {
		b.WriteString(" of " + plan.ShortRevision(rep.Revision))
	}
	b.WriteString(" to " + where + ": ")
	switch {
	case len(rep.Plan.Changes) == 0 && len(rep.Refused) > 0:
		fmt.Fprintf(&b, "nothing to apply; NOT converged (%s)", rep.NotConverged())
	case len(rep.Plan.Changes) == 0:
		b.WriteString("already in sync")
	case rep.DryRun:
		fmt.Fprintf(&b, "%d changes not sent", len(rep.Plan.Changes))
	default:
		b.WriteString(rep.Summary.String())
		switch {
		case rep.Converged:
			b.WriteString("; converged")
		case rep.Verified || len(rep.Refused) > 0:
			fmt.Fprintf(&b, "; NOT converged (%s)", rep.NotConverged())
		default:
			b.WriteString("; convergence not confirmed")
		}
	}
	if n := len(rep.Plan.Notes); n > 0 {
		fmt.Fprintf(&b, "; %s left alone (owned outside Git or by Kameleoon's automation)", plural(n, "difference"))
	}
	fmt.Fprintf(&b, "; %d API calls in %s.", rep.APICalls, rep.Duration.Round(time.Millisecond))
	return b.String()
}

// writeReportJSON writes the report (and the error that stopped the run, if any) as one
// JSON document.
func writeReportJSON(w io.Writer, rep *reconcile.Report, runErr error) error {
	out := struct {
		*reconcile.Report
		DurationMS int64  `json:"durationMs"`
		Error      string `json:"error,omitempty"`
	}{Report: rep}
	if rep == nil {
		out.Report = &reconcile.Report{}
	}
	out.DurationMS = out.Report.Duration.Milliseconds()
	var invalid *diag.InvalidError
	if runErr != nil && !errors.As(runErr, &invalid) {
		out.Error = runErr.Error()
	} else if runErr != nil {
		out.Error = "the flag files are invalid"
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// printRunError explains on stderr why a run stopped before or instead of applying.
func (a *app) printRunError(cmd string, err error) {
	var invalid *diag.InvalidError
	var tooMany *reconcile.TooManyChangesError
	var mass *plan.MassArchiveError
	switch {
	case errors.As(err, &invalid):
		for _, d := range invalid.Diagnostics {
			fmt.Fprintln(a.stderr, d.String())
		}
		fmt.Fprintf(a.stderr, "flagsync %s: %s in %s: nothing was read from or written to the API\n",
			cmd, plural(len(invalid.Diagnostics), "problem"), plural(invalid.FileCount(), "file"))
	case errors.As(err, &tooMany):
		fmt.Fprintf(a.stderr, "flagsync %s: %v (raise --max-changes, or set it to 0 for no limit)\n", cmd, err)
	case errors.As(err, &mass):
		fmt.Fprintf(a.stderr, "flagsync %s: %v; nothing was applied (pass --allow-mass-archive if this is intended)\n", cmd, err)
	default:
		fmt.Fprintf(a.stderr, "flagsync %s: %v\n", cmd, err)
	}
}

// quietOnTerminal makes warn the default log level when a person watches: the plan and
// the results on stdout already tell them what each change did, and info lines on
// stderr would repeat them. FLAGSYNC_LOG_LEVEL and --log-level still win.
func (a *app) quietOnTerminal(fs *flag.FlagSet) {
	if !a.isTTY || a.getenv("FLAGSYNC_LOG_LEVEL") != "" {
		return
	}
	if f := fs.Lookup("log-level"); f != nil {
		f.DefValue = "warn"
		_ = f.Value.Set("warn")
	}
}

// --- API connection ---------------------------------------------------------------

// apiFlags select the API a command talks to: Kameleoon (credentials from the
// environment) or, with --sandbox, a sandbox started in the process; and, for a
// repository with Split flag files, Split's Admin API or its sandbox.
type apiFlags struct {
	url               string
	rate10s           int
	rateHour          int
	retryBase         time.Duration
	sandbox           bool
	sandboxState      string
	strict            string             // --strict as given; with --sandbox, FLAGSYNC_SANDBOX_STRICT when empty
	strictVariants    []ksandbox.Variant // parsed by check
	splitURL          string
	splitSandboxState string
}

// defaultSandboxState is where the embedded sandbox keeps its flags, relative to the
// current directory; .flagsync/ is gitignored. The Split sandbox keeps its own.
const (
	defaultSandboxState      = ".flagsync/sandbox.json"
	defaultSplitSandboxState = ".flagsync/split-sandbox.json"
)

func (a *app) addAPIFlags(fs *flag.FlagSet) *apiFlags {
	f := a.addKameleoonAPIFlags(fs, "talk to a Kameleoon-compatible sandbox started in this process instead of Kameleoon (no credentials needed); Split flag files go to a Split-compatible one")
	fs.StringVar(&f.splitURL, "split-api-url", "", "Split Admin API base URL, for Split flag files (env "+splitclient.EnvAPIURL+"; default "+splitclient.DefaultBaseURL+"); the admin API key comes from "+splitclient.EnvAdminAPIKey+" (or _FILE)")
	fs.StringVar(&f.splitSandboxState, "split-sandbox-state", defaultSplitSandboxState, "with --sandbox: the file the Split sandbox keeps its flags in between runs")
	return f
}

// addKameleoonAPIFlags adds the flags that select and pace Kameleoon's API (or the
// embedded sandbox, described by sandboxUsage) to fs.
func (a *app) addKameleoonAPIFlags(fs *flag.FlagSet, sandboxUsage string) *apiFlags {
	f := &apiFlags{}
	fs.StringVar(&f.url, "api-url", "", "Automation API base URL (env "+kclient.EnvAPIURL+"; default "+kclient.DefaultBaseURL+")")
	fs.IntVar(&f.rate10s, "rate-10s", kclient.DefaultPer10s, "client-side budget: API calls per 10 seconds (Kameleoon allows 50)")
	fs.IntVar(&f.rateHour, "rate-hour", kclient.DefaultPerHour, "client-side budget: API calls per hour (Kameleoon allows 1000)")
	fs.DurationVar(&f.retryBase, "retry-base", kclient.DefaultBackoffBase, "first wait before retrying a refused or failed call without Retry-After; doubles each time")
	fs.BoolVar(&f.sandbox, "sandbox", false, sandboxUsage)
	fs.StringVar(&f.sandboxState, "sandbox-state", defaultSandboxState, "with --sandbox: the file the sandbox keeps its flags in between runs")
	fs.StringVar(&f.strict, "strict", "", "with --sandbox: the strict variants the sandbox follows, comma-separated, or \"all\" (see flagsync sandbox -h; env FLAGSYNC_SANDBOX_STRICT; default: none)")
	return f
}

// check reports a contradictory combination of API flags (exit code), or -1. It also
// reads the strict variants of the embedded sandbox.
func (f *apiFlags) check(a *app) int {
	if f.sandbox && (f.url != "" || f.splitURL != "") {
		fmt.Fprintln(a.stderr, "flagsync: --sandbox excludes --api-url and --split-api-url")
		return exitUsage
	}
	if f.strict != "" && !f.sandbox {
		fmt.Fprintln(a.stderr, "flagsync: --strict goes with --sandbox (it sets how the embedded sandbox reads what Kameleoon's docs leave open)")
		return exitUsage
	}
	if f.sandbox {
		strict := f.strict
		if strict == "" {
			strict = a.getenv("FLAGSYNC_SANDBOX_STRICT")
		}
		variants, err := ksandbox.ParseVariants(strict)
		if err != nil {
			fmt.Fprintf(a.stderr, "flagsync: --strict: %v\n", err)
			return exitUsage
		}
		f.strictVariants = variants
	}
	if f.rate10s < 1 || f.rateHour < 1 || f.retryBase <= 0 {
		fmt.Fprintln(a.stderr, "flagsync: --rate-10s and --rate-hour must be at least 1, --retry-base positive")
		return exitUsage
	}
	return -1
}

// apiConn is the connected API clients and what to do when the command ends.
type apiConn struct {
	api     *kclient.Client     // Kameleoon's; nil when the repository has no Kameleoon files
	split   *splitclient.Client // Split's; nil when the repository has no Split files
	vendors []reconcile.Vendor  // the services to sync, in order
	calls   atomic.Int64        // HTTP exchanges so far, token requests included
	where   string              // for people: "Kameleoon (URL)", "the sandbox (state file)", …
	close   func()
}

// connect builds the API clients the repository's files need: Kameleoon's for its
// Kameleoon files, Split's for its Split files (vendor: split); each for the embedded
// sandbox (started here) with --sandbox, otherwise with the credentials of the
// environment. It never falls back to a sandbox silently.
func (f *apiFlags) connect(a *app, logger *slog.Logger, snap *snapshot) (*apiConn, error) {
	c := &apiConn{close: func() {}}
	repo, err := splitload.Survey(snap.FS, snap.Dir)
	if err != nil {
		repo = splitload.Repository{} // the sync reports the problem; connect to Kameleoon as before
	}
	var closers []func()
	c.close = func() {
		for _, cl := range closers {
			cl()
		}
	}
	var where []string
	if repo.Kameleoon() {
		kc, w, stop, err := f.connectKameleoon(a, logger, snap, func(api.CallInfo) { c.calls.Add(1) }, logger.With("revision", snap.Revision))
		if err != nil {
			c.close()
			return nil, err
		}
		c.api, closers = kc, append(closers, stop)
		c.vendors = append(c.vendors, kameleoon.Vendor(kc))
		where = append(where, w)
	}
	if repo.Split() {
		sc, w, stop, err := f.connectSplit(a, logger, snap, func(api.CallInfo) { c.calls.Add(1) }, logger.With("revision", snap.Revision))
		if err != nil {
			c.close()
			return nil, err
		}
		c.split, closers = sc, append(closers, stop)
		where = append(where, w)
		c.vendors = append(c.vendors, split.Vendor(sc))
	}
	c.where = strings.Join(where, " and ")
	return c, nil
}

// connectKameleoon builds the Automation API client: for the embedded sandbox (started
// here) with --sandbox, otherwise with the credentials of the environment. observe sees
// every HTTP exchange; clientLogger is the client's (and the sandbox's) logger. It
// returns the client, where it syncs (for people) and a function that stops the sandbox.
func (f *apiFlags) connectKameleoon(a *app, logger *slog.Logger, snap *snapshot, observe func(api.CallInfo), clientLogger *slog.Logger) (*kclient.Client, string, func(), error) {
	cfg, where, stop, err := f.kameleoonConfig(a, sandboxEnvironments(snap), clientLogger)
	if err != nil {
		return nil, "", nil, err
	}
	cfg.Observer = observe
	client, err := kclient.New(cfg)
	if err != nil {
		stop()
		return nil, "", nil, err
	}
	return client, where, stop, nil
}

// kameleoonConfig is the Automation API client configuration (logger, budget and
// retry pacing included): for the embedded sandbox (started here, with sandboxEnvs and
// the strict variants) with --sandbox, otherwise with the credentials of the
// environment. It returns where the API is (for people) and a function that stops the
// sandbox.
func (f *apiFlags) kameleoonConfig(a *app, sandboxEnvs []string, clientLogger *slog.Logger) (kclient.Config, string, func(), error) {
	var cfg kclient.Config
	var where string
	stop := func() {}
	if f.sandbox {
		sc, s, err := startSandbox(f.sandboxState, sandboxEnvs, f.strictVariants, clientLogger)
		if err != nil {
			return kclient.Config{}, "", nil, err
		}
		cfg = sc
		where, stop = "the sandbox ("+f.sandboxState+")", s
		if len(f.strictVariants) > 0 {
			where = "the sandbox (" + f.sandboxState + "; strict " + strictList(f.strictVariants) + ")"
		}
	} else {
		var err error
		cfg, err = kclient.ConfigFromEnv(a.getenv)
		if err != nil {
			return kclient.Config{}, "", nil, fmt.Errorf("%w\n  To try flagsync without a Kameleoon account, add --sandbox: it syncs into a local sandbox kept in %s", err, defaultSandboxState)
		}
		if f.url != "" {
			cfg.BaseURL = f.url
		}
		if cfg.BaseURL == "" {
			cfg.BaseURL = kclient.DefaultBaseURL
		}
		where = "Kameleoon (" + cfg.BaseURL + ")"
	}
	cfg.Logger = clientLogger
	cfg.Budget = kclient.NewBudget(f.rate10s, f.rateHour)
	cfg.BackoffBase = f.retryBase
	return cfg, where, stop, nil
}

// connectSplit builds the Split Admin API client: for the embedded Split sandbox (started
// here) with --sandbox, otherwise with the key of the environment. observe sees every
// HTTP exchange; clientLogger is the client's logger. It returns the client, where it
// syncs (for people) and a function that stops the sandbox.
func (f *apiFlags) connectSplit(a *app, logger *slog.Logger, snap *snapshot, observe func(api.CallInfo), clientLogger *slog.Logger) (*splitclient.Client, string, func(), error) {
	var cfg splitclient.Config
	var where string
	stop := func() {}
	if f.sandbox {
		sc, s, err := startSplitSandbox(f.splitSandboxState, splitSandboxEnvironments(snap), logger)
		if err != nil {
			return nil, "", nil, err
		}
		cfg, where, stop = sc, "the Split sandbox ("+f.splitSandboxState+")", s
	} else {
		var err error
		cfg, err = splitclient.ConfigFromEnv(a.getenv)
		if err != nil {
			return nil, "", nil, fmt.Errorf("%w\n  To try flagsync without a Split account, add --sandbox: it syncs into a local Split sandbox kept in %s", err, defaultSplitSandboxState)
		}
		if f.splitURL != "" {
			cfg.BaseURL = f.splitURL
		}
		if cfg.BaseURL == "" {
			cfg.BaseURL = splitclient.DefaultBaseURL
		}
		where = "Split (" + cfg.BaseURL + ")"
	}
	cfg.Logger = clientLogger
	cfg.Observer = observe
	client, err := splitclient.New(cfg)
	if err != nil {
		stop()
		return nil, "", nil, err
	}
	return client, where, stop, nil
}

// splitSandboxEnvironments are the environments of the embedded Split sandbox: its
// defaults plus every environment the repository's Split files use.
func splitSandboxEnvironments(snap *snapshot) []string {
	envs := slices.Clone(splitsandbox.DefaultEnvironments)
	d, err := splitload.Load(snap.FS, snap.Dir)
	if err != nil {
		return envs
	}
	for _, k := range d.EnvironmentNames() {
		if !slices.Contains(envs, k) {
			envs = append(envs, k)
		}
	}
	return envs
}

// startSplitSandbox serves a Split sandbox on a loopback port, with its flags kept in
// statePath, and returns the client configuration that reaches it and a function that
// stops it. The admin API key is random for each process, as the Kameleoon sandbox's
// secret is: a fixed word would be redacted wherever it appears in messages.
func startSplitSandbox(statePath string, envs []string, logger *slog.Logger) (splitclient.Config, func(), error) {
	if err := os.MkdirAll(filepath.Dir(statePath), 0o755); err != nil {
		return splitclient.Config{}, nil, fmt.Errorf("start Split sandbox: %w", err)
	}
	key := make([]byte, 16)
	if _, err := rand.Read(key); err != nil {
		return splitclient.Config{}, nil, fmt.Errorf("start Split sandbox: %w", err)
	}
	cfg := splitclient.Config{APIKey: hex.EncodeToString(key)}
	sb, err := splitsandbox.New(splitsandbox.Options{StatePath: statePath, Environments: envs, Logger: logger, APIKey: cfg.APIKey})
	if err != nil {
		return splitclient.Config{}, nil, fmt.Errorf("start Split sandbox: %w (delete %s to start with an empty sandbox)", err, statePath)
	}
	base, stop, err := serveLoopback(sb, "the embedded Split sandbox, not Split", statePath, logger)
	cfg.BaseURL = base
	return cfg, stop, err
}

// sandboxEnvironments are the environments the embedded sandbox's project has: the
// sandbox's defaults plus every key the repository uses, so that any valid repository
// can be synced into it. When flagsync.yaml lists the environments, validation keeps
// every flag to them, so the settings file is enough; otherwise the repository is
// loaded. A repository that does not load gives the defaults (its diagnostics come
// from the sync itself).
func sandboxEnvironments(snap *snapshot) []string {
	envs := slices.Clone(ksandbox.DefaultEnvironments)
	add := func(k string) {
		if !slices.Contains(envs, k) {
			envs = append(envs, k)
		}
	}
	if _, data, _, err := flagrepo.ReadSettingsFile(snap.FS, snap.Dir); err == nil && data != nil {
		var settings struct {
			Environments []string `yaml:"environments"`
		}
		if yaml.Unmarshal(data, &settings) == nil && len(settings.Environments) > 0 {
			for _, k := range settings.Environments {
				add(k)
			}
			return envs
		}
	}
	d, err := kload.Load(snap.FS, snap.Dir)
	if err != nil {
		return envs
	}
	for _, k := range d.Settings.Environments {
		add(k)
	}
	for _, f := range d.Flags {
		for _, k := range f.EnvironmentKeys() {
			add(k)
		}
	}
	return envs
}

// startSandbox serves a sandbox on a loopback port, with its flags kept in statePath, and
// returns the client configuration that reaches it and a function that stops it. Its
// rate limits are Kameleoon's. The client secret is random for each process: a fixed
// word such as "sandbox" would be redacted wherever it appears in messages, paths
// included.
func startSandbox(statePath string, envs []string, strict []ksandbox.Variant, logger *slog.Logger) (kclient.Config, func(), error) {
	if err := os.MkdirAll(filepath.Dir(statePath), 0o755); err != nil {
		return kclient.Config{}, nil, fmt.Errorf("start sandbox: %w", err)
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return kclient.Config{}, nil, fmt.Errorf("start sandbox: %w", err)
	}
	cfg := kclient.Config{ClientID: ksandbox.DefaultClientID, ClientSecret: hex.EncodeToString(secret)}
	sb, err := ksandbox.New(ksandbox.Options{StatePath: statePath, Environments: envs, Logger: logger,
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Strict: strict})
	if err != nil {
		return kclient.Config{}, nil, fmt.Errorf("start sandbox: %w (delete %s to start with an empty sandbox)", err, statePath)
	}
	base, stop, err := serveLoopback(sb, "the embedded sandbox, not Kameleoon", statePath, logger)
	cfg.BaseURL = base
	return cfg, stop, err
}

// serveLoopback serves h on a loopback port and returns its base URL and a function that
// stops it.
func serveLoopback(h http.Handler, what, statePath string, logger *slog.Logger) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("start sandbox: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	logger.Info("using "+what, "state", statePath, "addr", ln.Addr().String())
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	return "http://" + ln.Addr().String(), stop, nil
}
