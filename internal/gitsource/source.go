package gitsource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Snapshot is a read-only view of the repository at one revision.
type Snapshot struct {
	// Revision is the full commit hash the files come from; "" for a plain folder that
	// is not in a git repository.
	Revision string
	// Dirty is true when the files differ from Revision: a local work tree with
	// uncommitted changes (untracked files included, ignored ones not, nor a .flagsync
	// folder: the state older flagsync versions kept beside the files).
	Dirty bool
	// Branch is the branch Revision was read from: the one Options.Ref names, or, without
	// a Ref, the remote's default branch (its HEAD) or a local work tree's checked-out
	// branch. It is "" for a tag, a commit, a detached HEAD whose commit no single branch
	// holds, and a folder outside Git.
	Branch string
	// FS holds the whole repository (or the local folder given as Repo). For a remote
	// it reads the commit's tree from the cache's object store; it stays valid until
	// the next Fetch of the same Source.
	FS fs.FS
}

// Source reads one repository. Its methods may be called from several goroutines;
// fetches of one Source run one at a time.
type Source struct {
	opts     Options
	loc      location
	log      *slog.Logger
	red      *redactor
	caBundle []byte
	dir      string // the clone in the cache; "" for local repositories

	mu sync.Mutex
	// suspect is set when a snapshot could not read an object from the cache, so the
	// next Fetch discards the cache instead of trusting it.
	suspect atomic.Bool
}

// New checks opts and returns a Source. It does no network I/O.
func New(opts Options) (*Source, error) {
	loc, err := parseLocation(opts.Repo)
	if err != nil {
		return nil, err
	}
	s := &Source{opts: opts, loc: loc, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.log = s.log.With("remote", loc.display)
	secrets := append(opts.Auth.secrets(), loc.password)
	if loc.kind == kindHTTP {
		secrets = append(secrets, loc.user) // https://TOKEN@host is a common form
	}
	s.red = newRedactor(secrets...)

	p := path.Clean(strings.TrimPrefix(filepath.ToSlash(opts.Path), "./"))
	if opts.Path == "" {
		p = "."
	}
	if !fs.ValidPath(p) {
		return nil, fmt.Errorf("path %q: must be a relative folder inside the repository", opts.Path)
	}
	s.opts.Path = p
	if opts.Depth < 0 {
		return nil, fmt.Errorf("depth %d: must be 0 (full history) or more", opts.Depth)
	}
	if s.opts.Timeout <= 0 {
		s.opts.Timeout = DefaultTimeout
	}
	if loc.kind == kindLocal {
		return s, nil
	}

	if loc.kind == kindHTTP && strings.HasPrefix(strings.ToLower(opts.Repo), "http:") && !isLoopback(loc.host) && !opts.AllowHTTP {
		return nil, fmt.Errorf("repository %s: plain http:// sends credentials and code unencrypted; use https://, or allow it explicitly (--git-allow-http)", loc.display)
	}
	if loc.password != "" || (loc.kind == kindHTTP && loc.user != "") {
		s.log.Warn("credentials in the repository URL are used, but they show in process lists and shell history; prefer FLAGSYNC_GIT_TOKEN or FLAGSYNC_GIT_USERNAME/FLAGSYNC_GIT_PASSWORD")
	}
	if opts.InsecureSkipHostKey && loc.kind != kindSSH {
		s.log.Warn("--insecure-skip-host-key-check has no effect: the repository is not reached over SSH")
	}
	if opts.CAFile != "" {
		if s.caBundle, err = os.ReadFile(opts.CAFile); err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
	}
	if opts.CacheDir == "" {
		return nil, fmt.Errorf("repository %s: a cache folder is needed to clone a remote", loc.display)
	}
	sum := sha256.Sum256([]byte(loc.display))
	s.dir = filepath.Join(opts.CacheDir, hex.EncodeToString(sum[:])[:24])
	return s, nil
}

// Remote returns the repository's address without credentials, as logged.
func (s *Source) Remote() string { return s.loc.display }

// CacheDir returns the folder the remote is cloned into, or "" for a local repository.
func (s *Source) CacheDir() string { return s.dir }

// Fetch returns a snapshot of Options.Ref: for a remote, after cloning it into the
// cache or fetching what changed since; for a local folder, read in place. It fails
// when Options.Path is not a folder at that revision.
func (s *Source) Fetch(ctx context.Context) (*Snapshot, error) {
	snap, err := s.fetch(ctx)
	if err != nil {
		return nil, s.red.err(err)
	}
	if s.opts.Path != "." {
		st, err := fs.Stat(snap.FS, s.opts.Path)
		if err != nil || !st.IsDir() {
			at := snap.Revision
			if at == "" {
				at = "on disk"
			}
			return nil, s.red.err(fmt.Errorf("path %q: no such folder in %s at %s: %w", s.opts.Path, s.loc.display, at, fs.ErrNotExist))
		}
	}
	return snap, nil
}

func (s *Source) fetch(ctx context.Context) (*Snapshot, error) {
	if s.loc.kind == kindLocal {
		l, err := openLocal(s.loc.url)
		if err != nil {
			return nil, err
		}
		return l.snapshot(ctx, s.opts.Ref)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	start := time.Now()

	if s.loc.kind == kindSSH && s.opts.InsecureSkipHostKey {
		s.log.Warn("SSH HOST KEY CHECKING IS OFF (--insecure-skip-host-key-check): anyone between here and the server can impersonate it and feed flagsync any flags")
	}
	if s.loc.kind == kindHTTP && strings.HasPrefix(strings.ToLower(s.opts.Repo), "http:") && !isLoopback(s.loc.host) {
		s.log.Warn("fetching over plain http://: credentials and flags travel unencrypted (--git-allow-http)")
	}
	if err := os.MkdirAll(s.opts.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache folder: %w", err)
	}
	unlock, err := lockFile(ctx, s.dir+".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()

	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.close()

	refs, err := s.listRemote(ctx, conn)
	if err != nil {
		return nil, s.describe(ctx, conn, "list refs of "+s.loc.display, err)
	}
	tgt, err := resolveRemote(refs, s.opts.Ref, s.loc.display)
	if err != nil {
		return nil, err
	}
	if tgt.ambiguous {
		s.log.Warn("ref names both a branch and a tag; using the branch (give refs/tags/NAME for the tag)", "ref", s.opts.Ref)
	}

	repo, action, err := s.update(ctx, conn, tgt)
	if err != nil {
		return nil, err
	}
	commit, err := readCommit(repo, tgt.hash)
	if err != nil {
		s.suspect.Store(true)
		return nil, fmt.Errorf("read commit %s from the cache %s: %w", tgt.hash, s.dir, err)
	}
	tfs, err := newTreeFS(repo.Storer, commit, s.markSuspect)
	if err != nil {
		s.suspect.Store(true)
		return nil, err
	}
	s.log.Info("git "+action, "ref", tgt.describe(), "revision", tgt.hash.String(), "depth", s.opts.Depth,
		"duration_ms", time.Since(start).Milliseconds())
	return &Snapshot{Revision: tgt.hash.String(), FS: tfs, Branch: tgt.branch}, nil
}

func (s *Source) markSuspect(err error) {
	if !s.suspect.Swap(true) {
		s.log.Warn("reading the cache failed; it will be re-cloned on the next fetch", "cache", s.dir, "error", s.red.text(err.Error()))
	}
}

// update brings the cache up to date for tgt and returns the opened cache and what was
// done ("clone", "fetch" or "up to date"). A cache that fails verification, or that
// a fetch into fails after the remote answered the ref listing, is discarded and
// cloned afresh, once; not when the fetch was cut short (the deadline, the network, a
// full disk) or refused, which leaves the cache intact and would stop a clone too.
func (s *Source) update(ctx context.Context, conn *connection, tgt target) (*git.Repository, string, error) {
	repo, err := openCache(s.dir, s.loc.url)
	if err != nil {
		s.log.Warn("cache is damaged; cloning afresh", "cache", s.dir, "error", s.red.text(err.Error()))
		repo = nil
	}
	if repo != nil && s.suspect.Load() {
		s.log.Warn("cache failed a read earlier; cloning afresh", "cache", s.dir)
		repo = nil
	}
	if repo != nil {
		// Partial packs of a process that died while downloading. The cache's lock is
		// held (and without flock, a cache is one process's), so no fetch is writing
		// them.
		removeTempPacks(s.dir)
		fetched, err := s.fetchInto(ctx, conn, repo, s.dir, tgt)
		if err == nil {
			if _, err = readCommit(repo, tgt.hash); err == nil {
				if fetched {
					return repo, "fetch", nil
				}
				return repo, "up to date", nil
			}
		}
		switch {
		case ctx.Err() != nil || isAuthError(err) || conn.hostKey.refused() != nil || errors.As(err, new(*interruptedError)):
			// Cloning afresh would not help: the cache is intact.
			return nil, "", s.describe(ctx, conn, "fetch "+s.loc.display, err)
		case errors.Is(err, errRewritten):
			s.log.Info("the branch was rewritten beyond the shallow cache; cloning afresh", "ref", tgt.describe())
		default:
			s.log.Warn("fetch into the cache failed; cloning afresh", "cache", s.dir, "error", s.red.text(err.Error()))
		}
	}
	s.suspect.Store(false)
	repo, err = s.clone(ctx, conn, tgt)
	if err != nil {
		return nil, "", s.describe(ctx, conn, "clone "+s.loc.display, err)
	}
	return repo, "clone", nil
}

// clone fetches tgt into a new repository in a temporary folder beside the cache and
// renames it into place, so the cache folder never holds a half-written clone.
func (s *Source) clone(ctx context.Context, conn *connection, tgt target) (*git.Repository, error) {
	removeStaleTemps(s.opts.CacheDir, filepath.Base(s.dir))
	tmp, err := os.MkdirTemp(s.opts.CacheDir, filepath.Base(s.dir)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("create clone folder: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	repo, err := initCache(tmp, s.loc.url)
	if err != nil {
		return nil, err
	}
	if _, err := s.fetchInto(ctx, conn, repo, tmp, tgt); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return nil, fmt.Errorf("remove old cache %s: %w", s.dir, err)
	}
	if err := os.Rename(tmp, s.dir); err != nil {
		return nil, fmt.Errorf("move clone into the cache: %w", err)
	}
	repo, err = git.PlainOpen(s.dir)
	if err != nil {
		return nil, fmt.Errorf("open new clone %s: %w", s.dir, err)
	}
	if _, err := readCommit(repo, tgt.hash); err != nil {
		return nil, fmt.Errorf("read commit %s from the new clone: %w", tgt.hash, err)
	}
	return repo, nil
}

// ChangedFiles returns the paths, sorted and slash-separated, that differ between the
// trees of the commits fromRev and toRev (added, deleted or modified on either side).
// Paths are relative to the snapshot's FS root. When either commit is not in the
// fetched history (a shallow clone, a cache re-cloned since), the error wraps
// ErrHistoryUnavailable and the caller should reconcile everything instead.
func (s *Source) ChangedFiles(ctx context.Context, fromRev, toRev string) ([]string, error) {
	files, err := s.changedFiles(ctx, fromRev, toRev)
	return files, s.red.err(err)
}

func (s *Source) changedFiles(ctx context.Context, fromRev, toRev string) ([]string, error) {
	var (
		repo   *git.Repository
		prefix = ""
	)
	if s.loc.kind == kindLocal {
		l, err := openLocal(s.loc.url)
		if err != nil {
			return nil, err
		}
		if l.repo == nil {
			return nil, fmt.Errorf("changed files in %s: not a git repository: %w", s.loc.display, ErrHistoryUnavailable)
		}
		repo = l.repo
		if l.rel != "." {
			prefix = l.rel + "/"
		}
	} else {
		s.mu.Lock()
		defer s.mu.Unlock()
		var err error
		repo, err = openCache(s.dir, s.loc.url)
		if err != nil || repo == nil {
			return nil, fmt.Errorf("changed files in %s: no usable cache: %w", s.loc.display, ErrHistoryUnavailable)
		}
	}
	from, err := commitTree(repo, fromRev)
	if err != nil {
		return nil, err
	}
	to, err := commitTree(repo, toRev)
	if err != nil {
		return nil, err
	}
	changes, err := object.DiffTreeWithOptions(ctx, from, to, nil)
	if err != nil {
		return nil, fmt.Errorf("diff %s..%s: %w", fromRev, toRev, err)
	}
	seen := map[string]bool{}
	for _, c := range changes {
		for _, name := range []string{c.From.Name, c.To.Name} {
			if name == "" || !strings.HasPrefix(name, prefix) {
				continue
			}
			seen[strings.TrimPrefix(name, prefix)] = true
		}
	}
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	sort.Strings(out)
	return out, nil
}

// commitTree resolves rev (a full hash for a cache; any revision git understands for
// a local repository) to its commit's tree.
func commitTree(repo *git.Repository, rev string) (*object.Tree, error) {
	var h plumbing.Hash
	if isFullHash(rev) {
		h = plumbing.NewHash(rev)
	} else {
		p, err := repo.ResolveRevision(plumbing.Revision(rev))
		if err != nil {
			return nil, fmt.Errorf("resolve %q: %w", rev, ErrHistoryUnavailable)
		}
		h = *p
	}
	var tree *object.Tree
	err := guard(func() error {
		c, err := repo.CommitObject(h)
		if err != nil {
			return err
		}
		tree, err = c.Tree()
		return err
	})
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("commit %s: %w", rev, ErrHistoryUnavailable)
	}
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", rev, err)
	}
	return tree, nil
}

func isFullHash(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
