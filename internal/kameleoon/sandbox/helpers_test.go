package ksandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/fakeapi/fakeapitest"
)

const site = "pzllysfw2f"

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 12, 17, 10, 42, 14, 0, time.UTC)} // the tutorial's dates
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// client talks to a sandbox with plain net/http, as any Automation API client would.
type client struct {
	t     testing.TB
	base  string
	token string
	hc    *http.Client
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return m
}

func (r reply) list(t testing.TB) []map[string]any {
	t.Helper()
	var l []map[string]any
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatalf("decode list %s: %v", r.body, err)
	}
	return l
}

// setup starts a sandbox on a fake clock and returns a client that holds a token.
func setup(t testing.TB, opts Options) (*Server, *client, *fakeClock) {
	t.Helper()
	clock := newClock()
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	s, ts := fakeapitest.NewTestServer(t, "sandbox", func() (*Server, error) { return New(opts) })
	c := &client{t: t, base: ts.URL, hc: ts.Client()}
	id, secret := opts.ClientID, opts.ClientSecret
	if id == "" {
		id, secret = "sandbox", "sandbox"
	}
	c.token = c.getToken(id, secret)
	return s, c, clock
}

func (c *client) getToken(id, secret string) string {
	c.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	r := c.raw("POST", "/oauth/token", "application/x-www-form-urlencoded", form.Encode(), "")
	if r.status != 200 {
		c.t.Fatalf("token: %d %s", r.status, r.body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(r.body, &tok); err != nil || tok.AccessToken == "" {
		c.t.Fatalf("token body %s: %v", r.body, err)
	}
	return tok.AccessToken
}

func (c *client) raw(method, path, contentType, body, token string) reply {
	c.t.Helper()
	r, err := c.try(method, path, contentType, body, token)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (c *client) try(method, path, contentType, body, token string) (reply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return reply{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// do sends an authenticated call; a body is sent as application/json.
func (c *client) do(method, path, body string) reply {
	c.t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	return c.raw(method, path, ct, body, c.token)
}

func (c *client) must(want int, method, path, body string) reply {
	c.t.Helper()
	r := c.do(method, path, body)
	if r.status != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sameJSONText reports whether two JSON texts hold the same value (numbers compared as
// numbers, so 59 equals 59.0), and a readable account of the first difference.
func jsonDiff(t testing.TB, got, want []byte) string {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("decode got %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("decode want: %v", err)
	}
	return diffValue("$", g, w)
}

func diffValue(path string, g, w any) string {
	switch wv := w.(type) {
	case map[string]any:
		gv, ok := g.(map[string]any)
		if !ok {
			return path + ": got " + short(g) + ", want an object"
		}
		for k := range wv {
			if _, ok := gv[k]; !ok {
				return path + "." + k + ": missing"
			}
			if d := diffValue(path+"."+k, gv[k], wv[k]); d != "" {
				return d
			}
		}
		for k := range gv {
			if _, ok := wv[k]; !ok {
				return path + "." + k + ": unexpected, got " + short(gv[k])
			}
		}
		return ""
	case []any:
		gv, ok := g.([]any)
		if !ok || len(gv) != len(wv) {
			return path + ": got " + short(g) + ", want " + short(w)
		}
		for i := range wv {
			if d := diffValue(path+"["+itoa(i)+"]", gv[i], wv[i]); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(g, w) {
		return path + ": got " + short(g) + ", want " + short(w)
	}
	return ""
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 200 {
		b = append(b[:200], "…"...)
	}
	return string(b)
}

// get returns a field of a decoded JSON value by a dotted path; numbers index arrays.
func get(v any, path string) any {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			var i int
			if err := json.Unmarshal([]byte(p), &i); err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// envOf returns the environment with the given key from a decoded flag.
func envOf(t testing.TB, flag map[string]any, key string) map[string]any {
	t.Helper()
	for _, e := range flag["environmentConfigurations"].([]any) {
		if m := e.(map[string]any); m["environmentKey"] == key {
			return m
		}
	}
	t.Fatalf("environment %q not in %s", key, short(flag))
	return nil
}

func flagJSON(t testing.TB, s *Server, key string) []byte {
	t.Helper()
	b, ok := s.FlagJSON(site, key)
	if !ok {
		t.Fatalf("flag %s not stored", key)
	}
	return b
}

func compact(t testing.TB, s string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
