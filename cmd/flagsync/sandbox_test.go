package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/logtest"
)

// startSandboxCmd runs `flagsync sandbox` in-process on a free loopback port and returns
// its base URL, its log, and a function that cancels it and returns its exit code.
func startSandboxCmd(t *testing.T, env map[string]string, args ...string) (string, *logtest.Buffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &logtest.Buffer{}
	a := &app{stdout: io.Discard, stderr: logs, getenv: func(k string) string { return env[k] }}
	done := make(chan int, 1)
	go func() {
		done <- a.dispatch(ctx, append([]string{"sandbox", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...))
	}()
	stop := func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(10 * time.Second):
			t.Fatal("flagsync sandbox did not stop after the context was cancelled")
			return -1
		}
	}
	deadline := time.After(10 * time.Second)
	for {
		for _, line := range logLines(t, logs.String()) {
			if line["msg"] == "sandbox listening" {
				t.Cleanup(func() { cancel() })
				return line["url"].(string), logs, stop
			}
		}
		select {
		case code := <-done:
			t.Fatalf("flagsync sandbox exited with %d before listening:\n%s", code, logs)
		case <-deadline:
			cancel()
			t.Fatalf("flagsync sandbox never logged where it listens:\n%s", logs)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func tokenCall(t *testing.T, base, id, secret string) (int, string) {
	t.Helper()
	resp, err := http.PostForm(base+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.AccessToken
}

func TestSandboxCommandDefaults(t *testing.T) {
	state := filepath.Join(t.TempDir(), "nested", "sandbox.json")
	base, logs, stop := startSandboxCmd(t, nil, "--state", state, "--sites", "pzllysfw2f", "--rate-10s", "-1")
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Errorf("listens on %s", base)
	}
	status, tok := tokenCall(t, base, "sandbox", "sandbox")
	if status != 200 || tok == "" {
		t.Fatalf("token with the default credentials: %d", status)
	}
	req, _ := http.NewRequest("POST", base+"/feature-flags", strings.NewReader(`{"siteCode": "pzllysfw2f", "featureKey": "cli", "name": "cli"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("exit %d after cancel:\n%s", code, logs)
	}
	if b, err := os.ReadFile(state); err != nil || !strings.Contains(string(b), `"featureKey": "cli"`) {
		t.Errorf("state file after the run: %v\n%s", err, b)
	}
	var sawCreds, sawStop bool
	for _, l := range logLines(t, logs.String()) {
		if l["msg"] == "sandbox accepts the default credentials" && l["client_id"] == "sandbox" && l["client_secret"] == "sandbox" {
			sawCreds = true
		}
		sawStop = sawStop || l["msg"] == "sandbox stopped"
	}
	if !sawCreds || !sawStop {
		t.Errorf("log lacks the default credentials or the stop:\n%s", logs)
	}
	if strings.Contains(logs.String(), tok) {
		t.Error("a token reached the log")
	}
}

func TestSandboxCommandCredentials(t *testing.T) {
	const canary = "canary-sandbox-secret-51d2"
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"env", map[string]string{"FLAGSYNC_SANDBOX_CLIENT_SECRET": canary}, []string{"--client-id", "ci"}},
		{"file", map[string]string{"FLAGSYNC_SANDBOX_CLIENT_SECRET_FILE": writeSecret(t, canary+"\n"), "FLAGSYNC_SANDBOX_CLIENT_ID": "ci"}, nil},
		{"flag", nil, []string{"--client-id", "ci", "--client-secret", canary}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, logs, stop := startSandboxCmd(t, tc.env, append(tc.args, "--log-level", "debug")...)
			if status, _ := tokenCall(t, base, "sandbox", "sandbox"); status != 401 {
				t.Errorf("default credentials: %d, want 401", status)
			}
			if status, _ := tokenCall(t, base, "ci", canary); status != 200 {
				t.Errorf("configured credentials: %d, want 200", status)
			}
			if code := stop(); code != exitOK {
				t.Fatalf("exit %d", code)
			}
			if strings.Contains(logs.String(), canary) {
				t.Errorf("the client secret reached the log:\n%s", logs)
			}
			if !strings.Contains(logs.String(), `"client_id":"ci"`) {
				t.Errorf("the log does not say which client id is accepted:\n%s", logs)
			}
		})
	}
}

func writeSecret(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSandboxCommandErrors(t *testing.T) {
	corrupt := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(corrupt, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"id without secret", []string{"--client-id", "ci"}, exitUsage, "both a client id and a client secret"},
		{"unknown flag", []string{"--port", "1"}, exitUsage, "unknown flag --port"},
		{"bad site", []string{"--sites", "short"}, exitFail, "exactly 10 characters"},
		{"corrupt state", []string{"--state", corrupt}, exitFail, corrupt},
		{"bad address", []string{"--listen", "127.0.0.1:notaport", "--log-format", "json"}, exitFail, "listen on 127.0.0.1:notaport"},
		{"bad log level", []string{"--log-level", "loud"}, exitUsage, "--log-level"},
		{"unknown strict variant", []string{"--strict", "order-index,zoned"}, exitUsage, `strict variant "zoned": unknown`},
		{"strict with split", []string{"--vendor", "split", "--strict", "all"}, exitUsage, "--strict are Kameleoon's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errb bytes.Buffer
			a := &app{stdout: io.Discard, stderr: &errb, getenv: func(string) string { return "" }}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // a command that wrongly starts serving returns at once
			if code := a.dispatch(ctx, append([]string{"sandbox"}, tc.args...)); code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", code, tc.code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.msg) {
				t.Errorf("stderr lacks %q:\n%s", tc.msg, errb.String())
			}
		})
	}
}

// TestSandboxCommandStrict starts the command with --strict and checks that the sandbox
// follows the variants named (an environment patch without the required fields is a 400)
// and says so in its start-up line.
func TestSandboxCommandStrict(t *testing.T) {
	for _, tc := range []struct {
		name, strict string
		env          map[string]string
		want         string // the start-up line's strict attribute
		patchStatus  int
	}{
		{"none", "", nil, "none", 200},
		{"flag", "env-patch-required,zoned-dates", nil, "env-patch-required,zoned-dates", 400},
		{"all from env", "", map[string]string{"FLAGSYNC_SANDBOX_STRICT": "all"}, "env-patch-required,order-index,optional-fields-refused,optional-fields-ignored,zoned-dates", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--rate-10s", "-1"}
			if tc.strict != "" {
				args = append(args, "--strict", tc.strict)
			}
			base, logs, stop := startSandboxCmd(t, tc.env, args...)
			_, tok := tokenCall(t, base, "sandbox", "sandbox")
			send := func(method, path, body string) int {
				req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if got := send("POST", "/feature-flags", `{"siteCode": "pzllysfw2f", "featureKey": "cli", "name": "cli"}`); got != 201 {
				t.Fatalf("create: %d", got)
			}
			if got := send("PATCH", "/feature-flags/pzllysfw2f/cli/production", `{"featureEnabled": true}`); got != tc.patchStatus {
				t.Errorf("environment patch without the required fields: %d, want %d", got, tc.patchStatus)
			}
			stop()
			found := false
			for _, l := range logLines(t, logs.String()) {
				if l["msg"] == "sandbox listening" {
					found = l["strict"] == tc.want
				}
			}
			if !found {
				t.Errorf("start-up line lacks strict=%s:\n%s", tc.want, logs)
			}
		})
	}
}
