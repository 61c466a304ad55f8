package gitsource

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
)

// kind is how a repository is reached.
type kind int

const (
	kindLocal kind = iota // a folder on disk, read in place
	kindHTTP              // https:// or http://
	kindSSH               // ssh:// or scp-like user@host:path
	kindFile              // file://, cloned into the cache like any remote
)

// location is a parsed --repo value.
type location struct {
	kind kind
	// url is what go-git connects to: credentials removed, scp-like form kept as given.
	url string
	// display is the sanitised form for logs and errors: no password, and no user
	// either for HTTP(S), where a token is often put in the user part.
	display string
	// user and password came in the URL's userinfo; they become credentials, never
	// part of url or display.
	user, password string
	host           string // host name without port, "" for local and file
	port           string
}

// scpLike matches git's scp-like syntax [user@]host:path: a colon before any slash.
var scpLike = regexp.MustCompile(`^(?:([^@/]+)@)?([^@/:]+):(.*)$`)

// parseLocation classifies repo. A folder that exists on disk is always local; then
// URLs with a scheme; then scp-like; anything else is a local path that must exist.
func parseLocation(repo string) (location, error) {
	if repo == "" {
		return location{}, fmt.Errorf("repository: empty")
	}
	if st, err := os.Stat(repo); err == nil && st.IsDir() {
		return location{kind: kindLocal, url: repo, display: repo}, nil
	}
	if i := strings.Index(repo, "://"); i > 0 {
		u, err := url.Parse(repo)
		if err != nil {
			return location{}, fmt.Errorf("repository %s: not a valid URL", redactRaw(repo))
		}
		loc := location{host: u.Hostname(), port: u.Port()}
		if u.User != nil {
			loc.user = u.User.Username()
			loc.password, _ = u.User.Password()
		}
		switch strings.ToLower(u.Scheme) {
		case "https", "http":
			loc.kind = kindHTTP
			u.User = nil
			loc.url = u.String()
			loc.display = loc.url
		case "ssh", "git+ssh", "ssh+git":
			loc.kind = kindSSH
			u.Scheme = "ssh"
			if loc.user != "" {
				u.User = url.User(loc.user)
			}
			loc.url = u.String()
			loc.display = loc.url
		case "file":
			loc.kind = kindFile
			u.User = nil
			loc.url = u.String()
			loc.display = loc.url
		default:
			return location{}, fmt.Errorf("repository %s: scheme %q not supported (use https, http, ssh or file)", redactRaw(repo), u.Scheme)
		}
		if loc.kind != kindFile && loc.host == "" {
			return location{}, fmt.Errorf("repository %s: no host", loc.display)
		}
		return loc, nil
	}
	if m := scpLike.FindStringSubmatch(repo); m != nil && !isWindowsDrive(repo) {
		user, _, hasPassword := strings.Cut(m[1], ":")
		loc := location{kind: kindSSH, host: m[2], user: user}
		if hasPassword {
			return location{}, fmt.Errorf("repository %s@%s:%s: a password in an SSH address is not supported: use a key", user, m[2], m[3])
		}
		loc.url = repo
		loc.display = repo
		return loc, nil
	}
	if _, err := os.Stat(repo); err != nil {
		return location{}, fmt.Errorf("open repository %s: not a folder on disk, nor a URL (https://, ssh://, user@host:path, file://): %w", repo, err)
	}
	return location{}, fmt.Errorf("open repository %s: not a folder", repo)
}

func isWindowsDrive(s string) bool {
	return len(s) >= 2 && s[1] == ':' && (s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z')
}

// isLoopback reports whether host names this machine (localhost, 127.0.0.0/8, ::1).
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactRaw removes userinfo from anything that looks like a URL, for error messages
// about a value that could not be parsed.
func redactRaw(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
			return s[:i+3] + "***@" + rest[at+1:]
		}
	}
	return s
}
