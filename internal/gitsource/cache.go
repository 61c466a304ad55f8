package gitsource

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// target is the commit a Fetch wants and the remote ref it is fetched through.
type target struct {
	ref       plumbing.ReferenceName // "" for a commit that no advertised ref points at
	hash      plumbing.Hash          // the commit, tags peeled
	ambiguous bool                   // the short name matched both a branch and a tag
	branch    string                 // the branch it was resolved through (Snapshot.Branch)
}

func (t target) describe() string {
	if t.ref == "" {
		return t.hash.String()
	}
	return t.ref.String()
}

// refspec maps the remote ref to where the cache keeps it, always forced ("+") so a
// force-pushed or recreated branch simply replaces the old one.
func (t target) refspec() config.RefSpec {
	switch {
	case t.ref == "":
		return config.RefSpec("+" + t.hash.String() + ":refs/flagsync/commits/" + t.hash.String())
	case t.ref.IsBranch():
		return config.RefSpec("+" + t.ref.String() + ":refs/remotes/origin/" + t.ref.Short())
	case t.ref.IsTag():
		return config.RefSpec("+" + t.ref.String() + ":" + t.ref.String())
	}
	return config.RefSpec("+" + t.ref.String() + ":refs/flagsync/" + strings.TrimPrefix(t.ref.String(), "refs/"))
}

// resolveRemote finds ref among the remote's advertised refs: "" is the default branch
// (HEAD); a full ref name is taken as is; a short name is a branch, else a tag; a
// 40-character hash is a commit, fetched through a ref that points at it if any.
func resolveRemote(refs []*plumbing.Reference, ref, display string) (target, error) {
	hashes := map[plumbing.ReferenceName]plumbing.Hash{}
	peeled := map[plumbing.ReferenceName]plumbing.Hash{}
	var head *plumbing.Reference
	for _, r := range refs {
		name := r.Name().String()
		switch {
		case r.Name() == plumbing.HEAD:
			head = r
		case strings.HasSuffix(name, "^{}"):
			peeled[plumbing.ReferenceName(strings.TrimSuffix(name, "^{}"))] = r.Hash()
		case r.Type() == plumbing.HashReference:
			hashes[r.Name()] = r.Hash()
		}
	}
	commitOf := func(name plumbing.ReferenceName) (plumbing.Hash, bool) {
		if h, ok := peeled[name]; ok {
			return h, true
		}
		h, ok := hashes[name]
		return h, ok
	}
	found := func(name plumbing.ReferenceName) (target, bool) {
		h, ok := commitOf(name)
		return target{ref: name, hash: h}, ok
	}

	switch {
	case ref == "" || ref == "HEAD":
		if head == nil {
			return target{}, fmt.Errorf("resolve the default branch of %s: the server advertises no HEAD; give --ref", display)
		}
		if head.Type() == plumbing.SymbolicReference {
			if t, ok := found(head.Target()); ok {
				if head.Target().IsBranch() {
					t.branch = head.Target().Short()
				}
				return t, nil
			}
			return target{}, fmt.Errorf("resolve the default branch of %s: HEAD points at %s, which does not exist", display, head.Target())
		}
		// A server that does not say which branch HEAD is (no symref capability): the
		// branch is the one branch at HEAD's commit, if exactly one is.
		return target{ref: plumbing.HEAD, hash: head.Hash(), branch: branchAt(hashes, head.Hash())}, nil
	case strings.HasPrefix(ref, "refs/"):
		if t, ok := found(plumbing.ReferenceName(ref)); ok {
			if t.ref.IsBranch() {
				t.branch = t.ref.Short()
			}
			return t, nil
		}
	default:
		branch, isBranch := found(plumbing.NewBranchReferenceName(ref))
		tag, isTag := found(plumbing.NewTagReferenceName(ref))
		switch {
		case isBranch:
			branch.ambiguous = isTag
			branch.branch = ref
			return branch, nil
		case isTag:
			return tag, nil
		}
		if isFullHash(strings.ToLower(ref)) {
			h := plumbing.NewHash(ref)
			// Prefer fetching through a branch or tag that points at the commit: every
			// server allows that, not every server hands out bare commits.
			var names []string
			for name := range hashes {
				if c, _ := commitOf(name); c == h {
					names = append(names, name.String())
				}
			}
			sort.Strings(names)
			for _, name := range names {
				if n := plumbing.ReferenceName(name); n.IsBranch() || n.IsTag() {
					return target{ref: n, hash: h}, nil
				}
			}
			return target{hash: h}, nil
		}
	}
	return target{}, fmt.Errorf("ref %q: no branch or tag of that name on %s (a commit must be given as its full 40-character hash)", ref, display)
}

// branchAt returns the one branch among refs at commit h, or "" when none or several are.
func branchAt(refs map[plumbing.ReferenceName]plumbing.Hash, h plumbing.Hash) string {
	found := ""
	for name, at := range refs {
		if at != h || !name.IsBranch() {
			continue
		}
		if found != "" {
			return ""
		}
		found = name.Short()
	}
	return found
}

// connect prepares the credentials and connection options for one Fetch.
func (s *Source) connect(ctx context.Context) (*connection, error) {
	deadline, _ := ctx.Deadline()
	switch s.loc.kind {
	case kindSSH:
		return sshConnection(&s.opts, s.loc, deadline)
	case kindHTTP:
		return &connection{auth: httpAuth(s.opts.Auth, s.loc), caFile: s.caBundle, close: func() {}}, nil
	}
	return &connection{close: func() {}}, nil
}

// listRemote lists the remote's refs (ls-remote) without touching the cache.
func (s *Source) listRemote(ctx context.Context, conn *connection) ([]*plumbing.Reference, error) {
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{s.loc.url}})
	var refs []*plumbing.Reference
	err := guard(func() (err error) {
		refs, err = rem.ListContext(ctx, &git.ListOptions{
			Auth: conn.auth, CABundle: conn.caFile, ProxyOptions: conn.proxy, PeelingOption: git.AppendPeeled,
		})
		return err
	})
	return refs, err
}

// localRef is where the cache keeps the fetched ref, "" for a bare commit.
func (t target) localRef() plumbing.ReferenceName {
	if t.ref == "" {
		return ""
	}
	_, dst, _ := strings.Cut(string(t.refspec()), ":")
	return plumbing.ReferenceName(dst)
}

// errRewritten reports that a thin fetch left the new commit's tree incomplete: the
// branch's history was rewritten under the shallow cache.
var errRewritten = errors.New("history was rewritten: the incremental fetch is incomplete")

// fetchInto fetches tgt into repo, the clone in dir, unless it already has the commit,
// and reports whether it fetched.
//
// A shallow cache that already holds the ref is updated with a thin fetch, without
// "deepen": like a plain git fetch in a shallow clone, the server then sends only the
// objects that are new since the commit the cache has. With "deepen 1" git's server
// sends the whole tree again (measured: 830 kB, 0.6-0.8 s, instead of a few kB, for a
// one-file change on 10,000 files). A thin fetch trusts the cache to hold the history
// behind its commit, which a shallow cache does not when the branch was rewritten, so
// the new tree is checked against the old one; an incomplete one means errRewritten,
// and the caller clones afresh.
//
// A fetch that fails leaves no partial pack in dir. One cut short by the deadline, the
// network or a full disk returns an *interruptedError: the cache is as it was, and
// neither rewritten history nor a reason to clone afresh.
func (s *Source) fetchInto(ctx context.Context, conn *connection, repo *git.Repository, dir string, tgt target) (bool, error) {
	if hasCommit(repo, tgt.hash) {
		return false, nil
	}
	var before plumbing.Hash
	if s.opts.Depth > 0 && tgt.localRef() != "" {
		if r, err := repo.Reference(tgt.localRef(), false); err == nil && r.Type() == plumbing.HashReference && hasCommit(repo, r.Hash()) {
			before = r.Hash()
		}
	}
	opts := &git.FetchOptions{
		RemoteName:   "origin",
		RefSpecs:     []config.RefSpec{tgt.refspec()},
		Depth:        s.opts.Depth,
		Auth:         conn.auth,
		Tags:         git.NoTags,
		Force:        true,
		CABundle:     conn.caFile,
		ProxyOptions: conn.proxy,
	}
	if !before.IsZero() {
		opts.Depth = 0
	}
	err := guard(func() error { return repo.FetchContext(ctx, opts) })
	if tgt.ref == "" && errors.Is(err, git.ErrExactSHA1NotSupported) {
		// The server only hands out commits that a ref points at: fetch every branch
		// with its whole history (unshallowing the cache) and hope to find it there.
		s.log.Info("server does not serve commits by hash; fetching all branches with full history", "revision", tgt.hash.String())
		opts.RefSpecs = []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*"}
		opts.Depth = 0
		if shallow, _ := repo.Storer.Shallow(); len(shallow) > 0 {
			opts.Depth = math.MaxInt32 // what git fetch --unshallow asks for
		}
		err = guard(func() error { return repo.FetchContext(ctx, opts) })
	}
	thin := !before.IsZero()
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		// go-git leaves the pack it was writing when the download fails.
		if n := removeTempPacks(dir); n > 0 {
			s.log.Debug("removed the partial download from the cache", "cache", dir, "files", n)
		}
		switch {
		case ctx.Err() != nil || cutShort(err):
			return false, &interruptedError{err: err}
		case thin && missingObjects(err):
			// A pack that refers to objects the shallow cache lacks fails to parse.
			return false, fmt.Errorf("%w: %w", errRewritten, err)
		}
		return false, err
	}
	switch {
	case !hasCommit(repo, tgt.hash) && thin:
		// The server took the commit for one the cache has (an old one, force-pushed back).
		return false, fmt.Errorf("%w: commit %s was not sent", errRewritten, tgt.hash)
	case !hasCommit(repo, tgt.hash):
		return false, fmt.Errorf("commit %s: not found on %s after fetching (is it on a branch?)", tgt.hash, s.loc.display)
	case thin:
		if err := treeComplete(ctx, repo, before, tgt.hash); err != nil {
			return false, fmt.Errorf("%w: %w", errRewritten, err)
		}
	}
	return true, nil
}

// treeComplete checks that every object of commit to's tree is in repo, given that
// commit from's tree is: only what differs between the two is looked up.
func treeComplete(ctx context.Context, repo *git.Repository, from, to plumbing.Hash) error {
	return guard(func() error {
		a, err := readCommit(repo, from)
		if err != nil {
			return err
		}
		b, err := readCommit(repo, to)
		if err != nil {
			return err
		}
		ta, err := a.Tree()
		if err != nil {
			return err
		}
		tb, err := b.Tree()
		if err != nil {
			return err
		}
		changes, err := object.DiffTreeWithOptions(ctx, ta, tb, nil)
		if err != nil {
			return err
		}
		for _, c := range changes {
			if c.To.Name == "" || c.To.TreeEntry.Mode == filemode.Submodule {
				continue
			}
			if err := repo.Storer.HasEncodedObject(c.To.TreeEntry.Hash); err != nil {
				return fmt.Errorf("%s: %w", c.To.Name, err)
			}
		}
		return nil
	})
}

// describe turns a transport error into one that says what to do about it.
func (s *Source) describe(ctx context.Context, conn *connection, what string, err error) error {
	if hk := conn.hostKey.refused(); hk != nil {
		return fmt.Errorf("%s: %w", what, hk)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%s: no answer within %s (--git-timeout): %w", what, s.opts.Timeout, err)
	}
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired) && conn.auth == nil:
		return fmt.Errorf("%s: the server wants credentials (FLAGSYNC_GIT_TOKEN, or FLAGSYNC_GIT_USERNAME and FLAGSYNC_GIT_PASSWORD): %w", what, err)
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return fmt.Errorf("%s: the server refused the credentials: %w", what, err)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Errorf("%s: repository not found, or the credentials cannot see it: %w", what, err)
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return fmt.Errorf("%s: the repository has no commits yet: %w", what, err)
	case isSSHAuthError(err):
		return fmt.Errorf("%s: the SSH server refused the key: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func isSSHAuthError(err error) bool {
	// x/crypto/ssh reports a refused key with an unexported error type only.
	return err != nil && strings.Contains(err.Error(), "ssh: unable to authenticate")
}

func isAuthError(err error) bool {
	return errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) ||
		errors.Is(err, transport.ErrRepositoryNotFound) || isSSHAuthError(err)
}

// guard turns a panic inside go-git (which a garbled pack file can cause) into an error.
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("reading git objects: %v", r)
		}
	}()
	return f()
}

// initCache creates an empty bare repository whose origin is url.
func initCache(dir, url string) (*git.Repository, error) {
	repo, err := git.PlainInit(dir, true)
	if err != nil {
		return nil, fmt.Errorf("create clone in %s: %w", dir, err)
	}
	_, err = repo.CreateRemote(&config.RemoteConfig{
		Name: "origin", URLs: []string{url},
		Fetch: []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*"},
	})
	if err != nil {
		return nil, fmt.Errorf("configure clone in %s: %w", dir, err)
	}
	return repo, nil
}

// openCache opens the clone in dir and checks it: its origin must be url, and every
// ref must point at a readable commit with a readable root tree. It returns nil, nil
// when there is no clone yet.
func openCache(dir, url string) (*git.Repository, error) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var repo *git.Repository
	err := guard(func() error {
		r, err := git.PlainOpen(dir)
		if err != nil {
			return err
		}
		cfg, err := r.Config()
		if err != nil {
			return err
		}
		if rc := cfg.Remotes["origin"]; rc == nil || len(rc.URLs) == 0 || rc.URLs[0] != url {
			return errors.New("its origin is another repository")
		}
		iter, err := r.References()
		if err != nil {
			return err
		}
		refs := 0
		err = iter.ForEach(func(ref *plumbing.Reference) error {
			if ref.Type() != plumbing.HashReference {
				return nil
			}
			refs++
			obj, err := r.Storer.EncodedObject(plumbing.AnyObject, ref.Hash())
			if err != nil {
				return fmt.Errorf("%s: %w", ref.Name(), err)
			}
			if obj.Type() == plumbing.CommitObject {
				if _, err := readCommit(r, ref.Hash()); err != nil {
					return fmt.Errorf("%s: %w", ref.Name(), err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if refs == 0 {
			return errors.New("it has no refs (an interrupted clone?)")
		}
		repo = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open cache %s: %w", dir, err)
	}
	return repo, nil
}

// readCommit reads a commit and its root tree.
func readCommit(repo *git.Repository, h plumbing.Hash) (*object.Commit, error) {
	var c *object.Commit
	err := guard(func() (err error) {
		if c, err = repo.CommitObject(h); err != nil {
			return err
		}
		_, err = c.Tree()
		return err
	})
	return c, err
}

func hasCommit(repo *git.Repository, h plumbing.Hash) bool {
	_, err := readCommit(repo, h)
	return err == nil
}

// removeTempPacks removes the temporary files that go-git (tmp_pack_*, tmp_obj_*) and
// git (tmp_pack_*, tmp_idx_*, tmp_rev_*, …) write in the objects/pack folder of the
// clone in dir while they download a pack: what a failed or interrupted download
// leaves behind. Packs (pack-*) and their indexes, and anything else, are kept. It
// returns how many files it removed.
func removeTempPacks(dir string) int {
	folder := filepath.Join(dir, "objects", "pack")
	entries, err := os.ReadDir(folder)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), "tmp_") {
			continue
		}
		if os.Remove(filepath.Join(folder, e.Name())) == nil {
			n++
		}
	}
	return n
}

// removeStaleTemps removes clone folders left by a process that died mid-clone.
func removeStaleTemps(cacheDir, base string) {
	matches, _ := filepath.Glob(filepath.Join(cacheDir, base+".tmp-*"))
	for _, m := range matches {
		os.RemoveAll(m)
	}
}
