package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/cli"
	"github.com/flagsync/flagsync/internal/daemon"
	"github.com/flagsync/flagsync/internal/leader"
	"github.com/flagsync/flagsync/internal/metrics"
	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/webhook"
)

// defaultListen and defaultAdminListen are where the daemon listens unless told
// otherwise: loopback only. The container image sets FLAGSYNC_LISTEN=0.0.0.0:8080 and
// FLAGSYNC_ADMIN_LISTEN=0.0.0.0:9090.
const (
	defaultListen      = "127.0.0.1:8080"
	defaultAdminListen = "127.0.0.1:9090"
)

// runSynopsis is run's help.
func (a *app) runSynopsis() string {
	return `Usage: flagsync run [flags]

Runs as a daemon: syncs the repository's flags into their services at start, on a cron
schedule, on Git webhooks (POST /webhook), on SIGHUP and on resume, one sync at a time.
A tick on an unchanged, converged revision makes no API call; the live flags are read
for drift every --drift-interval. A push is first synced flag by flag (only the flags
whose files changed); a revision that fails validation is not applied, and the last good
one stays. SIGTERM (or Ctrl-C) finishes the flags already started and exits 0.

Endpoints on --listen: GET /healthz, /readyz; POST /webhook[/{provider}]. On
--admin-listen: GET /metrics, /status; POST /suspend and /resume with
"Authorization: Bearer $FLAGSYNC_ADMIN_TOKEN".

With several replicas, one leader syncs and writes (--leader-elect): a Kubernetes Lease,
or a lock file on a shared volume (--leader-lock). A failed or unconverged sync is
retried by itself on a bounded backoff (docs/troubleshooting.md).

Every flag can also be set with an environment variable (shown with each flag). Secrets
come only from the environment, or from the file named by the variable + _FILE:
FLAGSYNC_WEBHOOK_SECRET, FLAGSYNC_ADMIN_TOKEN, FLAGSYNC_GIT_TOKEN (or
FLAGSYNC_GIT_USERNAME/_PASSWORD), FLAGSYNC_GIT_SSH_KEY_PASSPHRASE, and for notifications
FLAGSYNC_NOTIFY_WEBHOOK_URL with FLAGSYNC_NOTIFY_WEBHOOK_SECRET (Standard Webhooks,
"whsec_..."), FLAGSYNC_NOTIFY_SLACK_URL. An empty or placeholder secret (replace-me,
changeme, ...) stops the daemon at start.
` + a.credentialsHelp() + `

Examples:
  flagsync run --sandbox --repo . --schedule '@every 1m'
  FLAGSYNC_WEBHOOK_SECRET_FILE=/run/secrets/webhook flagsync run \
    --repo https://github.com/acme/flags.git --ref main --path flags --listen 0.0.0.0:8080`
}

// runFlags are run's own flags.
type runFlags struct {
	listen, adminListen, schedule, webhookSecret, webhookBranch        string
	leaderElect, leaderNamespace, leaderID, leaderLock, advertise      string
	notifyWebhookEvents, notifySlackEvents, planURL                    string
	jitter, drift, shutdown, leaseDuration, renewDeadline, retryPeriod time.Duration
	readyIntervals, history                                            int
	webhookMaxBody                                                     int64
	suspend, prune, allowMass                                          bool
	secretArg                                                          bool // --webhook-secret was on the command line
	maxChanges, concurrency                                            int
}

func (f *runFlags) add(fs *cli.FlagSet) {
	fs.StringVar(&f.listen, "listen", defaultListen, "address of /webhook, /healthz and /readyz; the container image sets 0.0.0.0:8080")
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
	fs.StringVar(&f.adminListen, "admin-listen", defaultAdminListen, "address of /status, /metrics, /suspend and /resume (the same as --listen serves them there); the container image sets 0.0.0.0:9090")
	fs.StringVar(&f.leaderElect, "leader-elect", string(leader.ModeAuto), "one writer among replicas: auto (a Lease in a Kubernetes cluster with a service account token; a lock file with --leader-lock; else none), lease, file or none")
	fs.StringVar(&f.leaderNamespace, "leader-election-namespace", "", "namespace of the Lease (default: the pod's, from its service account)")
	fs.StringVar(&f.leaderID, "leader-election-id", leader.DefaultLeaseName, "name of the Lease")
	fs.StringVar(&f.leaderLock, "leader-lock", "", "lock file on a volume every replica mounts: leader election outside Kubernetes")
	fs.DurationVar(&f.leaseDuration, "leader-election-lease-duration", leader.DefaultLeaseDuration, "how long a follower waits without seeing the lease renewed before it takes over")
	fs.DurationVar(&f.renewDeadline, "leader-election-renew-deadline", leader.DefaultRenewDeadline, "how long the leader writes without a successful renewal")
	fs.DurationVar(&f.retryPeriod, "leader-election-retry-period", leader.DefaultRetryPeriod, "how often the leader renews and followers try to take over")
	fs.StringVar(&f.advertise, "advertise-url", "", "URL the other replicas reach this one's --listen at, e.g. http://$(POD_IP):8080: a follower hands the webhook deliveries it gets to the leader's (default: derived from --listen when it names one address)")
	fs.StringVar(&f.notifyWebhookEvents, "notify-webhook-events", "", "events sent to FLAGSYNC_NOTIFY_WEBHOOK_URL, comma-separated: sync_failed, drift_found, refused_changes, recovered (default: all)")
	fs.StringVar(&f.notifySlackEvents, "notify-slack-events", "", "events sent to FLAGSYNC_NOTIFY_SLACK_URL, comma-separated (default: all)")
	fs.StringVar(&f.planURL, "plan-url", "", "link to a revision's plan in notifications, e.g. https://ci.example.com/plans/{revision}; {revision}, {scope} and {kind} are replaced")
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
	case f.advertise != "" && !strings.HasPrefix(f.advertise, "http://") && !strings.HasPrefix(f.advertise, "https://"):
		return "--advertise-url must be an http:// or https:// URL"
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
	cfg, err := a.daemonConfig(f, src, logger)
	if err != nil {
		return usageOr(a, "flagsync run", err)
	}
	a.sandboxStateInCache(fs, conn, src)
	conns, branch, err := a.connectDaemon(ctx, conn, &cfg, logger)
	if err != nil {
		return usageOr(a, "flagsync run", err) // a service may refuse its connection flags (Unleash: --sandbox)
	}
	defer conns.Close()
	if err := a.trackedBranch(&cfg, src, branch, logger); err != nil {
		return usageOr(a, "flagsync run", err)
	}
	if cfg.Notifier, err = a.notifier(f, cfg.Metrics, logger); err != nil {
		return usageOr(a, "flagsync run", err)
	}
	cfg.NotifyScope = notifyScope(conns, cfg.Dir)
	ln, admin, err := listen(f.listen, f.adminListen)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync run: %v\n", err)
		return exitFail
	}
	d, code := a.newDaemon(&cfg, f, ln, logger)
	if code >= 0 {
		ln.Close()
		if admin != nil {
			admin.Close()
		}
		return code
	}
	if cfg.WebhookSecret == nil {
		logger.Info("webhooks are off: set FLAGSYNC_WEBHOOK_SECRET or FLAGSYNC_WEBHOOK_SECRET_FILE to turn them on")
	}
	if f.suspend {
		logger.Warn("applying is suspended (--suspend): syncs plan and report drift but write nothing until POST /resume")
	}
	return a.serveDaemon(ctx, d, ln, admin, logger)
}

// newDaemon sets up the replica's leader election on the webhook listener, names the
// replica in the User-Agent and builds the daemon. code is -1 on success, else the exit
// code, the error already printed; the caller closes the listeners.
func (a *app) newDaemon(cfg *daemon.Config, f runFlags, ln net.Listener, logger *slog.Logger) (*daemon.Daemon, int) {
	var err error
	if cfg.Elector, err = a.elector(f, ln, logger); err != nil {
		return nil, usageOr(a, "flagsync run", err)
	}
	// The replica's name (not the URL it advertises) tells the flag service's logs which
	// replica sent a request.
	name, _, _ := strings.Cut(cfg.Elector.Identity(), "@")
	api.SetUserAgent(fmt.Sprintf("flagsync/%s (%s)", cfg.Build.Version, name))
	d, err := daemon.New(*cfg)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync run: %v\n", err)
		return nil, exitUsage
	}
	return d, -1
}

// listen opens the daemon's listeners: the main one, and the admin one unless it is
// the same address (then the main listener serves every endpoint, and admin is nil).
func listen(addr, adminAddr string) (ln, admin net.Listener, err error) {
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	if adminAddr == "" || adminAddr == addr {
		return ln, nil, nil
	}
	admin, err = net.Listen("tcp", adminAddr)
	if err != nil {
		ln.Close()
		return nil, nil, fmt.Errorf("listen on %s (--admin-listen): %w", adminAddr, err)
	}
	return ln, admin, nil
}

// elector builds the leader election --leader-elect asks for. The replica's identity
// carries the URL its webhook endpoint is reached at (--advertise-url, or the main
// listener's address when it names one), so that followers can hand pushes to it.
func (a *app) elector(f runFlags, ln net.Listener, logger *slog.Logger) (leader.Elector, error) {
	decision, err := leader.Detect(leader.Mode(f.leaderElect), f.leaderLock, leader.Environment{Getenv: a.getenv})
	if err != nil {
		return nil, provider.Usagef("--leader-elect: %v", err)
	}
	if decision.Warning != "" {
		logger.Warn(decision.Warning)
	}
	advertise := f.advertise
	if advertise == "" && decision.Backend != leader.BackendNone {
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsUnspecified() {
			advertise = "http://" + tcp.String()
		} else {
			logger.Warn("leader election without --advertise-url: a follower answers the webhook deliveries it gets itself, and the leader picks those pushes up on its next scheduled sync or drift check")
		}
	}
	identity := daemon.Identity(leader.NewIdentity(), advertise)
	el, err := leader.New(decision, leader.Options{
		Identity: identity, Logger: logger, LockPath: f.leaderLock,
		Timings: leader.Timings{LeaseDuration: f.leaseDuration, RenewDeadline: f.renewDeadline, RetryPeriod: f.retryPeriod},
		Lease:   leader.LeaseConfig{Namespace: f.leaderNamespace, Name: f.leaderID},
	})
	if err != nil {
		var cfgErr *leader.ConfigError
		if errors.As(err, &cfgErr) {
			return nil, provider.Usagef("%v", err)
		}
		return nil, err
	}
	logger.Info("leader election", "backend", string(decision.Backend), "reason", decision.Reason, "identity", identity)
	return el, nil
}

// daemonConfig is the daemon's configuration from run's flags and secrets, without its
// services (see connectDaemon). A *provider.UsageError is a bad command line.
func (a *app) daemonConfig(f runFlags, src *sourceFlags, logger *slog.Logger) (daemon.Config, error) {
	// FLAGSYNC_WEBHOOK_SECRET sets the flag; without either, FLAGSYNC_WEBHOOK_SECRET_FILE.
	secret := f.webhookSecret
	var err error
	if f.secretArg {
		logger.Warn("--webhook-secret on the command line shows in process lists; use FLAGSYNC_WEBHOOK_SECRET or FLAGSYNC_WEBHOOK_SECRET_FILE")
		if err := checkSecret("--webhook-secret", secret, true); err != nil {
			return daemon.Config{}, err
		}
	} else if secret, err = a.daemonSecret("FLAGSYNC_WEBHOOK_SECRET"); err != nil {
		return daemon.Config{}, err
	}
	adminToken, err := a.daemonSecret("FLAGSYNC_ADMIN_TOKEN")
	if err != nil {
		return daemon.Config{}, err
	}
	branch := f.webhookBranch
	if branch == "" {
		branch = refBranch(src.ref)
	}
	if secret != "" && branch == "" && src.ref != "" {
		return daemon.Config{}, provider.Usagef("webhooks need the tracked branch: --ref %s is not a branch; give --ref BRANCH or --webhook-branch", src.ref)
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
		Logger: logger, RevisionTag: &daemon.RevisionTag{}, Build: buildInfo(),
		Cache: src.validationCache(logger), // one for the daemon's lifetime
	}
	if secret != "" {
		cfg.WebhookSecret = []byte(secret)
	}
	return cfg, nil
}

// connectDaemon connects the services the repository needs, read once at start (an
// embedded sandbox takes its environments from the files), and completes cfg with them.
// A repository that cannot be read connects the default service alone, unless the
// services are sandboxes. It returns the branch the repository was read from ("" when
// it could not be read, or is not on a branch).
func (a *app) connectDaemon(ctx context.Context, conn *connFlags, cfg *daemon.Config, logger *slog.Logger) (*provider.Connections, *string, error) {
	var calls atomic.Int64
	var loaded *reconcile.Loaded
	var branch *string
	snap, err := cfg.Source.Fetch(ctx)
	switch {
	case err != nil && conn.sandbox:
		return nil, nil, err
	case err != nil:
		logger.Warn("could not read the repository to see which flag services its files need; assuming "+a.providers.Default().Help().Service+" alone", "error", err)
	default:
		branch = &snap.Branch
		// Invalid files still say which services they are for; the sync reports them.
		loaded, _ = reconcile.Load(a.providers.FileVendors(), reconcile.Source{FS: snap.FS, Dir: cfg.Dir, Revision: snap.Revision, Logger: logger, Cache: cfg.Cache})
	}
	conns, err := a.providers.Connect(ctx, loaded, conn.options(a, daemon.APIObserver(cfg.Metrics, &calls), cfg.RevisionTag.Wrap(logger)))
	if err != nil {
		return nil, nil, err
	}
	for _, c := range conns.List {
		logger.Info("syncing "+c.Service+" flag files", "api", c.Where)
	}
	cfg.Vendors, cfg.Calls, cfg.Budget = conns.Vendors, calls.Load, conns.Budget()
	return conns, branch, nil
}

// trackedBranch decides the branch webhooks are accepted for and says which it is.
// Without --ref or --webhook-branch it is the remote's default branch, as its HEAD says
// at the first fetch (branch; nil when that fetch failed: the daemon learns it at its
// first successful fetch). A repository read but on no branch is a usage error.
func (a *app) trackedBranch(cfg *daemon.Config, src *sourceFlags, branch *string, logger *slog.Logger) error {
	switch {
	case cfg.WebhookSecret == nil:
	case cfg.WebhookBranch != "":
		logger.Info("tracking branch "+cfg.WebhookBranch+": pushes to it trigger a sync", "branch", cfg.WebhookBranch)
	case branch == nil:
		logger.Warn("the tracked branch is not known until the repository is read: /webhook answers 503 until then", "ref", src.ref)
	case *branch == "":
		return provider.Usagef("webhooks need the tracked branch: %s is on no branch (a detached HEAD, or a folder outside Git); give --ref BRANCH or --webhook-branch", src.repo)
	default:
		cfg.WebhookBranch = *branch
		logger.Info("tracking the default branch "+*branch+" (the remote's HEAD): pushes to it trigger a sync", "branch", *branch)
	}
	return nil
}

// sandboxStateInCache keeps an embedded sandbox's state under the cache folder, never
// in the repository being synced, unless a state file was named: the daemon's state
// (the Git cache and the sandbox) then lives in one place, per repository.
func (a *app) sandboxStateInCache(fs *cli.FlagSet, conn *connFlags, src *sourceFlags) {
	if !conn.sandbox {
		return
	}
	sum := sha256.Sum256([]byte(src.repo + "\x00" + src.path))
	dir := filepath.Join(src.cacheDir, "sandbox-"+hex.EncodeToString(sum[:6]))
	for _, pf := range conn.flags {
		fl := fs.Lookup(pf.Name)
		if !pf.State || fl == nil || fl.Value.String() != fl.DefValue {
			continue
		}
		_ = fl.Value.Set(filepath.Join(dir, filepath.Base(fl.DefValue)))
	}
}

// serveDaemon runs the daemon on its listeners until ctx ends. SIGHUP asks for a full
// sync; it is caught before the daemon runs, so it never kills the process.
func (a *app) serveDaemon(ctx context.Context, d *daemon.Daemon, ln, admin net.Listener, logger *slog.Logger) int {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			logger.Info("SIGHUP: full sync requested")
			d.RequestSync("signal")
		}
	}()
	if err := d.Run(ctx, ln, admin); err != nil {
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
