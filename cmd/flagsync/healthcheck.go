package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// cmdHealthcheck probes a running daemon's /healthz. The container image has no shell or
// curl, so its HEALTHCHECK calls the binary itself.
func cmdHealthcheck(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("healthcheck", `Usage: flagsync healthcheck [--url URL] [--timeout D]

Exits 0 when the daemon answers 200 on its health endpoint, 1 otherwise.

Example:
  flagsync healthcheck --url http://127.0.0.1:8080/healthz`)
	url := fs.String("url", "http://127.0.0.1:8080/healthz", "health endpoint to probe")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		fmt.Fprintf(a.stderr, "healthcheck: %v\n", err)
		return exitUsage
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(a.stderr, "healthcheck %s: %v\n", *url, err)
		return exitFail
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(a.stderr, "healthcheck %s: %s\n", *url, resp.Status)
		return exitFail
	}
	fmt.Fprintln(a.stdout, "ok")
	return exitOK
}
