package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/gittest"
)

// gitFreeEnv keeps git (run for a work tree's status) away from the machine's config.
func gitFreeEnv(t *testing.T) {
	t.Helper()
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	t.Setenv("GIT_CONFIG_GLOBAL", os.DevNull)
}

// runWithEnv runs flagsync in-process with exactly env as its environment.
func runWithEnv(env map[string]string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	a := &app{stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code = a.dispatch(ctx, args)
	return code, out.String(), errb.String()
}

// exampleRemote commits examples/flags under flags/ in a fixture repository.
func exampleRemote(t *testing.T) *gittest.Repo {
	t.Helper()
	repo := gittest.NewRepo(t)
	files := map[string]string{}
	root := filepath.Join("..", "..", "examples", "flags")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files["flags/"+filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	repo.Commit(t, files, "example flags")
	return repo
}

func TestValidateRemoteRepositories(t *testing.T) {
	gitFreeEnv(t)
	repo := exampleRemote(t)
	_, want, _ := runWithEnv(nil, "validate", "--repo", filepath.Join("..", "..", "examples", "flags"))
	if want == "" {
		t.Fatal("validating the local examples printed nothing")
	}

	httpURL := gittest.StartHTTP(t, repo, "bot", "s3cret-pass")
	keyFile, pub := gittest.NewKey(t, "key-pass")
	sshURL, hostKey := gittest.StartSSH(t, repo, pub)
	dir := t.TempDir()
	writeSecret := func(name, value string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"https with user and password from files", map[string]string{
			"FLAGSYNC_GIT_USERNAME_FILE": writeSecret("user", "bot"),
			"FLAGSYNC_GIT_PASSWORD_FILE": writeSecret("pass", "s3cret-pass"),
		}, []string{"--repo", httpURL}},
		{"https with flags from env", map[string]string{
			"FLAGSYNC_REPO": httpURL, "FLAGSYNC_REF": "main", "FLAGSYNC_GIT_DEPTH": "0", "FLAGSYNC_GIT_TIMEOUT": "20s",
			"FLAGSYNC_GIT_USERNAME": "bot", "FLAGSYNC_GIT_PASSWORD": "s3cret-pass",
		}, nil},
		{"ssh with a passphrase-protected key", map[string]string{
			"FLAGSYNC_GIT_SSH_KEY_FILE":            keyFile,
			"FLAGSYNC_GIT_SSH_KEY_PASSPHRASE_FILE": writeSecret("passphrase", "key-pass"),
			"FLAGSYNC_GIT_KNOWN_HOSTS":             gittest.WriteKnownHosts(t, sshURL, hostKey),
		}, []string{"--repo", sshURL}},
		{"file URL", nil, []string{"--repo", "file://" + filepath.ToSlash(repo.Bare), "--depth", "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"validate", "--path", "flags", "--cache-dir", t.TempDir(), "--log-format", "json"}, tc.args...)
			code, out, errOut := runWithEnv(tc.env, args...)
			if code != exitOK || out != want {
				t.Errorf("exit %d, stdout %q, want %q\nstderr:\n%s", code, out, want, errOut)
			}
			if !strings.Contains(errOut, `"msg":"git clone"`) || !strings.Contains(errOut, repo.Head(t)) {
				t.Errorf("no clone of %s logged:\n%s", repo.Head(t), errOut)
			}
		})
	}
}

func TestSourceCredentialsNeverPrinted(t *testing.T) {
	gitFreeEnv(t)
	repo := exampleRemote(t)
	const canary = "canary-K9w2-do-not-print"
	url := gittest.StartHTTP(t, repo, "bot", "right")
	withPass := strings.Replace(url, "http://", "http://bot:"+canary+"@", 1)
	for _, tc := range []struct {
		name string
		env  map[string]string
		repo string
	}{
		{"password from env", map[string]string{"FLAGSYNC_GIT_USERNAME": "bot", "FLAGSYNC_GIT_PASSWORD": canary}, url},
		{"token from env", map[string]string{"FLAGSYNC_GIT_TOKEN": canary}, url},
		{"password in the URL", nil, withPass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runWithEnv(tc.env, "validate", "--repo", tc.repo, "--path", "flags",
				"--cache-dir", t.TempDir(), "--log-level", "debug", "--log-format", "json")
			if code != exitFail || !strings.Contains(errOut, "the server refused the credentials") {
				t.Errorf("exit %d, stderr:\n%s", code, errOut)
			}
			if strings.Contains(out+errOut, canary) {
				t.Errorf("the canary was printed:\n%s%s", out, errOut)
			}
		})
	}
}

func TestSourceFlags(t *testing.T) {
	gitFreeEnv(t)
	open := func(env map[string]string, args ...string) (*snapshot, *sourceFlags, error) {
		a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(k string) string { return env[k] }}
		fs := a.newFlagSet("test", "")
		src := a.addSourceFlags(fs)
		if err := fs.Parse(args, a.getenv); err != nil {
			return nil, nil, err
		}
		logger, _ := a.logger(&logFlags{level: "error", format: "text"})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		snap, err := src.open(ctx, logger)
		return snap, src, err
	}

	t.Run("defaults", func(t *testing.T) {
		// The flags' defaults are the same on every machine; the folders under $HOME are
		// worked out when the source is built.
		a := &app{getenv: func(k string) string { return map[string]string{"HOME": "/h", "XDG_CACHE_HOME": "/c"}[k] }}
		src := a.addSourceFlags(a.newFlagSet("test", ""))
		if src.cacheDir != "" || src.depth != 1 || src.gitTimeout != 60*time.Second ||
			src.knownHosts != "" || src.insecureSkipHostKey || src.allowHTTP {
			t.Errorf("defaults: %+v", src)
		}
		if a.defaultCacheDir() != filepath.Join("/c", "flagsync") || a.defaultKnownHosts() != filepath.Join("/h", ".ssh", "known_hosts") {
			t.Errorf("cache dir %s, known hosts %s", a.defaultCacheDir(), a.defaultKnownHosts())
		}
		a = &app{getenv: func(string) string { return "" }}
		if d := a.defaultCacheDir(); d != filepath.Join(".flagsync", "cache") {
			t.Errorf("cache dir without a home: %s", d)
		}
	})
	t.Run("bad environment", func(t *testing.T) {
		for name, value := range map[string]string{"FLAGSYNC_GIT_DEPTH": "one", "FLAGSYNC_GIT_TIMEOUT": "60", "FLAGSYNC_GIT_ALLOW_HTTP": "maybe"} {
			_, _, err := open(map[string]string{name: value}, "--repo", t.TempDir())
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%s: err = %v", name, value, err)
			}
		}
	})
	t.Run("local work tree", func(t *testing.T) {
		repo := gittest.NewRepo(t)
		head := repo.Commit(t, map[string]string{"flags/a.yaml": "a\n"}, "one")
		snap, _, err := open(nil, "--repo", repo.Work, "--path", "./flags/")
		if err != nil || snap.Revision != head || snap.Dirty || snap.Dir != "flags" {
			t.Fatalf("snapshot %+v, err %v", snap, err)
		}
		os.WriteFile(filepath.Join(repo.Work, "flags", "b.yaml"), []byte("b\n"), 0o644)
		if snap, _, err = open(nil, "--repo", repo.Work); err != nil || !snap.Dirty {
			t.Errorf("untracked file: snapshot %+v, err %v", snap, err)
		}
		if _, _, err = open(nil, "--repo", repo.Work, "--path", "nope"); err == nil || !strings.Contains(err.Error(), `path "nope"`) {
			t.Errorf("missing path: %v", err)
		}
		if _, _, err = open(nil, "--repo", repo.Work, "--path", "../x"); err == nil {
			t.Errorf("a path out of the repository was accepted")
		}
	})
	t.Run("remote over plain http needs the opt-in", func(t *testing.T) {
		_, _, err := open(nil, "--repo", "http://git.example.invalid/flags.git", "--cache-dir", t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "--git-allow-http") {
			t.Errorf("err = %v", err)
		}
	})
}

// sync and plan read a remote repository the same way validate does.
func TestSyncAndPlanRemoteRepository(t *testing.T) {
	gitFreeEnv(t)
	h := newSyncHarness(t)
	repo := gittest.NewRepo(t)
	writeGenRepo(t, filepath.Join(repo.Work, "flags"), genFlags(3))
	repo.Commit(t, nil, "three flags")
	url := gittest.StartHTTP(t, repo, "bot", "pass")
	h.env["FLAGSYNC_GIT_USERNAME"] = "bot"
	h.env["FLAGSYNC_GIT_PASSWORD"] = "pass"
	cache := t.TempDir()

	r := h.mustRun(exitOK, "sync", "--repo", url, "--path", "flags", "--cache-dir", cache)
	if r.writes == 0 {
		t.Errorf("sync from a remote wrote nothing:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, repo.Head(t)) {
		t.Errorf("the revision %s is not in the sync's log", repo.Head(t))
	}
	r = h.mustRun(exitOK, "plan", "--repo", url, "--path", "flags", "--cache-dir", cache, "--detailed-exitcode")
	if r.writes != 0 {
		t.Errorf("plan wrote %d times", r.writes)
	}
}

// TestPlanOfADirtyWorkTreeSaysSo: a plan of uncommitted files must not claim to be the
// plan of the commit they differ from.
func TestPlanOfADirtyWorkTreeSaysSo(t *testing.T) {
	gitFreeEnv(t)
	h := newSyncHarness(t)
	repo := gittest.NewRepo(t)
	writeGenRepo(t, filepath.Join(repo.Work, "flags"), genFlags(2))
	head := repo.Commit(t, nil, "two flags")
	short := head[:7]

	r := h.mustRun(exitOK, "plan", "--repo", repo.Work, "--path", "flags")
	if !strings.Contains(r.stdout, "revision "+short+"\n") {
		t.Errorf("clean tree: plan does not name revision %s:\n%s", short, r.stdout)
	}
	flags := genFlags(2)
	flags[1].exposition = 42
	writeGenRepo(t, filepath.Join(repo.Work, "flags"), flags)
	r = h.mustRun(exitOK, "plan", "--repo", repo.Work, "--path", "flags")
	if !strings.Contains(r.stdout, "revision "+short+"+dirty") {
		t.Errorf("dirty tree: plan does not say %s+dirty:\n%s", short, r.stdout)
	}
}
