package unleashclient

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	unleashwire "github.com/flagsync/flagsync/internal/unleash/wire"
)

// Defaults for the zero values of Config.
const (
	DefaultCallTimeout = 30 * time.Second
	DefaultBackoffBase = time.Second
	DefaultBackoffMax  = 30 * time.Second
	DefaultMaxAttempts = 5
	DefaultMaxElapsed  = 3 * time.Minute
	// DefaultPerSecond and DefaultPerMinute are the client-side budget. Unleash limits
	// admin API tokens on the search endpoint only (15 a minute, handled apart) and
	// personal access tokens to 20,000 requests a minute; a hosted instance may set other
	// limits, which 429 and Retry-After then enforce.
	DefaultPerSecond = 20
	DefaultPerMinute = 1000
	// SearchPageSize is the largest page the feature search gives (a larger limit is
	// silently ignored and 50 are returned).
	SearchPageSize = 100
)

// NewBudget returns a budget of perSecond calls per second and perMinute per minute;
// values <= 0 take the defaults.
func NewBudget(perSecond, perMinute int) *api.Budget {
	if perSecond <= 0 {
		perSecond = DefaultPerSecond
	}
	if perMinute <= 0 {
		perMinute = DefaultPerMinute
	}
	return api.NewBudgetWindows(api.Window{Limit: perSecond, Period: time.Second}, api.Window{Limit: perMinute, Period: time.Minute})
}

// Config configures a Client. BaseURL and Token are required.
type Config struct {
	// BaseURL is the Unleash server's root, e.g. https://unleash.example.com; a URL that
	// ends in /api (the SDKs' form of UNLEASH_URL) is accepted too.
	BaseURL string
	// Token is an admin API token or a personal access token, sent as the whole
	// Authorization header, as Unleash expects (no Bearer).
	Token string

	HTTPClient  *http.Client
	Logger      *slog.Logger
	Budget      *api.Budget   // shared rate budget; nil = NewBudget(0, 0)
	CallTimeout time.Duration // limit of one HTTP exchange; default 30 s

	// Observer, when set, is called after every HTTP exchange, for metrics.
	Observer func(api.CallInfo)

	// Retries: a 429 waits as Retry-After (else RateLimit-Reset) says, other transient
	// failures BackoffBase doubling up to BackoffMax plus up to 50 % jitter. A call gives
	// up after MaxAttempts attempts or when the next wait would take it past MaxElapsed.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	MaxAttempts int
	MaxElapsed  time.Duration

	Now func() time.Time
	// Sleep waits before a search when Unleash said the search limit is spent; default
	// api.Sleep. Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client calls Unleash's admin API. It is safe for concurrent use.
type Client struct {
	cfg    Config
	base   string
	caller *api.Caller

	searchMu    sync.Mutex
	searchUntil time.Time // no search before this: Unleash said the limit is spent
}

// New returns a client for cfg, filling in defaults.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.Token) == "" {
		return nil, errors.New("new Unleash API client: the admin token is required")
	}
	u, err := api.ParseBaseURL(strings.TrimSpace(cfg.BaseURL))
	if err != nil {
		return nil, fmt.Errorf("new Unleash API client: %w", err)
	}
	base := strings.TrimSuffix(strings.TrimRight(u.String(), "/"), "/api")
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
	if cfg.Sleep == nil {
		cfg.Sleep = api.Sleep
	}
	c := &Client{cfg: cfg, base: base}
	c.caller = api.NewCaller(api.CallerConfig{
		Name: "Unleash API", BaseURL: base, HTTPClient: cfg.HTTPClient, Logger: cfg.Logger, Budget: cfg.Budget,
		CallTimeout: cfg.CallTimeout, BackoffBase: cfg.BackoffBase, BackoffMax: cfg.BackoffMax,
		MaxAttempts: cfg.MaxAttempts, MaxElapsed: cfg.MaxElapsed, Observer: cfg.Observer, Now: cfg.Now,
		Hooks: api.Hooks{
			Auth:          token(cfg.Token),
			RateLimitWait: RateLimitWait,
			NewError:      c.newError,
			MayResend:     MayResend,
			Endpoint:      EndpointTemplate,
		},
	})
	return c, nil
}

// BaseURL returns the server root the client calls.
func (c *Client) BaseURL() string { return c.base }

// Budget returns the rate budget the client spends.
func (c *Client) Budget() *api.Budget { return c.cfg.Budget }

// token is the admin token as an api.Auth: always at hand, never renewed, redacted from
// error bodies.
type token string

func (k token) Ready(context.Context) error { return nil }
func (k token) Header() (string, bool)      { return string(k), true }
func (k token) Refused(string) bool         { return false }
func (k token) Secrets() []string           { return []string{string(k)} }

// Do sends one planned request exactly (apply.Doer).
func (c *Client) Do(ctx context.Context, req api.Request) (json.RawMessage, error) {
	return c.caller.Do(ctx, req)
}

// MayResend reports whether a request may be sent again after a failure whose effect on
// the server is unknown: reads, and writes whose repetition changes nothing (a PUT, a
// PATCH of replace operations, turning an environment on or off, setting a sort order,
// deleting a strategy, asking whether a name is free). A POST that creates a flag or a
// strategy, an archive and a revive are never resent.
func MayResend(req api.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodPut, http.MethodPatch:
		return true
	case http.MethodPost:
		return strings.HasSuffix(req.Path, "/on") || strings.HasSuffix(req.Path, "/off") ||
			strings.HasSuffix(req.Path, "/set-sort-order") || req.Path == unleashwire.ValidateNamePath
	case http.MethodDelete:
		return strings.Contains(req.Path, "/strategies/")
	}
	return false
}

// RateLimitWait reads how long a 429 asks to wait: Retry-After, else the RateLimit-Reset
// seconds of the IETF draft headers Unleash sends.
func RateLimitWait(h http.Header, now time.Time) (time.Duration, bool) {
	if d, ok := api.RetryAfter(h, now); ok {
		return d, true
	}
	return resetAfter(h)
}

// resetAfter reads RateLimit-Reset (seconds until the window resets).
func resetAfter(h http.Header) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("RateLimit-Reset"))
	if v == "" {
		return 0, false
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil || secs < 0 {
		return 0, false
	}
	return time.Duration(secs * float64(time.Second)), true
}

// endpoint is one endpoint of the admin API: the path segments after the admin prefix
// ("*" matches any one segment), and its template for metrics labels ("" for the path
// itself, which has no variable part).
type endpoint struct {
	segments []string
	template string
}

// endpoints are the admin API's endpoints flagsync calls, tried in order.
var endpoints = func() []endpoint {
	const pf = unleashwire.AdminPrefix + "/projects/{project}/features"
	const env = pf + "/{feature}/environments/{env}"
	return []endpoint{
		{[]string{"projects", "*", "features"}, pf},
		{[]string{"projects", "*", "features", "*"}, pf + "/{feature}"},
		{[]string{"projects", "*", "*", "*", "environments", "*", "on"}, env + "/on"},
		{[]string{"projects", "*", "*", "*", "environments", "*", "off"}, env + "/off"},
		{[]string{"projects", "*", "*", "*", "*", "*", "strategies"}, env + "/strategies"},
		{[]string{"projects", "*", "*", "*", "*", "*", "strategies", "set-sort-order"}, env + "/strategies/set-sort-order"},
		{[]string{"projects", "*", "*", "*", "*", "*", "strategies", "*"}, env + "/strategies/{id}"},
		{[]string{"features", "*", "tags"}, unleashwire.AdminPrefix + "/features/{feature}/tags"},
		{[]string{"archive", "revive", "*"}, unleashwire.AdminPrefix + "/archive/revive/{feature}"},
		{[]string{"segments"}, ""},
		{[]string{"search", "features"}, ""},
		{[]string{"features", "validate"}, ""},
	}
}()

// matches reports whether path segments p are the endpoint's.
func (e endpoint) matches(p []string) bool {
	if len(p) != len(e.segments) {
		return false
	}
	for i, s := range e.segments {
		if s != "*" && s != p[i] {
			return false
		}
	}
	return true
}

// EndpointTemplate maps a request to its endpoint template, for metrics labels: "other"
// for a path that is none of the admin API endpoints flagsync calls.
func EndpointTemplate(method, path string) string {
	rest, ok := strings.CutPrefix(path, unleashwire.AdminPrefix)
	if !ok {
		return "other"
	}
	p := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	for _, e := range endpoints {
		if e.matches(p) {
			return cmp.Or(e.template, path)
		}
	}
	return "other"
}

// ErrorBody is Unleash's error body: {"id", "name", "message", "details": [{"path",
// "message"}]}. name is the error class (BadDataError, NotFoundError, NameExistsError,
// InvalidOperationError, ...); a path in a detail is a JSON pointer into the request
// (/body/name) or a field name.
type ErrorBody struct {
	ID      string   `json:"id,omitempty"`
	Name    string   `json:"name"`
	Message string   `json:"message"`
	Details []Detail `json:"details,omitempty"`
}

// Detail is one entry of an error body's details.
type Detail struct {
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// AsErrorBody returns Unleash's error body of an API error, when err is (or wraps) an
// *api.Error whose body is one. Bodies are kept up to 2 KiB; a longer one does not parse.
func AsErrorBody(err error) (*ErrorBody, bool) {
	var e *api.Error
	if !errors.As(err, &e) {
		return nil, false
	}
	b, ok := parseErrorBody([]byte(e.Body))
	return b, ok
}

func parseErrorBody(body []byte) (*ErrorBody, bool) {
	var b ErrorBody
	if json.Unmarshal(body, &b) != nil || (b.Name == "" && b.Message == "") {
		return nil, false
	}
	return &b, true
}

// newError builds the *api.Error for a response, with the token redacted and the message
// read from Unleash's error body.
func (c *Client) newError(method, path string, status int, body []byte) *api.Error {
	text := string(api.Redact(body, c.cfg.Token))
	return &api.Error{
		Status: status, Method: method, Path: path, Body: api.TruncateErrorBody(text),
		Retryable: api.RetryableStatus(status),
		Message:   ErrorMessage([]byte(text)),
	}
}

// ErrorMessage reads a message from an error body: Unleash's "name: message" with the
// details that say more (a request validation failure says what was invalid only in
// them); the message of Express's own error shape ({"error": {"message"}}, for a body
// that is not JSON); otherwise the body's first line.
func ErrorMessage(body []byte) string {
	if b, ok := parseErrorBody(body); ok {
		var parts []string
		for _, d := range b.Details {
			if d.Message == "" || d.Message == b.Message {
				continue
			}
			if d.Path != "" && !strings.Contains(d.Message, d.Path) {
				parts = append(parts, d.Path+": "+d.Message)
			} else {
				parts = append(parts, d.Message)
			}
		}
		msg := b.Message
		if strings.HasPrefix(msg, "Request validation failed") && len(parts) > 0 {
			msg = "request validation failed"
		}
		if len(parts) > 0 {
			msg += ": " + strings.Join(parts, "; ")
		}
		if b.Name != "" {
			msg = b.Name + ": " + msg
		}
		return api.OneLine(msg)
	}
	var express struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &express) == nil && express.Error.Message != "" {
		return api.OneLine(express.Error.Message)
	}
	return api.ErrorMessage(body)
}
