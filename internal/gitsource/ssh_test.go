package gitsource

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/flagsync/flagsync/internal/gittest"
)

// sshRemote is a fixture repository served over SSH with the real git-upload-pack,
// accepting the key it returns (protected by passphrase when not empty).
type sshFixture struct {
	repo       *gittest.Repo
	url        string
	keyFile    string
	knownHosts string
}

func sshRemote(t *testing.T, passphrase string) sshFixture {
	t.Helper()
	repo := gittest.NewRepo(t)
	repo.Commit(t, map[string]string{"flags/a.yaml": "a: 1\n"}, "first")
	keyFile, pub := gittest.NewKey(t, passphrase)
	url, hostKey := gittest.StartSSH(t, repo, pub)
	return sshFixture{repo: repo, url: url, keyFile: keyFile, knownHosts: gittest.WriteKnownHosts(t, url, hostKey)}
}

func TestSSHCloneAndFetch(t *testing.T) {
	t.Parallel()
	f := sshRemote(t, "")
	s, logs := newTestSource(t, Options{Repo: f.url, Depth: 1, Auth: Auth{SSHKeyFile: f.keyFile}, KnownHostsFile: f.knownHosts})
	snap := mustFetch(t, s)
	if want := f.repo.Head(t); snap.Revision != want {
		t.Fatalf("revision %s, want %s", snap.Revision, want)
	}
	marker := markCache(t, s)
	want := f.repo.Commit(t, map[string]string{"flags/b.yaml": "b: 1\n"}, "second")
	snap = mustFetch(t, s)
	if snap.Revision != want {
		t.Fatalf("revision %s, want %s", snap.Revision, want)
	}
	assertFiles(t, snap.FS, map[string]string{"flags/a.yaml": "a: 1\n", "flags/b.yaml": "b: 1\n"})
	if _, err := os.Stat(marker); err != nil || logs.count(`"msg":"git fetch"`) != 1 {
		t.Errorf("the second fetch was not incremental (marker: %v):\n%s", err, logs)
	}
	if s.Remote() != f.url {
		t.Errorf("Remote() = %s, want %s", s.Remote(), f.url)
	}
}

func TestSSHHostKeyRefused(t *testing.T) {
	t.Parallel()
	f := sshRemote(t, "")
	_, otherKey := gittest.NewKey(t, "")
	wrong := gittest.WriteKnownHosts(t, f.url, otherKey)
	unknown := gittest.WriteKnownHosts(t, "127.0.0.1:1", otherKey) // another host only

	for _, tc := range []struct {
		name, file string
		mismatch   bool
		text       string
	}{
		{"wrong key", wrong, true, "does not match"},
		{"unknown host", unknown, false, "is not in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestSource(t, Options{Repo: f.url, Depth: 1, Auth: Auth{SSHKeyFile: f.keyFile}, KnownHostsFile: tc.file})
			_, err := s.Fetch(testContext(t))
			var hk *HostKeyError
			if !errors.As(err, &hk) || hk.Mismatch != tc.mismatch || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want a HostKeyError (mismatch %v) saying %q", err, tc.mismatch, tc.text)
			}
			if _, err := os.Stat(s.CacheDir()); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a cache was written for an unverified server")
			}
		})
	}
	t.Run("no known_hosts file", func(t *testing.T) {
		s, _ := newTestSource(t, Options{Repo: f.url, Auth: Auth{SSHKeyFile: f.keyFile}, KnownHostsFile: filepath.Join(t.TempDir(), "none")})
		if _, err := s.Fetch(testContext(t)); err == nil || !strings.Contains(err.Error(), "SSH host keys are always verified") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestSSHInsecureSkipHostKeyWarnsEveryFetch(t *testing.T) {
	t.Parallel()
	f := sshRemote(t, "")
	_, otherKey := gittest.NewKey(t, "")
	s, logs := newTestSource(t, Options{Repo: f.url, Depth: 1, Auth: Auth{SSHKeyFile: f.keyFile},
		KnownHostsFile: gittest.WriteKnownHosts(t, f.url, otherKey), InsecureSkipHostKey: true})
	mustFetch(t, s)
	mustFetch(t, s)
	if n := logs.count("SSH HOST KEY CHECKING IS OFF"); n != 2 {
		t.Errorf("%d warnings for two fetches:\n%s", n, logs)
	}
	if logs.count(`"level":"WARN","msg":"SSH HOST KEY`) != 2 {
		t.Errorf("the warning is not at WARN level:\n%s", logs)
	}
}

func TestSSHPassphraseKey(t *testing.T) {
	t.Parallel()
	const passphrase = "canary-passphrase-7f3a"
	f := sshRemote(t, passphrase)
	for _, tc := range []struct {
		name, passphrase, err string
	}{
		{"right passphrase", passphrase, ""},
		{"no passphrase", "", "passphrase-protected and no passphrase was given"},
		{"wrong passphrase", "canary-wrong-9c1d", "wrong passphrase"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, logs := newTestSource(t, Options{Repo: f.url, Depth: 1, KnownHostsFile: f.knownHosts,
				Auth: Auth{SSHKeyFile: f.keyFile, SSHKeyPassphrase: tc.passphrase}})
			_, err := s.Fetch(testContext(t))
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
			for _, secret := range []string{passphrase, "canary-wrong-9c1d"} {
				if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
					t.Errorf("a passphrase leaked: %v\n%s", err, logs)
				}
			}
		})
	}
}

func TestSSHWrongKey(t *testing.T) {
	t.Parallel()
	f := sshRemote(t, "")
	otherKey, _ := gittest.NewKey(t, "")
	s, _ := newTestSource(t, Options{Repo: f.url, Auth: Auth{SSHKeyFile: otherKey}, KnownHostsFile: f.knownHosts})
	_, err := s.Fetch(testContext(t))
	if err == nil || !strings.Contains(err.Error(), "the SSH server refused the key") {
		t.Errorf("err = %v", err)
	}
}

func TestSSHAgent(t *testing.T) {
	// Not parallel: it sets SSH_AUTH_SOCK for the process.
	f := sshRemote(t, "")
	pem, err := os.ReadFile(f.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				agent.ServeAgent(keyring, c)
			}()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	s, _ := newTestSource(t, Options{Repo: f.url, Depth: 1, KnownHostsFile: f.knownHosts})
	if snap := mustFetch(t, s); snap.Revision != f.repo.Head(t) {
		t.Errorf("revision %s", snap.Revision)
	}
}
