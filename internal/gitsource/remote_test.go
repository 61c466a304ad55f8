package gitsource

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

func TestParseLocation(t *testing.T) {
	t.Parallel()
	local := t.TempDir()
	for _, tc := range []struct {
		repo          string
		kind          kind
		url, display  string
		user, pass    string
		errorContains string
	}{
		{repo: local, kind: kindLocal, url: local, display: local},
		{repo: "https://github.com/org/flags.git", kind: kindHTTP, url: "https://github.com/org/flags.git", display: "https://github.com/org/flags.git"},
		{repo: "https://bot:s3cret@git.example.com/flags.git", kind: kindHTTP, url: "https://git.example.com/flags.git", display: "https://git.example.com/flags.git", user: "bot", pass: "s3cret"},
		{repo: "https://ghp_tokenvalue@github.com/org/flags", kind: kindHTTP, url: "https://github.com/org/flags", display: "https://github.com/org/flags", user: "ghp_tokenvalue"},
		{repo: "http://127.0.0.1:8080/flags.git", kind: kindHTTP, url: "http://127.0.0.1:8080/flags.git", display: "http://127.0.0.1:8080/flags.git"},
		{repo: "ssh://git@example.com:2222/org/flags.git", kind: kindSSH, url: "ssh://git@example.com:2222/org/flags.git", display: "ssh://git@example.com:2222/org/flags.git", user: "git"},
		{repo: "ssh://git:pw@example.com/flags.git", kind: kindSSH, url: "ssh://git@example.com/flags.git", display: "ssh://git@example.com/flags.git", user: "git", pass: "pw"},
		{repo: "git@github.com:org/flags.git", kind: kindSSH, url: "git@github.com:org/flags.git", display: "git@github.com:org/flags.git", user: "git"},
		{repo: "github.com:org/flags.git", kind: kindSSH, url: "github.com:org/flags.git", display: "github.com:org/flags.git"},
		{repo: "file:///srv/git/flags.git", kind: kindFile, url: "file:///srv/git/flags.git", display: "file:///srv/git/flags.git"},
		{repo: "ftp://example.com/flags.git", errorContains: `scheme "ftp" not supported`},
		{repo: "git:pw@github.com:org/flags.git", errorContains: "a password in an SSH address is not supported"},
		{repo: "https://user:pw@/nohost", errorContains: "no host"},
		{repo: "./does/not/exist", errorContains: "not a folder on disk, nor a URL"},
		{repo: "", errorContains: "empty"},
	} {
		t.Run(tc.repo, func(t *testing.T) {
			loc, err := parseLocation(tc.repo)
			if tc.errorContains != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errorContains) {
					t.Fatalf("err = %v, want %q", err, tc.errorContains)
				}
				if strings.Contains(err.Error(), ":pw@") {
					t.Errorf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("%d %s %s %s %s", loc.kind, loc.url, loc.display, loc.user, loc.password)
			want := fmt.Sprintf("%d %s %s %s %s", tc.kind, tc.url, tc.display, tc.user, tc.pass)
			if got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestAuthNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	a := Auth{Username: "u", Password: canary, Token: canary, SSHKeyFile: "/k", SSHKeyPassphrase: canary}
	var logs logBuffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("auth", "auth", a)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("auth", "auth", a)
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%v %+v %#v %s", a, a, a, a), logs.String()} {
		if strings.Contains(s, canary) {
			t.Errorf("secret printed: %s", s)
		}
	}
	if got := a.String(); got != "Auth{username,password,token,ssh-key,ssh-key-passphrase}" {
		t.Errorf("String() = %s", got)
	}
	if got := (Auth{}).String(); got != "Auth{none}" {
		t.Errorf("String() = %s", got)
	}
}

func TestHTTPAuthFromOptionsOrURL(t *testing.T) {
	t.Parallel()
	loc := location{user: "urluser", password: "urlpass"}
	for _, tc := range []struct {
		auth     Auth
		loc      location
		user, pw string
	}{
		{Auth{Token: "tok"}, loc, tokenUser, "tok"},
		{Auth{Username: "me", Token: "tok"}, loc, "me", "tok"},
		{Auth{Username: "me", Password: "pw"}, loc, "me", "pw"},
		{Auth{}, loc, "urluser", "urlpass"},
		{Auth{}, location{}, "", ""},
	} {
		got := httpAuth(tc.auth, tc.loc)
		if tc.user == "" && tc.pw == "" {
			if got != nil {
				t.Errorf("%v: want no auth, got %v", tc.auth, got)
			}
			continue
		}
		if got == nil || !strings.Contains(got.String(), tc.user) {
			t.Errorf("%v: got %v, want user %s", tc.auth, got, tc.user)
		}
	}
}

func TestResolveRemote(t *testing.T) {
	t.Parallel()
	h := func(c byte) plumbing.Hash { return plumbing.NewHash(strings.Repeat(string(c), 40)) }
	refs := []*plumbing.Reference{
		plumbing.NewSymbolicReference(plumbing.HEAD, "refs/heads/main"),
		plumbing.NewHashReference("refs/heads/main", h('1')),
		plumbing.NewHashReference("refs/heads/both", h('2')),
		plumbing.NewHashReference("refs/tags/both", h('3')),
		plumbing.NewHashReference("refs/tags/v1", h('4')),
		plumbing.NewHashReference("refs/tags/v1^{}", h('5')),
	}
	for _, tc := range []struct {
		ref, wantRef string
		wantHash     plumbing.Hash
		ambiguous    bool
	}{
		{"", "refs/heads/main", h('1'), false},
		{"main", "refs/heads/main", h('1'), false},
		{"both", "refs/heads/both", h('2'), true},
		{"refs/tags/both", "refs/tags/both", h('3'), false},
		{"v1", "refs/tags/v1", h('5'), false},
		{strings.Repeat("1", 40), "refs/heads/main", h('1'), false},
		{strings.Repeat("5", 40), "refs/tags/v1", h('5'), false},
		{strings.Repeat("9", 40), "", h('9'), false},
	} {
		got, err := resolveRemote(refs, tc.ref, "r")
		if err != nil || got.ref.String() != tc.wantRef || got.hash != tc.wantHash || got.ambiguous != tc.ambiguous {
			t.Errorf("%q: got %+v %v, want %s %s ambiguous %v", tc.ref, got, err, tc.wantRef, tc.wantHash, tc.ambiguous)
		}
	}
	if _, err := resolveRemote(refs, "1111111", "r"); err == nil || !strings.Contains(err.Error(), "full 40-character hash") {
		t.Errorf("short hash: %v", err)
	}
}
