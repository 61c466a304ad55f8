package gitsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// localRepo is an opened local repository: the folder the user named, and the git
// repository around it if there is one.
type localRepo struct {
	dir  string          // the folder as given, made absolute
	repo *git.Repository // nil for a plain folder
	root string          // work tree root; "" for a bare repository
	rel  string          // dir relative to root, slash-separated, "." at the root
}

func openLocal(dir string) (*localRepo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	l := &localRepo{dir: abs, rel: "."}
	// Without detection first: that is how a bare repository opens. Then look upwards
	// for the .git of a work tree the folder is in.
	repo, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	}
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	l.repo = repo
	wt, err := repo.Worktree()
	if errors.Is(err, git.ErrIsBareRepository) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open work tree of %s: %w", dir, err)
	}
	l.root = wt.Filesystem.Root()
	rel, err := filepath.Rel(l.root, abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("open repository %s: folder is not inside its work tree %s", dir, l.root)
	}
	l.rel = filepath.ToSlash(rel)
	return l, nil
}

// snapshot reads the local repository: with ref, that revision from the object store;
// without, the files on disk (a work tree) or HEAD (a bare repository).
func (l *localRepo) snapshot(ctx context.Context, ref string) (*Snapshot, error) {
	if l.repo == nil {
		if ref != "" {
			return nil, fmt.Errorf("resolve %q in %s: not a git repository", ref, l.dir)
		}
		return &Snapshot{FS: os.DirFS(l.dir)}, nil
	}
	if ref == "" && l.root != "" {
		return l.workTree(ctx)
	}
	rev := ref
	if rev == "" {
		rev = "HEAD"
	}
	h, err := l.repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, fmt.Errorf("resolve %q in %s: %w", rev, l.dir, err)
	}
	commit, err := l.repo.CommitObject(*h)
	if err != nil {
		return nil, fmt.Errorf("read commit %s in %s: %w", h, l.dir, err)
	}
	tfs, err := newTreeFS(l.repo.Storer, commit, nil)
	if err != nil {
		return nil, err
	}
	if l.rel != "." {
		if tfs, err = tfs.sub(l.rel); err != nil {
			return nil, fmt.Errorf("read %s at %s: %w", l.rel, h, err)
		}
	}
	return &Snapshot{Revision: h.String(), FS: tfs}, nil
}

// workTree reads the files on disk, recording HEAD and whether the folder has changes
// that HEAD does not.
func (l *localRepo) workTree(ctx context.Context) (*Snapshot, error) {
	s := &Snapshot{FS: os.DirFS(l.dir)}
	if l.rel == "." {
		s.FS = hideGitDir{s.FS}
	}
	head, err := l.repo.Head()
	switch {
	case errors.Is(err, plumbing.ErrReferenceNotFound):
		// A repository without commits: every file is a change.
	case err != nil:
		return nil, fmt.Errorf("read HEAD of %s: %w", l.root, err)
	default:
		s.Revision = head.Hash().String()
		if head.Name().IsBranch() {
			s.Branch = head.Name().Short()
		}
	}
	dirty, err := l.dirty(ctx)
	if err != nil {
		return nil, err
	}
	s.Dirty = dirty || s.Revision == ""
	return s, nil
}

// StateDir is the folder older flagsync versions kept their state in, inside the
// folder they ran in (often the repository they synced): a sandbox's flags, a clone
// cache. It is never part of the flags, so changes under it do not make a work tree
// dirty.
const StateDir = ".flagsync"

// isState reports whether a repository path (slash-separated, relative to the work
// tree's root) is in a StateDir folder, at any depth: the folder flagsync ran in may be
// any folder of the work tree.
func isState(p string) bool {
	for _, seg := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		if seg == StateDir {
			return true
		}
	}
	return false
}

// dirty reports whether the folder has uncommitted changes, untracked files included
// and ignored files and flagsync's own state (StateDir) not. It asks the git binary when
// there is one: go-git's status hashes every file and is far slower on large trees (see
// the package README).
func (l *localRepo) dirty(ctx context.Context) (bool, error) {
	if gitBin, err := exec.LookPath("git"); err == nil {
		// --no-optional-locks: never take the index lock from under a user's own git.
		cmd := exec.CommandContext(ctx, gitBin, "--no-optional-locks", "status", "--porcelain", "-z", "--untracked-files=normal", "--", ".")
		cmd.Dir = l.dir
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Run(); err == nil {
			return porcelainDirty(out.Bytes()), nil
		}
		// git can refuse (e.g. "dubious ownership" of a mounted checkout); go-git does not.
	}
	return l.dirtyGoGit()
}

// porcelainDirty reports whether `git status --porcelain -z` output lists a change
// outside StateDir. Each entry is "XY path", NUL-terminated; a rename or copy (X or Y
// is R or C) is followed by its source path as one more NUL-terminated field.
func porcelainDirty(out []byte) bool {
	fields := strings.Split(string(out), "\x00")
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if len(f) < 4 {
			continue // the empty field after the last NUL
		}
		xy, p := f[:2], f[3:]
		if strings.ContainsAny(xy, "RC") && i+1 < len(fields) {
			i++
			if !isState(fields[i]) {
				return true
			}
		}
		if !isState(p) {
			return true
		}
	}
	return false
}

// dirtyGoGit is dirty without the git binary.
func (l *localRepo) dirtyGoGit() (bool, error) {
	wt, err := l.repo.Worktree()
	if err != nil {
		return false, fmt.Errorf("open work tree of %s: %w", l.root, err)
	}
	st, err := wt.Status()
	if err != nil {
		return false, fmt.Errorf("status of %s: %w", l.root, err)
	}
	for file, fst := range st {
		if fst.Worktree == git.Unmodified && fst.Staging == git.Unmodified || isState(filepath.ToSlash(file)) {
			continue
		}
		if l.rel == "." || file == l.rel || strings.HasPrefix(file, l.rel+"/") {
			return true, nil
		}
	}
	return false, nil
}

// hideGitDir hides the .git folder at the root of a work tree, so a local snapshot
// lists the same files as one read from the object store.
type hideGitDir struct {
	fsys fs.FS
}

func isGitDir(name string) bool {
	return name == ".git" || strings.HasPrefix(name, ".git/")
}

func (h hideGitDir) Open(name string) (fs.File, error) {
	if isGitDir(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	f, err := h.fsys.Open(name)
	if err != nil || name != "." {
		return f, err
	}
	d, ok := f.(fs.ReadDirFile)
	if !ok {
		return f, nil
	}
	return rootDir{d}, nil
}

// rootDir is the opened root folder without its .git entry.
type rootDir struct {
	fs.ReadDirFile
}

func (d rootDir) ReadDir(n int) ([]fs.DirEntry, error) {
	for {
		entries, err := d.ReadDirFile.ReadDir(n)
		out := withoutGit(entries)
		// Asked for n entries and .git was the only one read: read on, so an empty
		// batch still means the end.
		if n > 0 && len(out) == 0 && len(entries) > 0 && err == nil {
			continue
		}
		return out, err
	}
}

func withoutGit(entries []fs.DirEntry) []fs.DirEntry {
	out := entries[:0]
	for _, e := range entries {
		if e.Name() != ".git" {
			out = append(out, e)
		}
	}
	return out
}

func (h hideGitDir) ReadFile(name string) ([]byte, error) {
	if isGitDir(name) {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrNotExist}
	}
	return fs.ReadFile(h.fsys, name)
}

func (h hideGitDir) Stat(name string) (fs.FileInfo, error) {
	if isGitDir(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return fs.Stat(h.fsys, name)
}

func (h hideGitDir) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(h.fsys, name)
	if err != nil || path.Clean(name) != "." {
		return entries, err
	}
	return withoutGit(entries), nil
}
