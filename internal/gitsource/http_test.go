package gitsource

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/gittest"
)

const (
	httpUser = "flagbot"
	httpPass = "correct-horse-battery"
)

// httpRemote is a fixture repository served over smart HTTP behind basic auth.
func httpRemote(t *testing.T) (*gittest.Repo, *gittest.HTTPServer) {
	t.Helper()
	repo := gittest.NewRepo(t)
	repo.Commit(t, map[string]string{"flags/a.yaml": "a: 1\n", "README.md": "hi\n"}, "first")
	return repo, gittest.StartHTTPServer(t, repo, httpUser, httpPass)
}

func httpAuthOK() Auth { return Auth{Username: httpUser, Password: httpPass} }

// markCache puts a file into the clone, which survives fetches but not a re-clone.
func markCache(t *testing.T, s *Source) string {
	t.Helper()
	marker := filepath.Join(s.CacheDir(), "flagsync-test-marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatalf("mark cache: %v", err)
	}
	return marker
}

func TestHTTPCloneThenIncrementalFetch(t *testing.T) {
	t.Parallel()
	repo, srv := httpRemote(t)
	s, logs := newTestSource(t, Options{Repo: srv.URL, Depth: 1, Auth: httpAuthOK()})

	snap := mustFetch(t, s)
	if want := repo.Head(t); snap.Revision != want {
		t.Fatalf("revision %s, want %s", snap.Revision, want)
	}
	if snap.Dirty {
		t.Error("a remote snapshot is never dirty")
	}
	assertFiles(t, snap.FS, map[string]string{"flags/a.yaml": "a: 1\n", "README.md": "hi\n"})
	if logs.count(`"msg":"git clone"`) != 1 {
		t.Errorf("want one clone logged:\n%s", logs)
	}
	marker := markCache(t, s)

	// Nothing changed: the ref listing is all it takes.
	before := srv.UploadPacks()
	mustFetch(t, s)
	if srv.UploadPacks() != before {
		t.Errorf("an up-to-date fetch downloaded a pack")
	}
	if logs.count(`"msg":"git up to date"`) != 1 {
		t.Errorf("want an up-to-date line:\n%s", logs)
	}

	want := repo.Commit(t, map[string]string{"flags/b.yaml": "b: 2\n", "README.md": ""}, "second")
	snap = mustFetch(t, s)
	if snap.Revision != want {
		t.Fatalf("revision %s, want %s", snap.Revision, want)
	}
	assertFiles(t, snap.FS, map[string]string{"flags/a.yaml": "a: 1\n", "flags/b.yaml": "b: 2\n"})
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the cache was re-cloned instead of fetched into: %v", err)
	}
	if srv.UploadPacks() != before+1 {
		t.Errorf("pack downloads %d, want %d", srv.UploadPacks(), before+1)
	}
	if logs.count(`"msg":"git fetch"`) != 1 || logs.count(`"msg":"git clone"`) != 1 {
		t.Errorf("want one clone then one fetch:\n%s", logs)
	}
	// A second Source on the same cache folder reuses the clone too.
	s2, logs2 := newTestSource(t, Options{Repo: srv.URL, Depth: 1, Auth: httpAuthOK(), CacheDir: filepath.Dir(s.CacheDir())})
	if snap = mustFetch(t, s2); snap.Revision != want || logs2.count(`"msg":"git up to date"`) != 1 {
		t.Errorf("second source: revision %s, logs:\n%s", snap.Revision, logs2)
	}
}

func TestHTTPForcePush(t *testing.T) {
	t.Parallel()
	for _, depth := range []int{1, 0} {
		t.Run(fmt.Sprintf("depth %d", depth), func(t *testing.T) {
			t.Parallel()
			repo, srv := httpRemote(t)
			first := repo.Head(t)
			repo.Commit(t, map[string]string{"flags/a.yaml": "a: 2\n"}, "second")
			s, logs := newTestSource(t, Options{Repo: srv.URL, Depth: depth, Auth: httpAuthOK()})
			mustFetch(t, s)

			// Rewritten on top of a commit the shallow cache never had.
			repo.ResetHard(t, first)
			repo.Commit(t, map[string]string{"flags/c.yaml": "c: 3\n"}, "rewritten")
			snap := mustFetch(t, s)
			if want := repo.Head(t); snap.Revision != want {
				t.Fatalf("revision %s, want the force-pushed %s", snap.Revision, want)
			}
			assertFiles(t, snap.FS, map[string]string{"flags/a.yaml": "a: 1\n", "flags/c.yaml": "c: 3\n", "README.md": "hi\n"})

			// Force-pushed back to an old commit.
			repo.ResetHard(t, first)
			repo.ForcePush(t)
			snap = mustFetch(t, s)
			if snap.Revision != first {
				t.Fatalf("revision %s, want %s", snap.Revision, first)
			}
			assertFiles(t, snap.FS, map[string]string{"flags/a.yaml": "a: 1\n", "README.md": "hi\n"})

			rewritten := logs.count("rewritten beyond the shallow cache")
			if depth == 1 && rewritten == 0 {
				t.Errorf("the shallow cache did not notice the rewrite:\n%s", logs)
			}
			if depth == 0 && (rewritten != 0 || logs.count(`"msg":"git clone"`) != 1) {
				t.Errorf("a full clone was re-cloned:\n%s", logs)
			}
			if logs.count("fetch into the cache failed") != 0 {
				t.Errorf("a rewrite was taken for a damaged cache:\n%s", logs)
			}
		})
	}
}

// A shallow cache fetches only what is new: many small updates accumulate history, so
// ChangedFiles works between any two fetched revisions.
func TestHTTPThinFetches(t *testing.T) {
	t.Parallel()
	repo, srv := httpRemote(t)
	s, logs := newTestSource(t, Options{Repo: srv.URL, Depth: 1, Auth: httpAuthOK()})
	first := mustFetch(t, s).Revision
	var revs []string
	for i := 0; i < 3; i++ {
		repo.Commit(t, map[string]string{fmt.Sprintf("flags/n%d.yaml", i): "n\n"}, "more")
		repo.Commit(t, map[string]string{fmt.Sprintf("flags/m%d.yaml", i): "m\n"}, "more")
		revs = append(revs, mustFetch(t, s).Revision)
	}
	if logs.count(`"msg":"git clone"`) != 1 || logs.count(`"msg":"git fetch"`) != 3 {
		t.Errorf("want one clone and three fetches:\n%s", logs)
	}
	got, err := s.ChangedFiles(testContext(t), first, revs[2])
	if want := "flags/m0.yaml flags/m1.yaml flags/m2.yaml flags/n0.yaml flags/n1.yaml flags/n2.yaml"; err != nil || strings.Join(got, " ") != want {
		t.Errorf("ChangedFiles = %v, %v; want %s", got, err, want)
	}
}

func TestHTTPBranchDeletedAndRecreated(t *testing.T) {
	t.Parallel()
	repo, srv := httpRemote(t)
	repo.Checkout(t, "release", false)
	repo.Commit(t, map[string]string{"flags/r.yaml": "r: 1\n"}, "release")
	s, _ := newTestSource(t, Options{Repo: srv.URL, Ref: "release", Depth: 1, Auth: httpAuthOK()})
	mustFetch(t, s)

	repo.DeleteBranch(t, "release")
	_, err := s.Fetch(testContext(t))
	if err == nil || !strings.Contains(err.Error(), `ref "release": no branch or tag`) {
		t.Fatalf("fetch of a deleted branch: %v", err)
	}

	repo.Checkout(t, "release-new", true)
	repo.Branch = "release"
	want := repo.Commit(t, map[string]string{"other.yaml": "o: 1\n"}, "recreated, unrelated history")
	snap := mustFetch(t, s)
	if snap.Revision != want {
		t.Fatalf("revision %s, want the recreated branch's %s", snap.Revision, want)
	}
	assertFiles(t, snap.FS, map[string]string{"other.yaml": "o: 1\n"})
}

func TestHTTPRefs(t *testing.T) {
	t.Parallel()
	repo, srv := httpRemote(t)
	first := repo.Head(t)
	repo.Tag(t, "v1")
	second := repo.Commit(t, map[string]string{"flags/a.yaml": "a: 2\n"}, "second")
	repo.TagAnnotated(t, "v2", "release two")
	third := repo.Commit(t, map[string]string{"flags/a.yaml": "a: 3\n"}, "third")
	repo.Checkout(t, "other", false)
	other := repo.Commit(t, map[string]string{"flags/a.yaml": "a: other\n"}, "on other")

	cases := []struct {
		name, ref, want, content string
	}{
		{"default branch", "", third, "a: 3\n"},
		{"branch", "main", third, "a: 3\n"},
		{"full ref name", "refs/heads/other", other, "a: other\n"},
		{"lightweight tag", "v1", first, "a: 1\n"},
		{"annotated tag", "v2", second, "a: 2\n"},
		{"commit at a branch tip", other, other, "a: other\n"},
		{"commit inside history", first, first, "a: 1\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newTestSource(t, Options{Repo: srv.URL, Ref: tc.ref, Depth: 1, Auth: httpAuthOK()})
			snap := mustFetch(t, s)
			if snap.Revision != tc.want {
				t.Errorf("revision %s, want %s", snap.Revision, tc.want)
			}
			if got, _ := fs.ReadFile(snap.FS, "flags/a.yaml"); string(got) != tc.content {
				t.Errorf("flags/a.yaml = %q, want %q", got, tc.content)
			}
		})
	}
	t.Run("unknown ref", func(t *testing.T) {
		t.Parallel()
		s, _ := newTestSource(t, Options{Repo: srv.URL, Ref: "nope", Depth: 1, Auth: httpAuthOK()})
		_, err := s.Fetch(testContext(t))
		if err == nil || !strings.Contains(err.Error(), `ref "nope": no branch or tag of that name`) {
			t.Errorf("err = %v", err)
		}
	})
}

// A commit inside the history, on a server that hands out reachable commits by hash:
// fetched on its own, at depth 1, without the fallback.
func TestHTTPCommitByHashAllowed(t *testing.T) {
	t.Parallel()
	repo, srv := httpRemote(t)
	repo.SetConfig(t, "uploadpack.allowReachableSHA1InWant", "true")
	first := repo.Head(t)
	repo.Commit(t, map[string]string{"flags/a.yaml": "a: 2\n"}, "second")
	s, logs := newTestSource(t, Options{Repo: srv.URL, Ref: first, Depth: 1, Auth: httpAuthOK()})
	snap := mustFetch(t, s)
	if snap.Revision != first {
		t.Fatalf("revision %s, want %s", snap.Revision, first)
	}
	if logs.count("does not serve commits by hash") != 0 {
		t.Errorf("fell back to a full fetch although the server allows commits by hash:\n%s", logs)
	}
}

func TestHTTPPath(t *testing.T) {
	t.Parallel()
	_, srv := httpRemote(t)
	for _, tc := range []struct{ path, err string }{
		{"flags", ""},
		{"./flags/", ""},
		{"missing", `path "missing": no such folder`},
		{"README.md", `path "README.md": no such folder`},
	} {
		s, _ := newTestSource(t, Options{Repo: srv.URL, Path: tc.path, Depth: 1, Auth: httpAuthOK()})
		_, err := s.Fetch(testContext(t))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("path %q: %v", tc.path, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, fs.ErrNotExist)):
			t.Errorf("path %q: err = %v, want %q wrapping fs.ErrNotExist", tc.path, err, tc.err)
		}
	}
	if _, err := New(Options{Repo: srv.URL, Path: "../up", CacheDir: t.TempDir()}); err == nil {
		t.Error("a path leaving the repository was accepted")
	}
}

func TestHTTPChangedFiles(t *testing.T) {
	t.Parallel()
	repo, srv := httpRemote(t)
	s, _ := newTestSource(t, Options{Repo: srv.URL, Depth: 1, Auth: httpAuthOK()})
	from := mustFetch(t, s).Revision
	repo.Commit(t, map[string]string{"flags/a.yaml": "a: 2\n", "flags/new.yaml": "n: 1\n", "README.md": ""}, "change")
	to := mustFetch(t, s).Revision

	got, err := s.ChangedFiles(testContext(t), from, to)
	if err != nil {
		t.Fatalf("ChangedFiles: %v", err)
	}
	if want := "README.md flags/a.yaml flags/new.yaml"; strings.Join(got, " ") != want {
		t.Errorf("changed %v, want %s", got, want)
	}
	// A fresh shallow clone has the tip only.
	fresh, _ := newTestSource(t, Options{Repo: srv.URL, Depth: 1, Auth: httpAuthOK()})
	mustFetch(t, fresh)
	if _, err := fresh.ChangedFiles(testContext(t), from, to); !errors.Is(err, ErrHistoryUnavailable) {
		t.Errorf("ChangedFiles from a commit the clone never saw: err = %v, want ErrHistoryUnavailable", err)
	}
	if _, err := s.ChangedFiles(testContext(t), "not-a-hash", to); !errors.Is(err, ErrHistoryUnavailable) {
		t.Errorf("ChangedFiles from a bad revision: err = %v, want ErrHistoryUnavailable", err)
	}
}

func TestFileURL(t *testing.T) {
	t.Parallel()
	repo := gittest.NewRepo(t)
	want := repo.Commit(t, map[string]string{"f.yaml": "x\n"}, "one")
	s, _ := newTestSource(t, Options{Repo: "file://" + filepath.ToSlash(repo.Bare), Depth: 1})
	if snap := mustFetch(t, s); snap.Revision != want {
		t.Errorf("revision %s, want %s", snap.Revision, want)
	}
}

// TLS is always verified: a private authority must be named with CAFile.
func TestHTTPSVerifiesCertificates(t *testing.T) {
	t.Parallel()
	repo := gittest.NewRepo(t)
	want := repo.Commit(t, map[string]string{"f.yaml": "x\n"}, "one")
	srv, caPEM := gittest.StartHTTPS(t, repo, httpUser, httpPass)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}

	s, _ := newTestSource(t, Options{Repo: srv.URL, Depth: 1, Auth: httpAuthOK()})
	if _, err := s.Fetch(testContext(t)); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("unknown authority: err = %v, want a certificate error", err)
	}
	s, _ = newTestSource(t, Options{Repo: srv.URL, Depth: 1, Auth: httpAuthOK(), CAFile: caFile})
	if snap := mustFetch(t, s); snap.Revision != want {
		t.Errorf("revision %s, want %s", snap.Revision, want)
	}
	if _, err := New(Options{Repo: srv.URL, CacheDir: t.TempDir(), CAFile: filepath.Join(t.TempDir(), "none.pem")}); err == nil {
		t.Error("a missing CA file was accepted")
	}
}
