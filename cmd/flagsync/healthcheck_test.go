package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
	}))
	defer srv.Close()

	for _, tc := range []struct {
		name   string
		status int
		url    string
		want   int
	}{
		{"healthy", http.StatusOK, srv.URL, exitOK},
		{"unhealthy", http.StatusServiceUnavailable, srv.URL, exitFail},
		{"unreachable", http.StatusOK, "http://127.0.0.1:1/healthz", exitFail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status = tc.status
			var out, errOut bytes.Buffer
			got := run(context.Background(), []string{"healthcheck", "--url", tc.url}, &out, &errOut)
			if got != tc.want {
				t.Fatalf("exit %d, want %d (stderr %q)", got, tc.want, errOut.String())
			}
		})
	}
}

// TestHealthcheckFindsTheDaemon: without --url, healthcheck probes where run listens, as
// FLAGSYNC_LISTEN says (a wildcard address on loopback), and the admin address for the
// admin endpoints.
func TestHealthcheckFindsTheDaemon(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { paths = append(paths, r.URL.Path) }))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	env := map[string]string{"FLAGSYNC_LISTEN": fmt.Sprintf("0.0.0.0:%d", port), "FLAGSYNC_ADMIN_LISTEN": fmt.Sprintf("127.0.0.1:%d", port), "FLAGSYNC_PATH": "flags"}
	for _, args := range [][]string{{"healthcheck"}, {"healthcheck", "--endpoint", "/status"}} {
		if code, _, stderr := runWithEnv(env, args...); code != exitOK {
			t.Errorf("%v: exit %d %s", args, code, stderr)
		}
	}
	if strings.Join(paths, ",") != "/healthz,/status" {
		t.Errorf("probed %v, want /healthz then /status (FLAGSYNC_PATH is run's flag folder, not an endpoint)", paths)
	}
	if code, _, _ := runWithEnv(map[string]string{"FLAGSYNC_LISTEN": "127.0.0.1:1"}, "healthcheck"); code != exitFail {
		t.Errorf("nothing listening on FLAGSYNC_LISTEN: exit %d, want 1", code)
	}
}
