package splitsandbox

import (
	"net/http/httptest"
	"testing"

	"github.com/flagsync/flagsync/internal/fakeapi"
)

// NewTestServer starts a sandbox on a loopback httptest server for a test in any package
// and closes it when the test ends. It fails the test if opts are invalid.
func NewTestServer(t testing.TB, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	return fakeapi.NewTestServer(t, "split sandbox", func() (*Server, error) { return New(opts) })
}
