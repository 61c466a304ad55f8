package splitclient

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/flagsync/flagsync/internal/jsonpatch"
)

const canaryKey = "canary-admin-key-3b9f"

type recorded struct {
	method, path, query, auth, contentType, body string
}

// server answers with the handler and records every request.
func server(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int)) (*Client, *[]recorded) {
	t.Helper()
	var mu sync.Mutex
	var log []recorded
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		log = append(log, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)})
		n := len(log)
		mu.Unlock()
		h(w, r, n)
	}))
	t.Cleanup(ts.Close)
	c, err := New(Config{BaseURL: ts.URL, APIKey: canaryKey, BackoffBase: time.Millisecond, Budget: NewBudget(1000, 100000)})
	if err != nil {
		t.Fatal(err)
	}
	return c, &log
}

func TestRequestsCarryTheKeyAndTheDocumentedContentType(t *testing.T) {
	c, log := server(t, func(w http.ResponseWriter, r *http.Request, n int) { fmt.Fprint(w, `{}`) })
	p := jsonpatch.Patch{{Op: jsonpatch.OpReplace, Path: "/killed", Value: true}}
	if _, err := c.PatchDefinition(context.Background(), "ws 1", "flag/a", "Prod", p); err != nil {
		t.Fatal(err)
	}
	got := (*log)[0]
	if got.auth != "Bearer "+canaryKey || got.contentType != "application/json" || got.method != "PATCH" ||
		got.path != "/internal/api/v2/splits/ws/ws 1/flag/a/environments/Prod" || got.body != `[{"op":"replace","path":"/killed","value":true}]` {
		t.Errorf("request = %+v", got)
	}
	if err := c.Kill(context.Background(), "ws", "f", "Prod"); err != nil {
		t.Fatal(err)
	}
	if k := (*log)[1]; k.method != "PUT" || !strings.HasSuffix(k.path, "/f/environments/Prod/kill") {
		t.Errorf("kill = %+v", k)
	}
}

func TestRateLimitWaitsForTheLatestReset(t *testing.T) {
	h := http.Header{}
	h.Set("X-RateLimit-Reset-Seconds-Org", "3")
	h.Set("X-RateLimit-Reset-Seconds-IP", "7")
	h.Set("Retry-After", "1")
	if d, ok := rateLimitWait(h, time.Now()); !ok || d != 7*time.Second {
		t.Errorf("wait = %s, %t; want 7s (the larger reset)", d, ok)
	}
	h = http.Header{"Retry-After": {"2"}}
	if d, ok := rateLimitWait(h, time.Now()); !ok || d != 2*time.Second {
		t.Errorf("Retry-After alone: %s", d)
	}
	if _, ok := rateLimitWait(http.Header{}, time.Now()); ok {
		t.Error("no header gave a wait")
	}

	c, log := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("X-RateLimit-Reset-Seconds-Org", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		fmt.Fprint(w, `{"objects":[],"offset":0,"limit":50,"totalCount":0}`)
	})
	if _, err := c.ListFlags(context.Background(), "ws"); err != nil {
		t.Fatal(err)
	}
	if len(*log) != 2 {
		t.Errorf("%d requests, want a 429 then a 200", len(*log))
	}
}

func TestWritesAreNotResentAfterAnUnknownOutcome(t *testing.T) {
	c, log := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		http.Error(w, `{"code":500,"message":"boom `+canaryKey+`"}`, http.StatusInternalServerError)
	})
	_, err := c.Do(context.Background(), api.Request{Method: "PATCH", Path: DefinitionPath("ws", "f", "Prod"), Body: []byte(`[{"op":"add","path":"/treatments/0/keys/-","value":"4"}]`)})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != 500 || len(*log) != 1 {
		t.Fatalf("err = %v after %d requests, want one 500", err, len(*log))
	}
	if strings.Contains(err.Error(), canaryKey) || strings.Contains(ae.Body, canaryKey) {
		t.Errorf("the admin key leaked into the error: %v / %s", err, ae.Body)
	}
	// A read is retried.
	_, _ = c.ListFlags(context.Background(), "ws")
	if len(*log) != 1+DefaultMaxAttempts {
		t.Errorf("%d requests, want %d attempts of the read", len(*log)-1, DefaultMaxAttempts)
	}
}

func TestPagingWithoutTotalCountAndAServerThatIgnoresOffset(t *testing.T) {
	c, log := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		var objs []string
		for i := off; i < min(off+2, 5); i++ {
			objs = append(objs, fmt.Sprintf(`{"name":"f%d","trafficType":{"id":"t","name":"user"}}`, i))
		}
		fmt.Fprintf(w, `{"objects":[%s]}`, strings.Join(objs, ","))
	})
	c.cfg.PageSize = 2
	flags, err := c.ListFlags(context.Background(), "ws")
	if err != nil || len(flags) != 5 || flags[4].Name != "f4" || flags[0].TrafficType != "user" {
		t.Fatalf("flags = %+v, err %v", flags, err)
	}
	if q := (*log)[1].query; q != "limit=2&offset=2" {
		t.Errorf("second page query %q", q)
	}
	c2, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		fmt.Fprint(w, `{"objects":[{"name":"same"},{"name":"other"}],"totalCount":10}`)
	})
	c2.cfg.PageSize = 2
	if _, err := c2.ListFlags(context.Background(), "ws"); err == nil || !strings.Contains(err.Error(), "repeats the previous page") {
		t.Errorf("a server that ignores offset: %v", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte(canaryKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{EnvAdminAPIKey + "_FILE": file, EnvAPIURL: "https://gateway.example/fme"}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || cfg.APIKey != canaryKey || cfg.BaseURL != "https://gateway.example/fme" {
		t.Errorf("config = %+v, %v", cfg, err)
	}
	_, err = ConfigFromEnv(func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), EnvAdminAPIKey) {
		t.Errorf("no key: %v", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without a key worked")
	}
}

func TestEndpointTemplates(t *testing.T) {
	for path, want := range map[string]string{
		FlagsPath("w"):                       "/internal/api/v2/splits/ws/{wsId}",
		FlagPath("w", "f"):                   "/internal/api/v2/splits/ws/{wsId}/{flag}",
		DefinitionsPath("w", "Prod"):         "/internal/api/v2/splits/ws/{wsId}/environments/{env}",
		DefinitionPath("w", "f", "Prod"):     "/internal/api/v2/splits/ws/{wsId}/{flag}/environments/{env}",
		KillPath("w", "f", "Prod"):           "/internal/api/v2/splits/ws/{wsId}/{flag}/environments/{env}/kill",
		"/internal/api/v2/environments/ws/w": "/internal/api/v2/environments/ws/{wsId}",
		WorkspacesPath:                       "/internal/api/v2/workspaces",
		ChangeRequestsPath:                   "/internal/api/v2/changeRequests",
		FileChangeRequestPath("w", "e"):      "/internal/api/v2/changeRequests/ws/{wsId}/environments/{env}",
		"/internal/api/v2/segments/ws/w":     "other",
	} {
		if got := EndpointTemplate("GET", path); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
	if got := EndpointTemplate("POST", CreateFlagPath("w", "user")); got != "/internal/api/v2/splits/ws/{wsId}/trafficTypes/{trafficType}" {
		t.Errorf("create: %s", got)
	}
}
