package gitsource

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/gittest"
	"github.com/flagsync/flagsync/internal/loadcache"
)

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLocalWorkTree(t *testing.T) {
	t.Parallel()
	repo := gittest.NewRepo(t)
	head := repo.Commit(t, map[string]string{"flags/a.yaml": "a: 1\n", ".gitignore": "*.tmp\n", "docs/x.md": "x\n"}, "first")
	s, _ := newTestSource(t, Options{Repo: repo.Work, Path: "flags"})

	snap := mustFetch(t, s)
	if snap.Revision != head || snap.Dirty {
		t.Fatalf("clean tree: revision %s dirty %v, want %s clean", snap.Revision, snap.Dirty, head)
	}
	if s.CacheDir() != "" || s.Remote() != repo.Work {
		t.Errorf("CacheDir %q Remote %q", s.CacheDir(), s.Remote())
	}
	if _, err := fs.Stat(snap.FS, ".git"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf(".git is visible in the snapshot: %v", err)
	}
	if err := fstest.TestFS(snap.FS, "flags/a.yaml", "docs/x.md", ".gitignore"); err != nil {
		t.Errorf("work tree FS: %v", err)
	}

	for _, tc := range []struct {
		name  string
		edit  func()
		dirty bool
	}{
		{"ignored file", func() { writeFile(t, filepath.Join(repo.Work, "flags/scratch.tmp"), "x") }, false},
		{"modified file", func() { writeFile(t, filepath.Join(repo.Work, "flags/a.yaml"), "a: 2\n") }, true},
		{"untracked file", func() {
			repo.Git(t, "checkout", "--quiet", "--", ".")
			writeFile(t, filepath.Join(repo.Work, "flags/new.yaml"), "n: 1\n")
		}, true},
	} {
		tc.edit()
		snap := mustFetch(t, s)
		if snap.Dirty != tc.dirty || snap.Revision != head {
			t.Errorf("%s: dirty %v revision %s, want dirty %v at %s", tc.name, snap.Dirty, snap.Revision, tc.dirty, head)
		}
	}
	// The files are read as they are on disk.
	if b, _ := fs.ReadFile(mustFetch(t, s).FS, "flags/new.yaml"); string(b) != "n: 1\n" {
		t.Errorf("untracked file not read from disk: %q", b)
	}

	// With a ref, the object store is read, not the disk.
	second := repo.Commit(t, map[string]string{"flags/a.yaml": "a: 2\n"}, "second")
	writeFile(t, filepath.Join(repo.Work, "flags/a.yaml"), "a: on disk\n")
	for ref, want := range map[string]string{"main": second, head: head, "HEAD~1": head, second[:10]: second} {
		s, _ := newTestSource(t, Options{Repo: repo.Work, Ref: ref, Path: "flags"})
		snap := mustFetch(t, s)
		if snap.Revision != want || snap.Dirty {
			t.Errorf("ref %s: revision %s dirty %v, want %s clean", ref, snap.Revision, snap.Dirty, want)
		}
		if b, _ := fs.ReadFile(snap.FS, "flags/a.yaml"); strings.Contains(string(b), "on disk") {
			t.Errorf("ref %s read the disk: %q", ref, b)
		}
	}
}

func TestLocalFolders(t *testing.T) {
	t.Parallel()
	repo := gittest.NewRepo(t)
	head := repo.Commit(t, map[string]string{"flags/a.yaml": "a: 1\n", "other/b.yaml": "b: 1\n"}, "first")

	t.Run("subfolder of a work tree", func(t *testing.T) {
		writeFile(t, filepath.Join(repo.Work, "other/untracked.yaml"), "u\n")
		s, _ := newTestSource(t, Options{Repo: filepath.Join(repo.Work, "flags")})
		snap := mustFetch(t, s)
		if snap.Revision != head || snap.Dirty {
			t.Errorf("revision %s dirty %v: changes outside the folder must not count", snap.Revision, snap.Dirty)
		}
		assertFiles(t, snap.FS, map[string]string{"a.yaml": "a: 1\n"})
		s, _ = newTestSource(t, Options{Repo: filepath.Join(repo.Work, "flags"), Ref: "main"})
		assertFiles(t, mustFetch(t, s).FS, map[string]string{"a.yaml": "a: 1\n"})
	})
	t.Run("bare repository", func(t *testing.T) {
		s, _ := newTestSource(t, Options{Repo: repo.Bare})
		snap := mustFetch(t, s)
		if snap.Revision != head {
			t.Errorf("revision %s, want %s", snap.Revision, head)
		}
		assertFiles(t, snap.FS, map[string]string{"flags/a.yaml": "a: 1\n", "other/b.yaml": "b: 1\n"})
	})
	t.Run("plain folder", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "f.yaml"), "f\n")
		s, _ := newTestSource(t, Options{Repo: dir})
		snap := mustFetch(t, s)
		if snap.Revision != "" || snap.Dirty {
			t.Errorf("revision %q dirty %v for a folder outside git", snap.Revision, snap.Dirty)
		}
		assertFiles(t, snap.FS, map[string]string{"f.yaml": "f\n"})
		s, _ = newTestSource(t, Options{Repo: dir, Ref: "main"})
		if _, err := s.Fetch(testContext(t)); err == nil || !strings.Contains(err.Error(), "not a git repository") {
			t.Errorf("ref on a plain folder: %v", err)
		}
		s, _ = newTestSource(t, Options{Repo: dir, Path: "nope"})
		if _, err := s.Fetch(testContext(t)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("missing path: %v", err)
		}
	})
	t.Run("changed files", func(t *testing.T) {
		s, _ := newTestSource(t, Options{Repo: repo.Work})
		got, err := s.ChangedFiles(testContext(t), "HEAD", "HEAD")
		if err != nil || len(got) != 0 {
			t.Errorf("HEAD..HEAD: %v %v", got, err)
		}
		if _, err := s.ChangedFiles(testContext(t), strings.Repeat("ab", 20), head); !errors.Is(err, ErrHistoryUnavailable) {
			t.Errorf("unknown commit: %v", err)
		}
	})
	t.Run("missing folder", func(t *testing.T) {
		if _, err := New(Options{Repo: filepath.Join(t.TempDir(), "nope")}); err == nil || !strings.Contains(err.Error(), "not a folder on disk, nor a URL") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestTreeFS(t *testing.T) {
	t.Parallel()
	repo := gittest.NewRepo(t)
	repo.Commit(t, map[string]string{
		"a.yaml": "a\n", "dir/b.yaml": "bb\n", "dir/sub/c.yaml": "ccc\n", "dir-x/d.yaml": "d\n", "dir.z": "z\n",
	}, "files")
	// Symbolic links inside the tree, to a file and to a folder.
	for link, target := range map[string]string{"link.yaml": "dir/b.yaml", "linkdir": "dir/sub"} {
		if err := os.Symlink(target, filepath.Join(repo.Work, link)); err != nil {
			t.Fatal(err)
		}
	}
	repo.Commit(t, nil, "links")
	s, _ := newTestSource(t, Options{Repo: repo.Work, Ref: "HEAD"})
	fsys := mustFetch(t, s).FS
	if err := fstest.TestFS(fsys, "a.yaml", "dir/b.yaml", "dir/sub/c.yaml", "dir-x/d.yaml", "dir.z", "link.yaml"); err != nil {
		t.Error(err)
	}

	// A link out of the tree is listed but cannot be followed.
	if err := os.Symlink("../outside", filepath.Join(repo.Work, "escape")); err != nil {
		t.Fatal(err)
	}
	repo.Commit(t, nil, "escape")
	fsys = mustFetch(t, s).FS
	if _, ok := fsys.(fs.StatFS); !ok {
		t.Error("not an fs.StatFS")
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	// fs order (plain byte order), not git's ("dir" sorts as "dir/" there, after "dir.z").
	if got := strings.Join(names, " "); got != "a.yaml dir dir-x dir.z escape link.yaml linkdir" {
		t.Errorf("root entries: %s", got)
	}
	for name, want := range map[string]string{"link.yaml": "bb\n", "linkdir/c.yaml": "ccc\n"} {
		if b, err := fs.ReadFile(fsys, name); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", name, b, err, want)
		}
	}
	if _, err := fs.ReadFile(fsys, "escape"); err == nil || !strings.Contains(err.Error(), "outside the repository") {
		t.Errorf("link out of the tree: %v", err)
	}
	st, err := fs.Stat(fsys, "dir/sub/c.yaml")
	if err != nil || st.Size() != 4 || st.IsDir() || st.Name() != "c.yaml" {
		t.Errorf("stat c.yaml: %v %v", st, err)
	}
	for _, bad := range []string{"/a.yaml", "../a.yaml", "dir/", "nope", "a.yaml/x"} {
		if _, err := fsys.Open(bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}

	// Blob ids, the validation cache's keys, are git's own, links followed; a folder,
	// a missing file and a link out of the tree have none.
	ids, ok := fsys.(loadcache.BlobIDFS)
	if !ok {
		t.Fatal("the snapshot's FS is not a loadcache.BlobIDFS")
	}
	for name, file := range map[string]string{"a.yaml": "a.yaml", "dir/sub/c.yaml": "dir/sub/c.yaml", "link.yaml": "dir/b.yaml", "linkdir/c.yaml": "dir/sub/c.yaml"} {
		want := strings.TrimSpace(repo.Git(t, "hash-object", file))
		if got, err := ids.BlobID(name); err != nil || got != want {
			t.Errorf("BlobID(%s) = %q, %v; want %s (git hash-object %s)", name, got, err, want, file)
		}
	}
	for _, bad := range []string{"dir", "nope", "escape", "../a.yaml"} {
		if id, err := ids.BlobID(bad); err == nil {
			t.Errorf("BlobID(%q) = %s, want an error", bad, id)
		}
	}
}
