package main

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/flagsync/flagsync/internal/cli"
	"github.com/flagsync/flagsync/internal/gitsource"
	"github.com/flagsync/flagsync/internal/loadcache"
	"github.com/flagsync/flagsync/internal/plan"
)

// sourceFlags select where the desired flags come from: a repository (a local folder
// or a remote URL), a ref and a folder inside it, and how a remote is reached.
type sourceFlags struct {
	a *app

	repo string
	ref  string
	path string

	cacheDir            string
	depth               int
	gitTimeout          time.Duration
	sshKey              string
	knownHosts          string
	insecureSkipHostKey bool
	allowHTTP           bool
	caFile              string

	noCache     bool             // --no-cache: every flag file is parsed
	cache       *loadcache.Cache // the validation cache, once opened (nil: off)
	cacheOpened bool
}

// addSourceFlags adds the flags that say where the flag files are. Git's settings keep
// the FLAGSYNC_GIT_ variables of its credentials.
func (a *app) addSourceFlags(fs *cli.FlagSet) *sourceFlags {
	s := &sourceFlags{a: a}
	fs.StringVar(&s.repo, "repo", ".", "repository: a local folder, or a URL (https://, ssh://, git@host:org/repo.git, file://)")
	fs.StringVar(&s.ref, "ref", "", "branch, tag or full commit hash; default: the remote's default branch, or a local folder as it is on disk")
	fs.StringVar(&s.path, "path", ".", "folder of flag files inside the repository")
	fs.StringVar(&s.cacheDir, "cache-dir", "", "folder remote repositories are cloned into and the validation cache is kept in (the cache is off in .flagsync/cache, the last default, used without a home)")
	fs.DefaultText("cache-dir", "$XDG_CACHE_HOME/flagsync, else $HOME/.cache/flagsync, else .flagsync/cache")
	fs.BoolVar(&s.noCache, "no-cache", false, "parse every flag file: no validation cache (it keeps what each unchanged file gave, see docs/cache.md)")
	fs.IntVar(&s.depth, "depth", 1, "history depth to fetch from a remote; 0 = full history")
	fs.Env("depth", "FLAGSYNC_GIT_DEPTH")
	fs.DurationVar(&s.gitTimeout, "git-timeout", gitsource.DefaultTimeout, "time limit of one fetch")
	fs.StringVar(&s.sshKey, "ssh-key", "", "private key file for SSH remotes; passphrase from FLAGSYNC_GIT_SSH_KEY_PASSPHRASE(_FILE)")
	fs.Env("ssh-key", "FLAGSYNC_GIT_SSH_KEY_FILE")
	fs.StringVar(&s.knownHosts, "known-hosts", "", "known_hosts file SSH host keys are verified against")
	fs.DefaultText("known-hosts", "$HOME/.ssh/known_hosts")
	fs.Env("known-hosts", "FLAGSYNC_GIT_KNOWN_HOSTS")
	fs.BoolVar(&s.insecureSkipHostKey, "insecure-skip-host-key-check", false, "do not verify SSH host keys (unsafe; warns on every fetch)")
	fs.Env("insecure-skip-host-key-check", "FLAGSYNC_GIT_INSECURE_SKIP_HOST_KEY_CHECK")
	fs.BoolVar(&s.allowHTTP, "git-allow-http", false, "allow plain http:// to a host that is not loopback (unsafe; warns on every fetch)")
	fs.StringVar(&s.caFile, "git-ca-file", "", "PEM file of extra certificate authorities for HTTPS remotes")
	return s
}

// snapshot is a read-only view of the repository at one revision.
type snapshot struct {
	Revision string // commit id, "" when unknown (a folder outside git)
	FS       fs.FS  // the whole repository
	Dir      string // the flag folder inside FS, slash-separated, "." for the root
	Dirty    bool   // a local work tree with uncommitted changes: the files are not Revision
	// Cache is the validation cache its flag files are loaded through (nil: off).
	Cache *loadcache.Cache
}

// open fetches the repository (cloning or updating a remote in the cache) and returns
// the snapshot the flags are read from.
func (s *sourceFlags) open(ctx context.Context, logger *slog.Logger) (*snapshot, error) {
	dir := path.Clean(strings.TrimPrefix(filepath.ToSlash(s.path), "./"))
	if !fs.ValidPath(dir) {
		return nil, fmt.Errorf("--path %q: must be a relative path inside the repository", s.path)
	}
	src, err := s.newSource(logger)
	if err != nil {
		return nil, err
	}
	snap, err := src.Fetch(ctx)
	if err != nil {
		return nil, err
	}
	rev := snap.Revision
	if snap.Dirty {
		logger.Info("the work tree has uncommitted changes: flags are read as they are on disk", "revision", snap.Revision)
		// A plan of uncommitted files must not claim to be the commit's plan.
		rev += plan.DirtySuffix
	}
	return &snapshot{Revision: rev, FS: snap.FS, Dir: dir, Dirty: snap.Dirty, Cache: s.validationCache(logger)}, nil
}

// validationCache returns the process's validation cache (docs/cache.md), opened once,
// in the validation/ folder of the cache folder: --cache-dir (FLAGSYNC_CACHE_DIR), else
// $XDG_CACHE_HOME/flagsync or ~/.cache/flagsync. It is nil (off) with --no-cache, and
// without any of those: the last resort of the Git clones, .flagsync/cache in the
// current folder, is often the repository itself, which a load must not write to.
func (s *sourceFlags) validationCache(logger *slog.Logger) *loadcache.Cache {
	if s.cacheOpened {
		return s.cache
	}
	s.cacheOpened = true
	dir := cmpOr(s.cacheDir, s.a.userCacheDir())
	switch {
	case s.noCache:
		logger.Debug("validation cache off (--no-cache)")
	case dir == "":
		logger.Debug("validation cache off: no cache folder (--cache-dir, FLAGSYNC_CACHE_DIR, XDG_CACHE_HOME or HOME)")
	default:
		s.cache = loadcache.Open(dir, loadcache.Options{Logger: logger})
	}
	return s.cache
}

// newSource builds the gitsource.Source the flags describe, reading Git credentials
// from FLAGSYNC_GIT_* variables (or the files their *_FILE twins name). The daemon
// keeps one to fetch on every trigger.
func (s *sourceFlags) newSource(logger *slog.Logger) (*gitsource.Source, error) {
	var auth gitsource.Auth
	for _, v := range []struct {
		name string
		dst  *string
	}{
		{"FLAGSYNC_GIT_TOKEN", &auth.Token},
		{"FLAGSYNC_GIT_USERNAME", &auth.Username},
		{"FLAGSYNC_GIT_PASSWORD", &auth.Password},
		{"FLAGSYNC_GIT_SSH_KEY_PASSPHRASE", &auth.SSHKeyPassphrase},
	} {
		val, err := s.a.secret(v.name)
		if err != nil {
			return nil, err
		}
		*v.dst = val
	}
	auth.SSHKeyFile = s.sshKey
	return gitsource.New(gitsource.Options{
		Repo:                s.repo,
		Ref:                 s.ref,
		Path:                s.path,
		CacheDir:            cmpOr(s.cacheDir, s.a.defaultCacheDir()),
		Depth:               s.depth,
		Timeout:             s.gitTimeout,
		Auth:                auth,
		KnownHostsFile:      cmpOr(s.knownHosts, s.a.defaultKnownHosts()),
		InsecureSkipHostKey: s.insecureSkipHostKey,
		AllowHTTP:           s.allowHTTP,
		CAFile:              s.caFile,
		Logger:              logger,
	})
}

// defaultCacheDir is $XDG_CACHE_HOME/flagsync, else ~/.cache/flagsync, else
// ./.flagsync/cache (a container without a home).
func (a *app) defaultCacheDir() string {
	return cmpOr(a.userCacheDir(), filepath.Join(".flagsync", "cache"))
}

// userCacheDir is $XDG_CACHE_HOME/flagsync, else ~/.cache/flagsync; "" without either.
func (a *app) userCacheDir() string {
	if d := a.getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "flagsync")
	}
	if h := a.getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "flagsync")
	}
	return ""
}

// defaultKnownHosts is ~/.ssh/known_hosts; "" without a home, which gitsource also
// resolves to ~/.ssh/known_hosts (and fails clearly for SSH remotes).
func (a *app) defaultKnownHosts() string {
	if h := a.getenv("HOME"); h != "" {
		return filepath.Join(h, ".ssh", "known_hosts")
	}
	return ""
}
