package gitsource

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/net/proxy"
)

// tokenUser is the basic-auth user sent with a token when no username is configured.
const tokenUser = "x-access-token"

// connection is what go-git needs to reach one remote for one operation.
type connection struct {
	auth    transport.AuthMethod
	caFile  []byte
	proxy   transport.ProxyOptions
	hostKey *hostKeyChecker // nil unless SSH with verification
	close   func()          // releases the SSH agent connection, if any
}

// httpAuth returns basic auth from Auth, or from the URL's userinfo when Auth has no
// HTTP credentials; nil when there are none.
func httpAuth(a Auth, loc location) transport.AuthMethod {
	user, pass := a.Username, a.Password
	if a.Token != "" {
		pass = a.Token
		if user == "" {
			user = tokenUser
		}
	}
	if user == "" && pass == "" {
		user, pass = loc.user, loc.password
	}
	if user == "" && pass == "" {
		return nil
	}
	return &githttp.BasicAuth{Username: user, Password: pass}
}

// sshAuth is a go-git SSH auth method whose client config is built entirely here, so
// the host key callback, the offered host key algorithms and the dial timeout are ours.
type sshAuth struct {
	user      string
	methods   []ssh.AuthMethod
	callback  ssh.HostKeyCallback
	algos     []string
	dialLimit time.Duration
}

func (a *sshAuth) Name() string   { return "ssh-public-keys" }
func (a *sshAuth) String() string { return "user: " + a.user + ", name: ssh-public-keys" }

// ClientConfig is called by go-git for every connection.
func (a *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	return &ssh.ClientConfig{
		User:              a.user,
		Auth:              a.methods,
		HostKeyCallback:   a.callback,
		HostKeyAlgorithms: a.algos,
		Timeout:           a.dialLimit,
	}, nil
}

// hostKeyChecker verifies host keys against a known_hosts file and remembers why it
// refused one, because the SSH handshake error that reaches us does not always keep it.
type hostKeyChecker struct {
	file string
	db   *knownhosts.HostKeyDB

	mu     sync.Mutex
	refuse *HostKeyError
}

func (h *hostKeyChecker) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := h.db.HostKeyCallback()(hostname, remote, key)
	if err != nil {
		switch {
		case knownhosts.IsHostKeyChanged(err):
			h.setRefused(&HostKeyError{Host: hostname, KnownHosts: h.file, Mismatch: true})
		case knownhosts.IsHostUnknown(err):
			h.setRefused(&HostKeyError{Host: hostname, KnownHosts: h.file})
		}
	}
	return err
}

func (h *hostKeyChecker) setRefused(e *HostKeyError) {
	h.mu.Lock()
	h.refuse = e
	h.mu.Unlock()
}

func (h *hostKeyChecker) refused() *HostKeyError {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.refuse
}

// sshConnection builds the SSH auth for loc: the key file (decrypted with the
// passphrase) or the agent, and host key checking against the known_hosts file.
func sshConnection(o *Options, loc location, deadline time.Time) (*connection, error) {
	user := loc.user
	if user == "" {
		user = "git"
	}
	c := &connection{close: func() {}}
	a := &sshAuth{user: user, dialLimit: time.Until(deadline)}
	switch {
	case o.Auth.SSHKeyFile != "":
		signer, err := loadKey(o.Auth.SSHKeyFile, o.Auth.SSHKeyPassphrase)
		if err != nil {
			return nil, err
		}
		a.methods = []ssh.AuthMethod{ssh.PublicKeys(signer)}
	case os.Getenv("SSH_AUTH_SOCK") != "":
		conn, err := net.Dial("unix", os.Getenv("SSH_AUTH_SOCK"))
		if err != nil {
			return nil, fmt.Errorf("connect to the ssh agent (SSH_AUTH_SOCK): %w", err)
		}
		c.close = func() { conn.Close() }
		a.methods = []ssh.AuthMethod{ssh.PublicKeysCallback(agent.NewClient(conn).Signers)}
	default:
		return nil, fmt.Errorf("ssh repository %s: no key: give a private key file (--ssh-key, FLAGSYNC_GIT_SSH_KEY_FILE) or run an ssh agent", loc.display)
	}

	if o.InsecureSkipHostKey {
		a.callback = ssh.InsecureIgnoreHostKey()
	} else {
		file := o.KnownHostsFile
		if file == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				c.close()
				return nil, fmt.Errorf("find ~/.ssh/known_hosts: %w (give --known-hosts)", err)
			}
			file = home + "/.ssh/known_hosts"
		}
		if _, err := os.Stat(file); err != nil {
			c.close()
			return nil, fmt.Errorf("read known_hosts %s: %w: SSH host keys are always verified; give a known_hosts file that lists %s (--known-hosts)", file, err, loc.host)
		}
		db, err := knownhosts.NewDB(file)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("read known_hosts %s: %w", file, err)
		}
		port := loc.port
		if port == "" {
			port = "22"
		}
		c.hostKey = &hostKeyChecker{file: file, db: db}
		a.callback = c.hostKey.check
		a.algos = db.HostKeyAlgorithms(net.JoinHostPort(loc.host, port))
	}
	c.auth = a
	c.proxy = transport.ProxyOptions{URL: deadlineURL(deadline)}
	return c, nil
}

// loadKey reads a private key file, decrypting it with passphrase when it is protected.
func loadKey(file, passphrase string) (ssh.Signer, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read ssh key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passphrase == "" {
			return nil, fmt.Errorf("ssh key %s is passphrase-protected and no passphrase was given (FLAGSYNC_GIT_SSH_KEY_PASSPHRASE)", file)
		}
		signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(passphrase))
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, fmt.Errorf("ssh key %s: wrong passphrase", file)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("parse ssh key %s: %w", file, err)
	}
	return signer, nil
}

// deadlineScheme names a pseudo proxy that dials directly (honouring ALL_PROXY like
// go-git does) and puts the fetch's deadline on the connection. go-git bounds only the
// TCP connect of an SSH connection, not its handshake, so without this a server that
// accepts and then says nothing would hang a fetch for ever. The proxy hook is the one
// place go-git lets us touch the connection without replacing its global SSH client.
const deadlineScheme = "flagsync-deadline"

func init() {
	proxy.RegisterDialerType(deadlineScheme, func(u *url.URL, _ proxy.Dialer) (proxy.Dialer, error) {
		ns, err := strconv.ParseInt(u.Query().Get("deadline"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("deadline dialer: %w", err)
		}
		return deadlineDialer{deadline: time.Unix(0, ns)}, nil
	})
}

func deadlineURL(deadline time.Time) string {
	return deadlineScheme + "://local/?deadline=" + strconv.FormatInt(deadline.UnixNano(), 10)
}

type deadlineDialer struct {
	deadline time.Time
}

func (d deadlineDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

func (d deadlineDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithDeadline(ctx, d.deadline)
	defer cancel()
	conn, err := proxy.Dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(d.deadline); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}
