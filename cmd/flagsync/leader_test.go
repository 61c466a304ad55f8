//go:build unix

package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/gittest"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	"github.com/flagsync/flagsync/internal/logtest"
)

// The lock-file timings of the two-process test: a takeover after a crash takes at most
// 2 × retry + renew deadline, which the lease duration bounds.
const (
	pairLease = 6 * time.Second
	pairRenew = 4 * time.Second
	pairRetry = time.Second
)

// proc is a flagsync process the test started.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *logtest.Buffer
	done chan struct{}
	base string // the daemon's main address
	adm  string // its admin address
}

// startProc runs the binary with args and env, and stops it (SIGTERM, then SIGKILL) at
// the end of the test.
func startProc(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), out: &logtest.Buffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Dir = t.TempDir()
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output (last 30 lines):\n%s", name, lastLines(p.out.String(), 30))
		}
	})
	return p
}

// lines returns the process's JSON log lines with msg.
func (p *proc) lines(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.out.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func (p *proc) status(t *testing.T) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + p.adm + "/status")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var s map[string]any
	if json.NewDecoder(resp.Body).Decode(&s) != nil {
		return nil
	}
	return s
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTwoDaemonsOneWriter runs two `flagsync run` processes on one repository and one
// `flagsync sandbox` process, electing their leader with a lock file. A burst of pushes,
// delivered to both, is applied by one of them only: the sandbox's call log shows every
// write coming from one replica (its User-Agent names it). The leader is then killed
// with SIGKILL, and the other takes over within the lease duration and applies the next
// push. Neither causes a 429.
func TestTwoDaemonsOneWriter(t *testing.T) {
	gitFreeEnv(t)
	bin := buildFlagsync(t)
	repo := gittest.NewRepo(t)
	repo.Commit(t, map[string]string{
		"flags/flagsync.yaml": "siteCode: " + runSite + "\nenvironments: [development, production]\n",
		"flags/alpha.yaml":    runFlagYAML("alpha", false),
		"flags/beta.yaml":     runFlagYAML("beta", false),
	}, "flags")
	gitURL := gittest.StartHTTP(t, repo, "flagsync", runGitPassword)

	home := t.TempDir()
	base := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull}
	sbAddr := freePort(t)
	sb := startProc(t, "sandbox", bin, base, "sandbox", "--listen", sbAddr, "--environments", "development,production",
		"--log-level", "debug", "--log-format", "json")
	eventually(t, 20*time.Second, "the sandbox to listen", func() bool { return len(sb.lines("sandbox listening")) > 0 })

	lock := filepath.Join(t.TempDir(), "flagsync.lock")
	start := func(name string) *proc {
		addr, adm := freePort(t), freePort(t)
		env := append(append([]string{}, base...),
			kclient.EnvClientID+"="+ksandbox.DefaultClientID, kclient.EnvClientSecret+"="+ksandbox.DefaultClientSecret,
			kclient.EnvAPIURL+"=http://"+sbAddr,
			"FLAGSYNC_REPO="+gitURL, "FLAGSYNC_REF=main", "FLAGSYNC_PATH=flags",
			"FLAGSYNC_GIT_USERNAME=flagsync", "FLAGSYNC_GIT_PASSWORD="+runGitPassword,
			"FLAGSYNC_CACHE_DIR="+t.TempDir(), "FLAGSYNC_WEBHOOK_SECRET="+runWebhookSecret,
			"FLAGSYNC_LISTEN="+addr, "FLAGSYNC_ADMIN_LISTEN="+adm, "FLAGSYNC_LEADER_LOCK="+lock,
		)
		p := startProc(t, name, bin, env, "run", "--schedule", "off", "--log-format", "json", "--log-level", "debug",
			"--leader-elect", "file", "--leader-election-lease-duration", pairLease.String(),
			"--leader-election-renew-deadline", pairRenew.String(), "--leader-election-retry-period", pairRetry.String())
		p.base, p.adm = addr, adm
		eventually(t, 30*time.Second, name+" to answer /status", func() bool { return p.status(t) != nil })
		return p
	}
	a := start("a")
	b := start("b")

	var leaderP, followerP *proc
	eventually(t, 30*time.Second, "one leader and one follower, the startup revision applied", func() bool {
		sa, sbs := a.status(t), b.status(t)
		if sa == nil || sbs == nil {
			return false
		}
		switch {
		case sa["role"] == "leader" && sbs["role"] == "follower" && sa["revision"] == repo.Head(t):
			leaderP, followerP = a, b
		case sbs["role"] == "leader" && sa["role"] == "follower" && sbs["revision"] == repo.Head(t):
			leaderP, followerP = b, a
		default:
			return false
		}
		return true
	})
	if resp, err := http.Get("http://" + followerP.base + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the follower's /readyz: %v %v, want 200", resp, err)
	}

	// A burst of pushes, each delivered to both replicas at once.
	deliver := func(p *proc, before, after, id string) int {
		body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","before":%q,"after":%q,"repository":"acme/flags"}`, before, after))
		mac := hmac.New(sha256.New, []byte(runWebhookSecret))
		mac.Write(body)
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.base+"/webhook/generic", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Flagsync-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		req.Header.Set("X-Flagsync-Delivery", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("deliver to %s: %v", p.name, err)
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	var last string
	for i := range 6 {
		before := repo.Head(t)
		last = repo.Commit(t, map[string]string{"flags/alpha.yaml": runFlagYAML("alpha", i%2 == 1)}, fmt.Sprintf("push %d", i))
		var wg sync.WaitGroup
		for _, p := range []*proc{a, b} {
			wg.Go(func() {
				if code := deliver(p, before, last, fmt.Sprintf("push-%d-%s", i, p.name)); code != http.StatusAccepted && code != http.StatusOK {
					t.Errorf("push %d to %s: %d", i, p.name, code)
				}
			})
		}
		wg.Wait()
	}
	eventually(t, 30*time.Second, "the leader to apply the last push", func() bool { return leaderP.status(t)["revision"] == last })

	writers := func(calls []map[string]any) (map[string]int, int) {
		who, n429 := map[string]int{}, 0
		for _, c := range calls {
			if c["status"] == float64(http.StatusTooManyRequests) {
				n429++
			}
			if m := c["method"]; m == "POST" && c["path"] != "/oauth/token" && c["path"] != "/feature-flags/search" || m == "PATCH" || m == "DELETE" {
				who[fmt.Sprint(c["user_agent"])]++
			}
		}
		return who, n429
	}
	before := sb.lines("sandbox call")
	who, n429 := writers(before)
	// The User-Agent names the replica: its identity without the URL it advertises.
	replicaName := func(p *proc) string {
		name, _, _ := strings.Cut(fmt.Sprint(p.status(t)["leader"].(map[string]any)["identity"]), "@")
		return name
	}
	leaderID := replicaName(leaderP)
	if len(who) != 1 || !strings.Contains(fmt.Sprint(keys(who)), "("+leaderID+")") {
		t.Fatalf("writes by client: %v; want them all from the leader %s", who, leaderID)
	}
	if n := followerP.status(t)["syncs"].([]any); len(n) != 0 {
		t.Errorf("the follower ran %d syncs", len(n))
	}

	// Kill the leader: the follower takes over within the lease duration.
	killed := time.Now()
	if err := leaderP.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-leaderP.done
	var takeover time.Duration
	eventually(t, 3*pairLease, "the follower to take over", func() bool {
		s := followerP.status(t)
		if s == nil || s["role"] != "leader" {
			return false
		}
		takeover = time.Since(killed)
		return true
	})
	writes := 0
	for _, n := range who {
		writes += n
	}
	if writes < 3 {
		t.Errorf("%d writes before the kill, want the 2 creates and the burst's patch of alpha", writes)
	}
	t.Logf("takeover %s after SIGKILL (lease duration %s, bound 2 × retry + renew deadline = %s); %d API calls and %d writes before the kill, all writes from %s; %d deliveries handed on by the follower",
		takeover.Round(time.Millisecond), pairLease, 2*pairRetry+pairRenew, len(before), writes, leaderID, len(followerP.lines("webhook delivery handed to the leader")))
	// The guarantee is 2 × retry + renew deadline, itself at most the lease duration; the
	// test polls every 50ms on a shared machine, hence one retry period of slack.
	if takeover > pairLease+pairRetry {
		t.Errorf("takeover took %s, want within the lease duration %s", takeover, pairLease)
	}

	// The new leader applies the next push; every write since the kill is its own.
	next := repo.Commit(t, map[string]string{"flags/beta.yaml": runFlagYAML("beta", true)}, "beta on")
	if code := deliver(followerP, last, next, "after-the-kill"); code != http.StatusAccepted {
		t.Errorf("push to the new leader: %d", code)
	}
	eventually(t, 30*time.Second, "the new leader to apply the push", func() bool { return followerP.status(t)["revision"] == next })
	after := sb.lines("sandbox call")[len(before):]
	whoAfter, n429After := writers(after)
	newID := replicaName(followerP)
	if len(whoAfter) != 1 || !strings.Contains(fmt.Sprint(keys(whoAfter)), "("+newID+")") {
		t.Errorf("writes after the kill by client: %v; want them all from the new leader %s", whoAfter, newID)
	}
	if n429+n429After != 0 {
		t.Errorf("the sandbox answered %d calls with 429", n429+n429After)
	}
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
