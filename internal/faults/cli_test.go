//go:build unix

package faults

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/gittest"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	"github.com/flagsync/flagsync/internal/logtest"
)

// TestSecretsNeverShowInCLI runs the built binary with a canary in every secret's
// environment variable — client secret, Git password, webhook secret, admin token —
// at debug level in JSON and text, through every command, their failures included,
// and the daemon's endpoints; no canary and no access token the API issued may show in
// anything it prints or serves.
func TestSecretsNeverShowInCLI(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ksandbox.Options{})
	flags := genFlags(4)
	repo := gittest.NewRepo(t)
	repo.Commit(t, repoFiles(flags), "v1")
	srv := gittest.StartHTTPServer(t, repo, gitUser, canaryGitPassword)
	cache := filepath.Join(t.TempDir(), "cache")
	secretEnv := []string{"FLAGSYNC_WEBHOOK_SECRET=" + canaryWebhookSecret, "FLAGSYNC_ADMIN_TOKEN=" + canaryAdminToken}
	env := append(append(append([]string{}, w.apiEnv()...), gitEnv()...), secretEnv...)
	source := []string{"--repo", srv.URL, "--path", "flags", "--cache-dir", cache}

	var outputs []string
	ran := 0
	check := func(what string, r binResult, want int) {
		t.Helper()
		ran++
		if r.code != want {
			t.Errorf("%s: exit %d, want %d\n%s%s", what, r.code, want, r.stdout, lastLines(r.stderr, 20))
		}
		outputs = append(outputs, what+"\n"+r.stdout+r.stderr)
	}
	exportDir := filepath.Join(t.TempDir(), "export")
	for _, format := range []string{"json", "text"} {
		logging := []string{"--log-level", "debug", "--log-format", format}
		cmd := func(name string, extra ...string) []string {
			return append(append(append([]string{name}, source...), logging...), extra...)
		}
		check("validate", runBinary(t, 0, env, cmd("validate")...), 0)
		for _, f := range []string{"text", "markdown", "json"} {
			check("plan --format "+f, runBinary(t, 0, env, cmd("plan", "--format", f)...), 0)
		}
		check("sync", runBinary(t, 0, env, cmd("sync", fastAPI...)...), 0)
		flags[0].exposition++
		repo.Commit(t, repoFiles(flags), "edit")
		check("sync --format json", runBinary(t, 0, env, cmd("sync", append([]string{"--format", "json"}, fastAPI...)...)...), 0)
		check("export", runBinary(t, 0, env, append([]string{"export", "--site-code", siteA, "--out", exportDir, "--force"}, logging...)...), 0)

		// Failures: a refused client secret, a refused Git password.
		wrongSecret := append(append([]string{}, env...), kclient.EnvClientSecret+"="+canaryClientSecret+"-wrong")
		check("plan with a wrong client secret", runBinary(t, 0, wrongSecret, cmd("plan")...), 1)
		wrongGit := append(append([]string{}, env...), "FLAGSYNC_GIT_PASSWORD="+canaryGitPassword+"-wrong")
		check("plan with a wrong git password", runBinary(t, 0, wrongGit, append(cmd("plan"), "--cache-dir", t.TempDir())...), 1)
	}
	exported := readTree(t, exportDir)

	// The daemon, with its endpoints.
	daemonOut, endpoints := runDaemon(t, env, source)
	outputs = append(outputs, "flagsync run\n"+daemonOut)
	outputs = append(outputs, endpoints...)

	secrets := append(w.secrets(), canaryClientSecret+"-wrong", canaryGitPassword+"-wrong")
	for _, o := range append(outputs, "the exported files\n"+exported) {
		what, text, _ := strings.Cut(o, "\n")
		assertNoSecrets(t, what, text, secrets)
	}
	summary(t, "security canaries-cli: %d runs of validate, plan (text/markdown/json), sync (text/json), export and 2 refused logins at debug level (JSON and text logs), plus flagsync run with %d endpoint answers: no client secret, git password, webhook secret, admin token or any of the %d access tokens issued in %d KiB of output",
		ran, len(endpoints), len(w.front.issued()), totalLen(outputs)>>10)
}

func totalLen(ss []string) int {
	n := 0
	for _, s := range ss {
		n += len(s)
	}
	return n
}

func readTree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		b.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// freeAddr returns a 127.0.0.1 address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runDaemon starts `flagsync run` with env, waits for its first sync, exercises its
// endpoints (right and wrong webhook signatures and admin tokens), stops it with
// SIGTERM and returns its output and every endpoint's answer.
func runDaemon(t *testing.T, env, source []string) (string, []string) {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(flagsyncBinary(t), append([]string{"run", "--listen", addr, "--admin-listen", addr, "--schedule", "off", "--ref", "main",
		"--log-level", "debug", "--retry-base", "1ms"}, source...)...)
	cmd.Env = append(append([]string{}, env...), "HOME="+t.TempDir())
	cmd.Dir = t.TempDir()
	out := &logtest.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	base := "http://" + addr
	hc := &http.Client{Timeout: 5 * time.Second}
	var answers []string
	do := func(method, path string, hd http.Header, body []byte) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		for k, v := range hd {
			req.Header[k] = v
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, lastLines(out.String(), 20))
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answers = append(answers, fmt.Sprintf("%s %s answer\n%d %s", method, path, resp.StatusCode, b))
		return resp.StatusCode
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon was not ready within 20s:\n%s", lastLines(out.String(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range []string{"/healthz", "/readyz", "/status", "/metrics"} {
		if code := do(http.MethodGet, p, nil, nil); code != http.StatusOK {
			t.Errorf("GET %s: %d", p, code)
		}
	}
	push := []byte(githubPush)
	hd := func(sig string) http.Header {
		return http.Header{"Content-Type": {"application/json"}, "X-Github-Event": {"push"},
			"X-Github-Delivery": {sig[:8]}, "X-Hub-Signature-256": {"sha256=" + sig}}
	}
	if code := do(http.MethodPost, "/webhook/github", hd(sign([]byte("wrong"), push)), push); code != http.StatusUnauthorized {
		t.Errorf("webhook signed with a wrong key: %d, want 401", code)
	}
	if code := do(http.MethodPost, "/webhook/github", hd(sign([]byte(canaryWebhookSecret), push)), push); code != http.StatusAccepted {
		t.Errorf("webhook signed with the secret: %d, want 202", code)
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	if code := do(http.MethodPost, "/suspend", bearer(canaryAdminToken+"-wrong"), nil); code != http.StatusUnauthorized {
		t.Errorf("suspend with a wrong admin token: %d, want 401", code)
	}
	if code := do(http.MethodPost, "/suspend", bearer(canaryAdminToken), nil); code != http.StatusOK {
		t.Errorf("suspend with the admin token: %d, want 200", code)
	}
	if code := do(http.MethodPost, "/resume", bearer(canaryAdminToken), nil); code != http.StatusOK {
		t.Errorf("resume with the admin token: %d, want 200", code)
	}
	do(http.MethodGet, "/status", nil, nil)
	do(http.MethodGet, "/metrics", nil, nil)

	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("flagsync run after SIGTERM: %v\n%s", err, lastLines(out.String(), 20))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("flagsync run did not stop within 30s of SIGTERM")
	}
	return out.String(), answers
}

// TestCLIVerifiesTLS checks that the binary refuses an API whose certificate no trusted
// authority signed, and works once SSL_CERT_FILE (Go's standard way to name the
// authorities on Linux; flagsync has no option of its own for the API) trusts it.
func TestCLIVerifiesTLS(t *testing.T) {
	t.Parallel()
	sb, err := ksandbox.New(ksandbox.Options{ClientID: clientID, ClientSecret: canaryClientSecret, RatePer10s: -1, RatePerHour: -1})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(sb)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	dir := filepath.Join(t.TempDir(), "repo")
	writeDir(t, dir, repoFiles(genFlags(2)))
	env := []string{kclient.EnvClientID + "=" + clientID, kclient.EnvClientSecret + "=" + canaryClientSecret, kclient.EnvAPIURL + "=" + ts.URL}
	args := []string{"plan", "--repo", dir, "--path", "flags", "--retry-base", "1ms"}
	r := runBinary(t, 0, env, args...)
	if r.code != 1 || !strings.Contains(r.stderr, "x509") {
		t.Errorf("plan against an untrusted certificate: exit %d, want 1 with an x509 error\n%s", r.code, r.stderr)
	}
	if n := len(sb.Calls()); n != 0 {
		t.Errorf("the untrusted server received %d calls", n)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, certPEM(ts), 0o644); err != nil {
		t.Fatal(err)
	}
	if r2 := runBinary(t, 0, append(env, "SSL_CERT_FILE="+ca), args...); r2.code != 0 {
		t.Errorf("plan with SSL_CERT_FILE trusting the server: exit %d\n%s", r2.code, r2.stderr)
	}
	summary(t, "security tls-verify-cli: %q; works with SSL_CERT_FILE (flagsync has no --api-ca-file)", lastLine(r.stderr))
}
