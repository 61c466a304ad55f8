package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Provider names: the value of Push.Provider, the provider field of log lines and the
// provider label passed to Options.Observe.
const (
	ProviderGitHub          = "github"
	ProviderGitLab          = "gitlab"
	ProviderGitea           = "gitea"
	ProviderForgejo         = "forgejo"
	ProviderGogs            = "gogs"
	ProviderBitbucketCloud  = "bitbucket-cloud"
	ProviderBitbucketServer = "bitbucket-server"
	ProviderGeneric         = "generic"
	// ProviderUnknown labels requests no provider could be recognised for.
	ProviderUnknown = "unknown"
)

// Outcomes: the "outcome" field of every response body and the outcome label passed to
// Options.Observe. The set is closed, so it is safe as a metric label.
const (
	OutcomeAccepted         = "accepted"           // 202: push to the tracked branch; OnPush called once
	OutcomeIgnored          = "ignored"            // 202: verified, but nothing to sync (see the reason)
	OutcomeDuplicate        = "duplicate"          // 200: delivery id (or, with RevisionDedupe, the push) seen before; OnPush not called again
	OutcomeUpToDate         = "up_to_date"         // 200: the pushed revision is already applied (AlreadyApplied); OnPush not called
	OutcomeRateLimited      = "rate_limited"       // 429: too many accepted deliveries from this source; Retry-After says when to retry
	OutcomePing             = "ping"               // 200: the host's connection test
	OutcomeUnauthorized     = "unauthorized"       // 401: missing or wrong signature or token
	OutcomeStale            = "stale"              // 401: signed GitLab delivery older (or newer) than 5 minutes
	OutcomeMalformed        = "malformed"          // 400: signature valid, but the body is not a readable push
	OutcomeUnknownProvider  = "unknown_provider"   // 400: no Git host recognised from path or headers
	OutcomeTooLarge         = "too_large"          // 413: body larger than Options.MaxBody
	OutcomeMethodNotAllowed = "method_not_allowed" // 405: anything but POST
)

// Reasons given with OutcomeIgnored, in the response body and the log line.
const (
	ReasonEvent         = "not a push event"
	ReasonOtherBranch   = "other branch"
	ReasonTag           = "tag push"
	ReasonOtherRef      = "not a branch"
	ReasonDeleted       = "branch deleted"
	ReasonNoRefsChanged = "no refs changed"
)

// Reasons given with OutcomeDuplicate.
const (
	ReasonSameDelivery = "delivery id seen before"
	ReasonSamePush     = "push for this revision seen before"
)

// ReasonAlreadyApplied is given with OutcomeUpToDate.
const ReasonAlreadyApplied = "revision already applied"

// DefaultMaxBody is the body size limit when Options.MaxBody is zero.
const DefaultMaxBody int64 = 1 << 20

// DefaultDedupeSize is how many delivery ids are remembered when Options.DedupeSize is zero.
const DefaultDedupeSize = 1000

// Push is an accepted, verified push to the tracked branch.
type Push struct {
	Provider   string // one of the Provider constants
	DeliveryID string // the host's delivery id; empty when the host sent none
	Branch     string // short branch name, e.g. "main"
	Before     string // commit id before the push; empty or all zeros for a new branch
	After      string // commit id the branch now points at
	// ChangedFiles are the paths added, modified or removed by the pushed commits, in the
	// order first seen, each once. It is nil when the payload cannot tell: the host does
	// not list files (Bitbucket, the generic form), the list was truncated, the push was
	// forced or created the branch. An empty, non-nil slice means no file changed.
	ChangedFiles []string
	Repository   string // "owner/name" (or "PROJECT/slug" for Bitbucket Server) when sent
}

// Options configure a Handler.
type Options struct {
	// Secret is the shared webhook secret (GitHub/Gitea/Bitbucket/generic HMAC key,
	// GitLab secret token, or GitLab signing token "whsec_…"). Required unless
	// AllowUnsigned is set.
	Secret []byte
	// AllowUnsigned accepts requests without verifying anything when Secret is empty.
	// Every request is then logged with a warning. It has no effect when Secret is set.
	AllowUnsigned bool
	// Branch is the tracked branch ("main" or "refs/heads/main"). Required.
	Branch string
	// MaxBody caps the request body in bytes; larger bodies get 413. Default 1 MiB.
	MaxBody int64
	// Logger receives one line per request. Default: discard.
	Logger *slog.Logger
	// OnPush is called once for each accepted push, on the request goroutine. It must
	// not block: the daemon does a non-blocking send on its 1-slot trigger. Required.
	OnPush func(Push)
	// Observe, when set, is called once per request with the provider and outcome
	// (see the Provider and Outcome constants), for metrics.
	Observe func(provider, outcome string)
	// DedupeSize is how many delivery ids are remembered (least recently seen dropped
	// first). Default 1000.
	DedupeSize int
	// Now is the clock used for GitLab timestamp checks and the rate limit. Default
	// time.Now.
	Now func() time.Time

	// RevisionDedupe de-duplicates pushes on what their signature covers, not only on
	// the delivery id (which no provider's signature but GitLab's signing token
	// covers): a push to the revision the branch was last pushed to, or a replay of an
	// earlier push, is answered 200 duplicate however fresh its delivery id. The last
	// DedupeSize pushes are remembered. Off in the zero value so that callers opt in;
	// the daemon turns it on.
	RevisionDedupe bool
	// AlreadyApplied, when set, is asked about each push that would be accepted: true
	// means the branch's pushed revision is already applied and converged, and the
	// push is answered 200 up_to_date without calling OnPush (no fetch). It is called
	// on the request goroutine and must not block.
	AlreadyApplied func(branch, revision string) bool
	// RateLimit limits the deliveries accepted per source (per second; a token bucket
	// of RateBurst). Only verified deliveries that would call OnPush count; more get
	// 429 with Retry-After. Zero: no limit. See DefaultRateLimit and DefaultRateBurst.
	RateLimit rate.Limit
	// RateBurst is the token bucket's size. Default DefaultRateBurst when RateLimit is
	// set.
	RateBurst int
	// Source names the sender of a delivery for the rate limit. Default: the peer's IP
	// address. Behind a reverse proxy, derive it from the proxy's forwarding header,
	// trusting only what the proxy sets.
	Source func(*http.Request) string
}

// String describes the options without the secret, so that printing them is safe.
func (o Options) String() string {
	return fmt.Sprintf("webhook.Options{Secret:%s Branch:%q MaxBody:%d DedupeSize:%d AllowUnsigned:%t RevisionDedupe:%t RateLimit:%g RateBurst:%d}",
		redacted(o.Secret), o.Branch, o.MaxBody, o.DedupeSize, o.AllowUnsigned, o.RevisionDedupe, float64(o.RateLimit), o.RateBurst)
}

// LogValue logs the options without the secret.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("secret", redacted(o.Secret)),
		slog.String("branch", o.Branch),
		slog.Int64("max_body", o.MaxBody),
		slog.Int("dedupe_size", o.DedupeSize),
		slog.Bool("allow_unsigned", o.AllowUnsigned),
		slog.Bool("revision_dedupe", o.RevisionDedupe),
		slog.Float64("rate_limit", float64(o.RateLimit)),
		slog.Int("rate_burst", o.RateBurst),
	)
}

func redacted(secret []byte) string {
	if len(secret) == 0 {
		return "(none)"
	}
	return "(redacted)"
}

// Handler is the webhook endpoint: an http.Handler for POST requests from Git hosts.
//
// Mount it at /webhook; the provider is then recognised from the request headers. It
// may also be mounted under /webhook/ (or "POST /webhook/{provider}"): when the last
// path element names a provider (github, gitlab, gitea, forgejo, gogs, bitbucket,
// bitbucket-cloud, bitbucket-server, generic) that provider is forced.
//
// A Handler is safe for concurrent use.
type Handler struct {
	keys     keys
	unsigned bool
	branch   string
	maxBody  int64
	log      *slog.Logger
	onPush   func(Push)
	observe  func(provider, outcome string)
	seen     *deliveries
	now      func() time.Time
	pushes   *pushes // nil: no revision de-duplication
	applied  func(branch, revision string) bool
	limit    *limiter // nil: no rate limit
	source   func(*http.Request) string
}

// New builds a Handler. It refuses an empty secret unless AllowUnsigned is set, and
// requires Branch and OnPush.
func New(opts Options) (*Handler, error) {
	if len(opts.Secret) == 0 && !opts.AllowUnsigned {
		return nil, errors.New("build webhook handler: a webhook secret is required")
	}
	branch := strings.TrimPrefix(opts.Branch, "refs/heads/")
	if branch == "" {
		return nil, errors.New("build webhook handler: a tracked branch is required")
	}
	if opts.OnPush == nil {
		return nil, errors.New("build webhook handler: OnPush is required")
	}
	if opts.MaxBody < 0 {
		return nil, fmt.Errorf("build webhook handler: max body %d: must not be negative", opts.MaxBody)
	}
	if opts.DedupeSize < 0 {
		return nil, fmt.Errorf("build webhook handler: dedupe size %d: must not be negative", opts.DedupeSize)
	}
	if opts.RateLimit < 0 || opts.RateBurst < 0 {
		return nil, fmt.Errorf("build webhook handler: rate limit %g/s, burst %d: must not be negative", float64(opts.RateLimit), opts.RateBurst)
	}
	h := &Handler{
		keys:     newKeys(opts.Secret),
		unsigned: len(opts.Secret) == 0,
		branch:   branch,
		maxBody:  opts.MaxBody,
		log:      opts.Logger,
		onPush:   opts.OnPush,
		observe:  opts.Observe,
		now:      opts.Now,
		applied:  opts.AlreadyApplied,
		source:   opts.Source,
	}
	if h.maxBody == 0 {
		h.maxBody = DefaultMaxBody
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	size := opts.DedupeSize
	if size == 0 {
		size = DefaultDedupeSize
	}
	h.seen = newDeliveries(size)
	if opts.RevisionDedupe {
		h.pushes = newPushes(size)
	}
	if opts.RateLimit > 0 {
		burst := opts.RateBurst
		if burst == 0 {
			burst = DefaultRateBurst
		}
		h.limit = newLimiter(opts.RateLimit, burst)
	}
	if h.source == nil {
		h.source = remoteIP
	}
	if h.unsigned {
		h.log.Warn("webhook signature verification is DISABLED: anyone who can reach the webhook endpoint can trigger syncs")
	}
	return h, nil
}

// String describes the handler without its secret.
func (h *Handler) String() string {
	return fmt.Sprintf("webhook.Handler{branch:%q unsigned:%t}", h.branch, h.unsigned)
}

// result is what one request came to.
type result struct {
	provider string
	status   int
	outcome  string
	reason   string // why ignored or rejected; never contains a secret or a signature
	delivery string
	event    string
	push     *Push // set when accepted
	err      error // detail for the log only
	retry    int   // Retry-After seconds, for a 429
}

// ServeHTTP verifies, parses and answers one webhook delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res := h.handle(w, r)
	h.record(r, res)
	if res.push != nil {
		h.onPush(*res.push)
	}
	if res.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	if res.retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(res.retry))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(res.status)
	body, _ := json.Marshal(struct {
		Outcome string `json:"outcome"`
		Reason  string `json:"reason,omitempty"`
	}{res.outcome, res.reason})
	_, _ = w.Write(append(body, '\n'))
}

func (h *Handler) handle(w http.ResponseWriter, r *http.Request) result {
	if r.Method != http.MethodPost {
		return result{provider: ProviderUnknown, status: http.StatusMethodNotAllowed, outcome: OutcomeMethodNotAllowed}
	}
	prov := detectProvider(r.URL.Path, r.Header)
	res := result{provider: prov, delivery: deliveryID(prov, r.Header), event: eventName(prov, r.Header)}
	if prov == ProviderUnknown {
		res.status, res.outcome, res.reason = http.StatusBadRequest, OutcomeUnknownProvider, "no Git host recognised from the path or headers"
		return res
	}
	if r.ContentLength > h.maxBody {
		res.status, res.outcome = http.StatusRequestEntityTooLarge, OutcomeTooLarge
		return res
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			res.status, res.outcome = http.StatusRequestEntityTooLarge, OutcomeTooLarge
			return res
		}
		res.status, res.outcome, res.reason, res.err = http.StatusBadRequest, OutcomeMalformed, "unreadable body", err
		return res
	}

	if h.unsigned {
		h.log.Warn("webhook signature NOT verified: no secret configured (AllowUnsigned)", "provider", prov)
	} else if err := verify(prov, r.Header, body, h.keys, h.now()); err != nil {
		res.status, res.outcome, res.reason = http.StatusUnauthorized, OutcomeUnauthorized, err.Error()
		if errors.Is(err, errStale) {
			res.outcome = OutcomeStale
		}
		return res
	}

	switch eventKind(prov, res.event) {
	case kindPing:
		res.status, res.outcome = http.StatusOK, OutcomePing
		return res
	case kindOther:
		res.status, res.outcome, res.reason = http.StatusAccepted, OutcomeIgnored, ReasonEvent
		return res
	}

	payload, err := parse(prov, body)
	if err != nil {
		res.status, res.outcome, res.reason, res.err = http.StatusBadRequest, OutcomeMalformed, "payload is not a readable push", err
		return res
	}
	if !h.seen.add(prov, res.delivery) {
		res.status, res.outcome, res.reason = http.StatusOK, OutcomeDuplicate, ReasonSameDelivery
		return res
	}
	change, reason := payload.find(h.branch)
	if reason != "" {
		res.status, res.outcome, res.reason = http.StatusAccepted, OutcomeIgnored, reason
		return res
	}
	push := &Push{
		Provider:     prov,
		DeliveryID:   res.delivery,
		Branch:       change.name,
		Before:       change.before,
		After:        change.after,
		ChangedFiles: change.files,
		Repository:   payload.repository,
	}
	return h.admit(r, res, push)
}

// admit decides about a verified push to the tracked branch: a duplicate of one seen
// before, already applied, over the source's rate limit, or accepted.
func (h *Handler) admit(r *http.Request, res result, push *Push) result {
	undo := func() {}
	if h.pushes != nil {
		isNew, forget := h.pushes.reserve(newPushKey(*push))
		if !isNew {
			res.status, res.outcome, res.reason = http.StatusOK, OutcomeDuplicate, ReasonSamePush
			return res
		}
		undo = forget
	}
	if h.applied != nil && h.applied(push.Branch, push.After) {
		res.status, res.outcome, res.reason = http.StatusOK, OutcomeUpToDate, ReasonAlreadyApplied
		return res
	}
	if h.limit != nil {
		if ok, wait := h.limit.allow(h.source(r), h.now()); !ok {
			// Forget this delivery, so that the host's retry is judged afresh.
			undo()
			h.seen.remove(res.provider, res.delivery)
			res.status, res.outcome, res.retry = http.StatusTooManyRequests, OutcomeRateLimited, retryAfterSeconds(wait)
			return res
		}
	}
	res.status, res.outcome, res.push = http.StatusAccepted, OutcomeAccepted, push
	return res
}

// record logs the request once and reports it to Observe. Header values that were not
// verified are clipped; signatures, tokens and the secret are never logged.
func (h *Handler) record(r *http.Request, res result) {
	if h.observe != nil {
		h.observe(res.provider, res.outcome)
	}
	attrs := []any{
		"provider", res.provider,
		"outcome", res.outcome,
		"status", res.status,
	}
	if res.delivery != "" {
		attrs = append(attrs, "delivery", clip(res.delivery))
	}
	if res.event != "" {
		attrs = append(attrs, "event", clip(res.event))
	}
	if res.reason != "" {
		attrs = append(attrs, "reason", res.reason)
	}
	if res.err != nil {
		attrs = append(attrs, "err", res.err.Error())
	}
	if p := res.push; p != nil {
		attrs = append(attrs, "branch", p.Branch, "after", p.After)
		if p.Repository != "" {
			attrs = append(attrs, "repository", clip(p.Repository))
		}
		if p.ChangedFiles != nil { // nil: the payload does not list them
			attrs = append(attrs, "changed_files", len(p.ChangedFiles))
		}
	}
	switch res.status {
	case http.StatusOK, http.StatusAccepted, http.StatusMethodNotAllowed:
		h.log.Info("webhook delivery", attrs...)
	default:
		attrs = append(attrs, "remote", r.RemoteAddr)
		h.log.Warn("webhook delivery rejected", attrs...)
	}
}

// clip shortens a header value for a log line.
func clip(s string) string {
	const limit = 128
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}
