package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestCommentFromGitHubActionsEnvironment runs the command as a GitHub Actions job would:
// everything but the file comes from the job's environment, and a second run updates the
// first comment instead of adding one.
func TestCommentFromGitHubActionsEnvironment(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, r.Method+" "+r.URL.Path)
		if r.Header.Get("Authorization") != "Bearer gh-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == "GET" && r.URL.Path == "/repos/acme/flags/issues/42/comments":
			var cs []map[string]any
			for i, b := range bodies {
				cs = append(cs, map[string]any{"id": i + 1, "body": b})
			}
			if cs == nil {
				cs = []map[string]any{}
			}
			json.NewEncoder(w).Encode(cs)
		case r.Method == "POST" && r.URL.Path == "/repos/acme/flags/issues/42/comments":
			var in map[string]string
			json.NewDecoder(r.Body).Decode(&in)
			bodies = append(bodies, in["body"])
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(map[string]any{"id": len(bodies), "body": in["body"]})
		case r.Method == "PATCH" && r.URL.Path == "/repos/acme/flags/issues/comments/1":
			var in map[string]string
			json.NewDecoder(r.Body).Decode(&in)
			bodies[0] = in["body"]
			json.NewEncoder(w).Encode(map[string]any{"id": 1, "body": in["body"]})
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()

	dir := t.TempDir()
	event := filepath.Join(dir, "event.json")
	os.WriteFile(event, []byte(`{"action":"synchronize","number":42,"pull_request":{"number":42}}`), 0o600)
	planFile := filepath.Join(dir, "plan.md")
	env := map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_API_URL": srv.URL, "GITHUB_REPOSITORY": "acme/flags",
		"GITHUB_EVENT_PATH": event, "GITHUB_TOKEN": "gh-token",
	}
	for i, text := range []string{"Plan: 1 to create", "Plan: 2 to create"} {
		os.WriteFile(planFile, []byte("<!-- flagsync-plan -->\n"+text+"\n"), 0o600)
		var out, errOut bytes.Buffer
		a := &app{stdout: &out, stderr: &errOut, getenv: func(k string) string { return env[k] }}
		if code := a.dispatch(context.Background(), []string{"comment", "--file", planFile}); code != exitOK {
			t.Fatalf("run %d: exit %d: %s", i, code, errOut.String())
		}
		want := []string{"created plan comment 1", "updated plan comment 1"}[i]
		if !strings.HasPrefix(out.String(), want) {
			t.Fatalf("run %d printed %q, want %q", i, out.String(), want)
		}
	}
	if len(bodies) != 1 || !strings.Contains(bodies[0], "Plan: 2 to create") {
		t.Fatalf("comments %q: want one, updated", bodies)
	}
}

func TestCommentOutsideCIIsAUsageError(t *testing.T) {
	f := filepath.Join(t.TempDir(), "plan.md")
	os.WriteFile(f, []byte("x"), 0o600)
	var out, errOut bytes.Buffer
	a := &app{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	if code := a.dispatch(context.Background(), []string{"comment", "--file", f}); code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(errOut.String(), "--provider is required") {
		t.Fatalf("stderr %q", errOut.String())
	}
}
