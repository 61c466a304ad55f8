package faults

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"net"
	"net/http"
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

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/gitsource"
	"github.com/flagsync/flagsync/internal/gittest"
	kload "github.com/flagsync/flagsync/internal/kameleoon/load"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
)

// Stall modes of a gitFront.
const (
	stallNone  int32 = iota
	stallAll         // every request hangs: a server that accepts and never answers
	stallPacks       // the ref listing works, the pack download hangs
)

// gitFront is a reverse proxy on a fixed 127.0.0.1 port in front of a Git smart-HTTP
// server. It can go down (nothing listens on the port: connections are refused) and
// come back on the same port, so that a gitsource keeps its cache across the outage,
// and it can stall requests.
//
// While it is down it holds the port (on Linux; see holdPort). A port that is simply
// closed can be taken by any socket of the machine, other tests' servers included:
// a fetch meant to meet the outage then reaches that server instead and fails some
// other way ("connection reset by peer" from a server closing it was seen), and up
// cannot get the port back.
type gitFront struct {
	t     *testing.T
	addr  string
	proxy *httputil.ReverseProxy
	stall atomic.Int32

	mu   sync.Mutex
	srv  *http.Server
	held *heldPort // while down, on Linux
}

func startGitFront(t *testing.T, target string) *gitFront {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &gitFront{t: t, proxy: httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})}
	g.proxy.ErrorLog = nil
	ln, err := listenReusable("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = ln.Addr().String()
	g.serve(ln)
	t.Cleanup(g.close)
	return g
}

// url returns the repository URL target as served through the front.
func (g *gitFront) url(target string) string {
	u, _ := url.Parse(target)
	u.Host = g.addr
	return u.String()
}

func (g *gitFront) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch g.stall.Load() {
		case stallAll:
			<-r.Context().Done()
			return
		case stallPacks:
			if strings.HasSuffix(r.URL.Path, "/git-upload-pack") && r.Method == http.MethodPost {
				<-r.Context().Done()
				return
			}
		}
		g.proxy.ServeHTTP(w, r)
	})}
	g.mu.Lock()
	g.srv = srv
	g.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// down stops listening and closes every connection. The port is held from before the
// listener closes until up, where that is possible.
func (g *gitFront) down() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.srv == nil {
		return
	}
	if canHoldPorts {
		h, err := holdPort(g.addr)
		if err != nil {
			g.t.Errorf("git front going down: %v", err)
		}
		g.held = h
	}
	g.srv.Close()
	g.srv = nil
}

// close stops the front for good, releasing the port.
func (g *gitFront) close() {
	g.down()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held != nil {
		g.held.close()
		g.held = nil
	}
}

// up listens on the same port again.
func (g *gitFront) up() {
	g.t.Helper()
	g.mu.Lock()
	held := g.held
	g.held = nil
	g.mu.Unlock()
	var ln net.Listener
	var err error
	if held != nil {
		ln, err = held.listen()
	} else {
		for range 50 { // the port was freed: it is free again at once, unless another socket took it
			if ln, err = listenReusable(g.addr); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err != nil {
		g.t.Fatalf("listen on %s again: %v", g.addr, err)
	}
	g.serve(ln)
}

// treeState fingerprints every file under dir (path → mode and content hash), to show
// that a failed fetch left the cache exactly as it was.
func treeState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		v := st.Mode().String()
		if st.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			v += " " + hex.EncodeToString(sum[:8])
		}
		out[rel] = v
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

// treeDiff lists the paths that differ between two treeStates.
func treeDiff(before, after map[string]string) []string {
	var out []string
	for p, v := range before {
		switch w, ok := after[p]; {
		case !ok:
			out = append(out, "-"+p)
		case w != v:
			out = append(out, "~"+p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			out = append(out, "+"+p)
		}
	}
	sort.Strings(out)
	return out
}

// leftovers lists what a failed clone may leave in a cache folder: temporary clones.
func leftovers(t *testing.T, cache string) []string {
	t.Helper()
	entries, err := os.ReadDir(cache)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// flagCount loads a snapshot's flags and returns how many there are.
func flagCount(t *testing.T, snap *gitsource.Snapshot) int {
	t.Helper()
	d, err := kload.Load(snap.FS, "flags")
	if err != nil {
		t.Fatalf("load snapshot %s: %v", snap.Revision, err)
	}
	return len(d.Flags)
}

func newGitSource(t *testing.T, w *world, repo, cache string, timeout time.Duration) *gitsource.Source {
	t.Helper()
	src, err := gitsource.New(gitsource.Options{
		Repo: repo, Ref: "main", Path: "flags", CacheDir: cache, Depth: 1, Timeout: timeout,
		Auth: gitsource.Auth{Username: gitUser, Password: canaryGitPassword}, Logger: w.log,
	})
	if err != nil {
		t.Fatalf("new git source: %v", err)
	}
	return src
}

func TestFaultGitServer(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ksandbox.Options{})
	v1 := genFlags(8)
	repo := gittest.NewRepo(t)
	revA := repo.Commit(t, repoFiles(v1), "v1")
	srv := gittest.StartHTTPServer(t, repo, gitUser, canaryGitPassword)
	front := startGitFront(t, srv.URL)
	remote := front.url(srv.URL)
	cache := t.TempDir()
	// Two sources on one cache: the one that meets the hanging server gives up after
	// 2 s, long enough for the ref listing to pass on a loaded machine.
	src := newGitSource(t, w, remote, cache, 20*time.Second)
	impatient := newGitSource(t, w, remote, cache, 2*time.Second)

	snapA, err := src.Fetch(testContext(t))
	if err != nil || snapA.Revision != revA {
		t.Fatalf("first fetch: %v (revision %v, want %s)", err, snapA, revA)
	}
	w.mustApplyFS(w.proc(procOptions{}), snapA.FS, snapA.Revision)
	cached := treeState(t, cache)

	// The revision moves on while the server is unreachable or hangs: each fetch fails
	// with an error that names the remote and what went wrong, the cache is not touched
	// and the snapshot already fetched still reads.
	v2 := edited(v1)
	revB := repo.Commit(t, repoFiles(v2), "v2")
	outages := []struct {
		name  string
		start func()
		want  []string
	}{
		{"down", front.down, []string{"list refs of " + remote, "connection refused"}},
		{"hanging", func() { front.up(); front.stall.Store(stallAll) }, []string{"list refs of " + remote, "no answer within 2s"}},
		{"hanging download", func() { front.stall.Store(stallPacks) }, []string{"fetch " + remote, "no answer within 2s"}},
	}
	var errs []string
	for _, o := range outages {
		o.start()
		_, err := impatient.Fetch(testContext(t))
		if err == nil {
			t.Fatalf("git %s: the fetch succeeded", o.name)
		}
		assertErrorNames(t, "the error of a fetch from a git server that is "+o.name, err.Error(), o.want...)
		w.assertNoSecrets("a git error", err.Error())
		if d := treeDiff(cached, treeState(t, cache)); len(d) > 0 {
			t.Errorf("git %s: the failed fetch changed the cache: %v", o.name, d)
		}
		if l := leftovers(t, cache); len(l) > 0 {
			t.Errorf("git %s: the failed fetch left %v in the cache folder", o.name, l)
		}
		if n := flagCount(t, snapA); n != len(v1) {
			t.Errorf("git %s: the previous snapshot reads %d flags, want %d", o.name, n, len(v1))
		}
		errs = append(errs, o.name+": "+err.Error())
	}
	// The snapshot fetched before the outages still syncs: nothing to do.
	w.assertQuietFS(snapA.FS, snapA.Revision)

	// The server is back: the next fetch picks up the new revision and it converges.
	front.stall.Store(stallNone)
	snapB, err := src.Fetch(testContext(t))
	if err != nil || snapB.Revision != revB {
		t.Fatalf("fetch after the outage: %v (want %s)", err, revB)
	}
	w.mustApplyFS(w.proc(procOptions{}), snapB.FS, snapB.Revision)

	// Force-pushed in the middle of a sync: the branch is rewritten from v1 while the
	// sync of v3 is applying. That sync finishes v3; the next fetch gets the new
	// history (a shallow cache cannot fetch it incrementally) and converges on it.
	v3 := edited(v2)
	revC := repo.Commit(t, repoFiles(v3), "v3")
	snapC, err := src.Fetch(testContext(t))
	if err != nil || snapC.Revision != revC {
		t.Fatalf("fetch v3: %v", err)
	}
	v4 := append([]genFlag(nil), v1...)
	v4[2].stagingOn = !v4[2].stagingOn
	v4[5].exposition = 55
	arrived, pushed := make(chan struct{}), make(chan struct{})
	w.front.setBefore(onWrite(1, func() { close(arrived); <-pushed }))
	done := make(chan error, 1)
	ctx, p := testContext(t), w.proc(procOptions{})
	go func() {
		_, err := w.runFS(ctx, p, snapC.FS, snapC.Revision)
		done <- err
	}()
	<-arrived
	repo.ResetHard(t, revA)
	revD := repo.Commit(t, repoFiles(v4), "v4, rewritten from v1")
	close(pushed)
	if err := <-done; err != nil {
		t.Fatalf("sync of v3 during the force-push: %v", err)
	}
	w.front.setBefore(nil)
	snapD, err := src.Fetch(testContext(t))
	if err != nil || snapD.Revision != revD {
		t.Fatalf("fetch after the force-push: %v (revision %v, want %s)", err, snapD, revD)
	}
	writes0 := w.sb.Writes()
	w.mustApplyFS(w.proc(procOptions{}), snapD.FS, snapD.Revision)
	rewritten := w.sb.Writes() - writes0
	w.settle(repoFiles(v4), revD)
	summary(t, "fault git-server-down-slow-force-push: %s; errors %q; cache untouched and the previous snapshot still synced (0 writes) during each outage; force-pushed during the sync of %s: that sync finished, the next fetch got %s (rewritten from %s) and converged (%d writes), %d duplicates",
		w.stats(), errs, revC[:7], revD[:7], revA[:7], rewritten, len(w.duplicates()))
}

// assertQuietFS is assertQuiet on a repository given as a file system.
func (w *world) assertQuietFS(fsys fs.FS, rev string) {
	w.t.Helper()
	writes0 := w.sb.Writes()
	rep, err := w.runFS(testContext(w.t), w.proc(procOptions{}), fsys, rev)
	if err != nil {
		w.t.Fatalf("sync %s: %v", rev, err)
	}
	if n := w.sb.Writes() - writes0; n != 0 || len(rep.Plan.Changes) != 0 {
		w.t.Errorf("sync %s: %d changes planned, %d writes sent; want none", rev, len(rep.Plan.Changes), n)
	}
}

func TestFaultInvalidRevision(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ksandbox.Options{})
	v1 := genFlags(6)
	repo := gittest.NewRepo(t)
	repo.Commit(t, repoFiles(v1), "v1")
	srv := gittest.StartHTTPServer(t, repo, gitUser, canaryGitPassword)
	src := newGitSource(t, w, srv.URL, t.TempDir(), 20*time.Second)
	snap, err := src.Fetch(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	w.mustApplyFS(w.proc(procOptions{}), snap.FS, snap.Revision)

	// A bad file is pushed together with a good edit: nothing of that revision is read
	// or written, and every problem is reported with its place.
	v2 := append([]genFlag(nil), v1...)
	v2[1].exposition = 91
	bad := repoFiles(v2)
	bad["flags/zz_broken.yaml"] = brokenFlag
	revBad := repo.Commit(t, bad, "a good edit and a broken file")
	snap, err = src.Fetch(testContext(t))
	if err != nil || snap.Revision != revBad {
		t.Fatalf("fetch the bad revision: %v", err)
	}
	calls0 := len(w.sb.Calls())
	rep, err := w.runFS(testContext(t), w.proc(procOptions{}), snap.FS, snap.Revision)
	var invalid *diag.InvalidError
	if !errors.As(err, &invalid) {
		t.Fatalf("sync of a revision with a broken file: err = %v, want the diagnostics", err)
	}
	if n := len(w.sb.Calls()) - calls0; n != 0 {
		t.Errorf("the invalid revision made %d API calls, want 0", n)
	}
	if len(rep.Diagnostics) < 2 || !strings.HasPrefix(rep.Diagnostics[0].String(), "flags/zz_broken.yaml:") {
		t.Errorf("diagnostics %v, want every problem of flags/zz_broken.yaml with its place", rep.Diagnostics)
	}
	first := rep.Diagnostics[0].String()

	// The next good revision (the file fixed, another edit) converges, good edit included.
	v3 := append([]genFlag(nil), v2...)
	v3[4].stagingOn = !v3[4].stagingOn
	fixed := repoFiles(v3)
	fixed["flags/zz_broken.yaml"] = ""
	revGood := repo.Commit(t, fixed, "fix")
	snap, err = src.Fetch(testContext(t))
	if err != nil || snap.Revision != revGood {
		t.Fatalf("fetch the fixed revision: %v", err)
	}
	writes0 := w.sb.Writes()
	w.mustApplyFS(w.proc(procOptions{}), snap.FS, snap.Revision)
	if n := w.sb.Writes() - writes0; n != 2 {
		t.Errorf("the fixed revision sent %d writes, want 2 (the edit held back with the bad file, and the new one)", n)
	}
	w.settle(repoFiles(v3), revGood)
	summary(t, "fault invalid-revision: %s; %s: %d problems (first %q), 0 API calls; %s converged with both edits (2 writes), %d duplicates",
		w.stats(), revBad[:7], len(rep.Diagnostics), first, revGood[:7], len(w.duplicates()))
}
