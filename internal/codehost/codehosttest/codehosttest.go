package codehosttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Call is one request a fake answered.
type Call struct {
	Method string
	// Path is the escaped path and query, as sent.
	Path   string
	Body   string
	Status int
}

// String renders the call as "METHOD PATH -> STATUS".
func (c Call) String() string { return fmt.Sprintf("%s %s -> %d", c.Method, c.Path, c.Status) }

// log is the call record and the unexpected requests a fake shares.
type log struct {
	mu         sync.Mutex
	calls      []Call
	unexpected []string
}

// Calls returns every call answered so far, in order.
func (l *log) Calls() []Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Call(nil), l.calls...)
}

// Writes returns the calls that were not GETs, in order: what a test checks to prove
// nothing was modified.
func (l *log) Writes() []Call {
	var out []Call
	for _, c := range l.Calls() {
		if c.Method != http.MethodGet && c.Method != http.MethodHead {
			out = append(out, c)
		}
	}
	return out
}

// Unexpected returns the requests no route of the fake matched.
func (l *log) Unexpected() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.unexpected...)
}

// recorder captures the status a handler writes.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// serve reads the body, runs route and records the call. route returns false when no
// route matched.
func (l *log) serve(w http.ResponseWriter, r *http.Request, route func(w http.ResponseWriter, r *http.Request, body []byte) bool) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	rec := &recorder{ResponseWriter: w}
	if !route(rec, r, body) {
		l.mu.Lock()
		l.unexpected = append(l.unexpected, r.Method+" "+r.URL.RequestURI())
		l.mu.Unlock()
		writeJSON(rec, http.StatusNotFound, map[string]string{"message": "Not Found"})
	}
	l.mu.Lock()
	l.calls = append(l.calls, Call{Method: r.Method, Path: r.URL.RequestURI(), Body: string(body), Status: rec.status})
	l.mu.Unlock()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var sha1RE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// start serves h on a loopback httptest server for the test and fails it, when the test
// ends, for any request the fake did not expect.
func start(t testing.TB, h http.Handler, l *log, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		if u := l.Unexpected(); len(u) > 0 {
			t.Errorf("fake %s: unexpected requests: %s", name, strings.Join(u, "; "))
		}
	})
	return srv
}
