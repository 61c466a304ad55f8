package unleashtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// readyTimeout bounds a server's start: migrations on an empty database took about 1 s here,
// the whole start about 2.5 s; the margin is for a loaded CI machine.
const readyTimeout = 2 * time.Minute

// Server is a running unleash-server on 127.0.0.1 with its own database.
type Server struct {
	// BaseURL is the server's root, "http://127.0.0.1:<port>", without a trailing slash.
	BaseURL string
	// AdminToken is an admin API token (all projects, all environments), sent as the
	// Authorization header's whole value.
	AdminToken string
	// Database is the name of the server's database in the test cluster.
	Database string
	// LogPath is the file that receives the server's stdout and stderr.
	LogPath string
	// StartupTime is how long the server took from spawn to answering the admin API,
	// migrations of its empty database included.
	StartupTime time.Duration

	cluster *cluster
	proc    *process
	stdin   io.WriteCloser
	http    *http.Client
	names   atomic.Int64

	stopOnce sync.Once
	stopErr  error
}

// startServer creates database dbName in c and starts unleash-server on it, logging to logPath.
func startServer(ctx context.Context, node, dir string, c *cluster, dbName, logPath string) (*Server, error) {
	if err := c.createDatabase(ctx, dbName); err != nil {
		return nil, fmt.Errorf("unleash database: %w", err)
	}
	var lastErr error
	// A free port is found by binding port 0 and closing it; another process can take it
	// before Node binds it, so a start that fails on EADDRINUSE is tried again on a new port.
	for attempt := 0; attempt < 3; attempt++ {
		s, err := spawnServer(ctx, node, dir, c, dbName, logPath)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	if err := c.dropDatabase(context.Background(), dbName); err != nil {
		lastErr = errors.Join(lastErr, err)
	}
	return nil, lastErr
}

var errAddrInUse = errors.New("port taken before the server could bind it")

// spawnServer runs start.mjs once and waits until the admin API answers.
func spawnServer(ctx context.Context, node, dir string, c *cluster, dbName, logPath string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	token, err := newAdminToken()
	if err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("unleash server log: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor
	fmt.Fprintf(logFile, "=== unleashtest: starting unleash-server on 127.0.0.1:%d, database %s\n", port, dbName)

	cmd := exec.Command(node, "start.mjs")
	cmd.Dir = dir
	cmd.Env = append(serverEnviron(os.Environ()),
		"FLAGSYNC_UNLEASH_PORT="+strconv.Itoa(port),
		"FLAGSYNC_UNLEASH_ADMIN_TOKEN="+token,
		"FLAGSYNC_UNLEASH_DB_HOST="+c.sockDir(),
		"FLAGSYNC_UNLEASH_DB_PORT="+strconv.Itoa(pgSocketPort),
		"FLAGSYNC_UNLEASH_DB_NAME="+dbName,
		"FLAGSYNC_UNLEASH_DB_USER="+pgSuperuser,
		"FLAGSYNC_UNLEASH_LOG_LEVEL=warn",
		"FLAGSYNC_UNLEASH_EXIT_ON_STDIN_EOF=1",
		"TZ=UTC",
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	stdin, err := cmd.StdinPipe() // start.mjs exits when this closes: a second tie to our life
	if err != nil {
		return nil, err
	}
	cmd.SysProcAttr = groupAttr(nil)
	started := time.Now()
	proc, err := startProcess(cmd)
	if err != nil {
		stdin.Close()
		return nil, fmt.Errorf("start node %s/start.mjs: %w", dir, err)
	}
	s := &Server{
		BaseURL:    "http://127.0.0.1:" + strconv.Itoa(port),
		AdminToken: token,
		Database:   dbName,
		LogPath:    logPath,
		cluster:    c,
		proc:       proc,
		stdin:      stdin,
		// A fresh connection per call: a test's raw calls must never meet a keep-alive
		// connection the Node server is closing (a reset POST would fail the test).
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	if err := s.waitReady(ctx, readyTimeout); err != nil {
		stopErr := s.kill()
		if strings.Contains(tailFile(logPath, 40), "EADDRINUSE") {
			return nil, fmt.Errorf("%w: %v", errAddrInUse, err)
		}
		return nil, errors.Join(err, stopErr)
	}
	s.StartupTime = time.Since(started)
	return s, nil
}

// serverEnviron is the environment for the Node server: the few variables Node itself uses,
// taken from ours, and nothing else, so that no variable of the developer's or CI's (Unleash
// reads dozens: DATABASE_URL, AUTH_TYPE, LOG_LEVEL, ...) changes what the tests run against.
func serverEnviron(env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "SSL_CERT_FILE", "SSL_CERT_DIR":
			out = append(out, kv)
		}
	}
	return out
}

// waitReady polls /health, then checks that the admin token is accepted.
func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if s.proc.exited() {
			return fmt.Errorf("unleash-server exited while starting (%v); log %s:\n%s",
				s.proc.err, s.LogPath, tailFile(s.LogPath, 30))
		}
		resp, err := s.Do(ctx, "", http.MethodGet, "/health", nil)
		if err == nil && resp.Status == http.StatusOK {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("unleash-server not healthy after %s (last: %v); log %s:\n%s",
				timeout, describe(resp, err), s.LogPath, tailFile(s.LogPath, 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
	resp, err := s.Do(ctx, s.AdminToken, http.MethodGet, "/api/admin/projects", nil)
	if err != nil {
		return fmt.Errorf("unleash-server admin API: %w", err)
	}
	if resp.Status != http.StatusOK {
		return fmt.Errorf("unleash-server admin API refused the admin token: %s", resp)
	}
	return nil
}

func describe(resp *Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.String()
}

// Stop ends the server's process group (SIGTERM, then SIGKILL after 10 s) and drops its
// database. It is safe to call more than once; later calls return the first result. Stop is
// for servers from StartDedicated (their test's cleanup calls it) and for Run's shutdown.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		err := s.kill()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if dropErr := s.cluster.dropDatabase(ctx, s.Database); dropErr != nil {
			err = errors.Join(err, fmt.Errorf("drop unleash database: %w", dropErr))
		}
		s.stopErr = err
	})
	return s.stopErr
}

// kill ends the Node process group.
func (s *Server) kill() error {
	s.stdin.Close()
	if err := s.proc.end(sigTerm, 10*time.Second); err != nil {
		return fmt.Errorf("stop unleash-server: %w", err)
	}
	return nil
}

// LogTail returns the last n lines the server wrote.
func (s *Server) LogTail(n int) string { return tailFile(s.LogPath, n) }

// UniqueName returns base followed by a number unique on this server, for the flags, segments
// and tags of tests that share one server. The result is URL-friendly when base is.
func (s *Server) UniqueName(base string) string {
	return base + "-" + strconv.FormatInt(s.names.Add(1), 10)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// newAdminToken returns a random admin token secret in the "*:*.<hex>" form Unleash expects
// for tokens of every project and environment.
func newAdminToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	return "*:*." + hex.EncodeToString(b), nil
}

// tailFile returns the last n lines of the file at path, or a note saying why it cannot.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return tail(b, n)
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
