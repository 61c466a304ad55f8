package splitclient

import (
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
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
)

// DefaultBaseURL is the Admin API's host; request paths carry APIPrefix.
const DefaultBaseURL = "https://api.split.io"

// Defaults for the zero values of Config.
const (
	DefaultCallTimeout = 30 * time.Second
	// DefaultPageSize is the limit of list calls: the documented maximum of the
	// definitions list (the flags list documents none; the same is used).
	DefaultPageSize    = 50
	DefaultBackoffBase = 2 * time.Second
	DefaultBackoffMax  = time.Minute
	DefaultMaxAttempts = 5
	DefaultMaxElapsed  = 3 * time.Minute
	// DefaultPerSecond and DefaultPerMinute are the client-side budget. Split documents
	// no figures; Harness documents 400 external API calls per minute per key.
	DefaultPerSecond = 10
	DefaultPerMinute = 400
)

// NewBudget returns a budget of perSecond calls per second and perMinute per minute;
// values <= 0 take DefaultPerSecond and DefaultPerMinute.
func NewBudget(perSecond, perMinute int) *api.Budget {
	if perSecond <= 0 {
		perSecond = DefaultPerSecond
	}
	if perMinute <= 0 {
		perMinute = DefaultPerMinute
	}
	return api.NewBudgetWindows(api.Window{Limit: perSecond, Period: time.Second}, api.Window{Limit: perMinute, Period: time.Minute})
}

// Config configures a Client. Only APIKey is required.
type Config struct {
	BaseURL string // default DefaultBaseURL; a Harness gateway URL that serves APIPrefix works too
	APIKey  string // Admin API key, or a Harness API key (PAT or SAT)
	// KeyHeader says how APIKey is sent: KeyHeaderAuto (""), KeyHeaderBearer or
	// KeyHeaderXAPIKey.
	KeyHeader string

	// TitleTemplate and CommentTemplate are text/template templates of the title and
	// comment every definition write and change request carries (Split's change
	// tracking); "" takes DefaultTitleTemplate and DefaultCommentTemplate. They see
	// ChangeInfo: {{.Revision}}, {{.ShortRevision}}, {{.Reason}}, {{.Flag}},
	// {{.Environment}}, {{.Workspace}}, {{.PR}}. A template that renders nothing sends no
	// such parameter.
	TitleTemplate   string
	CommentTemplate string
	// PRURL is the pull request the synced revision came from ({{.PR}}); optional.
	PRURL string
	// Approvers are the approvers (emails) named in the change requests flagsync files
	// in an environment that lets submitters choose them; leave empty where the
	// environment restricts who approves.
	Approvers []string
	// RolloutStatusID, when set, is the rollout status sent with change requests.
	RolloutStatusID string
	// ApprovalEnvironments are the environments (by name, in every workspace) declared
	// to require approvals: from the first read, the client lists their open change
	// requests (one list call per environment per read), and a definition write there
	// is filed as a change request at once instead of being sent and refused with 403.
	// Other environments are learned from their first 403.
	ApprovalEnvironments []string

	HTTPClient  *http.Client
	Logger      *slog.Logger
	Budget      *api.Budget   // shared rate budget; nil = NewBudget(0, 0)
	CallTimeout time.Duration // limit of one HTTP exchange; default 30 s
	PageSize    int           // limit of list calls; default 50

	// Observer, when set, is called after every HTTP exchange, for metrics.
	Observer func(api.CallInfo)

	// Retries: a 429 waits as long as the X-RateLimit-Reset-Seconds-* headers say (the
	// largest of them), else Retry-After, else BackoffBase doubling up to BackoffMax
	// plus up to 50 % jitter. A call gives up after MaxAttempts attempts or when the next
	// wait would take it past MaxElapsed.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	MaxAttempts int
	MaxElapsed  time.Duration

	Now func() time.Time
}

// Client calls Split's Admin API through the shared api.Caller. It is safe for concurrent
// use.
type Client struct {
	cfg       Config
	base      string
	budget    *api.Budget
	caller    *api.Caller
	templates *templates

	mu         sync.Mutex
	workspaces *workspaceIndex                     // GET /workspaces, read once when first needed
	named      map[string]string                   // workspace names (as files give them) → ids
	checked    map[string]bool                     // workspaces already looked up
	envIDs     map[string]map[string]string        // workspace → environment name → id
	approvals  map[string]bool                     // "workspace/environment" known to require approvals
	declared   map[string]bool                     // environments declared to require approvals (Config.ApprovalEnvironments)
	created    map[string]bool                     // "workspace/flag" created by this client
	open       map[string]splitmodel.ChangeRequest // "workspace/flag/environment" → open change request last seen
}

// New returns a client for cfg, filling in defaults.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, errors.New("new Split API client: the admin API key is required")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	_, err := api.ParseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("new Split API client: %w", err)
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
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
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
	header, err := keyHeaderOf(cfg.KeyHeader, cfg.APIKey)
	if err != nil {
		return nil, fmt.Errorf("new Split API client: %w", err)
	}
	tmpl, err := newTemplates(cfg.TitleTemplate, cfg.CommentTemplate)
	if err != nil {
		return nil, fmt.Errorf("new Split API client: %w", err)
	}
	var auth api.Auth = apiKey("Bearer " + cfg.APIKey)
	httpClient := cfg.HTTPClient
	if header == KeyHeaderXAPIKey {
		auth, httpClient = nil, withXAPIKey(cfg.HTTPClient, cfg.APIKey)
	}
	c := &Client{cfg: cfg, base: strings.TrimRight(cfg.BaseURL, "/"), budget: cfg.Budget, templates: tmpl,
		named: map[string]string{}, checked: map[string]bool{}, envIDs: map[string]map[string]string{},
		approvals: map[string]bool{}, declared: map[string]bool{}, created: map[string]bool{}, open: map[string]splitmodel.ChangeRequest{}}
	for _, env := range cfg.ApprovalEnvironments {
		if env = strings.TrimSpace(env); env != "" {
			c.declared[env] = true
		}
	}
	c.caller = api.NewCaller(api.CallerConfig{
		Name: "Split API", BaseURL: c.base, HTTPClient: httpClient, Logger: cfg.Logger, Budget: cfg.Budget,
		CallTimeout: cfg.CallTimeout, BackoffBase: cfg.BackoffBase, BackoffMax: cfg.BackoffMax,
		MaxAttempts: cfg.MaxAttempts, MaxElapsed: cfg.MaxElapsed, Observer: cfg.Observer, Now: cfg.Now,
		Hooks: api.Hooks{
			Auth:          auth,
			RateLimitWait: rateLimitWait,
			NewError:      c.newError,
			// A JSON Patch that appends is not idempotent, and a create sent twice is
			// refused: only reads are resent after a failure whose effect is unknown.
			MayResend: func(req api.Request) bool { return req.Method == http.MethodGet },
			Endpoint:  EndpointTemplate,
		},
	})
	return c, nil
}

// Budget returns the rate budget the client spends.
func (c *Client) Budget() *api.Budget { return c.budget }

// BaseURL returns the base URL the client calls.
func (c *Client) BaseURL() string { return c.base }

// apiKey is the Admin API key as an api.Auth: always at hand, never renewed.
type apiKey string

func (k apiKey) Ready(context.Context) error { return nil }
func (k apiKey) Header() (string, bool)      { return string(k), true }
func (k apiKey) Refused(string) bool         { return false }
func (k apiKey) Secrets() []string           { return nil }

// rateLimitWait reads how long a 429 asks to wait: the largest of Split's
// X-RateLimit-Reset-Seconds-* headers (the documented rule), else Retry-After.
func rateLimitWait(h http.Header, now time.Time) (time.Duration, bool) {
	var wait float64
	found := false
	for name, vs := range h {
		if !strings.HasPrefix(http.CanonicalHeaderKey(name), "X-Ratelimit-Reset-Seconds") {
			continue
		}
		for _, v := range vs {
			if s, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && s >= 0 {
				wait, found = max(wait, s), true
			}
		}
	}
	if found {
		return time.Duration(wait * float64(time.Second)), true
	}
	return api.RetryAfter(h, now)
}

// newError builds the *api.Error for a response, with the API key redacted.
func (c *Client) newError(method, path string, status int, body []byte) *api.Error {
	text := api.TruncateErrorBody(strings.ReplaceAll(string(body), c.cfg.APIKey, "[REDACTED]"))
	return &api.Error{
		Status: status, Method: method, Path: path, Body: text,
		Retryable: api.RetryableStatus(status),
		Message:   errorMessage([]byte(text)),
	}
}

// errorMessage reads a message from an error body: `message` (Split's error shape),
// `error`, or the body's first line.
func errorMessage(body []byte) string {
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		for _, k := range []string{"message", "error", "details"} {
			if s, ok := m[k].(string); ok && strings.TrimSpace(s) != "" {
				return api.OneLine(s)
			}
		}
		return ""
	}
	return api.OneLine(string(body))
}

// EndpointTemplate maps a request to its endpoint template, for metrics labels.
func EndpointTemplate(method, path string) string {
	switch {
	case path == APIPrefix+"/workspaces":
		return path
	case path == APIPrefix+"/changeRequests":
		return path
	case strings.HasPrefix(path, APIPrefix+"/changeRequests/ws/"):
		return APIPrefix + "/changeRequests/ws/{wsId}/environments/{env}"
	case strings.HasPrefix(path, APIPrefix+"/environments/ws/"):
		return APIPrefix + "/environments/ws/{wsId}"
	}
	rest, ok := strings.CutPrefix(path, APIPrefix+"/splits/ws/")
	if !ok {
		return "other"
	}
	p := strings.Split(rest, "/")
	const ws = APIPrefix + "/splits/ws/{wsId}"
	switch {
	case len(p) == 1:
		return ws
	case len(p) == 2:
		return ws + "/{flag}"
	case len(p) == 3 && p[1] == "trafficTypes" && method == http.MethodPost:
		return ws + "/trafficTypes/{trafficType}"
	case len(p) == 3 && p[1] == "environments":
		return ws + "/environments/{env}"
	case len(p) == 4 && p[2] == "environments":
		return ws + "/{flag}/environments/{env}"
	case len(p) == 5 && p[2] == "environments" && (p[4] == "kill" || p[4] == "restore"):
		return ws + "/{flag}/environments/{env}/" + p[4]
	}
	return "other"
}
