package ksandbox

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flagsync/flagsync/internal/fakeapi"
)

// Defaults of Options.
const (
	DefaultClientID     = "sandbox"
	DefaultClientSecret = "sandbox"
	DefaultTokenTTL     = 2 * time.Hour
	DefaultRatePer10s   = 50   // Kameleoon's documented limit per 10 seconds
	DefaultRatePerHour  = 1000 // and per hour
)

// DefaultEnvironments are a project's environments when Options.Environments is empty, in
// the order flags list them (the vendor tutorial's create response).
var DefaultEnvironments = []string{"production", "staging", "development"}

// maxBody bounds a request body; real flags are far smaller.
const maxBody = fakeapi.MaxBody

// Options configure a sandbox Server.
type Options struct {
	// Sites are the account's site codes. Empty allows any 10-character code.
	Sites []string
	// ClientID and ClientSecret are the accepted OAuth client credentials. Both empty
	// means DefaultClientID / DefaultClientSecret; one without the other is an error.
	ClientID, ClientSecret string
	// Environments are the project's environment keys, in the order flags list them.
	// Empty means DefaultEnvironments. Environments recorded in the state file are
	// added after these: a project never loses an environment.
	Environments []string
	// RatePer10s and RatePerHour limit authenticated resource calls per sliding window:
	// 0 means Kameleoon's documented 50 and 1,000, negative means unlimited.
	RatePer10s, RatePerHour int
	// StatePath, if set, is a JSON file the flags are loaded from at start (when it
	// exists) and written to atomically (temp file + rename) after each successful write.
	StatePath string
	// TokenTTL is the lifetime of issued tokens (default DefaultTokenTTL).
	TokenTTL time.Duration
	// Now is the clock for token expiry, rate windows and flag dates (default time.Now).
	Now func() time.Time
	// Logger receives one line per call, at info for writes and debug for the rest: method,
	// path and status, never a token, secret or body. Optional.
	Logger *slog.Logger
	// Strict switches on stricter readings of what Kameleoon's docs leave open (see
	// Variant and Variants; ParseVariants reads them from a command line). Empty keeps
	// the lenient default of each.
	Strict []Variant
}

// Call is one request the server received, in the call log; the client secret of a
// token call is redacted from its Body.
type Call = fakeapi.Call

// Fault changes how the server answers the next Count calls that match Method (empty:
// any) and PathPrefix (empty: any); see fakeapi.Fault. Faulted calls are in the call log.
type Fault = fakeapi.Fault

// Server is a Kameleoon-compatible Automation API for feature flags, in memory. It is an
// http.Handler and safe for concurrent use.
type Server struct {
	now          func() time.Time
	log          *slog.Logger
	sites        []string
	envs         []string
	clientID     string
	clientSecret string
	tokenTTL     time.Duration
	statePath    string
	strict       variantSet

	mu    sync.Mutex // guards flags and ids
	flags map[flagRef]*flagDoc
	ids   idCounters

	tokMu  sync.Mutex
	tokens map[string]time.Time // token → expiry

	rate limiter

	front *fakeapi.Front // call log and faults
}

type flagRef struct{ siteCode, featureKey string }

// New returns a server configured by opts, with the flags of opts.StatePath loaded.
func New(opts Options) (*Server, error) {
	s := &Server{
		now:       opts.Now,
		log:       opts.Logger,
		sites:     slices.Clone(opts.Sites),
		envs:      slices.Clone(opts.Environments),
		tokenTTL:  opts.TokenTTL,
		statePath: opts.StatePath,
		flags:     map[flagRef]*flagDoc{},
		ids:       newIDCounters(),
		tokens:    map[string]time.Time{},
		rate:      limiter{per10s: opts.RatePer10s, perHour: opts.RatePerHour},
	}
	strict, err := newVariantSet(opts.Strict)
	if err != nil {
		return nil, err
	}
	s.strict = strict
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.front = fakeapi.NewFront(fakeapi.Config{
		Name: "sandbox", Now: s.now, Logger: s.log,
		IsWrite: isWrite, Redact: redactBody, Error: errorResponse,
	})
	for _, code := range s.sites {
		if len(code) != siteCodeLen {
			return nil, fmt.Errorf("sandbox site code %q: must be exactly %d characters", code, siteCodeLen)
		}
	}
	if len(s.envs) == 0 {
		s.envs = slices.Clone(DefaultEnvironments)
	}
	seen := map[string]bool{}
	for _, e := range s.envs {
		if e == "" || strings.ContainsAny(e, "/?# ") || seen[e] {
			return nil, fmt.Errorf("sandbox environment %q: must be a unique, non-empty key without '/', '?', '#' or spaces", e)
		}
		seen[e] = true
	}
	switch {
	case opts.ClientID == "" && opts.ClientSecret == "":
		s.clientID, s.clientSecret = DefaultClientID, DefaultClientSecret
	case opts.ClientID == "" || opts.ClientSecret == "":
		return nil, errors.New("sandbox credentials: set both client id and client secret, or neither")
	default:
		s.clientID, s.clientSecret = opts.ClientID, opts.ClientSecret
	}
	if s.tokenTTL == 0 {
		s.tokenTTL = DefaultTokenTTL
	}
	if s.tokenTTL < time.Second {
		return nil, fmt.Errorf("sandbox token lifetime %s: must be at least one second", s.tokenTTL)
	}
	if s.rate.per10s == 0 {
		s.rate.per10s = DefaultRatePer10s
	}
	if s.rate.perHour == 0 {
		s.rate.perHour = DefaultRatePerHour
	}
	if s.statePath != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Environments returns the project's environment keys, in the order flags list them.
func (s *Server) Environments() []string { return slices.Clone(s.envs) }

// Calls returns the call log, in the order the calls were answered.
func (s *Server) Calls() []Call { return s.front.Calls() }

// ResetCalls empties the call log.
func (s *Server) ResetCalls() { s.front.ResetCalls() }

// Writes counts the logged calls that create, change or delete flags or rules (POST,
// PATCH, DELETE under /feature-flags or /rules; not the search, not /oauth/token),
// whatever their outcome.
func (s *Server) Writes() int { return s.front.Writes() }

func isWrite(method, path string) bool {
	switch method {
	case http.MethodPost, http.MethodPatch, http.MethodDelete:
	default:
		return false
	}
	if path == "/feature-flags/search" {
		return false
	}
	return path == "/feature-flags" || strings.HasPrefix(path, "/feature-flags/") || strings.HasPrefix(path, "/rules/")
}

// InjectFault queues f; it applies to the next f.Count matching calls. Queued faults are
// tried in the order they were injected; a call takes at most one.
func (s *Server) InjectFault(f Fault) { s.front.InjectFault(f) }

// RevokeTokens makes every issued token invalid: resource calls with one get 401.
func (s *Server) RevokeTokens() {
	s.tokMu.Lock()
	clear(s.tokens)
	s.tokMu.Unlock()
}

// response is what a handler answers, written out by ServeHTTP (or thrown away by an
// AfterHandle fault).
type response = fakeapi.Response

// errorBody is the API's error shape. The docs leave it open; third-party code reads
// `message`.
type errorBody struct {
	Message string `json:"message"`
	Status  int    `json:"status"`
}

func errorResponse(status int, format string, args ...any) response {
	return fakeapi.JSON(status, errorBody{Message: fmt.Sprintf(format, args...), Status: status})
}

// ServeHTTP answers one API call. The call is in the log before its answer is sent (or
// its connection dropped), so a client that has its answer can assert on the log.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.front.Serve(w, r, s.handle)
}

func redactBody(path string, body []byte) []byte {
	if path != "/oauth/token" {
		return body
	}
	q, err := url.ParseQuery(string(body))
	if err != nil {
		return []byte("(unparsable form, redacted)")
	}
	if q.Has("client_secret") {
		q.Set("client_secret", "REDACTED")
	}
	return []byte(q.Encode())
}

// handle authenticates, rate-limits and routes a call.
func (s *Server) handle(r *http.Request, body []byte) response {
	if r.URL.Path == "/oauth/token" {
		if r.Method != http.MethodPost {
			return methodNotAllowed(http.MethodPost)
		}
		return s.token(r, body)
	}
	if resp, ok := s.authenticate(r); !ok {
		return resp
	}
	if !s.rate.allow(s.now()) {
		return errorResponse(http.StatusTooManyRequests, "Too many requests")
	}
	return s.route(r, body)
}

func methodNotAllowed(allowed ...string) response {
	resp := errorResponse(http.StatusMethodNotAllowed, "method not allowed; use %s", strings.Join(allowed, " or "))
	resp.Header.Set("Allow", strings.Join(allowed, ", "))
	return resp
}

// --- OAuth ------------------------------------------------------------------------

type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func oauthError(status int, code, desc string) response {
	return fakeapi.JSON(status, tokenError{Error: code, Description: desc})
}

// token implements the client credentials grant (RFC 6749 §4.4). Credentials come in the
// form, as Kameleoon documents, or in HTTP Basic auth, as RFC 6749 also allows.
func (s *Server) token(r *http.Request, body []byte) response {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return oauthError(http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return oauthError(http.StatusBadRequest, "invalid_request", "malformed form body")
	}
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		return oauthError(http.StatusBadRequest, "invalid_request", "grant_type is required")
	default:
		return oauthError(http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
	}
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if bid, bsecret, ok := r.BasicAuth(); ok && id == "" {
		id, secret = bid, bsecret
	}
	if id == "" {
		return oauthError(http.StatusUnauthorized, "invalid_client", "client_id is required")
	}
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(s.clientID)) == 1
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.clientSecret)) == 1
	if !idOK || !secretOK {
		return oauthError(http.StatusUnauthorized, "invalid_client", "client authentication failed")
	}
	tok := newToken()
	now := s.now()
	s.tokMu.Lock()
	for t, exp := range s.tokens {
		if !now.Before(exp) {
			delete(s.tokens, t)
		}
	}
	s.tokens[tok] = now.Add(s.tokenTTL)
	s.tokMu.Unlock()
	resp := fakeapi.JSON(http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int64(s.tokenTTL / time.Second),
	})
	resp.Header.Set("Cache-Control", "no-store")
	return resp
}

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) authenticate(r *http.Request) (response, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		resp := errorResponse(http.StatusUnauthorized, "Unauthorized: a Bearer token is required")
		resp.Header.Set("WWW-Authenticate", `Bearer`)
		return resp, false
	}
	s.tokMu.Lock()
	exp, known := s.tokens[strings.TrimSpace(tok)]
	s.tokMu.Unlock()
	if !known || !s.now().Before(exp) {
		resp := errorResponse(http.StatusUnauthorized, "Unauthorized: the token is invalid or expired")
		resp.Header.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		return resp, false
	}
	return response{}, true
}

// --- rate limit -------------------------------------------------------------------

// limiter is a sliding-window log: a call is allowed when fewer than per10s calls were
// allowed in the 10 seconds before it and fewer than perHour in the hour before it.
// Refused calls do not count.
type limiter struct {
	per10s, perHour int // negative: unlimited

	mu    sync.Mutex
	times []time.Time // allowed calls of the last hour, oldest first
}

func (l *limiter) allow(now time.Time) bool {
	if l.per10s < 0 && l.perHour < 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	horizon := time.Hour
	if l.perHour < 0 {
		horizon = 10 * time.Second // only the short window needs remembering
	}
	oldest := now.Add(-horizon)
	drop := 0
	for drop < len(l.times) && !l.times[drop].After(oldest) {
		drop++
	}
	l.times = l.times[drop:]
	if l.perHour >= 0 && len(l.times) >= l.perHour {
		return false
	}
	if l.per10s >= 0 {
		tenAgo, inTen := now.Add(-10*time.Second), 0
		for i := len(l.times) - 1; i >= 0 && inTen < l.per10s && l.times[i].After(tenAgo); i-- {
			inTen++
		}
		if inTen >= l.per10s {
			return false
		}
	}
	l.times = append(l.times, now)
	return true
}

// --- routing ----------------------------------------------------------------------

// route dispatches an authenticated call. Paths are matched on their escaped form, so a
// feature key or environment key may hold any character once escaped.
func (s *Server) route(r *http.Request, body []byte) response {
	raw := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	seg := make([]string, len(raw))
	for i, p := range raw {
		v, err := url.PathUnescape(p)
		if err != nil || v == "" {
			return notFoundRoute(r)
		}
		seg[i] = v
	}
	m := r.Method
	switch {
	case len(seg) == 1 && seg[0] == "feature-flags":
		switch m {
		case http.MethodGet:
			return s.listFlags(r)
		case http.MethodPost:
			return s.createFlag(r, body)
		}
		return methodNotAllowed(http.MethodGet, http.MethodPost)
	case len(seg) == 2 && seg[0] == "feature-flags" && seg[1] == "search":
		if m != http.MethodPost {
			return methodNotAllowed(http.MethodPost)
		}
		return s.searchFlags(r, body)
	case len(seg) == 3 && seg[0] == "feature-flags" && seg[1] == "rules",
		len(seg) == 2 && seg[0] == "rules":
		return s.routeRule(r, seg[len(seg)-1], body)
	case (len(seg) == 3 || len(seg) == 4) && seg[0] == "feature-flags":
		return s.routeFlag(r, seg[1:], body)
	}
	return notFoundRoute(r)
}

// routeRule dispatches PATCH of a rule by id.
func (s *Server) routeRule(r *http.Request, idSeg string, body []byte) response {
	if r.Method != http.MethodPatch {
		return methodNotAllowed(http.MethodPatch)
	}
	id, err := strconv.ParseInt(idSeg, 10, 64)
	if err != nil || id <= 0 {
		return errorResponse(http.StatusNotFound, "rule %q not found", idSeg)
	}
	return s.patchRule(r, id, body)
}

// routeFlag dispatches a call on one flag (seg: site code, feature key) or one of its
// environments (seg: …, environment key).
func (s *Server) routeFlag(r *http.Request, seg []string, body []byte) response {
	ref := flagRef{seg[0], seg[1]}
	if len(seg) == 3 {
		if r.Method != http.MethodPatch {
			return methodNotAllowed(http.MethodPatch)
		}
		return s.patchEnvironment(r, ref, seg[2], body)
	}
	switch r.Method {
	case http.MethodGet:
		return s.getFlag(r, ref)
	case http.MethodPatch:
		return s.patchFlag(r, ref, body)
	case http.MethodDelete:
		return s.deleteFlag(ref)
	}
	return methodNotAllowed(http.MethodGet, http.MethodPatch, http.MethodDelete)
}

func notFoundRoute(r *http.Request) response {
	return errorResponse(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
}
