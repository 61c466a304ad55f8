package faults

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/gittest"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
)

// The disk scenarios. Tests may run as root, where a folder with mode 0500 is no
// obstacle, so the failures are made in ways that bind root too: a full disk is a file
// size limit (RLIMIT_FSIZE) on the flagsync binary, and an unwritable folder is one
// whose parent is a regular file.

// gitEnv is the environment that gives the binary the Git credentials.
func gitEnv() []string {
	return []string{"FLAGSYNC_GIT_USERNAME=" + gitUser, "FLAGSYNC_GIT_PASSWORD=" + canaryGitPassword}
}

// apiEnv is the environment that points the binary at w's sandbox.
func (w *world) apiEnv() []string {
	return []string{kclient.EnvClientID + "=" + clientID, kclient.EnvClientSecret + "=" + canaryClientSecret, kclient.EnvAPIURL + "=" + w.url}
}

// fastAPI are the sync flags that keep retries and the budget out of the way.
var fastAPI = []string{"--retry-base", "1ms", "--rate-10s", "100000", "--rate-hour", "1000000", "--max-changes", "0"}

func TestFaultDiskFullGitCache(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ksandbox.Options{})
	flags := genFlags(6)
	repo := gittest.NewRepo(t)
	repo.Commit(t, repoFiles(flags), "v1")
	srv := gittest.StartHTTPServer(t, repo, gitUser, canaryGitPassword)
	cache := filepath.Join(t.TempDir(), "cache")
	validate := func(limit int64, cache string) binResult {
		return runBinary(t, limit, gitEnv(), "validate", "--repo", srv.URL, "--path", "flags", "--cache-dir", cache, "--log-level", "debug")
	}
	if r := validate(0, cache); r.code != 0 {
		t.Fatalf("validate: exit %d\n%s", r.code, r.stderr)
	}
	cached := treeState(t, cache)

	// The next revision carries a large file: its download does not fit on the "disk".
	flags = edited(flags)
	files := repoFiles(flags)
	blob := make([]byte, 192<<10)
	rand.Read(blob)
	files["assets/blob.txt"] = base64.StdEncoding.EncodeToString(blob)
	repo.Commit(t, files, "v2 with a large file")
	const limit = 64 << 10
	full := validate(limit, cache)
	if full.code != 1 {
		t.Fatalf("validate on a full disk: exit %d, want 1\n%s%s", full.code, full.stdout, full.stderr)
	}
	assertErrorNames(t, "the error of a fetch onto a full disk", full.stderr, "file too large", srv.URL)
	assertNoSecrets(t, "the output of a failed fetch", full.stdout+full.stderr, w.secrets())
	// Nothing the cache holds changed, not even a partial pack of the failed download
	// (see TestBugFailedFetchLeavesPartialPack).
	if d := treeDiff(cached, treeState(t, cache)); len(d) > 0 {
		t.Errorf("the fetch that failed on a full disk changed the cache: %v", d)
	}
	if l := leftovers(t, cache); len(l) > 0 {
		t.Errorf("the failed fetch left %v in the cache folder", l)
	}
	// A first clone onto a full disk leaves no half-written clone either.
	fresh := filepath.Join(t.TempDir(), "fresh")
	if r := validate(limit, fresh); r.code != 1 || !strings.Contains(r.stderr, "file too large") {
		t.Errorf("clone onto a full disk: exit %d\n%s", r.code, r.stderr)
	}
	if entries, _ := os.ReadDir(fresh); len(nonLocks(entries)) > 0 {
		t.Errorf("a clone that failed on a full disk left %v", nonLocks(entries))
	}

	// With room again, the same cache fetches the revision and the sync converges.
	if r := validate(0, cache); r.code != 0 {
		t.Fatalf("validate with room again: exit %d\n%s", r.code, r.stderr)
	}
	sync := func() binResult {
		args := append([]string{"sync", "--repo", srv.URL, "--path", "flags", "--cache-dir", cache}, fastAPI...)
		return runBinary(t, 0, append(gitEnv(), w.apiEnv()...), args...)
	}
	if r := sync(); r.code != 0 || !strings.Contains(r.stdout, "; converged;") {
		t.Fatalf("sync with room again: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := sync(); r.code != 0 || !strings.Contains(r.stdout, "already in sync") {
		t.Errorf("further sync: exit %d\n%s", r.code, r.stdout)
	}
	w.settle(repoFiles(flags), "v2")
	summary(t, "fault disk-full-git-cache: file size limit %d KiB: exit 1, %q; cache unchanged, no half-written clone; with room the same cache fetched, the sync converged and a further one was already in sync",
		limit>>10, lastLine(full.stderr))
}

func nonLocks(entries []os.DirEntry) []string {
	var out []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			out = append(out, e.Name())
		}
	}
	return out
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// sandboxState reads a sandbox state file and returns the keys of its flags.
func sandboxState(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read sandbox state: %v", err)
	}
	var st struct {
		Version int               `json:"version"`
		Flags   []json.RawMessage `json:"flags"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.Version != 1 {
		t.Fatalf("sandbox state %s is not a whole state file (version %d): %v", path, st.Version, err)
	}
	var keys []string
	for _, raw := range st.Flags {
		f, err := kclient.DecodeFlag(raw)
		if err != nil {
			t.Fatalf("sandbox state: flag %s: %v", raw, err)
		}
		keys = append(keys, f.Ref().String())
	}
	return keys
}

func TestFaultDiskFullSandboxState(t *testing.T) {
	t.Parallel()
	const n = 5
	dir := filepath.Join(t.TempDir(), "repo")
	writeDir(t, dir, repoFiles(genFlags(n)))
	sync := func(limit int64, state string) binResult {
		args := append([]string{"sync", "--sandbox", "--sandbox-state", state, "--repo", dir, "--path", "flags", "--log-level", "debug"}, fastAPI...)
		return runBinary(t, limit, nil, args...)
	}
	// How large the state grows: a first sync into a scratch state.
	scratch := filepath.Join(t.TempDir(), "scratch.json")
	if r := sync(0, scratch); r.code != 0 {
		t.Fatalf("sync: exit %d\n%s", r.code, r.stderr)
	}
	st, err := os.Stat(scratch)
	if err != nil {
		t.Fatal(err)
	}
	limit := st.Size() * 6 / 10 // room for some of the flags, not all

	state := filepath.Join(t.TempDir(), "state", "sandbox.json")
	r := sync(limit, state)
	if r.code != 1 {
		t.Fatalf("sync onto a full disk: exit %d, want 1\n%s", r.code, r.stdout)
	}
	// The sandbox's message is "save sandbox state PATH: …", but the client redacts the
	// embedded sandbox's client secret, "sandbox", from it (see
	// TestBugEmbeddedSandboxSecretRedactsText).
	assertErrorNames(t, "the results of a sync onto a full disk", r.stdout, "failed   create", "500 Internal Server Error", "state", "file too large")
	kept := sandboxState(t, state)
	if len(kept) == 0 || len(kept) >= n {
		t.Errorf("the state holds %d of %d flags; want some, not all, to have fitted", len(kept), n)
	}
	if entries, _ := os.ReadDir(filepath.Dir(state)); len(entries) != 1 {
		t.Errorf("the state folder holds %d entries, want only the state file (no temporary file left)", len(entries))
	}

	// With room again, the next sync creates the rest, and the one after finds nothing.
	r2 := sync(0, state)
	if r2.code != 0 || !strings.Contains(r2.stdout, "; converged;") {
		t.Fatalf("sync with room again: exit %d\n%s%s", r2.code, r2.stdout, r2.stderr)
	}
	after := sandboxState(t, state)
	seen := map[string]bool{}
	for _, k := range after {
		if seen[k] {
			t.Errorf("%s is in the state twice", k)
		}
		seen[k] = true
	}
	if len(after) != n {
		t.Errorf("the state holds %d flags, want %d", len(after), n)
	}
	if r3 := sync(0, state); r3.code != 0 || !strings.Contains(r3.stdout, "already in sync") {
		t.Errorf("further sync: exit %d\n%s", r3.code, r3.stdout)
	}
	var failed string
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.Contains(line, "file too large") {
			failed = strings.TrimSpace(line)
			break
		}
	}
	summary(t, "fault disk-full-sandbox-state: file size limit %d bytes: exit 1, %d of %d flags kept in a whole state file, no temporary file left, e.g. %q; with room the next sync converged (%d flags, each once) and a further one was already in sync",
		limit, len(kept), n, failed, len(after))
}

func TestFaultUnwritableFolders(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ksandbox.Options{})
	flags := genFlags(4)
	repo := gittest.NewRepo(t)
	repo.Commit(t, repoFiles(flags), "v1")
	srv := gittest.StartHTTPServer(t, repo, gitUser, canaryGitPassword)

	// A cache folder under a regular file cannot be created, whoever runs flagsync.
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, []byte("not a folder\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var errs []string
	_, err := newGitSource(t, w, srv.URL, filepath.Join(file, "cache"), 20*time.Second).Fetch(testContext(t))
	if err == nil {
		t.Fatal("a fetch into a cache under a regular file succeeded")
	}
	assertErrorNames(t, "the error of a fetch into an unwritable cache", err.Error(), "create cache folder", "not a directory")
	w.assertNoSecrets("a git error", err.Error())
	errs = append(errs, err.Error())

	// A folder with mode 0500 stops everyone but root.
	ro := filepath.Join(t.TempDir(), "read-only")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(ro, 0o700) })
	chmod := "skipped: a 0500 folder does not stop this user (root)"
	if probe, perr := os.Create(filepath.Join(ro, "probe")); perr == nil {
		probe.Close()
		os.Remove(probe.Name())
	} else {
		_, err := newGitSource(t, w, srv.URL, filepath.Join(ro, "cache"), 20*time.Second).Fetch(testContext(t))
		if err == nil || !errors.Is(err, fs.ErrPermission) {
			t.Errorf("a fetch into a read-only folder: err = %v, want permission denied", err)
		} else {
			chmod = err.Error()
		}
	}

	// The sandbox's state file under a regular file: the sync stops before any call.
	state := filepath.Join(file, "state", "sandbox.json")
	dir := filepath.Join(t.TempDir(), "repo")
	writeDir(t, dir, repoFiles(flags))
	args := append([]string{"sync", "--sandbox", "--repo", dir, "--path", "flags"}, fastAPI...)
	r := runBinary(t, 0, nil, append(args, "--sandbox-state", state)...)
	if r.code != 1 {
		t.Fatalf("sync with the state under a file: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	assertErrorNames(t, "the error of a sandbox whose state folder cannot be made", r.stderr, "start sandbox", "not a directory")
	errs = append(errs, lastLine(r.stderr))

	// With good folders, both converge.
	snap, err := newGitSource(t, w, srv.URL, filepath.Join(t.TempDir(), "cache"), 20*time.Second).Fetch(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	w.mustApplyFS(w.proc(procOptions{}), snap.FS, snap.Revision)
	good := filepath.Join(t.TempDir(), "sandbox.json")
	if r := runBinary(t, 0, nil, append(args, "--sandbox-state", good)...); r.code != 0 || !strings.Contains(r.stdout, "; converged;") {
		t.Errorf("sync with a good state path: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	w.settle(repoFiles(flags), snap.Revision)
	summary(t, "fault unwritable-folders: errors %q; mode 0500: %s; with good folders both converged, %d duplicates", errs, chmod, len(w.duplicates()))
}
