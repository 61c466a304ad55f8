package codehost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Identity is the account a token acts as, or the author of a comment.
type Identity struct {
	// ID is the account's numeric id; 0 when only the login is known (an identity given
	// by name rather than read from the host).
	ID int64
	// Login is the user name (GitHub's login, GitLab's username).
	Login string
	// Bot is set for GitHub's Bot accounts (apps, github-actions[bot]) and GitLab's bot
	// users (project and group access tokens).
	Bot bool
}

// String renders the identity for messages and logs: login, and id when known.
func (id Identity) String() string {
	if id.ID == 0 {
		return id.Login
	}
	return fmt.Sprintf("%s (id %d)", id.Login, id.ID)
}

// Is reports whether author is the account id names: the same id when both ids are
// known, else the same login (logins are case-insensitive on both hosts).
func (id Identity) Is(author Identity) bool {
	if id.ID != 0 && author.ID != 0 {
		return id.ID == author.ID
	}
	return id.Login != "" && strings.EqualFold(id.Login, author.Login)
}

// Comment is one comment of a pull request (GitHub) or note of a merge request (GitLab).
type Comment struct {
	ID     int64
	Body   string
	Author Identity
	// System is set for GitLab's system notes ("added 1 commit"), which nobody wrote.
	System bool
}

// Error is a non-2xx answer from the code host.
type Error struct {
	Method string
	// Path is the request's path and query, without the host.
	Path    string
	Status  int
	Message string
}

// Error renders the call, the status and the host's message.
func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Message)
}

// IsStatus reports whether err is an *Error with the given HTTP status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// PerPage is the page size asked for when listing comments: the most both hosts allow.
const PerPage = 100

// MaxPages bounds a listing (10,000 comments), so a host that keeps answering "next"
// cannot keep flagsync busy for ever.
const MaxPages = 100

// ErrTooManyPages is returned when a listing still has a next page after MaxPages.
var ErrTooManyPages = errors.New("more than " + strconv.Itoa(MaxPages) + " pages of comments")

// DefaultTimeout is the time limit of one call when the caller gives no *http.Client.
const DefaultTimeout = 30 * time.Second

// rest is the part the GitHub and GitLab clients share: the base URL, the credentials
// header, and turning answers into values or *Error.
type rest struct {
	hc   *http.Client
	base *url.URL
	// auth sets the credentials on a request; the token is never put in a URL.
	auth  func(*http.Request)
	token string
	// accept is the Accept header the host's API documents.
	accept string
}

func newREST(hc *http.Client, apiURL, token string) (rest, error) {
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	u, err := url.Parse(strings.TrimRight(apiURL, "/"))
	if err != nil {
		return rest{}, fmt.Errorf("API URL %q: %w", apiURL, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return rest{}, fmt.Errorf("API URL %q: want an http(s) URL with a host", apiURL)
	}
	if token == "" {
		return rest{}, errors.New("no token")
	}
	return rest{hc: hc, base: u, token: token}, nil
}

// url resolves a path below the API base (which may itself have a path, as GitLab's
// /api/v4 and GitHub Enterprise's /api/v3 do).
func (r *rest) url(path string) string {
	return r.base.String() + path
}

// response is a successful answer: its headers (for paging) and body.
type response struct {
	header http.Header
	body   []byte
}

// do sends one call to rawURL, which must be on the API's host, and decodes a 2xx JSON
// answer into out (when not nil).
func (r *rest) do(ctx context.Context, method, rawURL string, in, out any) (response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, rawURL, err)
	}
	shown := u.RequestURI()
	// A next-page link on another host must not receive the token.
	if u.Scheme != r.base.Scheme || u.Host != r.base.Host {
		return response{}, fmt.Errorf("%s %s: refusing to send the token to %s://%s, not the API host %s", method, shown, u.Scheme, u.Host, r.base.Host)
	}
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return response{}, fmt.Errorf("%s %s: encode: %w", method, shown, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, shown, err)
	}
	req.Header.Set("Accept", r.accept)
	req.Header.Set("User-Agent", "flagsync")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	r.auth(req)
	resp, err := r.hc.Do(req)
	if err != nil {
		// The URL carries no credentials; the token is only in a header.
		return response{}, fmt.Errorf("%s %s: %w", method, shown, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read response: %w", method, shown, err)
	}
	if resp.StatusCode/100 != 2 {
		return response{}, &Error{Method: method, Path: shown, Status: resp.StatusCode, Message: r.message(data)}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return response{}, fmt.Errorf("%s %s: decode response: %w", method, shown, err)
		}
	}
	return response{header: resp.Header, body: data}, nil
}

// message extracts the host's error message, shortened, with the token taken out in case
// the host echoed it.
func (r *rest) message(data []byte) string {
	var e struct {
		Message any    `json:"message"` // GitLab sometimes answers an object of field errors
		Error   string `json:"error"`
	}
	_ = json.Unmarshal(data, &e)
	var msg string
	switch m := e.Message.(type) {
	case string:
		msg = m
	case nil:
		msg = e.Error
	default:
		b, _ := json.Marshal(m)
		msg = string(b)
	}
	if msg == "" {
		msg = strings.TrimSpace(string(data))
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return strings.ReplaceAll(msg, r.token, "[redacted]")
}

// nextLink returns the rel="next" URL of an RFC 8288 Link header, or "".
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			segs := strings.Split(part, ";")
			if len(segs) < 2 {
				continue
			}
			target := strings.TrimSpace(segs[0])
			if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, p := range segs[1:] {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if !ok || strings.TrimSpace(k) != "rel" {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if rel == "next" {
						return target[1 : len(target)-1]
					}
				}
			}
		}
	}
	return ""
}

// Truncate shortens s to at most n characters (runes), ending with "…" when cut.
func Truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
