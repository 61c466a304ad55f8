package kclient

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/flagsync/flagsync/internal/api"
)

// DefaultBaseURL is the Automation API's address; it has no version prefix.
const DefaultBaseURL = "https://api.kameleoon.com"

// Kameleoon's documented limits per account.
const (
	DefaultPer10s  = 50
	DefaultPerHour = 1000
)

// NewBudget returns a budget of per10s requests per 10 seconds and perHour per hour;
// values <= 0 take Kameleoon's limits (50 and 1,000).
func NewBudget(per10s, perHour int) *api.Budget {
	if per10s <= 0 {
		per10s = DefaultPer10s
	}
	if perHour <= 0 {
		perHour = DefaultPerHour
	}
	return api.NewBudgetWindows(api.Window{Limit: per10s, Period: 10 * time.Second}, api.Window{Limit: perHour, Period: time.Hour})
}

// Defaults for the zero values of Config.
const (
	DefaultCallTimeout = 30 * time.Second
	DefaultPerPage     = 100
	DefaultBackoffBase = 10 * time.Second
	DefaultBackoffMax  = 2 * time.Minute
	DefaultMaxAttempts = 5
	DefaultMaxElapsed  = 3 * time.Minute
)

// Config configures a Client. Only ClientID and ClientSecret are required.
type Config struct {
	BaseURL      string // default DefaultBaseURL
	ClientID     string
	ClientSecret string

	HTTPClient  *http.Client  // default: a new client on http.DefaultTransport
	Logger      *slog.Logger  // default: discard
	Budget      *api.Budget   // shared rate budget; nil = a new NewBudget(0, 0)
	CallTimeout time.Duration // limit of one HTTP exchange, response body included; default 30 s
	PerPage     int           // page size of list calls; default 100 (the API's maximum is not documented)

	// Observer, when set, is called after every HTTP exchange (token requests included),
	// for metrics.
	Observer func(api.CallInfo)

	// TokenCounts says whether token requests are charged to Budget; "" is TokenCountsNo.
	TokenCounts TokenCounting

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

// Client calls Kameleoon's Automation API through the shared api.Caller. It is safe for
// concurrent use; all its calls share one token and one rate budget.
type Client struct {
	cfg    Config
	base   string
	log    *slog.Logger
	budget *api.Budget
	caller *api.Caller
	tokens *tokenSource
	fields optionalFields // which optionalFields names reads ask for
	acct   *accounting
	search searchSupport // whether the drift check's search works on this account
}

// New returns a client for cfg, filling in defaults.
func New(cfg Config) (*Client, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("new API client: client id and client secret are required")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	_, err := api.ParseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("new API client: %w", err)
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
	if cfg.TokenCounts == "" {
		cfg.TokenCounts = TokenCountsNo
	}
	if _, err := ParseTokenCounting(string(cfg.TokenCounts)); err != nil {
		return nil, fmt.Errorf("new API client: %w", err)
	}
	c := &Client{
		cfg:    cfg,
		base:   strings.TrimRight(cfg.BaseURL, "/"),
		log:    cfg.Logger,
		budget: cfg.Budget,
		acct:   newAccounting(cfg.TokenCounts),
	}
	c.tokens = &tokenSource{c: c}
	observe := func(ci api.CallInfo) {
		if c.acct.observe(ci) {
			c.log.Warn("the API answered 429: from now on token requests are charged to flagsync's budget ("+EnvTokenCounts+"=auto)",
				"method", ci.Method, "endpoint", ci.Endpoint)
		}
		if cfg.Observer != nil {
			cfg.Observer(ci)
		}
	}
	c.caller = api.NewCaller(api.CallerConfig{
		Name: "API", BaseURL: c.base, HTTPClient: cfg.HTTPClient, Logger: cfg.Logger, Budget: cfg.Budget,
		CallTimeout: cfg.CallTimeout, BackoffBase: cfg.BackoffBase, BackoffMax: cfg.BackoffMax,
		MaxAttempts: cfg.MaxAttempts, MaxElapsed: cfg.MaxElapsed, Observer: observe, Now: cfg.Now,
		Hooks: api.Hooks{
			Auth:      c.tokens,
			MayResend: func(req api.Request) bool { return idempotent(req.Method) },
			Endpoint:  func(_, path string) string { return endpointTemplate(path) },
		},
	})
	return c, nil
}

// Budget returns the rate budget the client spends, for status and metrics.
func (c *Client) Budget() *api.Budget { return c.budget }

func (c *Client) now() time.Time { return c.cfg.Now() }

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
