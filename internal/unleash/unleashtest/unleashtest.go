package unleashtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// RequireEnv names the environment variable that turns a missing prerequisite from a skip into
// a failure. CI sets it to 1 after installing everything, so a suite against the real server
// can never pass by skipping.
const RequireEnv = "FLAGSYNC_REQUIRE_UNLEASH"

// UnavailableError says that a prerequisite of the real server (Node.js, npm, the npm
// package, PostgreSQL) cannot be had on this machine. Start skips the test on it, unless
// RequireEnv is set.
type UnavailableError struct {
	What string // the missing piece, e.g. "PostgreSQL"
	Err  error  // what was tried and how it failed
	Hint string // how to provide it; may be empty
}

// Error says what is missing, why, and how to provide it.
func (e *UnavailableError) Error() string {
	msg := e.What + " unavailable: " + e.Err.Error()
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Unwrap returns the underlying failure.
func (e *UnavailableError) Unwrap() error { return e.Err }

func unavailable(what string, err error, hint string) error {
	return &UnavailableError{What: what, Err: err, Hint: hint}
}

// env is what this test process set up once: the installed package, the PostgreSQL cluster,
// the shared server.
type env struct {
	node, serverDir string
	version         string // of unleash-server, from package-lock.json
	cluster         *cluster
	logDir          string
	shared          *Server
	nextDB          int
	setupLog        []string // what setup did and how long it took, logged by the first Start
}

var state struct {
	mu       sync.Mutex
	done     bool  // setup was tried
	err      error // why setup failed
	env      *env
	stopping bool
}

// Start returns the test binary's shared Unleash server, starting it (and the PostgreSQL
// cluster under it) on the first call. Tests that share it must use names of their own
// (UniqueName); the default project is shared. The package's TestMain should be
// `os.Exit(unleashtest.Run(m))`, which stops the server and the cluster after the last test.
//
// When a prerequisite is missing, Start skips the test with a message that says what to
// install, or fails it when RequireEnv is set. A server that has everything and still does not
// start fails the test. When the test fails, the tail of the server's log is printed.
func Start(t testing.TB) *Server {
	t.Helper()
	e := setup(t)
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.stopping {
		t.Fatal("unleashtest: Start called after Run's shutdown began")
	}
	if e.shared == nil {
		s, err := e.newServer(context.Background(), e.logDir)
		if err != nil {
			state.err = fmt.Errorf("start the shared unleash-server: %w", err)
			t.Fatal(state.err)
		}
		e.shared = s
		t.Logf("unleashtest: unleash-server %s ready at %s in %s (migrations included); log %s",
			e.version, s.BaseURL, s.StartupTime.Round(time.Millisecond), s.LogPath)
	}
	s := e.shared
	t.Cleanup(func() { printTailOnFailure(t, s) })
	return s
}

// StartDedicated starts a server of the test's own, on a new database in the shared cluster,
// for tests that need an empty default project (e.g. "every flag in the project is managed").
// It costs a server start (about 2.5 s here); the test's cleanup stops it and drops its
// database. Prerequisites are handled as in Start.
func StartDedicated(t testing.TB) *Server {
	t.Helper()
	e := setup(t)
	state.mu.Lock()
	s, err := e.newServer(context.Background(), t.TempDir())
	state.mu.Unlock()
	if err != nil {
		t.Fatalf("start a dedicated unleash-server: %v", err)
	}
	t.Logf("unleashtest: dedicated unleash-server ready at %s in %s", s.BaseURL, s.StartupTime.Round(time.Millisecond))
	t.Cleanup(func() {
		printTailOnFailure(t, s)
		if err := s.Stop(); err != nil {
			t.Errorf("unleashtest: %v", err)
		}
	})
	return s
}

// newServer creates the next database and starts a server on it; state.mu is held.
func (e *env) newServer(ctx context.Context, logDir string) (*Server, error) {
	e.nextDB++
	name := "unleash_" + strconv.Itoa(e.nextDB)
	return startServer(ctx, e.node, e.serverDir, e.cluster, name, filepath.Join(logDir, name+".log"))
}

func printTailOnFailure(t testing.TB, s *Server) {
	if t.Failed() {
		t.Logf("unleashtest: last lines of %s:\n%s", s.LogPath, s.LogTail(40))
		if s.proc.exited() {
			// A server that went away says how: an exit code, or the signal that ended it
			// (SIGKILL leaves nothing in its log).
			t.Logf("unleashtest: the unleash-server process (pid %d) has exited: %v", s.proc.cmd.Process.Pid, s.proc.cmd.ProcessState)
		}
	}
}

// setup installs and starts what the servers need, once per process, and skips or fails t
// when that is impossible.
func setup(t testing.TB) *env {
	t.Helper()
	state.mu.Lock()
	if !state.done {
		state.done = true
		state.env, state.err = prepare(context.Background())
		if state.env != nil {
			for _, line := range state.env.setupLog {
				t.Log(line)
			}
		}
	}
	e, err := state.env, state.err
	state.mu.Unlock()
	if err != nil {
		skipOrFail(t, err, os.Getenv(RequireEnv) == "1")
	}
	return e
}

// skipOrFail ends t for a setup error: a skip when a prerequisite is unavailable and the
// server is not required, a failure otherwise.
func skipOrFail(t testing.TB, err error, required bool) {
	t.Helper()
	var u *UnavailableError
	switch {
	case !errors.As(err, &u):
		t.Fatalf("unleashtest: %v", err)
	case required:
		t.Fatalf("unleashtest: the real Unleash server is required (%s=1) but %v", RequireEnv, err)
	default:
		t.Skipf("SKIPPED: the real Unleash server cannot run here: %v. "+
			"Set %s=1 to make this a failure instead (CI does).", err, RequireEnv)
	}
}

// prepare finds Node.js, installs the pinned unleash-server when node_modules lacks it, and
// starts the PostgreSQL cluster.
func prepare(ctx context.Context) (*env, error) {
	if platformErr != nil {
		return nil, unavailable("a Unix system", platformErr, "")
	}
	dir, err := findServerDir()
	if err != nil {
		return nil, err
	}
	node, npm, err := findNode(ctx)
	if err != nil {
		return nil, err
	}
	e := &env{node: node, serverDir: dir}
	version, took, err := ensureInstalled(ctx, npm, dir)
	if err != nil {
		return nil, err
	}
	e.version = version
	if took > 0 {
		e.setupLog = append(e.setupLog, fmt.Sprintf("unleashtest: npm ci (unleash-server %s) in %s took %s",
			version, dir, took.Round(time.Millisecond)))
	}
	start := time.Now()
	var logs []string
	c, err := startCluster(ctx, func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) })
	e.setupLog = append(e.setupLog, logs...)
	if err != nil {
		return nil, err
	}
	e.cluster = c
	e.logDir = c.root
	e.setupLog = append(e.setupLog, fmt.Sprintf("unleashtest: PostgreSQL cluster (%s) ready in %s at %s",
		c.binDir, time.Since(start).Round(time.Millisecond), c.root))
	return e, nil
}

// Run runs the tests of m, then stops the shared server and the PostgreSQL cluster. Use it
// as `func TestMain(m *testing.M) { os.Exit(unleashtest.Run(m)) }` in every package that
// calls Start. Without it the server and the cluster still die with the test binary (they
// are tied to it), but the cluster's directory stays until a later run removes it.
func Run(m *testing.M) int {
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "unleashtest: shutdown: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// shutdown stops the shared server and the cluster, if they were started.
func shutdown() error {
	state.mu.Lock()
	defer state.mu.Unlock()
	state.stopping = true
	e := state.env
	if e == nil {
		return nil
	}
	var errs []error
	if e.shared != nil {
		errs = append(errs, e.shared.Stop())
	}
	if e.cluster != nil {
		errs = append(errs, e.cluster.stop())
	}
	return errors.Join(errs...)
}
