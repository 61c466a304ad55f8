package daemon

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"
	"golang.org/x/time/rate"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/gitsource"
	"github.com/flagsync/flagsync/internal/leader"
	"github.com/flagsync/flagsync/internal/loadcache"
	"github.com/flagsync/flagsync/internal/metrics"
	"github.com/flagsync/flagsync/internal/notify"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/webhook"
)

// Source is the Git repository the daemon follows. *gitsource.Source satisfies it.
type Source interface {
	// Fetch returns the repository at the tracked ref. The snapshot's FS must stay
	// readable until the next Fetch.
	Fetch(ctx context.Context) (*gitsource.Snapshot, error)
	// ChangedFiles lists the paths that differ between two fetched revisions; an error
	// (gitsource.ErrHistoryUnavailable, say) makes the daemon reconcile everything.
	ChangedFiles(ctx context.Context, fromRev, toRev string) ([]string, error)
}

// Defaults of Config's zero values.
const (
	DefaultShutdownTimeout = 30 * time.Second
	DefaultReadyIntervals  = 3
	DefaultHistory         = 20
	DefaultJitter          = 15 * time.Second
	// DefaultWebhookDebounce is how long the loop waits, once a push wakes it, for more
	// pushes to merge into the same sync.
	DefaultWebhookDebounce = 250 * time.Millisecond
	// The self-retry of a failed or unconverged sync: the first retry after about
	// DefaultRetryBase, each next one twice as late, at most DefaultRetryMax apart, each
	// delayed by up to a quarter more at random; DefaultRetryAttempts retries at most
	// (about 45 minutes in all), then the next trigger tries again.
	DefaultRetryBase     = 30 * time.Second
	DefaultRetryMax      = 10 * time.Minute
	DefaultRetryAttempts = 8
)

// Config configures a Daemon. Source and Vendors are required.
type Config struct {
	Source Source
	// Dir is the flag folder inside the snapshots, slash-separated ("." for the root).
	Dir string
	// Vendors are the flag services to sync (see reconcile.Input.Vendors), in order.
	Vendors []reconcile.Vendor
	// Cache is the validation cache every load of the daemon's lifetime goes through
	// (see reconcile.Source.Cache); nil: every flag file is parsed on every load.
	Cache *loadcache.Cache
	// Calls returns how many HTTP calls the vendors' clients have made so far (see
	// APIObserver); the status reports the calls each sync took. Optional.
	Calls func() int64
	// Budget is the first vendor's rate budget, reported in /status and /metrics.
	// Optional.
	Budget *api.Budget
	// Metrics receives every metric; nil makes a new registry.
	Metrics *metrics.Metrics

	// Schedule is a cron spec (five fields, or a descriptor such as "@every 5m" or
	// "@hourly"; a "CRON_TZ=Zone " prefix sets the time zone) for periodic syncs. Empty
	// means no schedule: only webhooks, signals, resume and drift checks sync.
	Schedule string
	// Jitter is the most a scheduled sync is delayed at random, so that many daemons on
	// one schedule do not call the API at the same instant. It is capped at a tenth of
	// the schedule's period. Zero means no jitter.
	Jitter time.Duration
	// DriftInterval is how often the live flags are read even when the revision has not
	// changed, to find and repair changes made outside Git. Zero turns drift checks off.
	DriftInterval time.Duration
	// ShutdownTimeout bounds how long the changes already started may go on after the
	// context of Run is cancelled (DefaultShutdownTimeout when zero).
	ShutdownTimeout time.Duration
	// ReadyIntervals is how many schedule periods (or drift intervals, without a
	// schedule) may pass without a successful sync or check before /readyz fails
	// (DefaultReadyIntervals when zero).
	ReadyIntervals int
	// History is how many syncs /status lists (DefaultHistory when zero).
	History int

	// WebhookSecret enables POST /webhook; without it the endpoint answers 404.
	WebhookSecret []byte
	// WebhookBranch is the branch whose pushes trigger a sync. Empty: the branch the
	// source's snapshots name (gitsource.Snapshot.Branch, the remote's default branch
	// without a ref), learnt at the first fetch; /webhook answers 503 until then.
	WebhookBranch string
	// WebhookMaxBody caps a webhook body (webhook.DefaultMaxBody when zero).
	WebhookMaxBody int64
	// WebhookDebounce is how long a sync woken by pushes alone waits for more pushes to
	// merge into it (DefaultWebhookDebounce when zero; negative: none).
	WebhookDebounce time.Duration
	// WebhookRateLimit and WebhookRateBurst limit the pushes accepted per sender (see
	// webhook.Options.RateLimit); zero: webhook.DefaultRateLimit and DefaultRateBurst.
	WebhookRateLimit float64
	WebhookRateBurst int

	// Elector decides whether this replica syncs and writes (leader election). Nil: a
	// lone replica, always the writer.
	Elector leader.Elector
	// ForwardTimeout bounds how long a follower waits for the leader when it hands a
	// webhook delivery on (see Identity); default 5s.
	ForwardTimeout time.Duration

	// RetryBase, RetryMax and RetryAttempts bound the self-retry of a failed or
	// unconverged sync (DefaultRetryBase, DefaultRetryMax and DefaultRetryAttempts when
	// zero).
	RetryBase, RetryMax time.Duration
	RetryAttempts       int

	// Notifier, when set, is told the outcome of every sync (not of skipped checks, nor
	// while suspended), off the sync loop: a slow or failing receiver never holds or
	// fails a sync.
	Notifier *notify.Notifier
	// NotifyScope names what the notifications are about, e.g. "kameleoon/flags".
	NotifyScope string

	// Build is this binary's version, for /status and flagsync_build_info.
	Build BuildInfo
	// AdminToken enables POST /suspend and /resume for requests that carry it as a
	// bearer token; without it those endpoints answer 404.
	AdminToken string
	// Suspended starts the daemon with applying suspended: it plans and reports drift
	// but sends no write until resumed.
	Suspended bool

	// The sync's guards, as for flagsync sync.
	Prune            bool
	MaxChanges       int
	MaxArchive       int
	AllowMassArchive bool
	Concurrency      int

	Logger *slog.Logger
	// RevisionTag, when set, carries the revision of the sync in flight to the loggers
	// it wrapped (the API client's).
	RevisionTag *RevisionTag
}

// BuildInfo says which binary runs.
type BuildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
}

// Daemon runs syncs one at a time, as triggers ask, and serves its HTTP endpoints.
// Create it with New and start it with Run.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics.Metrics
	sched   cron.Schedule // nil without a schedule
	admin   [sha256.Size]byte
	hasTok  bool
	started time.Time
	elector leader.Elector
	elected bool         // an election runs: this replica may be a follower
	forward *http.Client // hands webhook deliveries to the leader

	// hook is the webhook handler: nil when webhooks are off, or until the tracked
	// branch is known.
	hook atomic.Pointer[webhook.Handler]

	// wake is the one-slot trigger: every request does a non-blocking send, so a burst
	// of requests while a sync runs leaves one wake-up, and the loop takes them all.
	wake chan struct{}
	// notes carries sync outcomes to the notifier's goroutine; nil without a notifier.
	notes chan notify.Outcome

	// loop is touched by the sync loop only.
	loop loopState

	mu      sync.Mutex // guards what follows: requests and what /status shows
	cycled  *sync.Cond // signalled when a wake-up of the loop ends
	pending request
	susp    suspension
	stopRun context.CancelCauseFunc // stops the sync in flight from starting more flags
	running *Running
	pub     published
	history []Record // newest first
	seq     int64
	closing bool
	term    context.Context // the leadership term in progress (elected only); nil otherwise
	branch  string          // the branch webhooks are accepted for ("" until known)
}

// loopState is what the sync loop remembers between syncs.
type loopState struct {
	applied      string     // last revision synced without a pipeline error (not in a dry run): what the next push is diffed against
	converged    bool       // the services matched applied after that sync (or only wait for approvals)
	retry        retryState // the self-retry of the last failed or unconverged sync
	lastFullRead time.Time  // last full read of the live flags
	fullTried    time.Time  // last wake-up that asked for a full sync, whatever came of it
	index        *flagIndex // file → flag of the last valid revision loaded
	invalidRev   string     // newest revision that failed validation; not retried
	refusedRev   string     // revision whose plan a guard refused; retried on drift checks
	dryChecked   string     // revision last planned while suspended
}

// published is the loop's state as /status and /readyz see it.
type published struct {
	head         string
	converged    bool
	lastFullRead time.Time
	firstDone    bool
	lastOK       time.Time // last sync or check that ended as it should
	lastCheck    *Check
	validation   *ValidationFailure
	fetched      *RevisionAt // newest revision fetched
	attempted    *Attempt    // last revision a sync tried to apply, whatever came of it
	applied      *RevisionAt // last revision fully applied: synced and converged
	retry        *Retry
	awaiting     map[plan.Address]AwaitingChange // flag → its change awaiting approval
}

type suspension struct {
	on     bool
	since  time.Time
	by     string // "flag" or "api"
	reason string
}

// request is what the triggers since the last sync asked for, merged.
type request struct {
	n        int // how many triggers were merged
	triggers []string
	full     bool // a full reconcile was asked for
	pushes   []webhook.Push
}

const maxPushes = 8

// New checks cfg and returns a Daemon.
func New(cfg Config) (*Daemon, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: cfg.Logger, m: cfg.Metrics, wake: make(chan struct{}, 1), started: time.Now(), elector: cfg.Elector}
	d.cycled = sync.NewCond(&d.mu)
	d.pub.awaiting = map[plan.Address]AwaitingChange{}
	if d.elector == nil {
		d.elector = leader.NewSingle("", cfg.Logger)
	}
	d.elected = d.elector.Status().Backend != leader.BackendNone
	d.forward = &http.Client{Timeout: cfg.ForwardTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if cfg.Schedule != "" {
		s, err := cron.ParseStandard(cfg.Schedule)
		if err != nil {
			return nil, fmt.Errorf("new daemon: schedule %q: %w", cfg.Schedule, err)
		}
		d.sched = s
	}
	if len(cfg.WebhookSecret) > 0 && cfg.WebhookBranch != "" {
		if err := d.setBranch(cfg.WebhookBranch); err != nil {
			return nil, fmt.Errorf("new daemon: %w", err)
		}
	}
	if cfg.AdminToken != "" {
		d.admin, d.hasTok = sha256.Sum256([]byte(cfg.AdminToken)), true
	}
	if cfg.Suspended {
		d.susp = suspension{on: true, since: time.Now(), by: "flag"}
		d.m.Suspended.Set(1)
	} else {
		d.m.Suspended.Set(0)
	}
	if cfg.Notifier != nil {
		d.notes = make(chan notify.Outcome, notifyQueue)
	}
	d.m.ValidationFailed.Set(0)
	d.refreshGauges()
	return d, nil
}

// defaults checks cfg and fills in the defaults of its zero values.
func (cfg *Config) defaults() error {
	if cfg.Source == nil || len(cfg.Vendors) == 0 {
		return errors.New("new daemon: a source and at least one flag service are required")
	}
	cfg.Dir = path.Clean(strings.TrimSuffix(cfg.Dir, "/"))
	if cfg.Dir == "" {
		cfg.Dir = "."
	}
	if !fs.ValidPath(cfg.Dir) {
		return fmt.Errorf("new daemon: flag folder %q: must be a relative slash-separated path", cfg.Dir)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.ReadyIntervals <= 0 {
		cfg.ReadyIntervals = DefaultReadyIntervals
	}
	if cfg.History <= 0 {
		cfg.History = DefaultHistory
	}
	if cfg.DriftInterval < 0 || cfg.Jitter < 0 {
		return errors.New("new daemon: drift interval and jitter must not be negative")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.Calls == nil {
		cfg.Calls = func() int64 { return 0 }
	}
	return cfg.operatingDefaults()
}

// operatingDefaults checks and fills in the bounds of retries, webhooks and handing
// pushes on.
func (cfg *Config) operatingDefaults() error {
	if cfg.RetryBase < 0 || cfg.RetryMax < 0 || cfg.RetryAttempts < 0 || cfg.WebhookRateLimit < 0 || cfg.WebhookRateBurst < 0 {
		return errors.New("new daemon: retry bounds and the webhook rate limit must not be negative")
	}
	if cfg.WebhookDebounce == 0 {
		cfg.WebhookDebounce = DefaultWebhookDebounce
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = DefaultRetryBase
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	if cfg.RetryAttempts == 0 {
		cfg.RetryAttempts = DefaultRetryAttempts
	}
	if cfg.WebhookRateLimit == 0 {
		cfg.WebhookRateLimit = float64(webhook.DefaultRateLimit)
	}
	if cfg.WebhookRateBurst == 0 {
		cfg.WebhookRateBurst = webhook.DefaultRateBurst
	}
	if cfg.ForwardTimeout <= 0 {
		cfg.ForwardTimeout = defaultForwardTimeout
	}
	return nil
}

// setBranch builds the webhook handler for branch, the tracked branch, unless it is
// already the one webhooks are accepted for. A handler built for another branch
// before is replaced (the remote's default branch changed): what it remembered of
// deliveries is dropped with it.
func (d *Daemon) setBranch(branch string) error {
	d.mu.Lock()
	same := d.branch == branch
	d.mu.Unlock()
	if same || len(d.cfg.WebhookSecret) == 0 {
		return nil
	}
	wh, err := webhook.New(webhook.Options{
		Secret:         d.cfg.WebhookSecret,
		Branch:         branch,
		MaxBody:        d.cfg.WebhookMaxBody,
		Logger:         d.cfg.Logger,
		OnPush:         d.onPush,
		Observe:        func(provider, outcome string) { d.m.WebhookDelivered.WithLabelValues(provider, outcome).Inc() },
		RevisionDedupe: true,
		AlreadyApplied: d.alreadyApplied,
		RateLimit:      rate.Limit(d.cfg.WebhookRateLimit),
		RateBurst:      d.cfg.WebhookRateBurst,
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.branch = branch
	d.mu.Unlock()
	d.hook.Store(wh)
	return nil
}

// alreadyApplied tells the webhook handler whether a push names the revision this
// replica applied and found converged, so that it is answered without a fetch. A
// follower knows no such revision: the leader applies, and a follower's memory of
// its own last term may be stale.
func (d *Daemon) alreadyApplied(_, revision string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.leadingLocked() && d.pub.applied != nil && strings.EqualFold(d.pub.applied.Revision, revision) && d.pub.converged
}

// leadingLocked reports whether this replica may sync and write: a lone replica
// always, an elected one while a term is in progress; d.mu held.
func (d *Daemon) leadingLocked() bool { return !d.elected || d.term != nil }

// RequestSync asks for a full reconcile — the live flags read whatever the revision —
// as SIGHUP does. It never blocks: requests made while a sync runs are merged into one.
func (d *Daemon) RequestSync(trigger string) { d.request(trigger, true, nil) }

func (d *Daemon) onPush(p webhook.Push) { d.request("webhook", false, &p) }

// request records a trigger and wakes the loop with a non-blocking send on the
// one-slot channel.
func (d *Daemon) request(trigger string, full bool, push *webhook.Push) {
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		return
	}
	r := &d.pending
	r.n++
	if !slices.Contains(r.triggers, trigger) {
		r.triggers = append(r.triggers, trigger)
	}
	r.full = r.full || full
	if push != nil {
		r.pushes = append(r.pushes, *push)
		if len(r.pushes) > maxPushes {
			r.pushes = r.pushes[len(r.pushes)-maxPushes:]
		}
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// take returns the merged request and starts a new one.
func (d *Daemon) take() request {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.pending
	d.pending = request{}
	return r
}

// Run serves the HTTP endpoints on ln (none when ln is nil) and the admin endpoints on
// admin (on ln when admin is nil), takes part in the leader election, runs the startup
// sync and then a sync for each trigger, until ctx is cancelled. It then stops taking
// triggers, lets the sync in flight finish the flags it started (within
// Config.ShutdownTimeout), leaves the election (releasing the lease only once the sync
// stopped), shuts the HTTP servers down and returns nil. It returns an error when an
// HTTP server or the election fails.
func (d *Daemon) Run(ctx context.Context, ln, admin net.Listener) error {
	serveErr := make(chan error, 2)
	var servers []*http.Server
	serve := func(l net.Listener, h http.Handler, what string) {
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
		}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("serve %s on %s: %w", what, l.Addr(), err)
			}
		}()
	}
	switch {
	case ln != nil && admin != nil:
		serve(ln, d.MainHandler(), "webhooks")
		serve(admin, d.AdminHandler(), "admin endpoints")
		d.log.Info("daemon listening", "addr", ln.Addr().String(), "admin_addr", admin.Addr().String(), "webhooks", len(d.cfg.WebhookSecret) > 0, "admin", d.hasTok)
	case ln != nil:
		serve(ln, d.Handler(), "endpoints")
		d.log.Info("daemon listening", "addr", ln.Addr().String(), "admin_addr", ln.Addr().String(), "webhooks", len(d.cfg.WebhookSecret) > 0, "admin", d.hasTok)
	case admin != nil:
		serve(admin, d.AdminHandler(), "admin endpoints")
	}
	notified := d.startNotifier()
	electDone := d.startElection(ctx, serveErr)
	stopSchedule := d.startSchedule()
	d.request("startup", true, nil)
	// The shutdown is visible at once, not when the sync in flight ends: /readyz fails,
	// triggers are refused and the operator sees that the signal was received.
	stopWatch := context.AfterFunc(ctx, func() {
		d.mu.Lock()
		d.closing = true
		running := d.running != nil
		d.mu.Unlock()
		if running {
			d.log.Info("shutting down: no new trigger or flag is taken; the flags already started finish their changes", "timeout_ms", d.cfg.ShutdownTimeout.Milliseconds())
		} else {
			d.log.Info("shutting down")
		}
	})
	defer stopWatch()

	drift := time.NewTimer(time.Hour)
	drift.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	var runErr error
loop:
	for {
		d.armDrift(drift)
		d.armRetry(retry)
		select {
		case <-ctx.Done():
			break loop
		case runErr = <-serveErr:
			d.log.Error("daemon stopping", "error", runErr)
			break loop
		case <-drift.C:
			d.request("drift", true, nil)
			// Counts as tried now: the timer, re-armed before the check runs, must not
			// fire again and merge a second request into it.
			d.loop.fullTried = time.Now()
		case <-retry.C:
			d.loop.retry.next = time.Time{} // due: not armed again until the retry has run
			d.m.SyncRetries.Inc()
			d.request("retry", false, nil)
		case <-d.wake:
			if ctx.Err() != nil {
				break loop
			}
			d.debounce(ctx)
			d.cycle(ctx)
		}
	}
	drift.Stop()
	retry.Stop()
	d.mu.Lock()
	d.closing = true
	d.mu.Unlock()
	stopSchedule()
	// Leave the election only now that no sync runs: the lock is released after the
	// last write, and a follower takes over at once.
	electDone()
	notified()
	for _, srv := range servers {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := srv.Shutdown(sctx); err != nil {
			d.log.Warn("HTTP server did not shut down cleanly", "error", err)
		}
		cancel()
	}
	if runErr != nil {
		return runErr
	}
	d.log.Info("daemon stopped")
	return nil
}

// debounce holds a wake-up caused by pushes alone for Config.WebhookDebounce, so that
// the pushes of a burst still arriving merge into one sync.
func (d *Daemon) debounce(ctx context.Context) {
	if d.cfg.WebhookDebounce <= 0 {
		return
	}
	d.mu.Lock()
	only := len(d.pending.triggers) == 1 && d.pending.triggers[0] == "webhook"
	d.mu.Unlock()
	if !only {
		return
	}
	t := time.NewTimer(d.cfg.WebhookDebounce)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// armDrift sets the drift timer to the next drift check, or stops it. The check is due
// one interval after the last full read, but never sooner than one interval after the
// last attempt: a check that cannot run (the head revision is invalid, the API is down)
// is retried by the schedule's ticks, not in a tight loop.
func (d *Daemon) armDrift(t *time.Timer) {
	t.Stop()
	select {
	case <-t.C:
	default:
	}
	from := d.loop.lastFullRead
	if d.loop.fullTried.After(from) {
		from = d.loop.fullTried
	}
	if d.cfg.DriftInterval <= 0 || from.IsZero() {
		return
	}
	t.Reset(max(time.Until(from.Add(d.cfg.DriftInterval)), 0))
}

// hardContext ends timeout after ctx ends: the bound on work already started.
func hardContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	hard, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-hard.Done():
		}
	})
	return hard, func() {
		stop()
		cancel()
	}
}
