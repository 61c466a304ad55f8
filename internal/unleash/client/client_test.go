package unleashclient_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	unleashclient "github.com/flagsync/flagsync/internal/unleash/client"
	unleashwire "github.com/flagsync/flagsync/internal/unleash/wire"
)

func TestErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"schema validation names the field",
			`{"id":"e4","name":"BadDataError","message":"Request validation failed: your request body or params contain invalid data. Refer to the details list.","details":[{"path":"/body/name","message":"The ` + "`/body/name`" + ` property is required."}]}`,
			"BadDataError: request validation failed: The `/body/name` property is required."},
		{"service check, detail without path",
			`{"name":"BadDataError","message":"\"name\" must be URL friendly","details":[{"message":"\"name\" must be URL friendly"}]}`,
			`BadDataError: "name" must be URL friendly`},
		{"detail with a bare field",
			`{"name":"BadDataError","message":"Invalid type","details":[{"path":"type","message":"must be one of release, ..."}]}`,
			"BadDataError: Invalid type: type: must be one of release, ..."},
		{"not found", `{"name":"NotFoundError","message":"There's no feature named \"x\"","details":[{"message":"There's no feature named \"x\""}]}`,
			`NotFoundError: There's no feature named "x"`},
		{"message only (client token)", `{"message":"invalid token: expected a different token type for this endpoint"}`,
			"invalid token: expected a different token type for this endpoint"},
		{"malformed JSON, Express's shape", `{"error":{"message":"Unexpected end of JSON input","type":"entity.parse.failed","stack":"SyntaxError: ..."}}`,
			"Unexpected end of JSON input"},
		{"rate limit page", "Too many requests, please try again later.", "Too many requests, please try again later."},
		{"empty (segment in use)", "", ""},
	} {
		if got := unleashclient.ErrorMessage([]byte(tc.body)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// fake is a hand-written admin API: each request is answered by the next reply for its
// path; it records what it received.
type fake struct {
	mu      sync.Mutex
	replies map[string][]reply
	got     []*http.Request
}

type reply struct {
	status int
	header map[string]string
	body   string
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, r)
	rs := f.replies[r.URL.Path]
	if len(rs) == 0 {
		http.Error(w, "unexpected request "+r.Method+" "+r.URL.String(), http.StatusTeapot)
		return
	}
	f.replies[r.URL.Path] = rs[1:]
	for k, v := range rs[0].header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rs[0].status)
	_, _ = w.Write([]byte(rs[0].body))
}

func newFake(t *testing.T, replies map[string][]reply) (*fake, *unleashclient.Client, *[]time.Duration) {
	t.Helper()
	f := &fake{replies: replies}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	var slept []time.Duration
	c, err := unleashclient.New(unleashclient.Config{BaseURL: srv.URL, Token: "*:*.canary-secret-token",
		BackoffBase: time.Millisecond, BackoffMax: time.Millisecond,
		Sleep: func(ctx context.Context, d time.Duration) error { slept = append(slept, d); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	return f, c, &slept
}

func TestSearchHonoursTheRateLimit(t *testing.T) {
	page := func(names ...string) string { // a whole result, in one page
		var parts []string
		for _, n := range names {
			parts = append(parts, `{"name":"`+n+`"}`)
		}
		return `{"features":[` + strings.Join(parts, ",") + `],"total":` + strconv.Itoa(len(names)) + `}`
	}
	f, c, slept := newFake(t, map[string][]reply{
		unleashwire.SearchPath: {
			// The last search of the window: the next waits for the reset.
			{200, map[string]string{"RateLimit-Remaining": "0", "RateLimit-Reset": "42"}, page("b", "a")},
			// Spent anyway (another client): 429 with Retry-After 0, then the answer.
			{429, map[string]string{"Retry-After": "0", "Content-Type": "text/html"}, "Too many requests, please try again later."},
			{200, map[string]string{"RateLimit-Remaining": "13"}, page("c")},
		},
	})
	got, err := c.ArchivedFeatures(context.Background(), "default")
	if err != nil || strings.Join(got, ",") != "a,b" {
		t.Fatalf("first search = %v, %v", got, err)
	}
	got, err = c.ArchivedFeatures(context.Background(), "default")
	if err != nil || strings.Join(got, ",") != "c" {
		t.Fatalf("second search = %v, %v", got, err)
	}
	if len(*slept) != 1 || (*slept)[0] <= 40*time.Second || (*slept)[0] > 42*time.Second {
		t.Errorf("waits before searching = %v, want one of about 42s", *slept)
	}
	if len(f.got) != 3 {
		t.Errorf("%d searches sent, want 3 (a 429 is exactly one retry)", len(f.got))
	}
	q := f.got[0].URL.Query()
	if q.Get("project") != "IS:default" || q.Get("archived") != "IS:true" || q.Get("limit") != "100" || q.Get("offset") != "0" {
		t.Errorf("search query = %v", q)
	}
}

func TestTokenAndErrors(t *testing.T) {
	var logs bytes.Buffer
	f := &fake{replies: map[string][]reply{
		"/api/admin/projects/default/features": {{400, nil,
			`{"name":"BadDataError","message":"token *:*.canary-secret-token is not welcome","details":[{"path":"/body/name","message":"bad"}]}`}},
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, err := unleashclient.New(unleashclient.Config{BaseURL: srv.URL + "/api/", Token: "*:*.canary-secret-token",
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL() != srv.URL {
		t.Errorf("base URL %s: the SDKs' /api suffix should be dropped", c.BaseURL())
	}
	_, err = c.Do(context.Background(), api.Request{Method: http.MethodPost, Path: "/api/admin/projects/default/features", Body: []byte(`{"name":"x"}`)})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Retryable {
		t.Fatalf("err = %#v", err)
	}
	if h := f.got[0].Header.Get("Authorization"); h != "*:*.canary-secret-token" {
		t.Errorf("Authorization = %q, want the token itself", h)
	}
	body, ok := unleashclient.AsErrorBody(err)
	if !ok || body.Name != "BadDataError" || body.Details[0].Path != "/body/name" {
		t.Errorf("error body = %+v, %t", body, ok)
	}
	for where, text := range map[string]string{"error": err.Error(), "body": ae.Body, "logs": logs.String()} {
		if strings.Contains(text, "canary-secret-token") {
			t.Errorf("the token leaks into the %s: %s", where, text)
		}
	}
	if !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("error = %s", err)
	}
}

func TestCreatesAreNeverResent(t *testing.T) {
	_, c, _ := newFake(t, map[string][]reply{
		"/api/admin/projects/default/features":                       {{502, nil, "bad gateway"}, {201, nil, "{}"}},
		"/api/admin/projects/default/features/x/environments/dev/on": {{502, nil, "bad gateway"}, {200, nil, "{}"}},
	})
	_, err := c.Do(context.Background(), api.Request{Method: http.MethodPost, Path: "/api/admin/projects/default/features", Body: []byte(`{}`)})
	if !api.HasStatus(err, 502) {
		t.Errorf("create after a 502: %v, want the 502 (a create is not resent)", err)
	}
	if _, err := c.Do(context.Background(), api.Request{Method: http.MethodPost, Path: "/api/admin/projects/default/features/x/environments/dev/on"}); err != nil {
		t.Errorf("on after a 502: %v, want it resent", err)
	}
}

func TestMayResendAndEndpoints(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/api/admin/segments", true},
		{"PUT", "/api/admin/features/x/tags", true},
		{"POST", "/api/admin/projects/p/features", false},
		{"POST", "/api/admin/projects/p/features/x/environments/e/strategies", false},
		{"POST", "/api/admin/projects/p/features/x/environments/e/off", true},
		{"DELETE", "/api/admin/projects/p/features/x/environments/e/strategies/1", true},
		{"DELETE", "/api/admin/projects/p/features/x", false},
		{"POST", "/api/admin/archive/revive/x", false},
	} {
		if got := unleashclient.MayResend(api.Request{Method: tc.method, Path: tc.path}); got != tc.want {
			t.Errorf("MayResend(%s %s) = %t", tc.method, tc.path, got)
		}
	}
	for path, want := range map[string]string{
		"/api/admin/projects/default/features":                                                     "/api/admin/projects/{project}/features",
		"/api/admin/projects/default/features/x/environments/production/strategies/01ABC":          "/api/admin/projects/{project}/features/{feature}/environments/{env}/strategies/{id}",
		"/api/admin/projects/default/features/x/environments/production/strategies/set-sort-order": "/api/admin/projects/{project}/features/{feature}/environments/{env}/strategies/set-sort-order",
		"/api/admin/features/x/tags":                                                               "/api/admin/features/{feature}/tags",
		"/api/admin/search/features":                                                               "/api/admin/search/features",
		"/health":                                                                                  "other",
		"/api/admin/projects/default/features/x":                                                   "/api/admin/projects/{project}/features/{feature}",
		"/api/admin/projects/default/features/x/environments/production/on":                        "/api/admin/projects/{project}/features/{feature}/environments/{env}/on",
		"/api/admin/projects/default/features/x/environments/production/off":                       "/api/admin/projects/{project}/features/{feature}/environments/{env}/off",
		"/api/admin/projects/default/features/x/environments/production/strategies":                "/api/admin/projects/{project}/features/{feature}/environments/{env}/strategies",
		"/api/admin/archive/revive/x":                                                              "/api/admin/archive/revive/{feature}",
		"/api/admin/segments":                                                                      "/api/admin/segments",
		"/api/admin/features/validate":                                                             "/api/admin/features/validate",
		"/api/admin/projects/default":                                                              "other",
		"/api/admin/features/x":                                                                    "other",
		"/api/admin/projects/default/features/x/variants":                                          "other",
	} {
		if got := unleashclient.EndpointTemplate("GET", path); got != want {
			t.Errorf("EndpointTemplate(%s) = %s", path, got)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("*:*.from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"UNLEASH_ADMIN_TOKEN_FILE": file, "UNLEASH_URL": "https://unleash.example.com/api"}
	cfg, err := unleashclient.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || cfg.Token != "*:*.from-file" || cfg.BaseURL != "https://unleash.example.com/api" {
		t.Errorf("from file: %+v, %v", cfg, err)
	}
	env["UNLEASH_ADMIN_TOKEN"] = "*:*.from-variable"
	if cfg, _ := unleashclient.ConfigFromEnv(func(k string) string { return env[k] }); cfg.Token != "*:*.from-variable" {
		t.Errorf("the variable should win: %+v", cfg)
	}
	delete(env, "UNLEASH_URL")
	if _, err := unleashclient.ConfigFromEnv(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "UNLEASH_URL") {
		t.Errorf("no URL: %v", err)
	}
	if _, err := unleashclient.ConfigFromEnv(func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "UNLEASH_ADMIN_TOKEN") {
		t.Errorf("no token: %v", err)
	}
}

func TestSearchPages(t *testing.T) {
	f, c, _ := newFake(t, map[string][]reply{
		unleashwire.SearchPath: {
			{200, nil, `{"features":[{"name":"a"},{"name":"b"}],"total":3}`},
			{200, nil, `{"features":[{"name":"c"}],"total":3}`},
		},
	})
	got, err := c.ArchivedFeatures(context.Background(), "web")
	if err != nil || strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("archived = %v, %v", got, err)
	}
	if off := f.got[1].URL.Query().Get("offset"); off != "2" {
		t.Errorf("second page at offset %s, want 2", off)
	}
}
