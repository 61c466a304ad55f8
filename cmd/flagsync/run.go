package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/daemon"
	"github.com/flagsync/flagsync/internal/kameleoon"
	"github.com/flagsync/flagsync/internal/metrics"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/split"
	splitload "github.com/flagsync/flagsync/internal/split/load"
	"github.com/flagsync/flagsync/internal/webhook"
)

// defaultListen is where the daemon listens unless told otherwise: loopback only. The
// container image sets FLAGSYNC_LISTEN=0.0.0.0:8080.
const defaultListen = "127.0.0.1:8080"

const runSynopsis = `Usage: flagsync run [flags]

Runs as a daemon: syncs the repository's flags into Kameleoon at start, on a cron
schedule, on Git webhooks (POST /webhook), on SIGHUP and on resume, one sync at a time.
A tick on an unchanged, converged revision makes no API call; the live flags are read
for drift every --drift-interval. A push is first synced flag by flag (only the flags
whose files changed); a revision that fails validation is not applied, and the last good
one stays. SIGTERM (or Ctrl-C) finishes the flags already started and exits 0.

Endpoints: GET /healthz, /readyz, /metrics, /status; POST /webhook[/{provider}];
POST /suspend and /resume with "Authorization: Bearer $FLAGSYNC_ADMIN_TOKEN".

Every flag can also be set with an environment variable (shown with each flag). Secrets
come only from the environment, or from the file named by the variable + _FILE:
KAMELEOON_CLIENT_ID, KAMELEOON_CLIENT_SECRET, FLAGSYNC_WEBHOOK_SECRET,
FLAGSYNC_ADMIN_TOKEN, FLAGSYNC_GIT_TOKEN (or FLAGSYNC_GIT_USERNAME/_PASSWORD),
FLAGSYNC_GIT_SSH_KEY_PASSPHRASE.

Examples:
  flagsync run --sandbox --repo . --schedule '@every 1m'
  FLAGSYNC_WEBHOOK_SECRET_FILE=/run/secrets/webhook flagsync run \
    --repo https://github.com/acme/flags.git --ref main --path flags --listen 0.0.0.0:8080`

func cmdRun(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("run", runSynopsis)
	src := a.addSourceFlags(fs)
	conn := a.addAPIFlags(fs)
	logf := a.addLogFlags(fs)
	listen := fs.String("listen", defaultListen, "address of the HTTP endpoints; the container image sets 0.0.0.0:8080")
	schedule := fs.String("schedule", "*/5 * * * *", `cron schedule of periodic syncs: five fields, or @every 10m, @hourly…; "off" for none`)
	jitter := fs.Duration("jitter", daemon.DefaultJitter, "most a scheduled sync is delayed at random (at most a tenth of the schedule's period)")
	drift := fs.Duration("drift-interval", time.Hour, "read the live flags to find and repair drift this often, even when Git did not change; 0 = never")
	shutdown := fs.Duration("shutdown-timeout", daemon.DefaultShutdownTimeout, "on SIGTERM, how long the flags already started may take to finish their changes")
	readyIntervals := fs.Int("ready-intervals", daemon.DefaultReadyIntervals, "/readyz fails after this many schedule periods (or drift intervals) without a successful sync or check")
	history := fs.Int("status-history", daemon.DefaultHistory, "syncs listed in /status")
	webhookSecret := fs.String("webhook-secret", "", "webhook secret; prefer env FLAGSYNC_WEBHOOK_SECRET or FLAGSYNC_WEBHOOK_SECRET_FILE (a flag shows in ps); without one, /webhook answers 404")
	webhookBranch := fs.String("webhook-branch", "", "branch whose pushes trigger a sync (default: the branch --ref names)")
	webhookMaxBody := fs.Int64("webhook-max-body", webhook.DefaultMaxBody, "largest webhook body accepted, in bytes")
	suspend := fs.Bool("suspend", false, "start with applying suspended: plan and report drift, write nothing (POST /resume to apply)")
	prune := fs.Bool("prune", false, "archive managed flags that were removed from Git (also prune: true in flagsync.yaml)")
	maxChanges := fs.Int("max-changes", defaultMaxChanges, "refuse to apply a plan with more changes than this (0: no limit)")
	allowMass := fs.Bool("allow-mass-archive", false, "let pruning archive more flags than the mass-archive guard allows")
	concurrency := fs.Int("concurrency", apply.DefaultConcurrency, "flags applied at once (the changes of one flag always go in order)")
	if code := a.envForFlags(fs); code >= 0 {
		return code
	}
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	if code := conn.check(a); code >= 0 {
		return code
	}
	usage := func(format string, args ...any) int {
		fmt.Fprintf(a.stderr, "flagsync run: "+format+"\n", args...)
		return exitUsage
	}
	switch {
	case *concurrency < 1 || *maxChanges < 0:
		return usage("--concurrency must be at least 1 and --max-changes at least 0")
	case *drift < 0 || *jitter < 0 || *shutdown <= 0:
		return usage("--drift-interval and --jitter must not be negative, --shutdown-timeout must be positive")
	case *readyIntervals < 1 || *history < 1 || *webhookMaxBody < 1:
		return usage("--ready-intervals, --status-history and --webhook-max-body must be at least 1")
	}
	if *schedule == "off" {
		*schedule = ""
	}
	logger, err := a.logger(logf)
	if err != nil {
		return usage("%v", err)
	}
	fail := func(err error) int {
		fmt.Fprintf(a.stderr, "flagsync run: %v\n", err)
		return exitFail
	}

	secret := *webhookSecret
	if secret != "" {
		logger.Warn("--webhook-secret on the command line shows in process lists; use FLAGSYNC_WEBHOOK_SECRET or FLAGSYNC_WEBHOOK_SECRET_FILE")
	} else if secret, err = a.secret("FLAGSYNC_WEBHOOK_SECRET"); err != nil {
		return fail(err)
	}
	adminToken, err := a.secret("FLAGSYNC_ADMIN_TOKEN")
	if err != nil {
		return fail(err)
	}
	branch := *webhookBranch
	if branch == "" {
		branch = refBranch(src.ref)
	}
	if secret != "" && branch == "" {
		return usage("webhooks need the tracked branch: give --ref BRANCH or --webhook-branch")
	}

	dir := path.Clean(strings.TrimPrefix(filepath.ToSlash(src.path), "./"))
	source, err := src.newSource(logger)
	if err != nil {
		return fail(err)
	}
	m := metrics.New()
	var calls atomic.Int64
	tag := &daemon.RevisionTag{}
	fetch := func(ctx context.Context) (*snapshot, error) {
		snap, err := source.Fetch(ctx)
		if err != nil {
			return nil, err
		}
		return &snapshot{Revision: snap.Revision, FS: snap.FS, Dir: dir}, nil
	}
	// The services the repository's files need decide the clients, and the embedded
	// sandboxes take their environments from the files: read once at start.
	repo := splitload.Repository{}
	snap, fetchErr := fetch(ctx)
	if fetchErr != nil {
		if conn.sandbox {
			return fail(fetchErr)
		}
		logger.Warn("could not read the repository to see which flag services its files need; assuming Kameleoon alone", "error", fetchErr)
	} else if repo, err = splitload.Survey(snap.FS, snap.Dir); err != nil {
		repo = splitload.Repository{}
	}
	observe := daemon.APIObserver(m, &calls)
	var vendors []reconcile.Vendor
	var budget *api.Budget
	closeAPI := func() {}
	if repo.Kameleoon() {
		kc, where, stop, err := conn.connectKameleoon(a, logger, snap, observe, tag.Wrap(logger))
		if err != nil {
			return fail(err)
		}
		vendors, budget, closeAPI = append(vendors, kameleoon.Vendor(kc)), kc.Budget(), stop
		logger.Info("syncing Kameleoon flag files", "api", where)
	}
	defer func() { closeAPI() }()
	if repo.Split() {
		sc, where, stop, err := conn.connectSplit(a, logger, snap, observe, tag.Wrap(logger))
		if err != nil {
			return fail(err)
		}
		defer stop()
		if budget == nil {
			budget = sc.Budget()
		}
		logger.Info("syncing Split flag files", "api", where)
		vendors = append(vendors, split.Vendor(sc))
	}

	d, err := daemon.New(daemon.Config{
		Source: source, Dir: dir, Vendors: vendors, Calls: calls.Load, Budget: budget, Metrics: m,
		Schedule: *schedule, Jitter: *jitter, DriftInterval: *drift, ShutdownTimeout: *shutdown,
		ReadyIntervals: *readyIntervals, History: *history,
		WebhookSecret: []byte(secret), WebhookBranch: branch, WebhookMaxBody: *webhookMaxBody,
		AdminToken: adminToken, Suspended: *suspend,
		Prune: *prune, MaxChanges: *maxChanges, AllowMassArchive: *allowMass, Concurrency: *concurrency,
		Logger: logger, RevisionTag: tag,
	})
	if err != nil {
		return usage("%v", err)
	}
	if secret == "" {
		logger.Info("webhooks are off: set FLAGSYNC_WEBHOOK_SECRET or FLAGSYNC_WEBHOOK_SECRET_FILE to turn them on")
	}
	if *suspend {
		logger.Warn("applying is suspended (--suspend): syncs plan and report drift but write nothing until POST /resume")
	}

	// SIGHUP asks for a full sync; it is caught before the daemon runs, so it never
	// kills the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			logger.Info("SIGHUP: full sync requested")
			d.RequestSync("signal")
		}
	}()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail(fmt.Errorf("listen on %s: %w", *listen, err))
	}
	if err := d.Run(ctx, ln); err != nil {
		return fail(err)
	}
	return exitOK
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

// envForFlags gives every flag of fs that names no environment variable in its usage
// one of its own, FLAGSYNC_ + the flag's name in capitals with '-' as '_', and sets the
// flag from it; the command line still wins. It returns an exit code, or -1.
func (a *app) envForFlags(fs *flag.FlagSet) int {
	code := -1
	fs.VisitAll(func(f *flag.Flag) {
		if strings.Contains(f.Usage, "(env ") || strings.Contains(f.Usage, "env FLAGSYNC_") {
			return
		}
		name := "FLAGSYNC_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		f.Usage += " (env " + name + ")"
		v := a.getenv(name)
		if v == "" || code >= 0 {
			return
		}
		if err := f.Value.Set(v); err != nil {
			fmt.Fprintf(a.stderr, "%s: %s=%q: %v\n", fs.Name(), name, v, err)
			code = exitUsage
		}
	})
	return code
}
