package splitsandbox

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flagsync/flagsync/internal/fakeapi"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
)

// Defaults of Options.
const (
	DefaultAPIKey = "sandbox"
	// DefaultApproverAPIKey is the second admin key, the approver of change requests.
	DefaultApproverAPIKey = "sandbox-approver"
	DefaultRatePerSecond  = splitclient.DefaultPerSecond // org-wide calls per second
	DefaultRatePerMinute  = splitclient.DefaultPerMinute // calls per minute from one address
)

// DefaultEnvironments are a workspace's environments when Options.Environments is empty.
var DefaultEnvironments = []string{"Staging", "Production"}

// DefaultTrafficTypes are a workspace's traffic types when Options.TrafficTypes is empty.
var DefaultTrafficTypes = []string{"user", "account"}

// Options configure a Server.
type Options struct {
	// APIKey is the accepted admin API key, sent as Authorization: Bearer or, as Harness
	// keys are, in an x-api-key header; empty means DefaultAPIKey.
	APIKey string
	// ApproverAPIKey is a second admin key, set as the approver of the approval-gated
	// environments: only it approves or rejects change requests (Split does not let the
	// key that submitted a change request approve it). Empty means DefaultApproverAPIKey.
	ApproverAPIKey string
	// HarnessKeys takes keys the way the Harness FME API documents it: in an x-api-key
	// header only; Authorization: Bearer is refused (401).
	HarnessKeys bool
	// Workspaces are the account's workspace ids; empty accepts any id.
	Workspaces []string
	// WorkspaceNames names workspaces (id → name) in GET /workspaces; a workspace without
	// one is named after its id.
	WorkspaceNames map[string]string
	// TitleAndCommentsRequired lists the workspaces whose setting requires a title and a
	// comment on every change (requiresTitleAndComments in GET /workspaces): a definition
	// write without both the title and comment query parameters is refused with 400 and
	// an empty body, as Split answers.
	TitleAndCommentsRequired []string
	// ApprovalEnvironments are the environments that require approvals: a definition write
	// there answers 403 ("Approvals are required"), and changes go through change
	// requests (POST /changeRequests/ws/{ws}/environments/{env}).
	ApprovalEnvironments []string
	// RestrictedApprovers makes the approval-gated environments restrict who approves
	// ("Restrict who can approve"): a change request must leave approvers empty. Without
	// it submitters choose their approvers ("Let submitters choose"): a change request
	// must name at least one.
	RestrictedApprovers bool
	// KillAfterCreate takes the reading where a definition cannot be created killed: a
	// create that sets killed: true is refused (400); the definition is created, then
	// killed with PUT .../kill.
	KillAfterCreate bool
	// Environments are every workspace's environment names (DefaultEnvironments when
	// empty); environments recorded in the state file are added after them.
	Environments []string
	// TrafficTypes are every workspace's traffic types (DefaultTrafficTypes when empty).
	TrafficTypes []string
	// RatePerSecond limits authenticated calls of the account per second and
	// RatePerMinute those of one client address per minute (fixed windows, reported in
	// the X-RateLimit-*-Org and -IP headers). 0 means the defaults; negative, unlimited.
	RatePerSecond, RatePerMinute int
	// StatePath, if set, is a JSON file the flags are loaded from at start and written to
	// atomically after each successful write.
	StatePath string
	// Now is the clock for rate windows and dates (default time.Now).
	Now func() time.Time
	// Logger receives one line per call: method, path and status, never the key or a
	// body. Optional.
	Logger *slog.Logger
}

// Call is one request the server received.
type Call = fakeapi.Call

// Fault changes how the server answers the next Count calls matching Method (empty: any)
// and PathPrefix (empty: any). Without AfterHandle it answers instead of the API: after
// Latency it drops the connection (Drop) or answers Status with Body and Header; with
// AfterHandle the call is handled first (a write is applied) and then the answer is lost
// (Drop) or replaced. See fakeapi.Fault.
type Fault = fakeapi.Fault

// Server is the sandbox. It is an http.Handler, safe for concurrent use.
type Server struct {
	now         func() time.Time
	log         *slog.Logger
	apiKey      string
	approverKey string
	ws          []string
	wsNames     map[string]string
	titled      []string // workspaces that require a title and comment
	approvals   []string // environments that require approvals
	restricted  bool
	killAfter   bool
	harnessKeys bool
	envs        []string
	types       []string
	statePath   string

	mu       sync.Mutex // guards flags, nextID and requests
	flags    map[flagKey]*flagDoc
	nextID   int
	requests []*changeRequest // in the order they were filed

	rate rateLimiter

	front *fakeapi.Front // call log and faults
}

// New returns a server configured by opts, with the flags of opts.StatePath loaded.
func New(opts Options) (*Server, error) {
	s := &Server{
		now: opts.Now, log: opts.Logger, apiKey: opts.APIKey, approverKey: opts.ApproverAPIKey,
		ws: slices.Clone(opts.Workspaces), envs: slices.Clone(opts.Environments), types: slices.Clone(opts.TrafficTypes),
		wsNames: maps.Clone(opts.WorkspaceNames), titled: slices.Clone(opts.TitleAndCommentsRequired),
		approvals: slices.Clone(opts.ApprovalEnvironments), restricted: opts.RestrictedApprovers, killAfter: opts.KillAfterCreate,
		harnessKeys: opts.HarnessKeys,
		statePath:   opts.StatePath, flags: map[flagKey]*flagDoc{}, nextID: 1,
		rate: rateLimiter{perSecond: opts.RatePerSecond, perMinute: opts.RatePerMinute, minute: map[string]*window{}},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.front = fakeapi.NewFront(fakeapi.Config{
		Name: "split sandbox", Now: s.now, Logger: s.log,
		IsWrite: isWrite, Error: errorResponse,
	})
	if s.apiKey == "" {
		s.apiKey = DefaultAPIKey
	}
	if s.approverKey == "" {
		s.approverKey = DefaultApproverAPIKey
	}
	if s.approverKey == s.apiKey {
		return nil, errors.New("split sandbox: the approver's key must differ from the admin key")
	}
	if len(s.envs) == 0 {
		s.envs = slices.Clone(DefaultEnvironments)
	}
	if len(s.types) == 0 {
		s.types = slices.Clone(DefaultTrafficTypes)
	}
	for _, e := range s.approvals {
		if !slices.Contains(s.envs, e) {
			s.envs = append(s.envs, e)
		}
	}
	for _, list := range [][]string{s.ws, s.envs, s.types} {
		for i, v := range list {
			if v == "" || strings.ContainsAny(v, "/?#") || slices.Index(list, v) != i {
				return nil, fmt.Errorf("split sandbox: %q must be a unique, non-empty name without '/', '?' or '#'", v)
			}
		}
	}
	if s.rate.perSecond == 0 {
		s.rate.perSecond = DefaultRatePerSecond
	}
	if s.rate.perMinute == 0 {
		s.rate.perMinute = DefaultRatePerMinute
	}
	if s.statePath != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Environments returns the workspaces' environment names.
func (s *Server) Environments() []string { return slices.Clone(s.envs) }

// Calls returns the call log, in the order the calls were answered.
func (s *Server) Calls() []Call { return s.front.Calls() }

// ResetCalls empties the call log.
func (s *Server) ResetCalls() { s.front.ResetCalls() }

// Writes counts the logged calls that create, change or delete flags or definitions
// (POST, PATCH, PUT, DELETE under the flags API), whatever their outcome.
func (s *Server) Writes() int { return s.front.Writes() }

func isWrite(method, path string) bool {
	return method != http.MethodGet && method != http.MethodHead && strings.HasPrefix(path, splitclient.APIPrefix+"/splits/")
}

// InjectFault queues f for the next f.Count matching calls.
func (s *Server) InjectFault(f Fault) { s.front.InjectFault(f) }

// response is what a handler answers.
type response = fakeapi.Response

// errorResponse is Split's error shape: {"code": status, "message": "..."}.
func errorResponse(status int, format string, args ...any) response {
	return fakeapi.JSON(status, map[string]any{"code": status, "message": fmt.Sprintf(format, args...)})
}

// ServeHTTP answers one call. The call is in the log before its answer is sent.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.front.Serve(w, r, s.handle)
}

// Callers the sandbox tells apart by their key.
const (
	callerAdmin    = "admin-api-key"
	callerApprover = "approver-api-key"
)

// caller returns who sent r: the admin key or the approver's key, given as
// Authorization: Bearer or in an x-api-key header (Harness keys); "" when neither.
func (s *Server) caller(r *http.Request) string {
	key := strings.TrimSpace(r.Header.Get("x-api-key"))
	if key == "" && !s.harnessKeys {
		scheme, k, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return ""
		}
		key = strings.TrimSpace(k)
	}
	switch {
	case subtle.ConstantTimeCompare([]byte(key), []byte(s.apiKey)) == 1:
		return callerAdmin
	case subtle.ConstantTimeCompare([]byte(key), []byte(s.approverKey)) == 1:
		return callerApprover
	}
	return ""
}

// handle authenticates, rate-limits and routes a call.
func (s *Server) handle(r *http.Request, body []byte) response {
	who := s.caller(r)
	if who == "" {
		resp := errorResponse(http.StatusUnauthorized, "Unauthorized: a valid admin API key is required (Authorization: Bearer, or x-api-key)")
		resp.Header.Set("WWW-Authenticate", "Bearer")
		return resp
	}
	addr := r.RemoteAddr
	if host, _, found := strings.Cut(addr, ":"); found && !strings.Contains(addr, "]") {
		addr = host
	}
	st := s.rate.take(s.now(), addr)
	var resp response
	if !st.allowed {
		resp = errorResponse(http.StatusTooManyRequests, "Too many requests")
	} else {
		resp = s.route(r, body, who)
	}
	st.headers(resp.Header)
	return resp
}

// --- rate limit ---------------------------------------------------------------------

// rateLimiter keeps two fixed windows: the account's calls per second and one
// address's calls per minute. Refused calls do not count.
type rateLimiter struct {
	perSecond, perMinute int

	mu     sync.Mutex
	second window
	minute map[string]*window
}

type window struct {
	start time.Time
	n     int
}

// rateState is what the headers of one answer report.
type rateState struct {
	allowed                  bool
	unlimitedOrg, unlimitedI bool
	remainingOrg, resetOrg   int
	remainingIP, resetIP     int
}

func (st rateState) headers(h http.Header) {
	if !st.unlimitedOrg {
		h.Set("X-RateLimit-Remaining-Org", strconv.Itoa(st.remainingOrg))
		h.Set("X-RateLimit-Reset-Seconds-Org", strconv.Itoa(st.resetOrg))
	}
	if !st.unlimitedI {
		h.Set("X-RateLimit-Remaining-IP", strconv.Itoa(st.remainingIP))
		h.Set("X-RateLimit-Reset-Seconds-IP", strconv.Itoa(st.resetIP))
	}
}

func (l *rateLimiter) take(now time.Time, addr string) rateState {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := rateState{allowed: true, unlimitedOrg: l.perSecond < 0, unlimitedI: l.perMinute < 0}
	roll := func(w *window, period time.Duration) int {
		if w.start.IsZero() || !now.Before(w.start.Add(period)) {
			w.start, w.n = now.Truncate(period), 0
		}
		return int(math.Ceil(w.start.Add(period).Sub(now).Seconds()))
	}
	var ip *window
	if !st.unlimitedOrg {
		st.resetOrg = roll(&l.second, time.Second)
		if l.second.n >= l.perSecond {
			st.allowed = false
		}
	}
	if !st.unlimitedI {
		ip = l.minute[addr]
		if ip == nil {
			ip = &window{}
			l.minute[addr] = ip
		}
		st.resetIP = roll(ip, time.Minute)
		if ip.n >= l.perMinute {
			st.allowed = false
		}
	}
	if st.allowed {
		l.second.n++
		if ip != nil {
			ip.n++
		}
	}
	if !st.unlimitedOrg {
		st.remainingOrg = max(l.perSecond-l.second.n, 0)
	}
	if ip != nil {
		st.remainingIP = max(l.perMinute-ip.n, 0)
	}
	return st
}
