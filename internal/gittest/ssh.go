package gittest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// StartSSH serves repo over SSH on 127.0.0.1 and returns its clone URL
// (ssh://git@127.0.0.1:PORT/remote.git) and the server's host key. The server accepts
// only authorizedKey, and answers an exec request for git-upload-pack '<path>' by running
// the real git-upload-pack binary on the bare repository, wired to the channel. Any other
// command or path fails like git does. The server stops when the test ends.
func StartSSH(tb testing.TB, repo *Repo, authorizedKey ssh.PublicKey) (url string, hostKey ssh.PublicKey) {
	tb.Helper()
	uploadPack, err := exec.LookPath("git-upload-pack")
	if err != nil {
		tb.Fatalf("the git-upload-pack binary is needed for this test: %v", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatalf("generate host key: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatalf("host key signer: %v", err)
	}
	want := authorizedKey.Marshal()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), want) {
				return nil, nil
			}
			return nil, errors.New("public key not authorised")
		},
	}
	cfg.AddHostKey(signer)

	l := listenLoopback(tb)
	s := &sshServer{cfg: cfg, repo: repo, uploadPack: uploadPack, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.serve(l)
	tb.Cleanup(func() {
		l.Close()
		s.closeAll()
		s.wg.Wait()
	})
	return fmt.Sprintf("ssh://git@%s/%s", l.Addr(), repo.Name), signer.PublicKey()
}

type sshServer struct {
	cfg        *ssh.ServerConfig
	repo       *Repo
	uploadPack string

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
}

func (s *sshServer) serve(l net.Listener) {
	defer s.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

func (s *sshServer) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

func (s *sshServer) handleConn(c net.Conn) {
	sc, chans, reqs, err := ssh.NewServerConn(c, s.cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleSession(ch, chReqs)
		}()
	}
}

func (s *sshServer) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			// env (GIT_PROTOCOL), pty-req and the like: refuse, git does without them.
			req.Reply(false, nil)
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			req.Reply(false, nil)
			return
		}
		req.Reply(true, nil)
		code := s.exec(ch, payload.Command)
		status := make([]byte, 4)
		binary.BigEndian.PutUint32(status, uint32(code))
		ch.SendRequest("exit-status", false, status)
		return
	}
}

// exec runs git-upload-pack for command on the channel and returns its exit code.
func (s *sshServer) exec(ch ssh.Channel, command string) int {
	name, arg, ok := strings.Cut(command, " ")
	if !ok || name != "git-upload-pack" {
		fmt.Fprintf(ch.Stderr(), "gittest: only git-upload-pack is served, not %q\n", command)
		return 1
	}
	p := strings.TrimPrefix(strings.Trim(arg, "'"), "/")
	if p != s.repo.Name && p != strings.TrimSuffix(s.repo.Name, ".git") {
		fmt.Fprintf(ch.Stderr(), "fatal: '%s' does not appear to be a git repository\n", arg)
		return 128
	}
	cmd := exec.Command(s.uploadPack, s.repo.Bare)
	cmd.Env = s.repo.Env()
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "gittest: %v\n", err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(ch.Stderr(), "gittest: %v\n", err)
		return 1
	}
	// Copy the client's input ourselves: exec's own copier would keep Wait blocked on a
	// client that never closes its side.
	go func() {
		io.Copy(stdin, ch)
		stdin.Close()
	}()
	if err := cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		return 1
	}
	return 0
}

// NewKey generates an ed25519 key pair, writes the private key in OpenSSH format to a
// file (mode 0600) in the test's temp directory, encrypted with passphrase when it is
// not empty, and returns the file's path and the public key.
func NewKey(tb testing.TB, passphrase string) (keyFile string, pub ssh.PublicKey) {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatalf("generate key: %v", err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "gittest")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "gittest", []byte(passphrase))
	}
	if err != nil {
		tb.Fatalf("marshal private key: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatalf("key signer: %v", err)
	}
	keyFile = filepath.Join(tb.TempDir(), "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		tb.Fatalf("write key: %v", err)
	}
	return keyFile, signer.PublicKey()
}

// WriteKnownHosts writes a known_hosts file in the test's temp directory that trusts
// key for the host:port of rawURL (an ssh:// URL or host:port), and returns its path.
func WriteKnownHosts(tb testing.TB, rawURL string, key ssh.PublicKey) string {
	tb.Helper()
	addr := strings.TrimPrefix(rawURL, "ssh://")
	if at := strings.LastIndex(addr, "@"); at >= 0 {
		addr = addr[at+1:]
	}
	if slash := strings.Index(addr, "/"); slash >= 0 {
		addr = addr[:slash]
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
	p := filepath.Join(tb.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(line+"\n"), 0o600); err != nil {
		tb.Fatalf("write known_hosts: %v", err)
	}
	return p
}
