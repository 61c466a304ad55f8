package gitsource

import (
	"log/slog"
	"time"
)

// DefaultTimeout bounds one Fetch when Options.Timeout is zero.
const DefaultTimeout = 60 * time.Second

// Options say which repository to read and how to reach it.
type Options struct {
	// Repo is a local folder (a work tree, a subfolder of one, a bare repository or a
	// plain folder) or a URL: https://, http:// (see AllowHTTP), ssh://, scp-like
	// user@host:path, or file://. Userinfo in a URL is taken out and used as credentials
	// when Auth has none; it never appears in logs or errors.
	Repo string
	// Ref is a branch, a tag or a full commit hash; empty means the remote's default
	// branch (HEAD), or for a local folder the files as they are on disk. For a local
	// repository, a non-empty Ref is read from its object store (any revision git
	// understands: branch, tag, origin/main, a hash), not from the disk.
	Ref string
	// Path is the folder of flag files inside the repository ("" or "." for the root).
	// Fetch fails when it does not exist at the fetched revision.
	Path string
	// CacheDir holds the clones of remote repositories, one folder per URL. Required
	// for remotes.
	CacheDir string
	// Depth is the history depth to fetch: 1 (the usual choice) fetches only the
	// wanted commit, 0 the full history.
	Depth int
	// Timeout bounds one whole Fetch: listing the remote's refs, downloading, and a
	// re-clone when the cache had to be discarded. Zero means DefaultTimeout.
	Timeout time.Duration
	// Auth holds the credentials for the remote.
	Auth Auth
	// KnownHostsFile is the known_hosts file SSH host keys are checked against; empty
	// means ~/.ssh/known_hosts. A host that is not in it is refused.
	KnownHostsFile string
	// InsecureSkipHostKey turns SSH host key checking off. Every Fetch logs a warning.
	InsecureSkipHostKey bool
	// AllowHTTP allows plain http:// to a host that is not loopback (loopback is always
	// allowed). Every Fetch logs a warning.
	AllowHTTP bool
	// CAFile is a PEM bundle of extra certificate authorities trusted for HTTPS, on top
	// of the system's. TLS verification itself cannot be turned off.
	CAFile string
	// Logger receives one line per clone or fetch; nil discards.
	Logger *slog.Logger
}

// Auth holds Git credentials. Its String and LogValue methods never show the secrets,
// so an Auth that ends up in a log line or a %v stays harmless.
type Auth struct {
	// Username for HTTPS basic auth. With Token and no Username, "x-access-token" is
	// sent, which GitHub, GitLab and Gitea accept for access tokens.
	Username string
	// Password for HTTPS basic auth.
	Password string
	// Token is an HTTPS access token, sent as the basic-auth password. It wins over
	// Password when both are set.
	Token string
	// SSHKeyFile is a private key file (OpenSSH or PEM format). Without it, SSH uses
	// the agent at SSH_AUTH_SOCK when there is one.
	SSHKeyFile string
	// SSHKeyPassphrase decrypts SSHKeyFile when it is passphrase-protected.
	SSHKeyPassphrase string
}

// String describes which credentials are set, without their values.
func (a Auth) String() string {
	var parts []string
	if a.Username != "" {
		parts = append(parts, "username")
	}
	if a.Password != "" {
		parts = append(parts, "password")
	}
	if a.Token != "" {
		parts = append(parts, "token")
	}
	if a.SSHKeyFile != "" {
		parts = append(parts, "ssh-key")
	}
	if a.SSHKeyPassphrase != "" {
		parts = append(parts, "ssh-key-passphrase")
	}
	if len(parts) == 0 {
		return "Auth{none}"
	}
	s := "Auth{"
	for i, p := range parts {
		if i > 0 {
			s += ","
		}
		s += p
	}
	return s + "}"
}

// GoString is String, so %#v does not print the secrets either.
func (a Auth) GoString() string { return a.String() }

// LogValue makes slog print String instead of the fields.
func (a Auth) LogValue() slog.Value { return slog.StringValue(a.String()) }

func (a Auth) secrets() []string {
	return []string{a.Password, a.Token, a.SSHKeyPassphrase}
}
