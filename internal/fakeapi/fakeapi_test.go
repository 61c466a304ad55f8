package fakeapi

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/fakeapi/fakeapitest"
)

// TestFront drives a Front on a loopback server with a handler that counts the calls it
// handles: a fault answers instead of it or after it, and the log holds every call.
func TestFront(t *testing.T) {
	handled := 0
	var f *Front
	_, ts := fakeapitest.NewTestServer(t, "fake", func() (http.Handler, error) {
		f = NewFront(Config{
			Name:    "fake",
			IsWrite: func(method, _ string) bool { return method == http.MethodPost },
			Redact: func(_ string, body []byte) []byte {
				return []byte(strings.ReplaceAll(string(body), "secret", "REDACTED"))
			},
			Error: func(status int, format string, args ...any) Response {
				return JSON(status, map[string]any{"message": fmt.Sprintf(format, args...)})
			},
		})
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.Serve(w, r, func(*http.Request, []byte) Response {
				handled++
				return JSON(http.StatusOK, "handled")
			})
		}), nil
	})
	f.InjectFault(Fault{Method: "GET", PathPrefix: "/a", Status: 503, RetryAfter: "7", Header: http.Header{"x-extra": {"1"}}})
	f.InjectFault(Fault{Method: "POST", AfterHandle: true, Status: 502, Body: "lost"})

	tests := []struct {
		method, path, body string
		status             int
		respBody, header   string // header: "Name=value" the answer must carry
		handled            int
	}{
		{"GET", "/a/b", "", 503, `{"message":"Service Unavailable"}`, "Retry-After=7", 0},
		{"GET", "/a/b", "", 200, `"handled"`, "", 1},
		{"POST", "/c", "the secret", 502, "lost", "Content-Type=text/plain; charset=utf-8", 2},
		{"POST", "/c", "", 200, `"handled"`, "", 3},
	}
	for i, tc := range tests {
		req, err := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || string(b) != tc.respBody || handled != tc.handled {
			t.Errorf("call %d: %d %s, handled %d; want %d %s, handled %d", i, resp.StatusCode, b, handled, tc.status, tc.respBody, tc.handled)
		}
		if name, value, ok := strings.Cut(tc.header, "="); ok && resp.Header.Get(name) != value {
			t.Errorf("call %d: header %s = %q, want %q", i, name, resp.Header.Get(name), value)
		}
		if i == 0 && resp.Header.Get("X-Extra") != "1" {
			t.Errorf("call 0: the fault's Header is missing: %v", resp.Header)
		}
	}
	calls := f.Calls()
	if len(calls) != 4 || calls[0].Status != 503 || calls[2].Status != 502 || string(calls[2].Body) != "the REDACTED" {
		t.Errorf("call log %+v", calls)
	}
	if f.Writes() != 2 {
		t.Errorf("writes %d, want 2", f.Writes())
	}
	f.ResetCalls()
	if len(f.Calls()) != 0 {
		t.Error("call log not reset")
	}
}
