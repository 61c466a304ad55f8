package ksandboxtest

import (
	"net/http/httptest"
	"testing"

	"github.com/flagsync/flagsync/internal/fakeapi/fakeapitest"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
)

// NewTestServer starts a sandbox on a loopback httptest server for a test in any
// package and closes it when the test ends. It fails the test if opts are invalid.
func NewTestServer(t testing.TB, opts ksandbox.Options) (*ksandbox.Server, *httptest.Server) {
	t.Helper()
	return fakeapitest.NewTestServer(t, "sandbox", func() (*ksandbox.Server, error) { return ksandbox.New(opts) })
}
