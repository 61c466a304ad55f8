package unleashtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func TestStartSharesOneServer(t *testing.T) {
	a := Start(t)
	b := Start(t)
	if a != b {
		t.Fatalf("Start returned two servers (%s, %s); want the one shared server", a.BaseURL, b.BaseURL)
	}
	a.Call(t, http.MethodGet, "/api/admin/projects", nil).Want(t, http.StatusOK)
	if !strings.HasPrefix(a.BaseURL, "http://127.0.0.1:") || !strings.HasPrefix(a.AdminToken, "*:*.") {
		t.Errorf("BaseURL %q, token prefix %q", a.BaseURL, a.AdminToken[:4])
	}
}

func TestDedicatedServerIsIsolatedAndStopCleansUp(t *testing.T) {
	shared := Start(t)
	name := shared.UniqueName("only-on-shared")
	shared.Call(t, http.MethodPost, project+"/features", map[string]any{"name": name}).Want(t, http.StatusCreated)

	s := StartDedicated(t)
	if s.Database == shared.Database || s.BaseURL == shared.BaseURL {
		t.Fatalf("dedicated server shares database %s or address %s", s.Database, s.BaseURL)
	}
	var list struct{ Features []struct{ Name string } }
	s.Call(t, http.MethodGet, project+"/features", nil).Want(t, http.StatusOK).Decode(t, &list)
	if len(list.Features) != 0 {
		t.Errorf("dedicated server's project has features: %+v", list.Features)
	}

	pid := s.proc.cmd.Process.Pid
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if processAlive(pid) {
		t.Errorf("node %d still runs after Stop", pid)
	}
	if _, err := s.Do(t.Context(), s.AdminToken, http.MethodGet, "/health", nil); err == nil {
		t.Errorf("the stopped server still answers")
	}
	out, err := s.cluster.psql(t.Context(), "postgres", "SELECT count(*) FROM pg_database WHERE datname = "+
		"'"+s.Database+"'")
	if err != nil || strings.TrimSpace(out) != "0" {
		t.Errorf("database %s after Stop: %q %v", s.Database, out, err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	shared.Call(t, http.MethodGet, featurePath(name), nil).Want(t, http.StatusOK)
}

// fakeTB records how a test would have ended.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Skipf(format string, a ...any)  { f.skipped = fmt.Sprintf(format, a...) }
func (f *fakeTB) Fatalf(format string, a ...any) { f.failed = fmt.Sprintf(format, a...) }

func TestSkipOrFail(t *testing.T) {
	missing := unavailable("PostgreSQL", errors.New("no initdb"), "apt-get install postgresql")
	for _, tc := range []struct {
		name     string
		err      error
		required bool
		skip     bool
	}{
		{"missing piece skips", missing, false, true},
		{"missing piece fails when required", missing, true, false},
		{"wrapped missing piece skips", fmt.Errorf("setup: %w", missing), false, true},
		{"other errors fail", errors.New("server exited"), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f fakeTB
			skipOrFail(&f, tc.err, tc.required)
			if tc.skip {
				if f.skipped == "" || f.failed != "" {
					t.Fatalf("skipped %q, failed %q; want a skip", f.skipped, f.failed)
				}
				for _, want := range []string{"SKIPPED", "no initdb", "apt-get install postgresql", RequireEnv + "=1"} {
					if !strings.Contains(f.skipped, want) {
						t.Errorf("skip message %q lacks %q", f.skipped, want)
					}
				}
				return
			}
			if f.failed == "" || f.skipped != "" {
				t.Fatalf("skipped %q, failed %q; want a failure", f.skipped, f.failed)
			}
			if tc.required && !strings.Contains(f.failed, RequireEnv+"=1") {
				t.Errorf("failure %q does not say why it is not a skip", f.failed)
			}
		})
	}
}

func TestInstallState(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("package-lock.json", `{"lockfileVersion":3,"packages":{"node_modules/unleash-server":{"version":"8.2.0"}}}`)
	check := func(wantInstalled bool) {
		t.Helper()
		pinned, installed, err := installState(dir)
		if err != nil || pinned != "8.2.0" || installed != wantInstalled {
			t.Fatalf("installState = %q, %v, %v; want 8.2.0, %v", pinned, installed, err, wantInstalled)
		}
	}
	check(false)
	write("node_modules/unleash-server/package.json", `{"version":"8.1.0"}`)
	write("node_modules/.package-lock.json", `{}`)
	check(false) // another version
	write("node_modules/unleash-server/package.json", `{"version":"8.2.0"}`)
	check(true)
	if err := os.Remove(filepath.Join(dir, "node_modules/.package-lock.json")); err != nil {
		t.Fatal(err)
	}
	check(false) // an interrupted install
}

func TestServerEnvironIsMinimal(t *testing.T) {
	got := serverEnviron([]string{"PATH=/bin", "HOME=/root", "DATABASE_URL=postgres://elsewhere", "AUTH_TYPE=none",
		"UNLEASH_URL=x", "LOG_LEVEL=debug", "FLAGSYNC_REQUIRE_UNLEASH=1"})
	if strings.Join(got, " ") != "PATH=/bin HOME=/root" {
		t.Errorf("serverEnviron = %v", got)
	}
}

func TestSweepOrphans(t *testing.T) {
	base := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skipf("no true command: %v", err)
	}
	mk := func(name string, pid int) string {
		dir := filepath.Join(base, rootPrefix+name)
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if pid > 0 {
			if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	orphan := mk("orphan", dead.Process.Pid)
	mine := mk("mine", os.Getpid())
	settingUp := mk("setting-up", 0)
	var logged []string
	sweepOrphans(base, func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) })
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan %s not removed (%v)", orphan, err)
	}
	for _, dir := range []string{mine, settingUp} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s removed: %v", dir, err)
		}
	}
	if len(logged) != 1 || !strings.Contains(logged[0], orphan) {
		t.Errorf("logged %q", logged)
	}
}

const helperEnv = "FLAGSYNC_UNLEASHTEST_HELPER"

// TestHelperProcess is not a test: TestChildrenDieWithTheTestProcess runs the test binary
// again with helperEnv set, and this starts a server, says what it started, and waits to be
// killed.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper for TestChildrenDieWithTheTestProcess")
	}
	s := Start(t)
	fmt.Printf("HELPER node=%d postgres=%d root=%s\n", s.proc.cmd.Process.Pid, s.cluster.proc.cmd.Process.Pid, s.cluster.root)
	time.Sleep(2 * time.Minute)
}

func TestChildrenDieWithTheTestProcess(t *testing.T) {
	setup(t) // skips (or fails) here when the pieces are missing
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var nodePID, pgPID int
	var root string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "HELPER node=%d postgres=%d root=%s", &nodePID, &pgPID, &root); err == nil {
			break
		}
	}
	if nodePID == 0 {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the helper did not report its server (scan: %v)", sc.Err())
	}
	// SIGKILL: the helper gets no chance to clean up.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// They die at once; 20 s is only the bound for a loaded machine.
	deadline := time.After(20 * time.Second)
	for _, pid := range []int{nodePID, pgPID} {
		for processAlive(pid) {
			select {
			case <-deadline:
				t.Fatalf("process %d outlived the killed test process", pid)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// Its cluster directory stays behind until the next run sweeps it.
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("the killed helper's cluster directory: %v", err)
	}
	sweepOrphans(filepath.Dir(root), t.Logf)
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s not swept: %v", root, err)
	}
}
