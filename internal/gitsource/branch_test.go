package gitsource

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/flagsync/flagsync/internal/gittest"
)

// TestSnapshotBranch: the snapshot names the branch it was read from: without a ref,
// the remote's default branch as its HEAD says (not merely a branch at the same
// commit); with a branch ref, that branch; with a tag or a commit, none.
func TestSnapshotBranch(t *testing.T) {
	t.Parallel()
	repo, srv := httpRemote(t)
	// trunk and main hold the same commit; HEAD names trunk.
	repo.Git(t, "push", "--quiet", "origin", "main:trunk")
	repo.GitBare(t, "symbolic-ref", "HEAD", "refs/heads/trunk")
	repo.Tag(t, "v1")
	head := repo.Head(t)
	for _, tc := range []struct{ ref, branch string }{
		{"", "trunk"},
		{"main", "main"},
		{"refs/heads/main", "main"},
		{"v1", ""},
		{head, ""},
	} {
		s, _ := newTestSource(t, Options{Repo: srv.URL, Ref: tc.ref, Depth: 1, Auth: httpAuthOK()})
		if snap := mustFetch(t, s); snap.Branch != tc.branch || snap.Revision != head {
			t.Errorf("ref %q: branch %q at %s, want %q at %s", tc.ref, snap.Branch, snap.Revision, tc.branch, head)
		}
	}

	// A local work tree: its checked-out branch.
	s, _ := newTestSource(t, Options{Repo: repo.Work})
	if snap := mustFetch(t, s); snap.Branch != "main" {
		t.Errorf("work tree: branch %q, want main", snap.Branch)
	}
}

// TestResolveRemoteBranch: a HEAD advertised without its symbolic target names the one
// branch at its commit, and none when several are.
func TestResolveRemoteBranch(t *testing.T) {
	t.Parallel()
	h := func(c byte) plumbing.Hash { return plumbing.NewHash(strings.Repeat(string(c), 40)) }
	one := []*plumbing.Reference{
		plumbing.NewHashReference(plumbing.HEAD, h('1')),
		plumbing.NewHashReference("refs/heads/main", h('1')),
		plumbing.NewHashReference("refs/heads/dev", h('2')),
	}
	if got, err := resolveRemote(one, "", "r"); err != nil || got.branch != "main" {
		t.Errorf("one branch at HEAD: %+v %v, want main", got, err)
	}
	two := append(one, plumbing.NewHashReference("refs/heads/release", h('1')))
	if got, err := resolveRemote(two, "", "r"); err != nil || got.branch != "" || got.hash != h('1') {
		t.Errorf("two branches at HEAD: %+v %v, want no branch", got, err)
	}
}

// TestStateDirIsNotDirt: a .flagsync folder left in the work tree by an older flagsync
// (a sandbox's state, a cache), at the root or in a subfolder, does not make the tree
// dirty; any other untracked file still does.
func TestStateDirIsNotDirt(t *testing.T) {
	t.Parallel()
	repo := gittest.NewRepo(t)
	head := repo.Commit(t, map[string]string{"flags/a.yaml": "a: 1\n"}, "first")
	s, _ := newTestSource(t, Options{Repo: repo.Work, Path: "flags"})
	writeFile(t, filepath.Join(repo.Work, ".flagsync", "sandbox.json"), "{}")
	writeFile(t, filepath.Join(repo.Work, ".flagsync", "cache", "x", "HEAD"), "ref\n")
	writeFile(t, filepath.Join(repo.Work, "flags", ".flagsync", "split-sandbox.json"), "{}")
	if snap := mustFetch(t, s); snap.Dirty || snap.Revision != head {
		t.Errorf("with only .flagsync state: dirty %v at %s, want clean at %s", snap.Dirty, snap.Revision, head)
	}
	if dirty, err := (&localRepo{dir: repo.Work, repo: mustOpen(t, repo.Work).repo, rel: "."}).dirtyGoGit(); err != nil || dirty {
		t.Errorf("go-git status with only .flagsync state: dirty %v, %v", dirty, err)
	}
	writeFile(t, filepath.Join(repo.Work, "flags", "b.yaml"), "b: 1\n")
	if snap := mustFetch(t, s); !snap.Dirty {
		t.Error("an untracked flag file beside .flagsync does not make the tree dirty")
	}
}

func mustOpen(t *testing.T, dir string) *localRepo {
	t.Helper()
	l, err := openLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestPorcelainDirty reads git's porcelain -z output: renames carry a second path.
func TestPorcelainDirty(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		out   string
		dirty bool
	}{
		{"", false},
		{"?? .flagsync/\x00", false},
		{"?? flags/.flagsync/\x00?? .flagsync/sandbox.json\x00", false},
		{"?? .flagsync/\x00 M flags/a.yaml\x00", true},
		{"R  .flagsync/b.json\x00.flagsync/a.json\x00", false},
		{"R  flags/b.yaml\x00.flagsync/a.yaml\x00", true},
		{"R  .flagsync/a.yaml\x00flags/a.yaml\x00", true},
		{"?? .flagsyncx\x00", true},
	} {
		if got := porcelainDirty([]byte(tc.out)); got != tc.dirty {
			t.Errorf("%q: dirty %v, want %v", tc.out, got, tc.dirty)
		}
	}
}
