package kameleoon

import (
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// tokenRecorder is a transport that keeps the bearer tokens a client sends.
type tokenRecorder struct {
	mu     sync.Mutex
	tokens map[string]bool
}

func (r *tokenRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		r.mu.Lock()
		r.tokens[tok] = true
		r.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestTokenStaysInMemory: after syncs (a full read, writes, a drift check of a vendor that
// keeps the live flags between syncs), no file under the sandbox's state folder, the
// user's cache folder or home holds the access token: tokens stay in memory only.
func TestTokenStaysInMemory(t *testing.T) {
	root := t.TempDir()
	cache, home, state := filepath.Join(root, "cache"), filepath.Join(root, "home"), filepath.Join(root, ".flagsync", "sandbox.json")
	for _, d := range []string{cache, home, filepath.Dir(state)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("HOME", home)
	sb, err := ksandbox.New(ksandbox.Options{StatePath: state, RatePer10s: -1, RatePerHour: -1, Environments: []string{"development", "production"}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	rec := &tokenRecorder{tokens: map[string]bool{}}
	c, err := kclient.New(kclient.Config{BaseURL: ts.URL, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret,
		HTTPClient: &http.Client{Transport: rec}})
	if err != nil {
		t.Fatal(err)
	}
	v := Vendor(c)
	for _, fsys := range []fstest.MapFS{manyFlags(5, nil), manyFlags(5, every(5, 2)), manyFlags(5, every(5, 2))} {
		if _, err := reconcile.Run(context.Background(), reconcile.Input{Revision: "r", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{v}}); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.tokens) == 0 {
		t.Fatal("no token was sent: nothing to look for")
	}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for tok := range rec.tokens {
			if bytes.Contains(b, []byte(tok)) {
				t.Errorf("%s holds the access token", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Error("no file to scan: the sandbox wrote no state")
	}
}
