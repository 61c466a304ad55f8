package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/cli"
	"github.com/flagsync/flagsync/internal/daemon"
	"github.com/flagsync/flagsync/internal/metrics"
	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/webhook"
)

// defaultListen is where the daemon listens unless told otherwise: loopback only. The
// container image sets FLAGSYNC_LISTEN=0.0.0.0:8080.
const defaultListen = "127.0.0.1:8080"

// runSynopsis is run's help.
func (a *app) runSynopsis() string {
	return `Usage: flagsync run [flags]

Runs as a daemon: syncs the repository's flags into their services at start, on a cron
schedule, on Git webhooks (POST /webhook), on SIGHUP and on resume, one sync at a time.
A tick on an unchanged, converged revision makes no API call; the live flags are read
for drift every --drift-interval. A push is first synced flag by flag (only the flags
whose files changed); a revision that fails validation is not applied, and the last good
one stays. SIGTERM (or Ctrl-C) finishes the flags already started and exits 0.

Endpoints: GET /healthz, /readyz, /metrics, /status; POST /webhook[/{provider}];
POST /suspend and /resume with "Authorization: Bearer $FLAGSYNC_ADMIN_TOKEN".

Every flag can also be set with an environment variable (shown with each flag). Secrets
come only from the environment, or from the file named by the variable + _FILE:
FLAGSYNC_WEBHOOK_SECRET, FLAGSYNC_ADMIN_TOKEN, FLAGSYNC_GIT_TOKEN (or
FLAGSYNC_GIT_USERNAME/_PASSWORD), FLAGSYNC_GIT_SSH_KEY_PASSPHRASE.
` + a.credentialsHelp() + `

Examples:
  flagsync run --sandbox --repo . --schedule '@every 1m'
  FLAGSYNC_WEBHOOK_SECRET_FILE=/run/secrets/webhook flagsync run \
    --repo https://github.com/acme/flags.git --ref main --path flags --listen 0.0.0.0:8080`
}

// runFlags are run's own flags.
type runFlags struct {
	listen, schedule, webhookSecret, webhookBranch string
	jitter, drift, shutdown                        time.Duration
	readyIntervals, history                        int
	webhookMaxBody                                 int64
	suspend, prune, allowMass                      bool
	secretArg                                      bool // --webhook-secret was on the command line
	maxChanges, concurrency                        int
}

func (f *runFlags) add(fs *cli.FlagSet) {
	fs.StringVar(&f.listen, "listen", defaultListen, "address of the HTTP endpoints; the container image sets 0.0.0.0:8080")
	fs.StringVar(&f.schedule, "schedule", "*/5 * * * *", `cron schedule of periodic syncs: five fields, or @every 10m, @hourly…; "off" for none`)
	fs.DurationVar(&f.jitter, "jitter", daemon.DefaultJitter, "most a scheduled sync is delayed at random (at most a tenth of the schedule's period)")
	fs.DurationVar(&f.drift, "drift-interval", time.Hour, "read the live flags to find and repair drift this often, even when Git did not change; 0 = never")
	fs.DurationVar(&f.shutdown, "shutdown-timeout", daemon.DefaultShutdownTimeout, "on SIGTERM, how long the flags already started may take to finish their changes")
	fs.IntVar(&f.readyIntervals, "ready-intervals", daemon.DefaultReadyIntervals, "/readyz fails after this many schedule periods (or drift intervals) without a successful sync or check")
	fs.IntVar(&f.history, "status-history", daemon.DefaultHistory, "syncs listed in /status")
	fs.StringVar(&f.webhookSecret, "webhook-secret", "", "webhook secret; prefer the variable, or FLAGSYNC_WEBHOOK_SECRET_FILE (a flag shows in ps); without one, /webhook answers 404")
	fs.StringVar(&f.webhookBranch, "webhook-branch", "", "branch whose pushes trigger a sync (default: the branch --ref names)")
	fs.Int64Var(&f.webhookMaxBody, "webhook-max-body", webhook.DefaultMaxBody, "largest webhook body accepted, in bytes")
	fs.BoolVar(&f.suspend, "suspend", false, "start with applying suspended: plan and report drift, write nothing (POST /resume to apply)")
	fs.BoolVar(&f.prune, "prune", false, "archive managed flags that were removed from Git (also prune: true in flagsync.yaml)")
	fs.IntVar(&f.maxChanges, "max-changes", defaultMaxChanges, "refuse to apply a plan with more changes than this (0: no limit)")
	fs.BoolVar(&f.allowMass, "allow-mass-archive", false, "let pruning archive more flags than the mass-archive guard allows")
	fs.IntVar(&f.concurrency, "concurrency", apply.DefaultConcurrency, "flags applied at once (the changes of one flag always go in order)")
}

// check reports a bad combination of run's flags, for a usage error, or "".
func (f *runFlags) check() string {
	switch {
	case f.concurrency < 1 || f.maxChanges < 0:
		return "--concurrency must be at least 1 and --max-changes at least 0"
	case f.drift < 0 || f.jitter < 0 || f.shutdown <= 0:
		return "--drift-interval and --jitter must not be negative, --shutdown-timeout must be positive"
	case f.readyIntervals < 1 || f.history < 1 || f.webhookMaxBody < 1:
		return "--ready-intervals, --status-history and --webhook-max-body must be at least 1"
	}
	return ""
}

func cmdRun(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("run", a.runSynopsis())
	src := a.addSourceFlags(fs)
	conn := a.addConnFlags(fs, a.sandboxUsage(), a.providers.All()...)
	logf := a.addLogFlags(fs)
	var f runFlags
	f.add(fs)
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	f.secretArg = fs.Given("webhook-secret")
	if code := conn.check(a); code >= 0 {
		return code
	}
	usage := func(format string, args ...any) int {
		fmt.Fprintf(a.stderr, "flagsync run: "+format+"\n", args...)
		return exitUsage
	}
	if msg := f.check(); msg != "" {
		return usage("%s", msg)
	}
	if f.schedule == "off" {
		f.schedule = ""
	}
	logger, err := a.logger(logf)
	if err != nil {
		return usage("%v", err)
	}
	fail := func(err error) int {
		fmt.Fprintf(a.stderr, "flagsync run: %v\n", err)
		return exitFail
	}
	cfg, err := a.daemonConfig(f, src, logger)
	if err != nil {
		return usageOr(a, "flagsync run", err)
	}
	conns, err := a.connectDaemon(ctx, conn, src, &cfg, logger)
	if err != nil {
		return fail(err)
	}
	defer conns.Close()
	d, err := daemon.New(cfg)
	if err != nil {
		return usage("%v", err)
	}
	if cfg.WebhookSecret == nil {
		logger.Info("webhooks are off: set FLAGSYNC_WEBHOOK_SECRET or FLAGSYNC_WEBHOOK_SECRET_FILE to turn them on")
	}
	if f.suspend {
		logger.Warn("applying is suspended (--suspend): syncs plan and report drift but write nothing until POST /resume")
	}
	return a.serveDaemon(ctx, d, f.listen, logger)
}

// daemonConfig is the daemon's configuration from run's flags and secrets, without its
// services (see connectDaemon). A *provider.UsageError is a bad command line.
func (a *app) daemonConfig(f runFlags, src *sourceFlags, logger *slog.Logger) (daemon.Config, error) {
	// FLAGSYNC_WEBHOOK_SECRET sets the flag; without either, FLAGSYNC_WEBHOOK_SECRET_FILE.
	secret := f.webhookSecret
	if f.secretArg {
		logger.Warn("--webhook-secret on the command line shows in process lists; use FLAGSYNC_WEBHOOK_SECRET or FLAGSYNC_WEBHOOK_SECRET_FILE")
	}
	var err error
	if secret == "" {
		if secret, err = a.secret("FLAGSYNC_WEBHOOK_SECRET"); err != nil {
			return daemon.Config{}, err
		}
	}
	adminToken, err := a.secret("FLAGSYNC_ADMIN_TOKEN")
	if err != nil {
		return daemon.Config{}, err
	}
	branch := f.webhookBranch
	if branch == "" {
		branch = refBranch(src.ref)
	}
	if secret != "" && branch == "" {
		return daemon.Config{}, provider.Usagef("webhooks need the tracked branch: give --ref BRANCH or --webhook-branch")
	}
	source, err := src.newSource(logger)
	if err != nil {
		return daemon.Config{}, err
	}
	cfg := daemon.Config{
		Source: source, Dir: path.Clean(strings.TrimPrefix(filepath.ToSlash(src.path), "./")), Metrics: metrics.New(),
		Schedule: f.schedule, Jitter: f.jitter, DriftInterval: f.drift, ShutdownTimeout: f.shutdown,
		ReadyIntervals: f.readyIntervals, History: f.history,
		WebhookBranch: branch, WebhookMaxBody: f.webhookMaxBody,
		AdminToken: adminToken, Suspended: f.suspend,
		Prune: f.prune, MaxChanges: f.maxChanges, AllowMassArchive: f.allowMass, Concurrency: f.concurrency,
		Logger: logger, RevisionTag: &daemon.RevisionTag{},
	}
	if secret != "" {
		cfg.WebhookSecret = []byte(secret)
	}
	return cfg, nil
}

// connectDaemon connects the services the repository needs, read once at start (an
// embedded sandbox takes its environments from the files), and completes cfg with them.
// A repository that cannot be read connects the default service alone, unless the
// services are sandboxes.
func (a *app) connectDaemon(ctx context.Context, conn *connFlags, src *sourceFlags, cfg *daemon.Config, logger *slog.Logger) (*provider.Connections, error) {
	var calls atomic.Int64
	var loaded *reconcile.Loaded
	snap, err := cfg.Source.Fetch(ctx)
	switch {
	case err != nil && conn.sandbox:
		return nil, err
	case err != nil:
		logger.Warn("could not read the repository to see which flag services its files need; assuming "+a.providers.Default().Help().Service+" alone", "error", err)
	default:
		// Invalid files still say which services they are for; the sync reports them.
		loaded, _ = reconcile.Load(a.providers.FileVendors(), reconcile.Source{FS: snap.FS, Dir: cfg.Dir, Revision: snap.Revision, Logger: logger})
	}
	conns, err := a.providers.Connect(ctx, loaded, conn.options(a, daemon.APIObserver(cfg.Metrics, &calls), cfg.RevisionTag.Wrap(logger)))
	if err != nil {
		return nil, err
	}
	for _, c := range conns.List {
		logger.Info("syncing "+c.Service+" flag files", "api", c.Where)
	}
	cfg.Vendors, cfg.Calls, cfg.Budget = conns.Vendors, calls.Load, conns.Budget()
	return conns, nil
}

// serveDaemon runs the daemon on listen until ctx ends. SIGHUP asks for a full sync; it
// is caught before the daemon runs, so it never kills the process.
func (a *app) serveDaemon(ctx context.Context, d *daemon.Daemon, listen string, logger *slog.Logger) int {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			logger.Info("SIGHUP: full sync requested")
			d.RequestSync("signal")
		}
	}()
	ln, err := net.Listen("tcp", listen)
	if err == nil {
		err = d.Run(ctx, ln)
	} else {
		err = fmt.Errorf("listen on %s: %w", listen, err)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync run: %v\n", err)
		return exitFail
	}
	return exitOK
}

// usageOr prints err after the command's name and returns 64 for a *provider.UsageError,
// else 1.
func usageOr(a *app, cmd string, err error) int {
	fmt.Fprintf(a.stderr, "%s: %v\n", cmd, err)
	return usageCode(err)
}

// refBranch returns the branch a --ref names: "main", "refs/heads/main"; "" for a tag,
// a commit hash or the remote's default branch (no ref).
func refBranch(ref string) string {
	switch {
	case ref == "" || strings.HasPrefix(ref, "refs/tags/"):
		return ""
	case strings.HasPrefix(ref, "refs/heads/"):
		return strings.TrimPrefix(ref, "refs/heads/")
	case strings.HasPrefix(ref, "refs/"):
		return ""
	case len(ref) == 40 && strings.Trim(strings.ToLower(ref), "0123456789abcdef") == "":
		return ""
	}
	return ref
}
