package faults

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// origEnv is the environment the test binary started with, before TestMain isolated git
// from the machine: `go build` needs the real HOME (module and build caches).
var origEnv []string

// TestMain runs the suite with git and go-git kept away from the machine's
// configuration, then prints one summary line per scenario. A test binary started with
// fsizeEnv set is not a test run but a launcher: see execLimited.
func TestMain(m *testing.M) {
	if os.Getenv(fsizeEnv) != "" {
		execLimited() // does not return
	}
	origEnv = os.Environ()
	home, err := os.MkdirTemp("", "flagsync-faults-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for k, v := range map[string]string{
		"HOME": home, "XDG_CONFIG_HOME": home, "XDG_CACHE_HOME": home,
		"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.DevNull, "GIT_TERMINAL_PROMPT": "0",
	} {
		os.Setenv(k, v)
	}
	os.Unsetenv("SSH_AUTH_SOCK")
	code := m.Run()
	printSummary()
	os.RemoveAll(home)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	summaryMu sync.Mutex
	summaries []string
)

// summary records the one line a scenario ends with: in the test log and, after the
// run, in the table TestMain prints on stdout so that CI output shows every scenario.
func summary(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	if t.Failed() {
		line += " [FAILED]"
	}
	t.Log(line)
	summaryMu.Lock()
	summaries = append(summaries, line)
	summaryMu.Unlock()
}

// summaryEnv names a file the summary table is also written to, for CI jobs that run
// `go test` without -v (which shows a passing package's output only with -v).
const summaryEnv = "FLAGSYNC_FAULTS_SUMMARY"

func printSummary() {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	if len(summaries) == 0 {
		return
	}
	lines := slices.Clone(summaries)
	slices.Sort(lines)
	var b strings.Builder
	fmt.Fprintf(&b, "\nfault-injection and security summary (%d scenarios):\n", len(lines))
	for _, l := range lines {
		b.WriteString("  " + l + "\n")
	}
	fmt.Print(b.String())
	if path := os.Getenv(summaryEnv); path != "" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "write %s: %v\n", summaryEnv, err)
		}
	}
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// flagsyncBinary builds cmd/flagsync once per test run and returns its path.
func flagsyncBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			return // skipped below
		}
		if binDir, binErr = os.MkdirTemp("", "flagsync-faults-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "flagsync")
		cmd := exec.Command(gobin, "build", "-o", binPath, "github.com/flagsync/flagsync/cmd/flagsync")
		cmd.Env = origEnv
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/flagsync: %v\n%s", err, strings.TrimSpace(string(out)))
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	if binPath == "" {
		t.Skip("the go command is not on PATH: the built binary is needed")
	}
	return binPath
}

// binResult is what one run of the flagsync binary printed and returned.
type binResult struct {
	code           int // -1 when killed by a signal
	stdout, stderr string
}

// runBinary runs the flagsync binary with args in a temporary working folder, with env
// (plus an empty HOME) as its whole environment; when limit is positive, no file it
// writes may grow past limit bytes.
func runBinary(t *testing.T, limit int64, env []string, args ...string) binResult {
	t.Helper()
	bin := flagsyncBinary(t)
	var cmd *exec.Cmd
	if limit > 0 {
		var err error
		if cmd, err = limitedCommand(limit, bin, args...); err != nil {
			t.Skipf("no file size limit here: %v", err)
		}
	} else {
		cmd = exec.Command(bin, args...)
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Env = append(cmd.Env, "HOME="+t.TempDir())
	cmd.Dir = t.TempDir()
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := binResult{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		t.Fatalf("run flagsync %s: %v", strings.Join(args, " "), err)
	}
	return res
}
