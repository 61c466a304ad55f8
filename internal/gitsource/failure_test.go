package gitsource

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/gittest"
)

// canary is a password that must never show in an error or a log line.
const canary = "canary-Zq8vT2-never-print-me"

func TestWrongCredentialsNeverPrinted(t *testing.T) {
	t.Parallel()
	_, srv := httpRemote(t)
	withUser := strings.Replace(srv.URL, "http://", "http://"+httpUser+":"+canary+"@", 1)
	tokenInUser := strings.Replace(srv.URL, "http://", "http://"+canary+"@", 1)
	for _, tc := range []struct {
		name string
		repo string
		auth Auth
		want string
	}{
		{"wrong password", srv.URL, Auth{Username: httpUser, Password: canary}, "the server refused the credentials"},
		{"wrong token", srv.URL, Auth{Token: canary}, "the server refused the credentials"},
		{"password in the URL", withUser, Auth{}, "the server refused the credentials"},
		{"token as URL user", tokenInUser, Auth{}, "the server refused the credentials"},
		{"no credentials", srv.URL, Auth{}, "the server wants credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, logs := newTestSource(t, Options{Repo: tc.repo, Depth: 1, Auth: tc.auth})
			_, err := s.Fetch(testContext(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			for _, text := range []string{err.Error(), logs.String(), s.Remote(), tc.auth.String()} {
				if strings.Contains(text, canary) {
					t.Errorf("the canary leaked into: %s", text)
				}
			}
			if !strings.Contains(err.Error(), srv.URL) {
				t.Errorf("error does not name the (sanitised) remote %s: %v", srv.URL, err)
			}
		})
	}
	// The right password given in the URL works, and is not printed either.
	good := strings.Replace(srv.URL, "http://", "http://"+httpUser+":"+httpPass+"@", 1)
	s, logs := newTestSource(t, Options{Repo: good, Depth: 1})
	mustFetch(t, s)
	if strings.Contains(logs.String(), httpPass) || strings.Contains(s.Remote(), httpPass) {
		t.Errorf("password from the URL printed:\n%s", logs)
	}
	if logs.count("credentials in the repository URL") != 1 {
		t.Errorf("no warning about credentials in the URL:\n%s", logs)
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	keyFile, _ := gittest.NewKey(t, "")
	// A refused connection fails at once, so it gets a timeout it never reaches; a
	// silent server must be cut off by the timeout.
	for _, tc := range []struct {
		name, repo string
		timeout    time.Duration
		want       string
	}{
		{"http closed port", "http://" + gittest.ClosedPort(t) + "/r.git", 10 * time.Second, "connection refused"},
		{"http silent server", "http://" + gittest.StartBlackhole(t) + "/r.git", 300 * time.Millisecond, "no answer within 300ms"},
		{"ssh closed port", "ssh://git@" + gittest.ClosedPort(t) + "/r.git", 10 * time.Second, "connection refused"},
		{"ssh silent server", "ssh://git@" + gittest.StartBlackhole(t) + "/r.git", 300 * time.Millisecond, "no answer within 300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newTestSource(t, Options{Repo: tc.repo, Timeout: tc.timeout,
				Auth: Auth{SSHKeyFile: keyFile}, InsecureSkipHostKey: true})
			done := make(chan error, 1)
			go func() {
				_, err := s.Fetch(testContext(t))
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("err = %v, want %q", err, tc.want)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("Fetch did not return although its timeout is %s", tc.timeout)
			}
		})
	}
}

func TestPlainHTTPNeedsLoopbackOrOptIn(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	if _, err := New(Options{Repo: "http://git.example.com/r.git", CacheDir: cache}); err == nil || !strings.Contains(err.Error(), "--git-allow-http") {
		t.Errorf("plain http to a remote host: err = %v", err)
	}
	if _, err := New(Options{Repo: "http://git.example.com/r.git", CacheDir: cache, AllowHTTP: true}); err != nil {
		t.Errorf("with AllowHTTP: %v", err)
	}
	for _, repo := range []string{"http://127.0.0.1:1/r.git", "http://localhost/r.git", "http://[::1]/r.git"} {
		if _, err := New(Options{Repo: repo, CacheDir: cache}); err != nil {
			t.Errorf("%s: %v", repo, err)
		}
	}
	if _, err := New(Options{Repo: "https://git.example.com/r.git"}); err == nil {
		t.Error("a remote without a cache folder was accepted")
	}
}

func breakers(t *testing.T) map[string]func(t *testing.T, dir string) {
	return map[string]func(t *testing.T, dir string){
		"truncated objects": func(t *testing.T, dir string) {
			eachFile(t, filepath.Join(dir, "objects"), func(p string, size int64) {
				if err := os.Truncate(p, size/2); err != nil {
					t.Fatal(err)
				}
			})
		},
		"garbled objects": func(t *testing.T, dir string) {
			eachFile(t, filepath.Join(dir, "objects"), func(p string, size int64) {
				garbage := make([]byte, size)
				for i := range garbage {
					garbage[i] = byte(i*7 + 3)
				}
				if err := os.WriteFile(p, garbage, 0o644); err != nil {
					t.Fatal(err)
				}
			})
		},
		"garbled refs": func(t *testing.T, dir string) {
			eachFile(t, filepath.Join(dir, "refs"), func(p string, _ int64) {
				if err := os.WriteFile(p, []byte("0123456789012345678901234567890123456789\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			})
		},
		"half-written clone": func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Join(dir, "objects", "pack"), 0o755)
			os.WriteFile(filepath.Join(dir, "HEAD"), []byte("ref: refs/heads/main\n"), 0o644)
			// And an interrupted clone left beside it.
			os.MkdirAll(dir+".tmp-123/objects", 0o755)
		},
		"empty folder": func(t *testing.T, dir string) {
			os.RemoveAll(dir)
			os.MkdirAll(dir, 0o755)
		},
	}
}

func TestCorruptCacheRecovered(t *testing.T) {
	t.Parallel()
	damage := breakers(t)
	repo, srv := httpRemote(t)
	repo.Commit(t, map[string]string{"flags/b.yaml": "b: 1\n"}, "second")
	for name, breakIt := range damage {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, logs := newTestSource(t, Options{Repo: srv.URL, Depth: 1, Auth: httpAuthOK()})
			want := mustFetch(t, s).Revision
			breakIt(t, s.CacheDir())
			snap := mustFetch(t, s)
			if snap.Revision != want {
				t.Fatalf("revision %s, want %s", snap.Revision, want)
			}
			assertFiles(t, snap.FS, map[string]string{"flags/a.yaml": "a: 1\n", "flags/b.yaml": "b: 1\n", "README.md": "hi\n"})
			if logs.count(`"msg":"git clone"`) != 2 {
				t.Errorf("want a second clone:\n%s", logs)
			}
			if m, _ := filepath.Glob(s.CacheDir() + ".tmp-*"); len(m) != 0 {
				t.Errorf("interrupted clones left behind: %v", m)
			}
		})
	}

	// Damage that the check on open does not see (the end of the pack, where blobs
	// are): reading the snapshot fails, and the next Fetch re-clones.
	t.Run("pack tail truncated", func(t *testing.T) {
		t.Parallel()
		s, logs := newTestSource(t, Options{Repo: srv.URL, Depth: 1, Auth: httpAuthOK()})
		mustFetch(t, s)
		eachFile(t, filepath.Join(s.CacheDir(), "objects", "pack"), func(p string, size int64) {
			if strings.HasSuffix(p, ".pack") {
				os.Truncate(p, size-30)
			}
		})
		snap := mustFetch(t, s)
		failed := 0
		for _, name := range []string{"flags/a.yaml", "flags/b.yaml", "README.md"} {
			if _, err := fs.ReadFile(snap.FS, name); err != nil {
				failed++
			}
		}
		if failed == 0 || logs.count("it will be re-cloned") != 1 {
			t.Fatalf("%d reads failed; logs:\n%s", failed, logs)
		}
		snap = mustFetch(t, s)
		if logs.count(`"msg":"git clone"`) != 2 {
			t.Errorf("want a second clone:\n%s", logs)
		}
		assertFiles(t, snap.FS, map[string]string{"flags/a.yaml": "a: 1\n", "flags/b.yaml": "b: 1\n", "README.md": "hi\n"})
	})

	// A cache that passes the check but cannot take the fetch (here: its ref store is
	// broken) is cloned afresh.
	t.Run("fetch into cache fails", func(t *testing.T) {
		t.Parallel()
		repo, srv := httpRemote(t)
		repo.Tag(t, "v1")
		s, logs := newTestSource(t, Options{Repo: srv.URL, Ref: "v1", Depth: 1, Auth: httpAuthOK()})
		first := mustFetch(t, s).Revision
		ref := filepath.Join(s.CacheDir(), "refs", "tags", "v1")
		os.Remove(ref)
		os.MkdirAll(ref, 0o755)
		os.WriteFile(filepath.Join(ref, "x"), []byte(first+"\n"), 0o644)
		want := repo.Commit(t, map[string]string{"flags/b.yaml": "b: 1\n"}, "second")
		repo.Git(t, "tag", "-f", "v1")
		repo.Git(t, "push", "--quiet", "--force", "origin", "refs/tags/v1")
		if snap := mustFetch(t, s); snap.Revision != want {
			t.Errorf("revision %s, want %s", snap.Revision, want)
		}
		if logs.count("fetch into the cache failed; cloning afresh") != 1 || logs.count(`"msg":"git clone"`) != 2 {
			t.Errorf("want a failed fetch then a clone:\n%s", logs)
		}
	})
}

func eachFile(t *testing.T, dir string, f func(path string, size int64)) {
	t.Helper()
	n := 0
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		os.Chmod(p, 0o644)
		f(p, info.Size())
		n++
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("damage %s: %d files, %v", dir, n, err)
	}
}
