package splitsandboxtest

import (
	"net/http/httptest"
	"testing"

	"github.com/flagsync/flagsync/internal/fakeapi/fakeapitest"
	splitsandbox "github.com/flagsync/flagsync/internal/split/sandbox"
)

// NewTestServer starts a sandbox on a loopback httptest server for a test in any package
// and closes it when the test ends. It fails the test if opts are invalid.
func NewTestServer(t testing.TB, opts splitsandbox.Options) (*splitsandbox.Server, *httptest.Server) {
	t.Helper()
	return fakeapitest.NewTestServer(t, "split sandbox", func() (*splitsandbox.Server, error) { return splitsandbox.New(opts) })
}
