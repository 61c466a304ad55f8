package fakeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// MaxBody bounds a request body; real flags are far smaller.
const MaxBody = 4 << 20

// Call is one request a server received, in the call log.
type Call struct {
	Time   time.Time
	Method string
	Path   string // without the query
	Query  string // raw query
	Status int    // 0 when the connection was dropped or the client went away
	Body   []byte // request body, after the server's redaction (if any)
	// UserAgent is the client's User-Agent: flagsync names its replica there, so the
	// log tells which of several clients sent what.
	UserAgent string
}

// Fault changes how the server answers the next Count calls that match Method (empty:
// any) and PathPrefix (empty: any). Faulted calls are in the call log.
//
// A fault without AfterHandle answers instead of the API: after Latency, it drops the
// connection (Drop) or answers Status with Body (default the vendor's error shape),
// a Retry-After header if RetryAfter is set, and Header; a fault with only Latency
// delays the call, which is then handled. With AfterHandle the call is handled first
// (a write is applied) and then the connection is dropped or the answer replaced by
// Status: the response is lost.
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
	Header      http.Header
	Latency     time.Duration
	Drop        bool // hijack and close the connection without answering
	AfterHandle bool // apply the change, then drop or answer Status
	Count       int  // calls to fault; 0 means 1
}

// Response is what a sandbox handler answers, written out by Front.Serve (or thrown away
// by an AfterHandle fault).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON is a Response of status with v encoded as JSON. It panics if v cannot be encoded:
// only a sandbox's own types reach it.
func JSON(status int, v any) Response {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fakeapi: encode response: %v", err))
	}
	return Response{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: b}
}

// Config is what a sandbox tells its Front about itself.
type Config struct {
	// Name starts the log line of each call: "<Name> call".
	Name string
	// Now stamps calls (default time.Now).
	Now func() time.Time
	// Logger receives one line per call, at info for writes and debug for the rest:
	// method, path and status. Optional.
	Logger *slog.Logger
	// IsWrite tells the calls Writes counts and logs at info.
	IsWrite func(method, path string) bool
	// Redact, if set, returns the body to keep in the call log.
	Redact func(path string, body []byte) []byte
	// Error is the vendor's error answer, used for unreadable bodies and fault answers.
	Error func(status int, format string, args ...any) Response
}

// Front keeps a sandbox's call log and queued faults and answers calls through them. It
// is safe for concurrent use.
type Front struct {
	cfg Config

	mu     sync.Mutex // guards calls and faults
	calls  []Call
	faults []*pendingFault
}

type pendingFault struct {
	Fault
	left int
}

// NewFront returns a Front for the sandbox described by cfg.
func NewFront(cfg Config) *Front {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Front{cfg: cfg}
}

// Calls returns the call log, in the order the calls were answered.
func (f *Front) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// ResetCalls empties the call log.
func (f *Front) ResetCalls() {
	f.mu.Lock()
	f.calls = nil
	f.mu.Unlock()
}

// Writes counts the logged calls that Config.IsWrite calls writes, whatever their
// outcome.
func (f *Front) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if f.cfg.IsWrite(c.Method, c.Path) {
			n++
		}
	}
	return n
}

// InjectFault queues ft; it applies to the next ft.Count matching calls. Queued faults
// are tried in the order they were injected; a call takes at most one.
func (f *Front) InjectFault(ft Fault) {
	left := max(ft.Count, 1)
	f.mu.Lock()
	f.faults = append(f.faults, &pendingFault{Fault: ft, left: left})
	f.mu.Unlock()
}

func (f *Front) takeFault(method, path string) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, p := range f.faults {
		if (p.Method == "" || strings.EqualFold(p.Method, method)) && strings.HasPrefix(path, p.PathPrefix) {
			p.left--
			if p.left == 0 {
				f.faults = slices.Delete(f.faults, i, i+1)
			}
			out := p.Fault
			return &out
		}
	}
	return nil
}

// Serve answers one call: it reads the body (at most MaxBody bytes), applies the next
// matching fault, lets handle answer unless the fault answers instead, and writes the
// answer. The call is in the log before its answer is sent (or its connection dropped),
// so a client that has its answer can assert on the log.
func (f *Front) Serve(w http.ResponseWriter, r *http.Request, handle func(r *http.Request, body []byte) Response) {
	call := Call{Time: f.cfg.Now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, UserAgent: r.UserAgent()}
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	call.Body = body
	if f.cfg.Redact != nil {
		call.Body = f.cfg.Redact(r.URL.Path, body)
	}

	fault := f.takeFault(r.Method, r.URL.Path)
	if fault != nil && fault.Latency > 0 {
		t := time.NewTimer(fault.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			f.record(call) // the client went away: logged with status 0, not handled
			return
		}
	}
	answersInstead := fault != nil && !fault.AfterHandle && (fault.Drop || fault.Status != 0)

	var resp Response
	switch {
	case answersInstead && fault.Drop:
		f.record(call)
		dropConnection(w)
		return
	case answersInstead:
		resp = f.faultResponse(fault)
	case readErr != nil:
		var tooLarge *http.MaxBytesError
		if errors.As(readErr, &tooLarge) {
			resp = f.cfg.Error(http.StatusRequestEntityTooLarge, "body: larger than %d bytes", MaxBody)
		} else {
			resp = f.cfg.Error(http.StatusBadRequest, "body: %v", readErr)
		}
	default:
		resp = handle(r, body)
	}
	if fault != nil && fault.AfterHandle {
		if fault.Drop {
			f.record(call)
			dropConnection(w)
			return
		}
		if fault.Status != 0 {
			resp = f.faultResponse(fault)
		}
	}
	call.Status = resp.Status
	f.record(call)
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.Status)
	if len(resp.Body) > 0 {
		_, _ = w.Write(resp.Body)
	}
}

func (f *Front) record(c Call) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	level := slog.LevelDebug
	if f.cfg.IsWrite(c.Method, c.Path) {
		level = slog.LevelInfo // writes are what a quick-start user wants to see land
	}
	f.cfg.Logger.Log(context.Background(), level, f.cfg.Name+" call", "method", c.Method, "path", c.Path, "status", c.Status, "user_agent", c.UserAgent)
}

func (f *Front) faultResponse(ft *Fault) Response {
	resp := f.cfg.Error(ft.Status, "%s", http.StatusText(ft.Status))
	if ft.Body != "" {
		resp.Body = []byte(ft.Body)
		if !json.Valid(resp.Body) {
			resp.Header.Set("Content-Type", "text/plain; charset=utf-8")
		}
	}
	if ft.RetryAfter != "" {
		resp.Header.Set("Retry-After", ft.RetryAfter)
	}
	for k, v := range ft.Header {
		resp.Header[http.CanonicalHeaderKey(k)] = v
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
