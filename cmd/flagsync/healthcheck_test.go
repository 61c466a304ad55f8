package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
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
