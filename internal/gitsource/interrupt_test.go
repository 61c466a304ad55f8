package gitsource

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// How a cutFront interrupts pack downloads.
const (
	cutNone  int32 = iota
	cutDrop        // the connection is closed in the middle of the pack
	cutStall       // the server goes silent in the middle of the pack
)

// cutFront is a proxy on 127.0.0.1 in front of a smart-HTTP git server that can
// interrupt pack downloads (POST git-upload-pack) after their first bytes; ref
// listings always pass.
type cutFront struct {
	mode    atomic.Int32
	after   int64         // bytes of a pack response passed on before the cut
	stalled chan struct{} // receives when a download has gone silent
}

// startCutFront starts a cutFront before the server at target (a clone URL) and
// returns the front and the clone URL through it.
func startCutFront(t *testing.T, target string, after int64) (*cutFront, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	backend := &url.URL{Scheme: u.Scheme, Host: u.Host}
	proxy := httputil.NewSingleHostReverseProxy(backend)
	f := &cutFront{after: after, stalled: make(chan struct{}, 8)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mode := f.mode.Load()
		if mode == cutNone || r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			proxy.ServeHTTP(w, r)
			return
		}
		out := r.Clone(r.Context())
		out.URL.Scheme, out.URL.Host, out.Host, out.RequestURI = backend.Scheme, backend.Host, "", ""
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(resp.StatusCode)
		io.CopyN(w, resp.Body, f.after)
		w.(http.Flusher).Flush()
		if mode == cutStall {
			f.stalled <- struct{}{}
			<-r.Context().Done()
			return
		}
		panic(http.ErrAbortHandler) // closes the connection mid-response
	}))
	t.Cleanup(srv.Close)
	u.Host = srv.Listener.Addr().String()
	return f, u.String()
}

// expiringContext is a context whose deadline passes when the test says so: a timeout
// that does not depend on how fast the machine is.
type expiringContext struct {
	context.Context
	done chan struct{}
	once sync.Once
}

func newExpiringContext(t *testing.T) *expiringContext {
	return &expiringContext{Context: testContext(t), done: make(chan struct{})}
}

func (c *expiringContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *expiringContext) Done() <-chan struct{}       { return c.done }

func (c *expiringContext) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func (c *expiringContext) expire() { c.once.Do(func() { close(c.done) }) }

// packFolder lists the files of a clone's objects/pack folder.
func packFolder(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "objects", "pack"))
	if err != nil {
		t.Fatalf("list packs: %v", err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// largeFile is a file that does not compress: its pack takes many reads to download.
func largeFile(t *testing.T) string {
	t.Helper()
	b := make([]byte, 256<<10)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// A download that is cut off (the connection dropped; the server silent until the
// timeout, or until the caller gives up) fails with an error that says so: it is not
// taken for rewritten history, the cache is not re-cloned, no partial pack is left in
// it, and once the server is back the next fetch into the same cache is incremental.
func TestHTTPInterruptedFetch(t *testing.T) {
	t.Parallel()
	for _, depth := range []int{1, 0} {
		for _, tc := range []struct {
			name string
			mode int32
			// ctx returns the context of a fetch and what ends it once the download
			// has stalled.
			ctx  func(t *testing.T) (context.Context, func())
			want string
		}{
			{"dropped", cutDrop, func(t *testing.T) (context.Context, func()) { return testContext(t), nil }, ""},
			{"timed out", cutStall, func(t *testing.T) (context.Context, func()) {
				ctx := newExpiringContext(t)
				return ctx, ctx.expire
			}, "no answer within 20s (--git-timeout)"},
			{"cancelled", cutStall, func(t *testing.T) (context.Context, func()) {
				return context.WithCancel(testContext(t))
			}, "context canceled"},
		} {
			t.Run(fmt.Sprintf("%s depth %d", tc.name, depth), func(t *testing.T) {
				t.Parallel()
				repo, srv := httpRemote(t)
				front, remote := startCutFront(t, srv.URL, 16<<10)
				cache := t.TempDir()
				s, logs := newTestSource(t, Options{Repo: remote, Depth: depth, Auth: httpAuthOK(), CacheDir: cache})
				mustFetch(t, s)
				marker := markCache(t, s)
				packs := packFolder(t, s.CacheDir())

				want := repo.Commit(t, map[string]string{"flags/b.yaml": "b: 2\n", "assets/large.txt": largeFile(t)}, "second")
				front.mode.Store(tc.mode)
				cut, cutLogs := newTestSource(t, Options{Repo: remote, Depth: depth, Auth: httpAuthOK(), CacheDir: cache})
				for attempt := 1; attempt <= 2; attempt++ {
					ctx, end := tc.ctx(t)
					fetched := make(chan struct{})
					if end != nil {
						go func() {
							select {
							case <-front.stalled:
								end()
							case <-fetched:
							}
						}()
					}
					_, err := cut.Fetch(ctx)
					close(fetched)
					if err == nil {
						t.Fatalf("attempt %d: the interrupted fetch succeeded", attempt)
					}
					t.Logf("attempt %d: %v", attempt, err)
					if msg := err.Error(); strings.Contains(msg, "rewritten") || !strings.Contains(msg, "fetch "+remote+": ") || !strings.Contains(msg, tc.want) {
						t.Errorf("attempt %d: err = %q; want the failed fetch from %s (%q), not rewritten history", attempt, msg, remote, tc.want)
					}
					if got := packFolder(t, s.CacheDir()); strings.Join(got, " ") != strings.Join(packs, " ") {
						t.Errorf("attempt %d: the failed fetch left objects/pack %v, want %v", attempt, got, packs)
					}
				}
				if n := cutLogs.count("cloning afresh") + cutLogs.count(`"msg":"git clone"`); n != 0 {
					t.Errorf("an interrupted download made the cache be cloned afresh:\n%s", cutLogs)
				}
				if m, _ := filepath.Glob(s.CacheDir() + ".tmp-*"); len(m) != 0 {
					t.Errorf("clone folders left behind: %v", m)
				}

				front.mode.Store(cutNone)
				if snap := mustFetch(t, s); snap.Revision != want {
					t.Fatalf("revision %s, want %s", snap.Revision, want)
				}
				if _, err := os.Stat(marker); err != nil || logs.count(`"msg":"git fetch"`) != 1 || logs.count(`"msg":"git clone"`) != 1 {
					t.Errorf("after the outage the cache was not fetched into (marker: %v):\n%s", err, logs)
				}
			})
		}
	}

	// A first clone that is cut off leaves nothing in the cache folder.
	t.Run("first clone dropped", func(t *testing.T) {
		t.Parallel()
		repo, srv := httpRemote(t)
		repo.Commit(t, map[string]string{"assets/large.txt": largeFile(t)}, "second")
		front, remote := startCutFront(t, srv.URL, 16<<10)
		front.mode.Store(cutDrop)
		s, _ := newTestSource(t, Options{Repo: remote, Depth: 1, Auth: httpAuthOK()})
		if _, err := s.Fetch(testContext(t)); err == nil || !strings.Contains(err.Error(), "clone "+remote+": ") {
			t.Errorf("err = %v, want the failed clone of %s", err, remote)
		}
		entries, _ := os.ReadDir(filepath.Dir(s.CacheDir()))
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".lock") {
				t.Errorf("the failed clone left %s in the cache folder", e.Name())
			}
		}
	})
}

// The temporary files of go-git and git in objects/pack are removed; packs, their
// indexes and anything else are kept.
func TestRemoveTempPacks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pack := filepath.Join(dir, "objects", "pack")
	if err := os.MkdirAll(pack, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"pack-0123.pack", "pack-0123.idx", "pack-0123.rev", "pack-0123.keep",
		"tmp_pack_123", "tmp_pack_X7s", "tmp_idx_9", "tmp_obj_55", "tmp_rev_1", "notes.txt",
	} {
		if err := os.WriteFile(filepath.Join(pack, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(pack, "tmp_pack_folder"), 0o755); err != nil {
		t.Fatal(err)
	}
	removeTempPacks(dir)
	got := strings.Join(packFolder(t, dir), " ")
	if want := "notes.txt pack-0123.idx pack-0123.keep pack-0123.pack pack-0123.rev tmp_pack_folder"; got != want {
		t.Errorf("objects/pack holds %s, want %s", got, want)
	}
	removeTempPacks(t.TempDir()) // no objects/pack: nothing to do, no panic
}
