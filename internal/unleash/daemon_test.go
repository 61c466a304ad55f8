//go:build unix

package unleash_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/daemon"
	"github.com/flagsync/flagsync/internal/gittest"
	"github.com/flagsync/flagsync/internal/unleash/unleashtest"
)

// daemonWait bounds every wait for the daemon; what a test checks is the order of
// events, never how long they took.
const daemonWait = 2 * time.Minute

// daemonProc is flagsync run, started by a test, and what it logged.
type daemonProc struct {
	cmd  *exec.Cmd
	base string // http://127.0.0.1:port
	mu   sync.Mutex
	logs bytes.Buffer
	done chan error
}

func (d *daemonProc) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

// startDaemon runs flagsync run with args and extra environment, and returns once it
// logged the address it listens on.
func startDaemon(t *testing.T, b *binary, extraEnv []string, args ...string) *daemonProc {
	t.Helper()
	d := &daemonProc{done: make(chan error, 1)}
	d.cmd = exec.Command(b.path, append([]string{"run"}, args...)...)
	d.cmd.Env = append(append([]string(nil), b.env...), extraEnv...)
	d.cmd.Dir = t.TempDir()
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stdout = io.Discard
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.logs.WriteString(line + "\n")
			d.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "daemon listening" {
				addr <- rec.Addr
			}
		}
		d.done <- d.cmd.Wait()
	}()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
			<-d.done
		}
		if strings.Contains(d.log(), b.token) {
			t.Error("the daemon logged the admin token")
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log())
		}
	})
	select {
	case a := <-addr:
		d.base = "http://" + a
	case err := <-d.done:
		t.Fatalf("flagsync run exited: %v\n%s", err, d.log())
	case <-time.After(daemonWait):
		t.Fatalf("flagsync run did not listen\n%s", d.log())
	}
	return d
}

// status reads GET /status.
func (d *daemonProc) status(t *testing.T) daemon.Status {
	t.Helper()
	resp, err := http.Get(d.base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st daemon.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("decode /status: %v", err)
	}
	return st
}

// nextSync waits for a sync newer than after (a record id) and returns it.
func (d *daemonProc) nextSync(t *testing.T, after int64) daemon.Record {
	t.Helper()
	deadline := time.Now().Add(daemonWait)
	for {
		if st := d.status(t); len(st.Syncs) > 0 && st.Syncs[0].ID > after && st.Running == nil {
			return st.Syncs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sync after #%d; status: %+v", after, d.status(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns the exit error.
func (d *daemonProc) stop(t *testing.T) error {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		return err
	case <-time.After(daemonWait):
		t.Fatal("flagsync run did not stop on SIGTERM")
		return nil
	}
}

// TestDaemonSyncsUnleashFlags runs the daemon, unchanged, on Unleash flags: flagsync run
// follows a Git repository of examples/unleash (file://) with a schedule of an hour (no
// tick during the test) and webhooks on. The startup sync creates the flags; a push and
// its webhook is a partial sync of the edited flag alone (one PUT; only that flag is
// read); SIGHUP is a full sync that writes nothing. /status reports each; SIGTERM stops
// it cleanly. Calls are counted by the proxy in front of the real server.
func TestDaemonSyncsUnleashFlags(t *testing.T) {
	s := unleashtest.StartDedicated(t)
	w := newWorldOn(t, s)
	b := newBinary(t, w.proxy, s.AdminToken)
	repo := gittest.NewRepo(t)
	files := map[string]string{}
	for name, f := range w.fsys {
		files[name] = string(f.Data)
	}
	first := repo.Commit(t, files, "Unleash flags")

	const secret = "unleash-daemon-test-secret"
	d := startDaemon(t, b, []string{"FLAGSYNC_WEBHOOK_SECRET=" + secret},
		"--repo", "file://"+repo.Bare, "--ref", "main", "--path", "flags", "--depth", "0", "--cache-dir", t.TempDir(),
		"--schedule", "@every 1h", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-format", "json")

	rec := d.nextSync(t, 0)
	calls := w.calls.reset()
	if rec.Trigger != "startup" || rec.Result != daemon.ResultSuccess || rec.Mode != daemon.ModeFull || rec.Summary.Applied != 26 || len(writes(calls)) != 26 {
		t.Fatalf("startup sync: %+v; %d writes", rec, len(writes(calls)))
	}
	t.Logf("daemon startup sync of examples/unleash: %d calls (%d writes)", len(calls), len(writes(calls)))

	// A push of one flag's edit, and its webhook: a partial sync of that flag.
	edited := strings.Replace(files["flags/checkout/new-checkout.yaml"], "rollout: 25,", "rollout: 40,", 1)
	if edited == files["flags/checkout/new-checkout.yaml"] {
		t.Fatal("the example changed: no rollout: 25 in new-checkout")
	}
	after := repo.Commit(t, map[string]string{"flags/checkout/new-checkout.yaml": edited}, "more of the new checkout")
	body, _ := json.Marshal(map[string]string{"ref": "refs/heads/main", "before": first, "after": after, "repository": "acme/flags"})
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, d.base+"/webhook/generic", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Flagsync-Delivery", "delivery-1")
	req.Header.Set("X-Flagsync-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: %s", resp.Status)
	}
	prev := rec.ID
	rec = d.nextSync(t, prev)
	paths := w.calls.resetPaths()
	var wrote, featureReads []string
	for _, p := range paths {
		switch {
		case !strings.HasPrefix(p, "GET "):
			wrote = append(wrote, p)
		case strings.HasPrefix(p, "GET /api/admin/projects/default/features/"):
			featureReads = append(featureReads, p)
		}
	}
	if rec.Trigger != "webhook" || rec.Mode != daemon.ModePartial || !slices.Equal(rec.Flags, []string{"default/new-checkout"}) ||
		rec.Result != daemon.ResultSuccess || rec.Summary.Applied != 1 || rec.Revision != after {
		t.Errorf("webhook sync: %+v", rec)
	}
	if len(wrote) != 1 || !strings.HasPrefix(wrote[0], "PUT /api/admin/projects/default/features/new-checkout/environments/production/strategies/") {
		t.Errorf("the partial sync wrote %v; want one PUT of new-checkout's strategy", wrote)
	}
	for _, p := range featureReads {
		if p != "GET /api/admin/projects/default/features/new-checkout" {
			t.Errorf("the partial sync read %s", p)
		}
	}
	t.Logf("daemon partial sync of one edited flag: %d calls: %v", len(paths), paths)

	// SIGHUP: a full sync, nothing to write.
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	rec = d.nextSync(t, rec.ID)
	calls = w.calls.reset()
	if rec.Trigger != "signal" || rec.Mode != daemon.ModeFull || rec.Result != daemon.ResultSuccess || rec.Summary.Applied != 0 || len(writes(calls)) != 0 {
		t.Errorf("signal sync: %+v; writes %v", rec, writes(calls))
	}
	t.Logf("daemon full sync with nothing to change: %d calls, 0 writes", len(calls))
	if st := d.status(t); !st.Converged || st.Revision != after {
		t.Errorf("status: converged %t, revision %s; want %s", st.Converged, st.Revision, after)
	}
	if err := d.stop(t); err != nil {
		t.Errorf("flagsync run on SIGTERM: %v", err)
	}
}
