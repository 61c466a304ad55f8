package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	"github.com/flagsync/flagsync/internal/logtest"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// Kill trials: cmd/flagsync's TestSyncSurvivesSIGKILL kills the real binary 20 to 24
// times; these add killInProcess in-process kills and killBinary more SIGKILLs, so the
// project runs at least 20+32+4 = 56.
const (
	killInProcess = 32
	killBinary    = 4
	killFlags     = 10
)

// errKilled is what a killed process's requests end with.
var errKilled = errors.New("process killed")

// killer is the transport of a process that dies at its at-th write: when that write
// is due it cancels the process's context (the whole sync: nothing more starts, the
// requests on the wire are abandoned) and sends nothing after. With afterSend the
// fatal write reaches the API first and only its answer is lost.
type killer struct {
	next      http.RoundTripper
	at        int64
	afterSend bool
	kill      context.CancelFunc

	writes atomic.Int64
	dead   atomic.Bool
}

func (k *killer) RoundTrip(r *http.Request) (*http.Response, error) {
	if k.dead.Load() {
		return nil, errKilled
	}
	if isWriteRequest(r) && k.writes.Add(1) == k.at {
		if k.afterSend {
			if resp, err := k.next.RoundTrip(r); err == nil {
				resp.Body.Close()
			}
		}
		k.dead.Store(true)
		k.kill()
		return nil, errKilled
	}
	return k.next.RoundTrip(r)
}

func killSeed(t *testing.T) uint64 {
	seed := uint64(20260117)
	if s := os.Getenv("FLAGSYNC_FAULTS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FLAGSYNC_FAULTS_SEED: %v", err)
		}
		seed = n
	}
	return seed
}

// killTrial prepares a sandbox for one trial: a fresh one for the creates, or one
// already synced to v1 for the patches. It returns the repository the killed sync heads
// for and how many writes that sync sends.
func killTrial(t *testing.T, edit bool) (*world, map[string]string, int) {
	w := newWorld(t, ksandbox.Options{})
	v1 := genFlags(killFlags)
	if !edit {
		return w, repoFiles(v1), killFlags
	}
	w.mustApply(w.proc(procOptions{}), repoFiles(v1), "v1")
	return w, repoFiles(edited(v1)), 2 * killFlags
}

// TestKillInProcess kills a sync at a random write, half the time while it creates
// every flag, half the time while it patches two environments of every flag; the fatal
// write is abandoned before it leaves or after it reached the API. After each kill a
// new process must converge, no flag may have been created twice, and a further sync
// must send no write. The seed is fixed (FLAGSYNC_FAULTS_SEED overrides it).
func TestKillInProcess(t *testing.T) {
	seed := killSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	var landed [2][]int
	var converging, killedCalls int
	for i := range killInProcess {
		edit := i%2 == 1
		w, want, total := killTrial(t, edit)
		k := &killer{at: 1 + rng.Int64N(int64(total)), afterSend: rng.IntN(2) == 0}
		ctx, cancel := context.WithCancel(context.Background())
		k.kill = cancel
		p := w.proc(procOptions{transport: func(rt http.RoundTripper) http.RoundTripper { k.next = rt; return k }})
		writes0, calls0 := w.sb.Writes(), len(w.sb.Calls())
		rep, _ := w.run(ctx, p, want, "v2", func(in *reconcile.Input) { in.Hard = ctx })
		cancel()
		if !k.dead.Load() {
			t.Fatalf("trial %d: the sync ended (%s) before its write %d", i, rep.Summary, k.at)
		}
		w.front.waitIdle(t, p)
		mode := 0
		if edit {
			mode = 1
		}
		landed[mode] = append(landed[mode], w.sb.Writes()-writes0)
		killedCalls += len(w.sb.Calls()) - calls0

		converging += w.settle(want, "v2")
		if t.Failed() {
			t.Fatalf("trial %d failed (seed %d, killed at write %d of %d, after send %t)", i, seed, k.at, total, k.afterSend)
		}
	}
	summary(t, "fault kill-in-process: %d trials (seed %d), killed after %s of %d creates and %s of %d patches had landed (the killed runs made %d calls); every next run converged (%d writes in all), 0 duplicates, every further run sent 0 writes",
		killInProcess, seed, spread(landed[0]), killFlags, spread(landed[1]), 2*killFlags, killedCalls, converging)
}

func spread(ns []int) string {
	if len(ns) == 0 {
		return "none"
	}
	return fmt.Sprintf("%d..%d", slices.Min(ns), slices.Max(ns))
}

// TestKillBinary runs the real binary and SIGKILLs it from the API's side the moment a
// random write has been handled, before its answer leaves: the process dies with that
// write (and any other on the wire) landed and unanswered.
func TestKillBinary(t *testing.T) {
	bin := flagsyncBinary(t)
	seed := killSeed(t)
	rng := rand.New(rand.NewPCG(seed, 2))
	var kills []string
	for i := range killBinary {
		edit := i%2 == 1
		w, want, total := killTrial(t, edit)
		dir := filepath.Join(t.TempDir(), "repo")
		writeDir(t, dir, want)
		at := 1 + rng.Int64N(int64(total))

		cmd := exec.Command(bin, "sync", "--repo", dir, "--path", "flags", "--max-changes", "0", "--retry-base", "1ms",
			"--rate-10s", "100000", "--rate-hour", "1000000", "--log-level", "warn")
		cmd.Env = []string{kclient.EnvClientID + "=" + clientID, kclient.EnvClientSecret + "=" + canaryClientSecret, kclient.EnvAPIURL + "=" + w.url, "HOME=" + t.TempDir()}
		cmd.Dir = t.TempDir()
		out := &logtest.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		var seen atomic.Int64
		var running atomic.Pointer[os.Process] // set after Start, read by the hook
		w.front.setAfter(func(r *http.Request) {
			if isWriteRequest(r) && seen.Add(1) == at {
				p := running.Load()
				for ; p == nil; p = running.Load() {
					time.Sleep(time.Millisecond) // the child was faster than Start's return
				}
				_ = p.Signal(syscall.SIGKILL)
			}
		})
		writes0 := w.sb.Writes()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		running.Store(cmd.Process)
		err := cmd.Wait()
		w.front.setAfter(nil)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !exit.Sys().(syscall.WaitStatus).Signaled() {
			t.Fatalf("trial %d: the sync was not killed at write %d of %d: %v\n%s", i, at, total, err, out)
		}
		w.front.waitIdle(t)
		kills = append(kills, fmt.Sprintf("%d/%d", w.sb.Writes()-writes0, total))
		w.assertNoSecrets("the killed binary's output", out.String())

		w.settle(want, "v2")
		if t.Failed() {
			t.Fatalf("trial %d failed (seed %d, killed at write %d of %d)\n%s", i, seed, at, total, out)
		}
	}
	summary(t, "fault kill-sigkill-binary: %d trials (seed %d), writes landed at the kill %v; every next run converged, 0 duplicates, every further run sent 0 writes",
		killBinary, seed, kills)
}
