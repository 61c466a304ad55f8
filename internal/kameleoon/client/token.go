package kclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/flagsync/flagsync/internal/api"
)

// tokenPath is the OAuth2 token endpoint.
const tokenPath = "/oauth/token"

// renewBefore is how long before its expiry a token is renewed, as Kameleoon's own SDK
// does. Tokens that live less than twice that are renewed at half their life instead.
const renewBefore = 60 * time.Second

// tokenSource holds the bearer token. One fetch runs at a time; concurrent callers that
// need a token while it runs wait for its result instead of starting their own.
type tokenSource struct {
	c *Client

	mu       sync.Mutex
	token    string
	renewAt  time.Time // zero: valid until the API answers 401
	fetching *tokenFetch
	seen     []string // recent tokens, for redaction
}

type tokenFetch struct {
	done  chan struct{}
	token string
	err   error
}

// get returns a valid token, fetching one if there is none or it is about to expire.
func (ts *tokenSource) get(ctx context.Context) (string, error) {
	ts.mu.Lock()
	if ts.freshLocked() {
		tok := ts.token
		ts.mu.Unlock()
		return tok, nil
	}
	f := ts.fetching
	if f == nil {
		f = &tokenFetch{done: make(chan struct{})}
		ts.fetching = f
		// The fetch outlives any one caller's cancellation: others may be waiting on it.
		go ts.fetch(context.WithoutCancel(ctx), f)
	}
	ts.mu.Unlock()
	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", fmt.Errorf("get access token: %w", ctx.Err())
	}
}

// peek returns the cached token and whether it is still good to send now, without
// fetching: a call that waited long for the budget checks its token again with it.
func (ts *tokenSource) peek() (string, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.token, ts.freshLocked()
}

func (ts *tokenSource) freshLocked() bool {
	return ts.token != "" && (ts.renewAt.IsZero() || ts.c.now().Before(ts.renewAt))
}

// drop forgets tok after the API refused it, unless a newer token has replaced it
// already (several calls can fail with the same revoked token; only one re-auth is due).
func (ts *tokenSource) drop(tok string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.token == tok {
		ts.token = ""
	}
}

// Ready makes sure a token is cached (api.Auth).
func (ts *tokenSource) Ready(ctx context.Context) error {
	_, err := ts.get(ctx)
	return err
}

// Header returns the Authorization header for the cached token and whether the token is
// still good to send now, without fetching (api.Auth): a call that waited long for the
// budget checks its token again with it.
func (ts *tokenSource) Header() (string, bool) {
	tok, fresh := ts.peek()
	if tok == "" {
		return "", fresh
	}
	return "Bearer " + tok, fresh
}

// Refused drops the token the API answered 401 to, so that the next call fetches a new
// one, and says to try the call once more (api.Auth).
func (ts *tokenSource) Refused(header string) bool {
	ts.drop(strings.TrimPrefix(header, "Bearer "))
	return true
}

// Secrets returns the values to redact from bodies and messages (api.Auth).
func (ts *tokenSource) Secrets() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string{ts.c.cfg.ClientSecret}, ts.seen...)
}

func (ts *tokenSource) fetch(ctx context.Context, f *tokenFetch) {
	tok, ttl, err := ts.request(ctx)
	ts.mu.Lock()
	if err == nil {
		ts.token = tok
		ts.renewAt = time.Time{}
		if ttl > 0 {
			margin := renewBefore
			if ttl < 2*margin {
				margin = ttl / 2
			}
			ts.renewAt = ts.c.now().Add(ttl - margin)
		}
		ts.seen = append(ts.seen, tok)
		if len(ts.seen) > 4 {
			ts.seen = ts.seen[len(ts.seen)-4:]
		}
	}
	ts.fetching = nil
	f.token, f.err = tok, err
	ts.mu.Unlock()
	close(f.done)
}

// request runs the client-credentials grant. The token endpoint's 4xx answers (bad
// credentials) are final; 429, 5xx and network errors are retried like any idempotent
// call, since asking for a token changes nothing on the server.
func (ts *tokenSource) request(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {ts.c.cfg.ClientID},
		"client_secret": {ts.c.cfg.ClientSecret},
	}
	res, err := ts.c.caller.Send(ctx, api.Call{
		Method:      http.MethodPost,
		Path:        tokenPath,
		Body:        []byte(form.Encode()),
		ContentType: "application/x-www-form-urlencoded",
		NoAuth:      true,
		Resend:      true,
		Uncharged:   !ts.c.TokenCharged(),
	})
	if err != nil {
		return "", 0, fmt.Errorf("get access token: %w", err)
	}
	var resp struct {
		AccessToken string  `json:"access_token"`
		ExpiresIn   float64 `json:"expires_in"`
	}
	// The body holds the token: never put it, or the decoder's view of it, in an error.
	if json.Unmarshal(res.Body, &resp) != nil || resp.AccessToken == "" {
		return "", 0, fmt.Errorf("get access token: POST %s: response has no access_token", tokenPath)
	}
	return resp.AccessToken, time.Duration(resp.ExpiresIn * float64(time.Second)), nil
}
