package gitsource

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain keeps git and go-git away from the machine's configuration: an empty HOME,
// no system or global git config, no ssh agent, no known_hosts from the environment.
func TestMain(m *testing.M) {
	home, err := os.MkdirTemp("", "gitsource-home-")
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
	os.Unsetenv("SSH_KNOWN_HOSTS")
	code := m.Run()
	os.RemoveAll(home)
	os.Exit(code)
}

// logBuffer collects JSON log lines from a Source.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// count returns how many log lines contain s.
func (b *logBuffer) count(s string) int {
	n := 0
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newTestSource builds a Source with a fresh cache folder and a captured log, unless
// opts already names them.
func newTestSource(t *testing.T, opts Options) (*Source, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = logs.logger()
	}
	if opts.Timeout == 0 {
		opts.Timeout = 20 * time.Second
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New(%s): %v", opts.Repo, err)
	}
	return s, logs
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustFetch(t *testing.T, s *Source) *Snapshot {
	t.Helper()
	snap, err := s.Fetch(testContext(t))
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return snap
}

// files returns every regular file of fsys with its content.
func files(t *testing.T, fsys fs.FS) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		out[p] = string(b)
		return nil
	})
	if err != nil {
		t.Fatalf("walk snapshot: %v", err)
	}
	return out
}

func assertFiles(t *testing.T, fsys fs.FS, want map[string]string) {
	t.Helper()
	got := files(t, fsys)
	if len(got) != len(want) {
		t.Errorf("snapshot has %d files %v, want %d %v", len(got), keys(got), len(want), keys(want))
	}
	for name, content := range want {
		if got[name] != content {
			t.Errorf("%s = %q, want %q", name, got[name], content)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
