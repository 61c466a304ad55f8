package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultBaseURL is the Automation API's address; it has no version prefix.
const DefaultBaseURL = "https://api.kameleoon.com"

// Defaults for the zero values of Config.
const (
	DefaultCallTimeout = 30 * time.Second
	DefaultPerPage     = 100
	DefaultBackoffBase = 10 * time.Second
	DefaultBackoffMax  = 2 * time.Minute
	DefaultMaxAttempts = 5
	DefaultMaxElapsed  = 3 * time.Minute
)

// maxResponseBody bounds what the client reads from one response.
const maxResponseBody = 64 << 20

// Config configures a Client. Only ClientID and ClientSecret are required.
type Config struct {
	BaseURL      string // default DefaultBaseURL
	ClientID     string
	ClientSecret string

	HTTPClient  *http.Client  // default: a new client on http.DefaultTransport
	Logger      *slog.Logger  // default: discard
	Budget      *Budget       // shared rate budget; nil = a new NewBudget(0, 0)
	CallTimeout time.Duration // limit of one HTTP exchange, response body included; default 30 s
	PerPage     int           // page size of list calls; default 100 (the API's maximum is not documented)

	// Observer, when set, is called after every HTTP exchange (token requests included),
	// for metrics.
	Observer func(CallInfo)

	// Retries. A retry without a Retry-After header waits BackoffBase, doubling each time
	// up to BackoffMax, plus up to 50 % jitter. A call gives up after MaxAttempts
	// attempts, or when the next wait would take it past MaxElapsed.
	BackoffBase time.Duration // default 10 s, the least the API documentation asks for
	BackoffMax  time.Duration // default 2 min
	MaxAttempts int           // default 5
	MaxElapsed  time.Duration // default 3 min

	// Now is the clock used for token expiry and Retry-After dates; default time.Now.
	Now func() time.Time
}

// CallInfo describes one HTTP exchange with the API.
type CallInfo struct {
	Endpoint string // path template, e.g. /feature-flags/{siteCode}/{featureKey}/{environmentKey}
	Method   string
	Status   int // 0 when no response arrived
	Duration time.Duration
	Attempt  int // 1 for the first attempt of a call
}

// Client calls Kameleoon's Automation API. It is safe for concurrent use; all its calls
// share one token and one rate budget.
type Client struct {
	cfg    Config
	base   string
	http   *http.Client
	log    *slog.Logger
	budget *Budget
	tokens *tokenSource
	fields optionalFields // which optionalFields names reads ask for
}

// New returns a client for cfg, filling in defaults.
func New(cfg Config) (*Client, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("new API client: client id and client secret are required")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("new API client: base URL %q: want http(s)://host[/prefix]", cfg.BaseURL)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Budget == nil {
		cfg.Budget = NewBudget(0, 0)
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.PerPage <= 0 {
		cfg.PerPage = DefaultPerPage
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = DefaultBackoffBase
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MaxElapsed <= 0 {
		cfg.MaxElapsed = DefaultMaxElapsed
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Client{
		cfg:    cfg,
		base:   strings.TrimRight(cfg.BaseURL, "/"),
		http:   cfg.HTTPClient,
		log:    cfg.Logger,
		budget: cfg.Budget,
	}
	c.tokens = &tokenSource{c: c}
	return c, nil
}

// Budget returns the rate budget the client spends, for status and metrics.
func (c *Client) Budget() *Budget { return c.budget }

func (c *Client) now() time.Time { return c.cfg.Now() }

// call is one logical API call, which may take several HTTP attempts.
type call struct {
	method      string
	path        string // may carry a query after '?'
	query       url.Values
	body        []byte
	contentType string // default application/json when there is a body
	noAuth      bool   // the token request itself
	// resend: the request may be sent again after a failure whose effect on the server is
	// unknown (timeout, dropped connection, 5xx). True for idempotent requests only.
	resend bool
}

func (cl *call) endpointPath() string {
	p, _, _ := strings.Cut(cl.path, "?")
	return p
}

// response is what one attempt got back.
type response struct {
	status int
	header http.Header
	body   []byte
}

// send runs a call: budget, token, timeout, retries. It returns the 2xx response, or an
// *Error, or a network error wrapped with method and path.
func (c *Client) send(ctx context.Context, cl call) (*response, error) {
	path := cl.endpointPath()
	start := c.now()
	reauthed, handedBack := false, false
	for attempt, failures := 1, 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s %s: %w", cl.method, path, err)
		}
		if !cl.noAuth {
			// Make sure a token is cached; attempt takes the freshest one once its budget
			// slot is granted, which can be long after this.
			if _, err := c.tokens.get(ctx); err != nil {
				return nil, fmt.Errorf("%s %s: %w", cl.method, path, err)
			}
		}
		res, token, err := c.attempt(ctx, &cl, attempt, !handedBack)
		if errors.Is(err, errTokenStale) {
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
			if ctx.Err() != nil || (!cl.resend && !NotSent(err)) {
				return nil, err
			}
			lastErr = err
		case res.status == http.StatusUnauthorized && !cl.noAuth && !reauthed:
			// The token was revoked or expired early: drop it, fetch a new one and try
			// this call once more.
			c.log.Debug("API refused the token; renewing it", "method", cl.method, "path", path)
			c.tokens.drop(token)
			reauthed = true
			continue
		case res.status >= 200 && res.status < 300:
			return res, nil
		default:
			apiErr := newError(cl.method, path, res.status, redact(res.body, c.tokens.secrets()...))
			if !apiErr.Retryable || (res.status >= 500 && !cl.resend) {
				return nil, apiErr
			}
			lastErr = apiErr
			if res.status == http.StatusTooManyRequests {
				delay, hasDelay = RetryAfter(res.header, c.now())
			}
		}
		failures++
		if !hasDelay {
			delay = c.backoff(failures)
		}
		if failures >= c.cfg.MaxAttempts || c.now().Sub(start)+delay > c.cfg.MaxElapsed {
			return nil, lastErr
		}
		c.log.Warn("API call failed; retrying", "method", cl.method, "path", path, "attempt", attempt, "retry_in", delay, "error", lastErr.Error())
		if err := Sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("%s %s: %w (after %w)", cl.method, path, err, lastErr)
		}
	}
}

// errTokenStale says the token expired while the call waited for its budget slot; the
// slot was handed back unused and the caller renews the token before trying again.
var errTokenStale = errors.New("access token expired while waiting for the budget")

// attempt sends one HTTP request within the budget and the per-call timeout, with the
// token that is current when its budget slot is granted (a wait for the hourly window
// can outlast a token), and returns the token it sent. With renewStale, a token that
// expired during the wait is not sent: the slot goes back unused and errTokenStale says
// to renew it first.
func (c *Client) attempt(ctx context.Context, cl *call, attempt int, renewStale bool) (*response, string, error) {
	path := cl.endpointPath()
	release, err := c.budget.acquire(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", cl.method, path, err)
	}
	var token string
	if !cl.noAuth {
		tok, fresh := c.tokens.peek()
		if !fresh && renewStale {
			release(false)
			return nil, "", errTokenStale
		}
		token = tok
	}
	defer release(true)

	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	target := c.base + cl.path
	if len(cl.query) > 0 {
		sep := "?"
		if strings.Contains(cl.path, "?") {
			sep = "&"
		}
		target += sep + cl.query.Encode()
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, target, body)
	if err != nil {
		return nil, token, fmt.Errorf("%s %s: build request: %w", cl.method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "flagsync")
	if cl.body != nil {
		ct := cl.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}

	began := time.Now()
	res := &response{}
	resp, err := c.http.Do(req)
	if err == nil {
		res.status, res.header = resp.StatusCode, resp.Header
		res.body, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
		resp.Body.Close()
	}
	took := time.Since(began)
	if c.cfg.Observer != nil {
		c.cfg.Observer(CallInfo{Endpoint: endpointTemplate(path), Method: cl.method, Status: res.status, Duration: took, Attempt: attempt})
	}
	if err != nil {
		err = fmt.Errorf("%s %s: %w", cl.method, path, UnwrapURLError(err))
		c.log.Debug("API call", "method", cl.method, "path", path, "status", res.status, "duration", took, "attempt", attempt, "error", err.Error())
		return nil, token, err
	}
	c.log.Debug("API call", "method", cl.method, "path", path, "status", res.status, "duration", took, "attempt", attempt)
	return res, token, nil
}

// ambiguous reports whether a failed call may nonetheless have taken effect: the
// response was lost (timeout, dropped connection) or the server failed while handling it.
func ambiguous(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Status >= 500
	}
	return !NotSent(err) && !errors.Is(err, context.Canceled)
}

// backoff is the wait before retry n (from 1): see Backoff.
func (c *Client) backoff(n int) time.Duration {
	return Backoff(n, c.cfg.BackoffBase, c.cfg.BackoffMax)
}

// endpointTemplate maps a path to its endpoint template, so that metrics labels do not
// grow with every flag.
func endpointTemplate(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case path == tokenPath:
		return tokenPath
	case len(parts) == 2 && parts[0] == "rules":
		return "/rules/{ruleId}"
	case len(parts) == 0 || parts[0] != "feature-flags":
		return "other"
	case len(parts) == 1:
		return "/feature-flags"
	case len(parts) == 2 && parts[1] == "search":
		return "/feature-flags/search"
	case len(parts) == 3 && parts[1] == "rules":
		return "/feature-flags/rules/{ruleId}"
	case len(parts) == 3:
		return "/feature-flags/{siteCode}/{featureKey}"
	case len(parts) == 4:
		return "/feature-flags/{siteCode}/{featureKey}/{environmentKey}"
	}
	return "other"
}
