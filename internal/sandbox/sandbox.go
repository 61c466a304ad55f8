package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
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
const maxBody = 4 << 20

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
}

// Call is one request the server received, in the call log.
type Call struct {
	Time   time.Time
	Method string
	Path   string // without the query
	Query  string // raw query
	Status int    // 0 when the connection was dropped or the client went away
	Body   []byte // request body; the client secret of a token call is redacted
}

// Fault changes how the server answers the next Count calls that match Method (empty:
// any) and PathPrefix (empty: any). Faulted calls are in the call log.
//
// A fault without AfterHandle answers instead of the API: after Latency, it drops the
// connection (Drop) or answers Status with Body (default a JSON message) and, if set, a
// Retry-After header; a fault with only Latency delays the call, which is then handled.
// With AfterHandle the call is handled first (a write is applied) and then the
// connection is dropped or the answer replaced by Status: the response is lost.
//
// Note that Go's http.Transport transparently retries an idempotent request (GET, or
// any request with an Idempotency-Key header) whose reused connection was dropped before
// any response byte: such a retry is a second call and takes a second fault count.
type Fault struct {
	Method      string
	PathPrefix  string
	Status      int
	RetryAfter  string
	Body        string
	Latency     time.Duration
	Drop        bool // hijack and close the connection without answering
	AfterHandle bool // apply the change, then drop or answer Status
	Count       int  // calls to fault; 0 means 1
}

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

	mu    sync.Mutex // guards flags and ids
	flags map[flagRef]*flagDoc
	ids   idCounters

	tokMu  sync.Mutex
	tokens map[string]time.Time // token → expiry

	rate limiter

	callMu sync.Mutex // guards calls and faults
	calls  []Call
	faults []*pendingFault
}

type flagRef struct{ siteCode, featureKey string }

type pendingFault struct {
	Fault
	left int
}

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
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
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
func (s *Server) Calls() []Call {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	return slices.Clone(s.calls)
}

// ResetCalls empties the call log.
func (s *Server) ResetCalls() {
	s.callMu.Lock()
	s.calls = nil
	s.callMu.Unlock()
}

// Writes counts the logged calls that create, change or delete flags or rules (POST,
// PATCH, DELETE under /feature-flags or /rules; not the search, not /oauth/token),
// whatever their outcome.
func (s *Server) Writes() int {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	n := 0
	for _, c := range s.calls {
		if isWrite(c.Method, c.Path) {
			n++
		}
	}
	return n
}

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
func (s *Server) InjectFault(f Fault) {
	left := f.Count
	if left <= 0 {
		left = 1
	}
	s.callMu.Lock()
	s.faults = append(s.faults, &pendingFault{Fault: f, left: left})
	s.callMu.Unlock()
}

func (s *Server) takeFault(method, path string) *Fault {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	for i, f := range s.faults {
		if (f.Method == "" || strings.EqualFold(f.Method, method)) && strings.HasPrefix(path, f.PathPrefix) {
			f.left--
			if f.left == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
			out := f.Fault
			return &out
		}
	}
	return nil
}

// RevokeTokens makes every issued token invalid: resource calls with one get 401.
func (s *Server) RevokeTokens() {
	s.tokMu.Lock()
	clear(s.tokens)
	s.tokMu.Unlock()
}

// response is what a handler answers, written out by ServeHTTP (or thrown away by an
// AfterHandle fault).
type response struct {
	status int
	header http.Header
	body   []byte
}

func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sandbox: encode response: %v", err)) // only the sandbox's own types reach here
	}
	return response{status: status, header: http.Header{"Content-Type": {"application/json"}}, body: b}
}

// errorBody is the API's error shape. The docs leave it open; third-party code reads
// `message`.
type errorBody struct {
	Message string `json:"message"`
	Status  int    `json:"status"`
}

func errorResponse(status int, format string, args ...any) response {
	return jsonResponse(status, errorBody{Message: fmt.Sprintf(format, args...), Status: status})
}

// ServeHTTP answers one API call. The call is in the log before its answer is sent (or
// its connection dropped), so a client that has its answer can assert on the log.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call := Call{Time: s.now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery}
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	call.Body = redactBody(r.URL.Path, body)

	fault := s.takeFault(r.Method, r.URL.Path)
	if fault != nil && fault.Latency > 0 {
		t := time.NewTimer(fault.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			s.record(call) // the client went away: logged with status 0, not handled
			return
		}
	}
	answersInstead := fault != nil && !fault.AfterHandle && (fault.Drop || fault.Status != 0)

	var resp response
	switch {
	case answersInstead && fault.Drop:
		s.record(call)
		dropConnection(w)
		return
	case answersInstead:
		resp = faultResponse(fault)
	case readErr != nil:
		var tooLarge *http.MaxBytesError
		if errors.As(readErr, &tooLarge) {
			resp = errorResponse(http.StatusRequestEntityTooLarge, "body: larger than %d bytes", maxBody)
		} else {
			resp = errorResponse(http.StatusBadRequest, "body: %v", readErr)
		}
	default:
		resp = s.handle(r, body)
	}
	if fault != nil && fault.AfterHandle {
		if fault.Drop {
			s.record(call)
			dropConnection(w)
			return
		}
		if fault.Status != 0 {
			resp = faultResponse(fault)
		}
	}
	call.Status = resp.status
	s.record(call)
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.status)
	if len(resp.body) > 0 {
		_, _ = w.Write(resp.body)
	}
}

func (s *Server) record(c Call) {
	s.callMu.Lock()
	s.calls = append(s.calls, c)
	s.callMu.Unlock()
	level := slog.LevelDebug
	if isWrite(c.Method, c.Path) {
		level = slog.LevelInfo // writes are what a quick-start user wants to see land
	}
	s.log.Log(context.Background(), level, "sandbox call", "method", c.Method, "path", c.Path, "status", c.Status)
}

func faultResponse(f *Fault) response {
	resp := errorResponse(f.Status, "%s", http.StatusText(f.Status))
	if f.Body != "" {
		resp.body = []byte(f.Body)
		if !json.Valid(resp.body) {
			resp.header.Set("Content-Type", "text/plain; charset=utf-8")
		}
	}
	if f.RetryAfter != "" {
		resp.header.Set("Retry-After", f.RetryAfter)
	}
	return resp
}

// dropConnection closes the connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // HTTP/2 or a wrapped writer: abort the stream instead
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
	resp.header.Set("Allow", strings.Join(allowed, ", "))
	return resp
}

// --- OAuth ------------------------------------------------------------------------

type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func oauthError(status int, code, desc string) response {
	return jsonResponse(status, tokenError{Error: code, Description: desc})
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
	resp := jsonResponse(http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int64(s.tokenTTL / time.Second),
	})
	resp.header.Set("Cache-Control", "no-store")
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
		resp.header.Set("WWW-Authenticate", `Bearer`)
		return resp, false
	}
	s.tokMu.Lock()
	exp, known := s.tokens[strings.TrimSpace(tok)]
	s.tokMu.Unlock()
	if !known || !s.now().Before(exp) {
		resp := errorResponse(http.StatusUnauthorized, "Unauthorized: the token is invalid or expired")
		resp.header.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
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
		if m != http.MethodPatch {
			return methodNotAllowed(http.MethodPatch)
		}
		id, err := strconv.ParseInt(seg[len(seg)-1], 10, 64)
		if err != nil || id <= 0 {
			return errorResponse(http.StatusNotFound, "rule %q not found", seg[len(seg)-1])
		}
		return s.patchRule(r, id, body)
	case len(seg) == 3 && seg[0] == "feature-flags":
		ref := flagRef{seg[1], seg[2]}
		switch m {
		case http.MethodGet:
			return s.getFlag(r, ref)
		case http.MethodPatch:
			return s.patchFlag(r, ref, body)
		case http.MethodDelete:
			return s.deleteFlag(ref)
		}
		return methodNotAllowed(http.MethodGet, http.MethodPatch, http.MethodDelete)
	case len(seg) == 4 && seg[0] == "feature-flags":
		if m != http.MethodPatch {
			return methodNotAllowed(http.MethodPatch)
		}
		return s.patchEnvironment(r, flagRef{seg[1], seg[2]}, seg[3], body)
	}
	return notFoundRoute(r)
}

func notFoundRoute(r *http.Request) response {
	return errorResponse(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
}
