package gittest

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestHTTPNeedsBasicAuth(t *testing.T) {
	repo := NewRepo(t)
	head := repo.Commit(t, map[string]string{"a.yaml": "a\n"}, "one")
	srv := StartHTTPServer(t, repo, "u", "p")
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(user, pass string) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+"/info/refs?service=git-upload-pack", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for _, c := range []struct{ user, pass string }{{"", ""}, {"u", "wrong"}, {"x", "p"}} {
		res := get(c.user, c.pass)
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%q/%q: status %d, want 401 with a challenge", c.user, c.pass, res.StatusCode)
		}
	}
	res := get("u", "p")
	var body bytes.Buffer
	body.ReadFrom(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(body.String(), head) {
		t.Errorf("with auth: status %d, body %q", res.StatusCode, body.String())
	}
	if srv.Requests() != 4 {
		t.Errorf("Requests() = %d, want 4", srv.Requests())
	}
}

// The real git client can clone from both servers.
func TestServersServeGit(t *testing.T) {
	repo := NewRepo(t)
	head := repo.Commit(t, map[string]string{"a.yaml": "a\n"}, "one")
	keyFile, pub := NewKey(t, "")
	sshURL, hostKey := StartSSH(t, repo, pub)
	knownHosts := WriteKnownHosts(t, sshURL, hostKey)
	httpURL := StartHTTP(t, repo, "u", "p")
	authed := strings.Replace(httpURL, "http://", "http://u:p@", 1)

	for name, args := range map[string][]string{
		"http": {"ls-remote", authed},
		"ssh": {"-c", "core.sshCommand=ssh -i " + keyFile + " -o IdentitiesOnly=yes -o UserKnownHostsFile=" + knownHosts +
			" -o StrictHostKeyChecking=yes -o BatchMode=yes", "ls-remote", sshURL},
	} {
		if name == "ssh" {
			if _, err := exec.LookPath("ssh"); err != nil {
				t.Logf("no ssh client here; skipping the git-over-ssh check")
				continue
			}
		}
		out := repo.Git(t, args...)
		if !strings.Contains(out, head+"\trefs/heads/main") {
			t.Errorf("%s: ls-remote printed %q", name, out)
		}
	}
}

func TestSSHRefusesOtherKeysAndCommands(t *testing.T) {
	repo := NewRepo(t)
	repo.Commit(t, map[string]string{"a.yaml": "a\n"}, "one")
	keyFile, pub := NewKey(t, "")
	url, hostKey := StartSSH(t, repo, pub)
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "ssh://git@"), "/"+repo.Name)
	dial := func(keyFile string) (*ssh.Client, error) {
		return ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "git", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer(t, keyFile))},
			HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: 5 * time.Second})
	}
	otherKey, _ := NewKey(t, "")
	if c, err := dial(otherKey); err == nil {
		c.Close()
		t.Error("a key that is not authorised was accepted")
	}
	c, err := dial(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for cmd, code := range map[string]int{"ls /": 1, "git-upload-pack '/other.git'": 128} {
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var exit *ssh.ExitError
		if err := sess.Run(cmd); !errors.As(err, &exit) || exit.ExitStatus() != code {
			t.Errorf("%s: %v, want exit status %d", cmd, err, code)
		}
		sess.Close()
	}
}

func signer(t *testing.T, keyFile string) ssh.Signer {
	t.Helper()
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
