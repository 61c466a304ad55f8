package kdoctor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// MaxCalls is the most API calls a doctor run makes, token requests included.
const MaxCalls = 25

// cleanupReserve is how many calls of the budget are kept for archiving the scratch
// flag and reading it back, whatever the probes before used.
const cleanupReserve = 4

// DefaultCleanupTimeout bounds archiving the scratch flag, which runs on a fresh context
// so that a cancelled run still archives it.
const DefaultCleanupTimeout = time.Minute

// ScratchPrefix starts the feature key of every scratch flag.
const ScratchPrefix = "flagsync_doctor_"

// DefaultEnvironments are the scratch flag's two environments when Options.Environments
// is empty: Kameleoon's default environments that are not production.
var DefaultEnvironments = []string{"development", "staging"}

const ownershipTag = kmodel.OwnershipTag

// Options configure a doctor run.
type Options struct {
	// API is how to reach the account: BaseURL, ClientID, ClientSecret, and optionally
	// HTTPClient, Logger, Budget, BackoffBase and Now. The doctor builds its own clients
	// from it; it sets their Observer and MaxAttempts itself.
	API kclient.Config
	// SiteCode is the site the scratch flag is created in.
	SiteCode string
	// Environments are two environment keys of the site's project for the scratch flag
	// (default DefaultEnvironments).
	Environments []string
	// SegmentID and GoalID, when set, go into the scratch flag's rules (segmentId) and
	// rollback conditions (goalId): an account may require ids of its own.
	SegmentID, GoalID int64
	// MaxCalls bounds the API calls (default and at most MaxCalls).
	MaxCalls int
	// ScratchKey is the scratch flag's feature key (default NewScratchKey()).
	ScratchKey string
	// CleanupTimeout bounds archiving the scratch flag (default DefaultCleanupTimeout).
	CleanupTimeout time.Duration
	// Now dates the scratch flag's release window (default time.Now).
	Now func() time.Time
	// Logger receives the doctor's progress; never a secret. Optional.
	Logger *slog.Logger
}

// NewScratchKey returns a new scratch flag key: ScratchPrefix and 8 random hex digits.
func NewScratchKey() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return ScratchPrefix + hex.EncodeToString(b)
}

// Doctor is one probe of an account. Build it with New, then call Run once.
type Doctor struct {
	opts    Options
	site    string
	key     string
	envs    [2]string
	max     int
	log     *slog.Logger
	now     func() time.Time
	cleanup time.Duration

	rec      *recorder
	observed atomic.Int64 // HTTP exchanges the clients' observers saw
	calls    callLog
	a, b     *kclient.Client // a runs the probes; b only asks for a second token and uses it

	rows map[string]*Row
	st   state
}

// New checks opts and returns a Doctor ready to run.
func New(opts Options) (*Doctor, error) {
	if len(opts.SiteCode) != 10 {
		return nil, fmt.Errorf("doctor: site code %q: must be exactly 10 characters", opts.SiteCode)
	}
	envs := opts.Environments
	if len(envs) == 0 {
		envs = DefaultEnvironments
	}
	if len(envs) != 2 || envs[0] == "" || envs[1] == "" || envs[0] == envs[1] {
		return nil, fmt.Errorf("doctor: environments %q: want two different environment keys", strings.Join(envs, ","))
	}
	if opts.MaxCalls == 0 {
		opts.MaxCalls = MaxCalls
	}
	if opts.MaxCalls > MaxCalls || opts.MaxCalls < cleanupReserve+8 {
		return nil, fmt.Errorf("doctor: call budget %d: must be between %d and %d", opts.MaxCalls, cleanupReserve+8, MaxCalls)
	}
	if opts.ScratchKey == "" {
		opts.ScratchKey = NewScratchKey()
	}
	if opts.SegmentID < 0 || opts.GoalID < 0 {
		return nil, errors.New("doctor: segment and goal ids must be positive")
	}
	d := &Doctor{
		opts:    opts,
		site:    opts.SiteCode,
		key:     opts.ScratchKey,
		envs:    [2]string{envs[0], envs[1]},
		max:     opts.MaxCalls,
		log:     opts.Logger,
		now:     opts.Now,
		cleanup: opts.CleanupTimeout,
		rows:    map[string]*Row{},
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.cleanup <= 0 {
		d.cleanup = DefaultCleanupTimeout
	}
	base := opts.API.HTTPClient
	if base == nil {
		base = &http.Client{}
	}
	transport := base.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	d.rec = &recorder{base: transport, limit: d.max - cleanupReserve}
	hc := *base
	hc.Transport = d.rec

	budget := opts.API.Budget
	if budget == nil {
		budget = kclient.NewBudget(0, 0)
	}
	newClient := func(name string) (*kclient.Client, error) {
		cfg := opts.API
		cfg.HTTPClient = &hc
		cfg.Budget = budget // both clients spend the account's one budget
		// One retry at most: the doctor probes, it does not insist, and every attempt
		// is an API call of its budget.
		cfg.MaxAttempts = 2
		cfg.Observer = func(ci api.CallInfo) {
			d.observed.Add(1)
			d.calls.add(name, ci)
		}
		return kclient.New(cfg)
	}
	var err error
	if d.a, err = newClient("a"); err != nil {
		return nil, fmt.Errorf("doctor: %w", err)
	}
	if d.b, err = newClient("b"); err != nil {
		return nil, fmt.Errorf("doctor: %w", err)
	}
	for _, def := range definitions {
		d.rows[def.id] = &Row{ID: def.id, Kind: def.kind, Behaviour: def.behaviour, Expected: def.expected}
	}
	return d, nil
}

// ScratchKey returns the scratch flag's feature key.
func (d *Doctor) ScratchKey() string { return d.key }

// Budget returns the most API calls Run makes, token requests included.
func (d *Doctor) Budget() int { return d.max }

// Run probes the account, archives the scratch flag (on a fresh, bounded context, so
// also when ctx is cancelled or a probe failed) and returns the report. Run once.
func (d *Doctor) Run(ctx context.Context) *Report {
	d.log.Info("doctor starting", "site", d.site, "scratch_flag", d.key, "max_calls", d.max)
	d.probe(ctx)

	d.rec.setLimit(d.max)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cleanup)
	defer cancel()
	d.archive(cctx)

	d.finish(ctx)
	rep := d.report()
	d.log.Info("doctor done", "site", d.site, "scratch_flag", d.key, "calls", rep.CallsUsed, "archived", rep.Archived, "ok", rep.OK)
	return rep
}

// used is the API calls made so far: the exchanges the observers saw, less those the
// recorder refused to send.
func (d *Doctor) used() int { return int(d.observed.Load()) - d.rec.refusedCount() }

// report assembles the rows in their order.
func (d *Doctor) report() *Report {
	rep := &Report{
		FormatVersion: FormatVersion,
		Site:          d.site,
		CallsBudget:   d.max,
		CallsUsed:     d.used(),
		ScratchFlag:   d.key,
		Archived:      d.st.archived,
	}
	for _, def := range definitions {
		r := *d.rows[def.id]
		if !r.probed && r.Observed == "" {
			r.Observed = "not probed: " + d.stopReason()
			r.Consequence = "unknown"
		}
		rep.Rows = append(rep.Rows, r)
	}
	rep.OK = len(rep.Failures()) == 0
	return rep
}

// stopReason says why rows were left unprobed.
func (d *Doctor) stopReason() string {
	if d.st.stop != "" {
		return d.st.stop
	}
	return "an earlier step failed"
}

// --- row results ------------------------------------------------------------------

func boolPtr(b bool) *bool { return &b }

// holds records a relied-upon row's result.
func (d *Doctor) holds(id string, ok bool, observed, consequence, advice string) {
	r := d.rows[id]
	r.probed, r.Holds, r.Observed, r.Consequence, r.Advice = true, boolPtr(ok), observed, consequence, advice
	d.log.Debug("doctor row", "row", id, "holds", ok, "observed", observed)
}

// reading records a reading row's result.
func (d *Doctor) reading(id, reading, observed, consequence string) {
	r := d.rows[id]
	r.probed, r.Reading, r.Observed, r.Consequence = true, reading, observed, consequence
	d.log.Debug("doctor row", "row", id, "reading", reading, "observed", observed)
}

// inconclusive records a relied-upon row the account gave nothing to probe with.
func (d *Doctor) inconclusive(id, observed, consequence, advice string) {
	r := d.rows[id]
	r.probed, r.inconclusive, r.Observed, r.Consequence, r.Advice = true, true, observed, consequence, advice
}

// skip marks rows not probed for reason, unless they have a result already.
func (d *Doctor) skip(reason string, ids ...string) {
	for _, id := range ids {
		if r := d.rows[id]; !r.probed && r.Observed == "" {
			r.Observed, r.Consequence = "not probed: "+reason, "unknown"
		}
	}
}

// can reports whether a step of at most n calls may start: ctx is live and the calls fit
// the budget less the cleanup reserve. Otherwise it marks ids not probed and says why.
func (d *Doctor) can(ctx context.Context, n int, ids ...string) bool {
	if ctx.Err() != nil {
		d.st.stop = "the run was cancelled"
		d.skip(d.st.stop, ids...)
		return false
	}
	if left := d.max - cleanupReserve - d.used(); n > left {
		d.st.stop = fmt.Sprintf("budget (%d of %d calls used, %d kept for archiving the scratch flag)", d.used(), d.max, cleanupReserve)
		d.skip(d.st.stop, ids...)
		return false
	}
	return true
}

// --- the call log -------------------------------------------------------------------

// call is one HTTP exchange a client's observer saw.
type call struct {
	client string // "a" or "b"
	api.CallInfo
}

type callLog struct {
	mu    sync.Mutex
	calls []call
}

func (l *callLog) add(client string, ci api.CallInfo) {
	l.mu.Lock()
	l.calls = append(l.calls, call{client, ci})
	l.mu.Unlock()
}

// since returns the calls from index i on, and the log's length.
func (l *callLog) since(i int) ([]call, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls[min(i, len(l.calls)):]), len(l.calls)
}

func (l *callLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

const tokenEndpoint = "/oauth/token"

// --- the recorder -------------------------------------------------------------------

// errCallBudget is the recorder's refusal to send a call past the doctor's budget.
var errCallBudget = errors.New("flagsync doctor's call budget is spent; not sent")

// exchange is one HTTP exchange as the recorder saw it: the headers that matter.
type exchange struct {
	method, path string
	status       int
	rate         http.Header // rate-limit headers of the answer
	paging       http.Header // X-Pagination-* headers of the answer
}

// recorder is the clients' transport: it refuses calls past the budget, so that the
// doctor never exceeds it whatever retries happen, and keeps the headers of each answer
// (the client hands back bodies only). It never keeps a request's or answer's body or
// an Authorization header.
type recorder struct {
	base http.RoundTripper

	mu        sync.Mutex
	limit     int // calls that may be sent in all
	sent      int
	refused   int
	exchanges []exchange
}

func (r *recorder) setLimit(n int) {
	r.mu.Lock()
	r.limit = n
	r.mu.Unlock()
}

func (r *recorder) refusedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused
}

// RoundTrip sends req unless the budget is spent, and records the answer's headers.
func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	if r.sent >= r.limit {
		r.refused++
		r.mu.Unlock()
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, errCallBudget
	}
	r.sent++
	r.mu.Unlock()
	resp, err := r.base.RoundTrip(req)
	ex := exchange{method: req.Method, path: req.URL.Path, rate: http.Header{}, paging: http.Header{}}
	if err == nil {
		ex.status = resp.StatusCode
		for k, v := range resp.Header {
			switch lk := strings.ToLower(k); {
			case isRateHeader(lk):
				ex.rate[k] = slices.Clone(v)
			case strings.HasPrefix(lk, "x-pagination-"):
				ex.paging[k] = slices.Clone(v)
			}
		}
	}
	r.mu.Lock()
	r.exchanges = append(r.exchanges, ex)
	r.mu.Unlock()
	return resp, err
}

// isRateHeader reports whether a lower-case header name is a rate-limit header: the
// X-RateLimit-* family, the IETF RateLimit-* drafts, or Retry-After.
func isRateHeader(lk string) bool {
	return strings.HasPrefix(lk, "x-ratelimit") || strings.HasPrefix(lk, "x-rate-limit") ||
		strings.HasPrefix(lk, "ratelimit") || lk == "retry-after"
}

// last returns the latest exchange, if any.
func (r *recorder) last() (exchange, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.exchanges) == 0 {
		return exchange{}, false
	}
	return r.exchanges[len(r.exchanges)-1], true
}

func (r *recorder) all() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.exchanges)
}
