package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxResponseBody bounds what a Caller reads from one response.
const maxResponseBody = 64 << 20

// Request is one HTTP call exactly as it will be sent: a plan carries it so that what is
// reviewed is what is applied.
type Request struct {
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body,omitempty"`
}

// CallInfo describes one HTTP exchange with an API, for metrics.
type CallInfo struct {
	Endpoint string // path template, e.g. /feature-flags/{siteCode}/{featureKey}/{environmentKey}
	Method   string
	Status   int // 0 when no response arrived
	Duration time.Duration
	Attempt  int // 1 for the first attempt of a call
}

// Auth supplies a Caller's credentials. A vendor whose API takes a static key returns it
// from Header and never renews; one with expiring tokens fetches them in Ready.
type Auth interface {
	// Ready makes sure a credential is at hand before an attempt (fetching a token,
	// say); it is called before every attempt of a call that is not NoAuth.
	Ready(ctx context.Context) error
	// Header returns the Authorization header to send now, read once the attempt's
	// budget slot is granted, and whether it is still good to send (a token can expire
	// during a long wait for the budget).
	Header() (value string, fresh bool)
	// Refused is told that the API answered 401 to value. It reports whether the call
	// may be tried once more with new credentials (a token was dropped and Ready will
	// fetch another); false makes the 401 the call's error.
	Refused(value string) bool
	// Secrets returns the values that are redacted from error bodies.
	Secrets() []string
}

// Hooks are the decisions a vendor's client supplies to the shared retry loop. Every
// field is optional.
type Hooks struct {
	// Auth supplies credentials; nil sends none.
	Auth Auth
	// RateLimitWait reads how long a 429 asks to wait; default RetryAfter.
	RateLimitWait func(h http.Header, now time.Time) (time.Duration, bool)
	// NewError builds the error for a response that is not 2xx; default: NewError on the
	// body with Auth's secrets and secret-named fields redacted (Redact).
	NewError func(method, path string, status int, body []byte) *Error
	// MayResend reports whether Do may send req again after a failure whose effect on
	// the server is unknown (a timeout, a dropped connection, a 5xx). Default: reads
	// (GET and HEAD) only, so that a POST is never blindly sent twice.
	MayResend func(req Request) bool
	// Endpoint maps a request to its path template for CallInfo, so that metrics labels
	// do not grow with every flag; default "other".
	Endpoint func(method, path string) string
}

// CallerConfig configures a Caller. A vendor's client fills in its own defaults.
type CallerConfig struct {
	// Name names the API in log messages ("API", "Split API"): "<Name> call failed;
	// retrying". Default "API".
	Name    string
	BaseURL string // scheme, host and optional path prefix; no trailing slash needed

	HTTPClient  *http.Client  // default: a new client on http.DefaultTransport
	Logger      *slog.Logger  // default: discard
	Budget      *Budget       // shared rate budget; required
	CallTimeout time.Duration // limit of one HTTP exchange, response body included

	// Retries. A retry without a rate-limit wait waits BackoffBase, doubling each time up
	// to BackoffMax, plus up to 50 % jitter. A call gives up after MaxAttempts attempts,
	// or when the next wait would take it past MaxElapsed.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	MaxAttempts int
	MaxElapsed  time.Duration

	// Observer, when set, is called after every HTTP exchange, for metrics.
	Observer func(CallInfo)
	// Now is the clock used for elapsed time and Retry-After dates; default time.Now.
	Now func() time.Time

	Hooks Hooks
}

// Caller sends calls to one HTTP API: each logical call within the budget and a per-call
// timeout, with credentials, and retried with jittered backoff when the failure is
// transient (429, 423, 5xx, network) and resending is safe. It is safe for concurrent
// use.
type Caller struct {
	cfg  CallerConfig
	base string
	http *http.Client
	log  *slog.Logger
}

// NewCaller returns a Caller for cfg.
func NewCaller(cfg CallerConfig) *Caller {
	if cfg.Name == "" {
		cfg.Name = "API"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 1
	}
	return &Caller{cfg: cfg, base: strings.TrimRight(cfg.BaseURL, "/"), http: cfg.HTTPClient, log: cfg.Logger}
}

// Budget returns the rate budget the caller spends.
func (c *Caller) Budget() *Budget { return c.cfg.Budget }

// Backoff is the wait before retry n (from 1) with the caller's settings: see Backoff.
func (c *Caller) Backoff(n int) time.Duration {
	return Backoff(n, c.cfg.BackoffBase, c.cfg.BackoffMax)
}

// GiveUp reports whether a call that has failed failures times since start should stop
// rather than wait delay for another attempt.
func (c *Caller) GiveUp(failures int, start time.Time, delay time.Duration) bool {
	return failures >= c.cfg.MaxAttempts || c.cfg.Now().Sub(start)+delay > c.cfg.MaxElapsed
}

// Now returns the caller's clock.
func (c *Caller) Now() time.Time { return c.cfg.Now() }

// Call is one logical API call, which may take several HTTP attempts.
type Call struct {
	Method      string
	Path        string // may carry a query after '?'
	Query       url.Values
	Body        []byte
	ContentType string // default application/json when there is a body
	NoAuth      bool   // send no credentials (the token request itself)
	// Uncharged: the request takes no slot of the budget. For a vendor's token request,
	// when the vendor's limits are not shown to count it: charging it would make a call
	// that fits the vendor's limit wait for a window it does not need.
	Uncharged bool
	// Resend: the request may be sent again after a failure whose effect on the server is
	// unknown (timeout, dropped connection, 5xx). True for idempotent requests only.
	Resend bool
}

func (cl *Call) endpointPath() string {
	p, _, _ := strings.Cut(cl.Path, "?")
	return p
}

// Response is a 2xx answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends req exactly (method, path and body, as a plan carries it) and returns the
// response body. It is resent after a transient failure only when Hooks.MayResend says
// so; a refusal (429, 423) or a connection that never opened is retried whatever the
// method, since nothing reached the server.
func (c *Caller) Do(ctx context.Context, req Request) (json.RawMessage, error) {
	mayResend := c.cfg.Hooks.MayResend
	if mayResend == nil {
		mayResend = func(r Request) bool { return r.Method == http.MethodGet || r.Method == http.MethodHead }
	}
	var body []byte
	if len(req.Body) > 0 {
		body = req.Body
	}
	res, err := c.Send(ctx, Call{Method: req.Method, Path: req.Path, Body: body, Resend: mayResend(req)})
	if err != nil {
		return nil, err
	}
	return res.Body, nil
}

// Send runs a call: budget, credentials, timeout, retries. It returns the 2xx response,
// or an *Error, or a network error wrapped with method and path.
func (c *Caller) Send(ctx context.Context, cl Call) (*Response, error) {
	path := cl.endpointPath()
	start := c.cfg.Now()
	auth := c.cfg.Hooks.Auth
	if cl.NoAuth {
		auth = nil
	}
	reauthed, handedBack := false, false
	for attempt, failures := 1, 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s %s: %w", cl.Method, path, err)
		}
		if auth != nil {
			// Make sure a credential is at hand; attempt takes the freshest one once its
			// budget slot is granted, which can be long after this.
			if err := auth.Ready(ctx); err != nil {
				return nil, fmt.Errorf("%s %s: %w", cl.Method, path, err)
			}
		}
		res, sent, err := c.attempt(ctx, &cl, auth, attempt, !handedBack)
		if errors.Is(err, errCredentialStale) {
			// Once per call: were tokens shorter-lived than budget waits, renewing
			// before every send would never end; the next attempt sends what it has
			// and a 401 renews the token as usual.
			handedBack = true
			attempt-- // nothing was sent
			continue
		}

		var lastErr error
		var delay time.Duration
		hasDelay := false
		switch {
		case err != nil:
			if final(ctx, &cl, err) {
				return nil, err
			}
			lastErr = err
		case res.Status == http.StatusUnauthorized && auth != nil && !reauthed && auth.Refused(sent):
			// The token was revoked or expired early: it was dropped; fetch a new one
			// and try this call once more.
			c.log.Debug(c.cfg.Name+" refused the token; renewing it", "method", cl.Method, "path", path)
			reauthed = true
			continue
		case res.Status >= 200 && res.Status < 300:
			return res, nil
		default:
			apiErr := c.newError(cl.Method, path, res.Status, res.Body)
			if !apiErr.Retryable || (res.Status >= 500 && !cl.Resend) {
				return nil, apiErr
			}
			lastErr = apiErr
			if res.Status == http.StatusTooManyRequests {
				delay, hasDelay = c.rateLimitWait(res.Header)
			}
		}
		failures++
		if !hasDelay {
			delay = c.Backoff(failures)
		}
		if c.GiveUp(failures, start, delay) {
			return nil, lastErr
		}
		c.log.Warn(c.cfg.Name+" call failed; retrying", "method", cl.Method, "path", path, "attempt", attempt, "retry_in_ms", delay.Milliseconds(), "error", lastErr.Error())
		if err := Sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("%s %s: %w (after %w)", cl.Method, path, err, lastErr)
		}
	}
}

// final reports whether an attempt's error ends the call: the call was cancelled, its
// guard stopped it, or the request may have reached the server and may not be resent.
func final(ctx context.Context, cl *Call, err error) bool {
	return ctx.Err() != nil || guardStopped(err) || (!cl.Resend && !NotSent(err))
}

func (c *Caller) rateLimitWait(h http.Header) (time.Duration, bool) {
	if c.cfg.Hooks.RateLimitWait != nil {
		return c.cfg.Hooks.RateLimitWait(h, c.cfg.Now())
	}
	return RetryAfter(h, c.cfg.Now())
}

func (c *Caller) newError(method, path string, status int, body []byte) *Error {
	if c.cfg.Hooks.NewError != nil {
		return c.cfg.Hooks.NewError(method, path, status, body)
	}
	var secrets []string
	if c.cfg.Hooks.Auth != nil {
		secrets = c.cfg.Hooks.Auth.Secrets()
	}
	return NewError(method, path, status, Redact(body, secrets...))
}

// errCredentialStale says the credential expired while the call waited for its budget
// slot; the slot was handed back unused and the caller renews it before trying again.
var errCredentialStale = errors.New("access token expired while waiting for the budget")

// attempt sends one HTTP request within the budget and the per-call timeout, with the
// credential that is current when its budget slot is granted (a wait for a long window
// can outlast a token), and returns the Authorization value it sent. With renewStale, a
// credential that expired during the wait is not sent: the slot goes back unused and
// errCredentialStale says to renew it first.
func (c *Caller) attempt(ctx context.Context, cl *Call, auth Auth, attempt int, renewStale bool) (*Response, string, error) {
	path := cl.endpointPath()
	release := func(bool) {}
	if !cl.Uncharged {
		var err error
		if release, err = c.cfg.Budget.acquire(ctx); err != nil {
			return nil, "", fmt.Errorf("%s %s: %w", cl.Method, path, err)
		}
	}
	var header string
	if auth != nil {
		value, fresh := auth.Header()
		if !fresh && renewStale {
			release(false)
			return nil, "", errCredentialStale
		}
		header = value
	}
	if guard := guardFrom(ctx); guard != nil {
		if err := guard(ctx); err != nil {
			release(false)
			return nil, header, &GuardError{Method: cl.Method, Path: path, Err: err}
		}
	}
	defer release(true)

	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	target := c.base + cl.Path
	if len(cl.Query) > 0 {
		sep := "?"
		if strings.Contains(cl.Path, "?") {
			sep = "&"
		}
		target += sep + cl.Query.Encode()
	}
	var body io.Reader
	if cl.Body != nil {
		body = bytes.NewReader(cl.Body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.Method, target, body)
	if err != nil {
		return nil, header, fmt.Errorf("%s %s: build request: %w", cl.Method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", UserAgent())
	if cl.Body != nil {
		ct := cl.ContentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if header != "" {
		req.Header.Set("Authorization", header)
	}

	began := time.Now()
	res := &Response{}
	resp, err := c.http.Do(req)
	if err == nil {
		res.Status, res.Header = resp.StatusCode, resp.Header
		res.Body, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
		resp.Body.Close()
	}
	took := time.Since(began)
	if c.cfg.Observer != nil {
		endpoint := "other"
		if c.cfg.Hooks.Endpoint != nil {
			endpoint = c.cfg.Hooks.Endpoint(cl.Method, path)
		}
		c.cfg.Observer(CallInfo{Endpoint: endpoint, Method: cl.Method, Status: res.Status, Duration: took, Attempt: attempt})
	}
	if err != nil {
		err = fmt.Errorf("%s %s: %w", cl.Method, path, UnwrapURLError(err))
		c.log.Debug(c.cfg.Name+" call", "method", cl.Method, "path", path, "status", res.Status, "duration_ms", took.Milliseconds(), "attempt", attempt, "error", err.Error())
		return nil, header, err
	}
	c.log.Debug(c.cfg.Name+" call", "method", cl.Method, "path", path, "status", res.Status, "duration_ms", took.Milliseconds(), "attempt", attempt)
	return res, header, nil
}

// Ambiguous reports whether a failed call may nonetheless have taken effect: the
// response was lost (timeout, dropped connection) or the server failed while handling
// it. A vendor whose creates are not idempotent looks before it resends one.
func Ambiguous(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Status >= 500
	}
	return !NotSent(err) && !errors.Is(err, context.Canceled)
}
