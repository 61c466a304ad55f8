package fakeapitest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// NewTestServer builds a sandbox with start, serves it on a loopback httptest server
// for a test in any package and closes that when the test ends. It fails the test,
// naming what, if start fails.
func NewTestServer[H http.Handler](t testing.TB, what string, start func() (H, error)) (H, *httptest.Server) {
	t.Helper()
	h, err := start()
	if err != nil {
		t.Fatalf("start %s: %v", what, err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return h, ts
}
