package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// ServeLoopback serves an embedded sandbox on a loopback port for one command, and
// returns its base URL and a function that stops it. what names it in the log line
// ("the embedded sandbox, not Kameleoon").
func ServeLoopback(h http.Handler, what, statePath string, logger *slog.Logger) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("start sandbox: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	logger.Info("using "+what, "state", statePath, "addr", ln.Addr().String())
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	return "http://" + ln.Addr().String(), stop, nil
}

// RandomSecret returns 16 random bytes in hex: the credentials of an embedded sandbox
// differ in each process, since a fixed word such as "sandbox" would be redacted
// wherever it appears in messages, paths included.
func RandomSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// StateDir creates the folder of a sandbox's state file.
func StateDir(statePath string) error {
	if statePath == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(statePath), 0o755); err != nil {
		return fmt.Errorf("create the state directory: %w", err)
	}
	return nil
}
