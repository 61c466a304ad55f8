package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// cmdHealthcheck probes a running daemon's /healthz. The container image has no shell or
// curl, so its HEALTHCHECK calls the binary itself. The address comes from the same
// settings as run's (--listen, --admin-listen and their FLAGSYNC_* variables), so a
// container started with another FLAGSYNC_LISTEN is still probed where it listens.
func cmdHealthcheck(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("healthcheck", `Usage: flagsync healthcheck [--endpoint E] [--url URL] [--timeout D]

Exits 0 when the daemon answers 200 on its health endpoint, 1 otherwise. It probes the
address flagsync run listens on (--listen, FLAGSYNC_LISTEN; a wildcard address such as
0.0.0.0 is probed on loopback), or the admin address (--admin-listen,
FLAGSYNC_ADMIN_LISTEN) for the admin endpoints /status and /metrics.

Examples:
  flagsync healthcheck
  FLAGSYNC_LISTEN=0.0.0.0:8081 flagsync healthcheck --endpoint /readyz
  flagsync healthcheck --url http://127.0.0.1:8080/healthz`)
	var listen, adminListen, path, url string
	var timeout time.Duration
	fs.StringVar(&listen, "listen", defaultListen, "the address flagsync run listens on")
	fs.StringVar(&adminListen, "admin-listen", defaultAdminListen, "the address flagsync run serves /status and /metrics on")
	fs.StringVar(&path, "endpoint", "/healthz", "endpoint to probe: /healthz, /readyz, or an admin endpoint (/status, /metrics)")
	fs.StringVar(&url, "url", "", "probe this URL instead (overrides --listen, --admin-listen and --endpoint)")
	fs.DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	if url == "" {
		addr := listen
		if path == "/status" || path == "/metrics" {
			addr = adminListen
		}
		u, err := probeURL(addr, path)
		if err != nil {
			fmt.Fprintf(a.stderr, "healthcheck: %v\n", err)
			return exitUsage
		}
		url = u
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(a.stderr, "healthcheck: %v\n", err)
		return exitUsage
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(a.stderr, "healthcheck %s: %v\n", url, err)
		return exitFail
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(a.stderr, "healthcheck %s: %s\n", url, resp.Status)
		return exitFail
	}
	fmt.Fprintln(a.stdout, "ok")
	return exitOK
}

// probeURL is the URL of path on a listen address: a wildcard or empty host is
// probed on loopback, the address family kept.
func probeURL(addr, path string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %v", addr, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}
