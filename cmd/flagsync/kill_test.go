//go:build unix

package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
)

// Kill test parameters: a 200-flag repository, at least killMinTrials SIGKILLs, and no new
// trial once killBudget has passed after the minimum.
const (
	killFlags     = 200
	killTrials    = 24
	killMinTrials = 20
	killBudget    = 60 * time.Second
)

// TestSyncSurvivesSIGKILL runs the real binary on a 200-flag repository and kills it with
// SIGKILL at random moments, half the time while it creates every flag, half the time
// while it patches two environments of every flag. After each kill a sync must run to
// completion and converge, no flag may have been created twice, and a further sync must
// send no write. The seed is fixed (override with FLAGSYNC_KILL_SEED) so a failure can be
// replayed.
func TestSyncSurvivesSIGKILL(t *testing.T) {
	bin := buildFlagsync(t)
	seed := uint64(20251121)
	if s := os.Getenv("FLAGSYNC_KILL_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FLAGSYNC_KILL_SEED: %v", err)
		}
		seed = n
	}
	rng := rand.New(rand.NewPCG(seed, 0))

	v1 := genFlags(killFlags)
	v2 := slices.Clone(v1) // every flag: production exposition and staging switch changed
	for i := range v2 {
		v2[i].exposition++
		v2[i].stagingOn = !v2[i].stagingOn
	}
	dir := t.TempDir()

	// trial prepares a fresh sandbox for one mode and returns it with the flags the
	// killed sync is heading for.
	trial := func(edit bool) (*syncHarness, []genFlag) {
		h := newSyncHarness(t)
		writeGenRepo(t, dir, v1)
		if !edit {
			return h, v1
		}
		h.mustRun(exitOK, "sync", "--repo", dir, "--max-changes", "0")
		writeGenRepo(t, dir, v2)
		return h, v2
	}
	// How long an uninterrupted sync takes, per mode, so that kills land across the whole
	// run. Measured, not asserted.
	var full [2]time.Duration
	for mode := range full {
		h, _ := trial(mode == 1)
		start := time.Now()
		if code, out := runBinary(t, bin, h, dir, 0); code != exitOK {
			t.Fatalf("uninterrupted sync: exit %d\n%s", code, out)
		}
		full[mode] = time.Since(start)
	}

	began := time.Now()
	var killed, finished int
	var writesAtKill [2][]int // per mode: writes that landed before the kill
	for i := 0; i < killTrials; i++ {
		if i >= killMinTrials && time.Since(began) > killBudget {
			break
		}
		edit := i%2 == 1
		h, want := trial(edit)
		mode := 0
		if edit {
			mode = 1
		}
		delay := time.Duration(rng.Int64N(int64(full[mode]) + 1))
		h.sb.ResetCalls()
		code, out := runBinary(t, bin, h, dir, delay)
		switch code {
		case -1:
			killed++
			writesAtKill[mode] = append(writesAtKill[mode], h.sb.Writes())
		case exitOK:
			finished++
		default:
			t.Fatalf("trial %d: the sync exited %d before the kill\n%s", i, code, out)
		}

		r := h.mustRun(exitOK, "sync", "--repo", dir, "--max-changes", "0")
		if !strings.Contains(r.stdout, "; converged;") && !strings.Contains(r.stdout, "already in sync") {
			t.Fatalf("trial %d (kill after %s): the sync after the kill did not converge:\n%s", i, delay, lastLines(r.stdout, 20))
		}
		for key, n := range createsPerKey(t, h.sb.Calls()) {
			if n > 1 {
				t.Errorf("trial %d: %s created %d times", i, key, n)
			}
		}
		if r := h.mustRun(exitOK, "sync", "--repo", dir, "--max-changes", "0"); r.writes != 0 {
			t.Errorf("trial %d: a further sync sent %d writes, want 0", i, r.writes)
		}
		h.assertLive(want)
		if t.Failed() {
			t.Fatalf("trial %d failed (seed %d, kill after %s)", i, seed, delay)
		}
	}
	spread := func(ws []int) string {
		if len(ws) == 0 {
			return "none"
		}
		return fmt.Sprintf("%d..%d", slices.Min(ws), slices.Max(ws))
	}
	t.Logf("kill test (seed %d): %d trials in %s; %d killed mid-sync (writes landed before the kill: %s of %d creates, %s of %d patches), %d finished first; all converged, 0 duplicate creates, every further sync sent 0 writes",
		seed, killed+finished, time.Since(began).Round(time.Millisecond), killed,
		spread(writesAtKill[0]), killFlags, spread(writesAtKill[1]), 2*killFlags, finished)
	if killed < killMinTrials/2 {
		t.Errorf("only %d of %d trials were killed mid-sync: the kill points do not cover the run", killed, killed+finished)
	}
}

// buildFlagsync builds the command into a temporary directory.
func buildFlagsync(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "flagsync")
	cmd := exec.Command(gobin, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runBinary runs `flagsync sync` against h's sandbox and, when kill is positive, sends
// SIGKILL after kill. It returns the exit code (-1 when killed) and the output.
func runBinary(t *testing.T, bin string, h *syncHarness, dir string, kill time.Duration) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, "sync", "--repo", dir, "--max-changes", "0", "--retry-base", "2ms",
		"--rate-10s", "100000", "--rate-hour", "1000000", "--log-level", "warn")
	cmd.Env = []string{
		kclient.EnvClientID + "=" + h.env[kclient.EnvClientID],
		kclient.EnvClientSecret + "=" + h.env[kclient.EnvClientSecret],
		kclient.EnvAPIURL + "=" + h.url,
	}
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if kill > 0 {
		timer := time.AfterFunc(kill, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		defer timer.Stop()
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return -1, out.String()
		}
		return exit.ExitCode(), out.String()
	}
	t.Fatalf("run flagsync: %v", err)
	return 0, ""
}
