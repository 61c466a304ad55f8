package splitclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/api"
)

func TestKeyHeaderModes(t *testing.T) {
	for _, tt := range []struct{ mode, key, want string }{
		{"", "pat.acct.id.secret", KeyHeaderXAPIKey},
		{"auto", "sat.acct.id.secret", KeyHeaderXAPIKey},
		{"", "0123456789abcdef", KeyHeaderBearer},
		{"X-API-KEY", "plain", KeyHeaderXAPIKey},
		{"bearer", "pat.looks.like.harness", KeyHeaderBearer},
	} {
		if got, err := keyHeaderOf(tt.mode, tt.key); err != nil || got != tt.want {
			t.Errorf("keyHeaderOf(%q, %q) = %q, %v; want %q", tt.mode, tt.key, got, err, tt.want)
		}
	}
	if _, err := keyHeaderOf("basic", "k"); err == nil {
		t.Error("an unknown mode was taken")
	}
}

func TestConfigFromEnvHarnessAndChanges(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, err := ConfigFromEnv(env(map[string]string{EnvAPIKey: "pat.a.b.c", EnvChangeApprovers: " a@x.io, ,b@x.io ", EnvPRURL: "https://git/pr/1",
		EnvChangeTitle: "{{.Flag}}", EnvRolloutStatus: "rs-1"}))
	if err != nil || cfg.APIKey != "pat.a.b.c" || len(cfg.Approvers) != 2 || cfg.Approvers[1] != "b@x.io" || cfg.PRURL != "https://git/pr/1" ||
		cfg.TitleTemplate != "{{.Flag}}" || cfg.RolloutStatusID != "rs-1" {
		t.Fatalf("cfg = %+v, %v", cfg, err)
	}
	if cfg, _ := ConfigFromEnv(env(map[string]string{EnvAPIKey: "harness", EnvAdminAPIKey: "admin"})); cfg.APIKey != "admin" {
		t.Errorf("SPLIT_ADMIN_API_KEY should win: %q", cfg.APIKey)
	}
	for name, vars := range map[string]map[string]string{
		"no key":          {},
		"bad template":    {EnvAdminAPIKey: "k", EnvChangeComment: "{{.Nope"},
		"unknown field":   {EnvAdminAPIKey: "k", EnvChangeTitle: "{{.Author}}"},
		"bad header mode": {EnvAdminAPIKey: "k", EnvKeyHeader: "cookie"},
	} {
		if _, err := ConfigFromEnv(env(vars)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestHarnessKeyGoesInXAPIKey checks that a Harness key is sent in x-api-key, never as
// Authorization, and is redacted from error bodies.
func TestHarnessKeyGoesInXAPIKey(t *testing.T) {
	const key = "pat.acct.tok.canary-9f3b"
	var gotAuth, gotKey string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotKey = r.Header.Get("Authorization"), r.Header.Get("x-api-key")
		http.Error(w, `{"code":400,"message":"bad key `+key+`"}`, http.StatusBadRequest)
	}))
	defer ts.Close()
	c, err := New(Config{BaseURL: ts.URL, APIKey: key, Budget: NewBudget(1000, 100000)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetFlag(context.Background(), "557c90d0-7c44-11ec-97df-eafbc0e90433", "f")
	if gotAuth != "" || gotKey != key {
		t.Errorf("Authorization %q, x-api-key %q", gotAuth, gotKey)
	}
	if err == nil || strings.Contains(err.Error(), "canary-9f3b") {
		t.Errorf("error leaks the key or is missing: %v", err)
	}
}

func TestWorkspaceIn(t *testing.T) {
	for path, want := range map[string][3]string{
		FlagPath("My WS", "f") + "?x=1":   {APIPrefix + "/splits/ws/", "My WS", "/f?x=1"},
		APIPrefix + "/environments/ws/ws": {APIPrefix + "/environments/ws/", "ws", ""},
		FileChangeRequestPath("w", "e"):   {APIPrefix + "/changeRequests/ws/", "w", "/environments/e"},
	} {
		before, ws, rest, ok := workspaceIn(path)
		if !ok || [3]string{before, ws, rest} != want {
			t.Errorf("%s: %q %q %q %t", path, before, ws, rest, ok)
		}
	}
	if _, _, _, ok := workspaceIn(WorkspacesPath); ok {
		t.Error("GET /workspaces names a workspace")
	}
}

func TestParseDefinitionWrite(t *testing.T) {
	for _, tt := range []struct {
		method, path, op string
	}{
		{"POST", DefinitionPath("w", "f", "Prod"), "create"},
		{"PATCH", DefinitionPath("w", "f", "Prod"), "update"},
		{"PUT", DefinitionPath("w", "f", "Prod"), "replace"},
		{"DELETE", DefinitionPath("w", "f", "Prod"), "delete"},
		{"PUT", KillPath("w", "f", "Prod"), "kill"},
		{"PUT", RestorePath("w", "f", "Prod"), "restore"},
		{"GET", DefinitionPath("w", "f", "Prod"), ""},
		{"PATCH", FlagPath("w", "f"), ""},
		{"POST", CreateFlagPath("w", "user"), ""},
	} {
		w, ok := parseDefinitionWrite(apiRequest(tt.method, tt.path))
		if ok != (tt.op != "") || w.op != tt.op || (ok && (w.workspace != "w" || w.flag != "f" || w.env != "Prod")) {
			t.Errorf("%s %s: %+v %t", tt.method, tt.path, w, ok)
		}
	}
}

func apiRequest(method, path string) api.Request { return api.Request{Method: method, Path: path} }

func TestParseFlagWrite(t *testing.T) {
	create := api.Request{Method: "POST", Path: CreateFlagPath("w", "user"), Body: []byte(`{"name":"f"}`)}
	for _, tt := range []struct {
		req api.Request
		op  string
	}{
		{create, "create"},
		{apiRequest("PATCH", FlagPath("w", "f")), "patch"},
		{apiRequest("DELETE", FlagPath("w", "f")), "delete"},
		{apiRequest("GET", FlagPath("w", "f")), ""},
		{apiRequest("PATCH", DefinitionPath("w", "f", "Prod")), ""},
	} {
		w, ok := parseFlagWrite(tt.req)
		if ok != (tt.op != "") || w.op != tt.op || (ok && (w.workspace != "w" || w.flag != "f" || w.env != "")) {
			t.Errorf("%s %s: %+v %t", tt.req.Method, tt.req.Path, w, ok)
		}
	}
}
