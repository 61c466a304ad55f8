package faults

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/gittest"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
)

// Tests of bugs found in other packages. Each fails while its bug is there, so it is
// skipped unless FLAGSYNC_FAULTS_BUGS=1: run
//
//	FLAGSYNC_FAULTS_BUGS=1 go test ./internal/faults -run Bug -v
//
// to see them fail, and to check a fix (then drop the bugTest call). A test whose bug
// is fixed stays here without it, as a regression test of the normal suite.

func bugTest(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("FLAGSYNC_FAULTS_BUGS") == "" {
		t.Skip("BUG: " + what + " (FLAGSYNC_FAULTS_BUGS=1 runs this test)")
	}
}

// TestBugTestSkipsUnlessAsked: a bug test does not run in the normal suite (no bug is
// open now; bugTest is kept for the next one found).
func TestBugTestSkipsUnlessAsked(t *testing.T) {
	if os.Getenv("FLAGSYNC_FAULTS_BUGS") != "" {
		t.Skip("FLAGSYNC_FAULTS_BUGS is set: bug tests run")
	}
	ran := false
	t.Run("bug", func(t *testing.T) {
		bugTest(t, "an example")
		ran = true
	})
	if ran {
		t.Error("bugTest did not skip the test")
	}
}

// The embedded sandbox (sync --sandbox, run --sandbox) was reached with the client
// secret "sandbox", which the API client redacts from every error body: the sandbox's
// own messages lost their words and paths ("save [REDACTED] state
// .flagsync/[REDACTED].json"). Fixed: the embedded sandbox has a random secret per
// process (provider.RandomSecret, used by each vendor's embedded sandbox).
func TestBugEmbeddedSandboxSecretRedactsText(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	writeDir(t, dir, repoFiles(genFlags(3)))
	state := filepath.Join(t.TempDir(), "sandbox-state.json")
	args := append([]string{"sync", "--sandbox", "--sandbox-state", state, "--repo", dir, "--path", "flags"}, fastAPI...)
	r := runBinary(t, 600, nil, args...) // no state file fits
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stdout)
	}
	if strings.Contains(r.stdout, "[REDACTED]") || !strings.Contains(r.stdout, "save sandbox state "+state) {
		t.Errorf("the error does not name the state file %s:\n%s", state, r.stdout)
	}
}

// Fixed; a regression test. A fetch into an existing cache that fails while
// downloading (here: the disk is full) left go-git's partial pack
// (objects/pack/tmp_pack_*) in the cache, and every failed retry added another: on a
// full disk, the cache grew with each attempt. gitsource now removes the temporary
// files of objects/pack after a failed fetch (fetchInto).
func TestBugFailedFetchLeavesPartialPack(t *testing.T) {
	t.Parallel()
	repo := gittest.NewRepo(t)
	repo.Commit(t, repoFiles(genFlags(2)), "v1")
	srv := gittest.StartHTTPServer(t, repo, gitUser, canaryGitPassword)
	cache := filepath.Join(t.TempDir(), "cache")
	validate := func(limit int64) binResult {
		return runBinary(t, limit, gitEnv(), "validate", "--repo", srv.URL, "--path", "flags", "--cache-dir", cache)
	}
	if r := validate(0); r.code != 0 {
		t.Fatalf("validate: exit %d\n%s", r.code, r.stderr)
	}
	files := repoFiles(genFlags(2))
	blob := make([]byte, 96<<10)
	rand.Read(blob)
	files["assets/blob.txt"] = base64.StdEncoding.EncodeToString(blob)
	repo.Commit(t, files, "v2")
	for range 2 {
		if r := validate(32 << 10); r.code != 1 || !strings.Contains(r.stderr, "file too large") {
			t.Fatalf("validate on a full disk: exit %d\n%s", r.code, r.stderr)
		}
	}
	packs, _ := filepath.Glob(filepath.Join(cache, "*", "objects", "pack", "tmp_pack_*"))
	if len(packs) > 0 {
		t.Errorf("two failed fetches left %d partial packs in the cache: %v", len(packs), packs)
	}
}

// Fixed; a regression test. A fetch whose download times out after the ref listing,
// into a shallow cache, said "history was rewritten: the incremental fetch is
// incomplete" as well as "no answer within …": fetchInto wrapped every error of a thin
// fetch as errRewritten, so a network failure read as a force-push. gitsource's
// fetchInto now reports a fetch cut short (deadline, network, full disk) as it is.
func TestBugThinFetchTimeoutSaysRewritten(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ksandbox.Options{})
	repo := gittest.NewRepo(t)
	repo.Commit(t, repoFiles(genFlags(2)), "v1")
	srv := gittest.StartHTTPServer(t, repo, gitUser, canaryGitPassword)
	front := startGitFront(t, srv.URL)
	src := newGitSource(t, w, front.url(srv.URL), t.TempDir(), 2*time.Second)
	if _, err := src.Fetch(testContext(t)); err != nil {
		t.Fatal(err)
	}
	repo.Commit(t, repoFiles(edited(genFlags(2))), "v2")
	front.stall.Store(stallPacks)
	_, err := src.Fetch(testContext(t))
	if err == nil || strings.Contains(err.Error(), "rewritten") {
		t.Errorf("err = %v; want a timeout that does not claim the history was rewritten", err)
	}
}
