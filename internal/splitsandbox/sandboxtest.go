package splitsandbox

import (
	"net/http/httptest"
	"testing"
)

// NewTestServer starts a sandbox on a loopback httptest server for a test in any package
// and closes it when the test ends. It fails the test if opts are invalid.
func NewTestServer(t testing.TB, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("start split sandbox: %v", err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}
