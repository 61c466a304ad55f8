package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
)

// sourceFlags select where the desired flags come from: a repository (a local work tree
// for now), a ref and a folder inside it.
type sourceFlags struct {
	repo string
	ref  string
	path string
}

func (a *app) addSourceFlags(fs *flag.FlagSet) *sourceFlags {
	s := &sourceFlags{}
	fs.StringVar(&s.repo, "repo", a.envDefault("FLAGSYNC_REPO", "."), "repository: a local path (env FLAGSYNC_REPO)")
	fs.StringVar(&s.ref, "ref", a.envDefault("FLAGSYNC_REF", ""), "branch, tag or commit (env FLAGSYNC_REF)")
	fs.StringVar(&s.path, "path", a.envDefault("FLAGSYNC_PATH", "."), "folder of flag files inside the repository (env FLAGSYNC_PATH)")
	return s
}

// snapshot is a read-only view of the repository at one revision.
type snapshot struct {
	Revision string // commit id, "" when unknown
	FS       fs.FS  // the whole repository
	Dir      string // the flag folder inside FS, slash-separated, "." for the root
}

// open returns the snapshot the flags are read from.
func (s *sourceFlags) open(_ context.Context, _ *slog.Logger) (*snapshot, error) {
	st, err := os.Stat(s.repo)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", s.repo, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("open repository %s: not a directory", s.repo)
	}
	dir := path.Clean(s.path)
	if !fs.ValidPath(dir) {
		return nil, fmt.Errorf("--path %q: must be a relative path inside the repository", s.path)
	}
	return &snapshot{FS: os.DirFS(s.repo), Dir: dir}, nil
}
