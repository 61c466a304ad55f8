package gittest

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Repo is a fixture repository: a bare repository that servers export and a work clone
// that commits are made in and pushed from. Both live in the test's temp directory.
type Repo struct {
	// Bare is the path of the bare repository (".../remote.git").
	Bare string
	// Work is the path of the work clone.
	Work string
	// Name is the bare repository's folder name, the last element of served URLs.
	Name string
	// Branch is the branch the work clone has checked out ("main" at first).
	Branch string

	home string // HOME and XDG_CONFIG_HOME of every git command: empty, so no user config leaks in
}

// NewRepo creates an empty bare repository whose default branch is main, and a work
// clone of it. Git runs with an empty HOME and GIT_CONFIG_NOSYSTEM=1, so the machine's
// system and global configuration are never read.
func NewRepo(tb testing.TB) *Repo {
	tb.Helper()
	requireGit(tb)
	dir := tb.TempDir()
	r := &Repo{
		Bare:   filepath.Join(dir, "remote.git"),
		Work:   filepath.Join(dir, "work"),
		Name:   "remote.git",
		Branch: "main",
		home:   filepath.Join(dir, "home"),
	}
	if err := os.MkdirAll(r.home, 0o755); err != nil {
		tb.Fatalf("create git home: %v", err)
	}
	r.run(tb, dir, nil, "init", "--quiet", "--bare", "--initial-branch=main", r.Bare)
	r.run(tb, dir, nil, "init", "--quiet", "--initial-branch=main", r.Work)
	r.Git(tb, "remote", "add", "origin", r.Bare)
	return r
}

// Env returns the environment git commands of this fixture run with: the process
// environment without GIT_* variables, plus an empty HOME and no system config.
func (r *Repo) Env() []string { return Env(r.home) }

// Env returns the process environment without GIT_* variables, with HOME and
// XDG_CONFIG_HOME set to home and the system and global git configuration turned off.
func Env(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GIT_") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"HOME="+home,
		"XDG_CONFIG_HOME="+home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
	)
}

// Git runs git with args in the work clone and returns its trimmed standard output.
func (r *Repo) Git(tb testing.TB, args ...string) string {
	tb.Helper()
	return r.run(tb, r.Work, nil, args...)
}

// GitBare runs git with args in the bare repository and returns its trimmed output.
func (r *Repo) GitBare(tb testing.TB, args ...string) string {
	tb.Helper()
	return r.run(tb, r.Bare, nil, args...)
}

// GitInput runs git with args in the bare repository with stdin as its input, for
// plumbing such as fast-import.
func (r *Repo) GitInput(tb testing.TB, stdin io.Reader, args ...string) string {
	tb.Helper()
	return r.run(tb, r.Bare, stdin, args...)
}

func (r *Repo) run(tb testing.TB, dir string, stdin io.Reader, args ...string) string {
	tb.Helper()
	full := append([]string{"-c", "user.name=flagsync test", "-c", "user.email=test@flagsync.invalid",
		"-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "init.defaultBranch=main"}, args...)
	cmd := exec.Command("git", full...)
	cmd.Dir = dir
	cmd.Env = r.Env()
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// Commit writes files into the work clone (an empty value deletes that file), commits
// them with msg, pushes the current branch and returns the new commit's hash. The push
// is forced: the work clone is the truth, so Commit after ResetHard rewrites history. Keys are
// slash-separated paths; folders are created as needed.
func (r *Repo) Commit(tb testing.TB, files map[string]string, msg string) string {
	tb.Helper()
	for name, content := range files {
		p := filepath.Join(r.Work, filepath.FromSlash(name))
		if content == "" {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				tb.Fatalf("delete %s: %v", name, err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatalf("create folder for %s: %v", name, err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			tb.Fatalf("write %s: %v", name, err)
		}
	}
	r.Git(tb, "add", "--all")
	r.Git(tb, "commit", "--quiet", "--allow-empty", "-m", msg)
	r.Git(tb, "push", "--quiet", "--force", "origin", "HEAD:refs/heads/"+r.Branch)
	return r.Head(tb)
}

// Head returns the hash of the work clone's HEAD commit.
func (r *Repo) Head(tb testing.TB) string {
	tb.Helper()
	return r.Git(tb, "rev-parse", "HEAD")
}

// Tag creates a lightweight tag at HEAD and pushes it.
func (r *Repo) Tag(tb testing.TB, name string) {
	tb.Helper()
	r.Git(tb, "tag", name)
	r.Git(tb, "push", "--quiet", "origin", "refs/tags/"+name)
}

// TagAnnotated creates an annotated tag at HEAD with message msg and pushes it.
func (r *Repo) TagAnnotated(tb testing.TB, name, msg string) {
	tb.Helper()
	r.Git(tb, "tag", "-a", "-m", msg, name)
	r.Git(tb, "push", "--quiet", "origin", "refs/tags/"+name)
}

// ResetHard moves the current branch of the work clone to rev, discarding later commits
// and local changes. Follow with ForcePush to rewrite the remote branch.
func (r *Repo) ResetHard(tb testing.TB, rev string) {
	tb.Helper()
	r.Git(tb, "reset", "--quiet", "--hard", rev)
}

// ForcePush pushes the current branch with --force, rewriting the remote branch.
func (r *Repo) ForcePush(tb testing.TB) {
	tb.Helper()
	r.Git(tb, "push", "--quiet", "--force", "origin", "HEAD:refs/heads/"+r.Branch)
}

// Checkout switches the work clone to branch name, creating it at HEAD when it does not
// exist yet, or as an orphan (no history) when orphan is true. Commit then pushes to it.
func (r *Repo) Checkout(tb testing.TB, name string, orphan bool) {
	tb.Helper()
	switch {
	case orphan:
		r.Git(tb, "checkout", "--quiet", "--orphan", name)
		r.Git(tb, "rm", "-r", "--quiet", "--cached", "--ignore-unmatch", ".")
		r.Git(tb, "clean", "-fdq")
	case r.run(tb, r.Work, nil, "branch", "--list", name) != "":
		r.Git(tb, "checkout", "--quiet", name)
	default:
		r.Git(tb, "checkout", "--quiet", "-b", name)
	}
	r.Branch = name
}

// DeleteBranch deletes branch name on the remote (the work clone keeps its copy).
func (r *Repo) DeleteBranch(tb testing.TB, name string) {
	tb.Helper()
	r.Git(tb, "push", "--quiet", "origin", "--delete", name)
}

// SetConfig sets a git config key in the bare repository, e.g. to let servers hand out
// commits that no branch points at (uploadpack.allowReachableSHA1InWant).
func (r *Repo) SetConfig(tb testing.TB, key, value string) {
	tb.Helper()
	r.GitBare(tb, "config", key, value)
}

func requireGit(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		tb.Fatalf("the git binary is needed for this test: %v", err)
	}
}
