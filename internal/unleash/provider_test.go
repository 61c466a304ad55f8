package unleash_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/provider/providertest/fake"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/unleash"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestProviderWords(t *testing.T) {
	p := unleash.Provider()
	h := p.Help()
	if p.Name() != "unleash" || h.Service != "Unleash" || p.Files().Service() != h.Service || h.Scope != "project" {
		t.Errorf("name %q, help %+v, files service %q", p.Name(), h, p.Files().Service())
	}
	for _, want := range []string{"UNLEASH_URL", "--unleash-url", "UNLEASH_ADMIN_TOKEN", "no sandbox"} {
		if !strings.Contains(h.Credentials, want) {
			t.Errorf("credentials %q do not name %s", h.Credentials, want)
		}
	}
	// The connection flags are the URL's alone: a secret is never a flag.
	flags := p.Flags()
	if len(flags) != 1 || flags[0].Name != "unleash-url" || flags[0].EnvDefault != "UNLEASH_URL" || !flags[0].EnvByProvider ||
		!strings.Contains(flags[0].Usage, "UNLEASH_ADMIN_TOKEN (or _FILE)") {
		t.Errorf("flags = %+v", flags)
	}
	e, ok := p.(provider.Exporter)
	if !ok || len(e.ExportFlags()) != 1 || e.ExportFlags()[0].Name != "project" {
		t.Fatalf("exporter %v", ok)
	}
}

func TestProviderCheck(t *testing.T) {
	p := unleash.Provider()
	for _, tc := range []struct {
		url     string
		sandbox bool
		want    string // "" for no error
	}{
		{"", false, ""},
		// --sandbox is every service's flag: a repository without Unleash files may use it.
		{"", true, ""},
		{"https://unleash.example.com", false, ""},
		{"http://127.0.0.1:4242/api", false, ""},
		{"https://unleash.example.com", true, "--sandbox excludes --unleash-url"},
		{"unleash.example.com", false, "--unleash-url: \"unleash.example.com\" is not an http(s) URL"},
		{"https://unleash.example.com/?x=1", false, "is not an http(s) URL"},
	} {
		err := p.Check(provider.ConnectInput{Values: provider.Values{"unleash-url": tc.url}, Sandbox: tc.sandbox, Getenv: env(nil)})
		var usage *provider.UsageError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("url %q sandbox %t: %v", tc.url, tc.sandbox, err)
		case tc.want != "" && (!errors.As(err, &usage) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("url %q sandbox %t: %v, want a usage error with %q", tc.url, tc.sandbox, err, tc.want)
		}
	}
}

func TestProviderConnect(t *testing.T) {
	p := unleash.Provider()
	ctx := context.Background()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("*:*.from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	connect := func(url string, e map[string]string) (*provider.Connection, error) {
		return provider.Connect(ctx, p, nil, provider.Options{Values: provider.Values{"unleash-url": url}, Getenv: env(e)})
	}

	// The SDKs' form of UNLEASH_URL, ending in /api, is the server's root.
	conn, err := connect("", map[string]string{"UNLEASH_URL": "https://unleash.example.com/api", "UNLEASH_ADMIN_TOKEN_FILE": tokenFile})
	if err != nil || conn.Service != "Unleash" || conn.Where != "Unleash (https://unleash.example.com)" || conn.Budget == nil || conn.Vendor.Service() != "Unleash" {
		t.Fatalf("connect = %+v, %v", conn, err)
	}
	conn.Close()
	// --unleash-url wins over UNLEASH_URL.
	conn, err = connect("http://127.0.0.1:4242", map[string]string{"UNLEASH_URL": "https://unleash.example.com", "UNLEASH_ADMIN_TOKEN": "*:*.x"})
	if err != nil || conn.Where != "Unleash (http://127.0.0.1:4242)" {
		t.Fatalf("connect with --unleash-url = %+v, %v", conn, err)
	}

	_, err = connect("", map[string]string{"UNLEASH_URL": "https://unleash.example.com"})
	if err == nil || !strings.Contains(err.Error(), "UNLEASH_ADMIN_TOKEN (or UNLEASH_ADMIN_TOKEN_FILE) not set") || !strings.Contains(err.Error(), "docs/unleash.md") {
		t.Errorf("without a token: %v", err)
	}
	_, err = connect("", map[string]string{"UNLEASH_ADMIN_TOKEN": "*:*.x"})
	if err == nil || !strings.Contains(err.Error(), "UNLEASH_URL not set") || !strings.Contains(err.Error(), "--unleash-url") {
		t.Errorf("without a URL: %v", err)
	}
}

// TestProviderRefusesTheSandbox: Unleash has no embedded sandbox; --sandbox for Unleash
// files, and flagsync sandbox --vendor unleash, are usage errors that say what to do
// instead, and never fall back to a real server.
func TestProviderRefusesTheSandbox(t *testing.T) {
	p := unleash.Provider()
	fsys := fstest.MapFS{
		"flags/flagsync.yaml": {Data: []byte("vendor: unleash\n")},
		"flags/a.yaml":        {Data: []byte("name: a\n")},
		"flags/b.yaml":        {Data: []byte("name: b\n")},
	}
	l, err := reconcile.Load([]reconcile.Vendor{p.Files()}, reconcile.Source{FS: fsys, Dir: "flags"})
	if err != nil {
		t.Fatal(err)
	}
	reg := provider.NewRegistry()
	reg.Register(p)
	// Credentials in the environment change nothing: --sandbox never reaches a server.
	_, err = reg.Connect(context.Background(), l, provider.Options{Values: provider.Defaults(p.Flags()), Sandbox: true,
		Getenv: env(map[string]string{"UNLEASH_URL": "https://unleash.example.com", "UNLEASH_ADMIN_TOKEN": "*:*.x"})})
	var usage *provider.UsageError
	if !errors.As(err, &usage) {
		t.Fatalf("connect with --sandbox: %v, want a usage error", err)
	}
	for _, want := range []string{"2 Unleash flag files", "no embedded sandbox", "UNLEASH_URL", "UNLEASH_ADMIN_TOKEN", "without --sandbox", "docs/unleash.md"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}

	sb := p.Sandbox()
	if sb.Usage.Text == "" || sb.New != nil {
		t.Fatal("the missing sandbox is not described, or a New is declared")
	}
	if !strings.Contains(sb.None, "no embedded sandbox") || !strings.Contains(sb.None, "UNLEASH_URL") {
		t.Errorf("sandbox --vendor unleash: %q", sb.None)
	}
}

// TestFilesVendorLoadsOnly: the provider's Files vendor claims and loads, and refuses to
// call anything; its repository is bound to a connected vendor, not loaded again.
func TestFilesVendorLoadsOnly(t *testing.T) {
	p := unleash.Provider()
	if _, err := p.Files().Do(context.Background(), api.Request{Method: "GET", Path: "/api/admin/projects"}); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Errorf("Do without a client: %v", err)
	}
	fsys := fstest.MapFS{"flags/flagsync.yaml": {Data: []byte("vendor: unleash\n")}, "flags/a.yaml": {Data: []byte("name: a\n")}}
	repo, err := p.Files().Load(reconcile.Source{FS: fsys, Dir: "flags"})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Read(context.Background(), false); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Errorf("Read without a client: %v", err)
	}
	b, ok := repo.(reconcile.Binder)
	if !ok {
		t.Fatal("the repository is not a reconcile.Binder: a sync would load the files twice")
	}
	if got := b.Bind(fake.Vendor(nil)); got != nil {
		t.Errorf("bound to another service's vendor: %v", got)
	}
	conn, err := provider.Connect(context.Background(), p, repo, provider.Options{Values: provider.Defaults(p.Flags()),
		Getenv: env(map[string]string{"UNLEASH_URL": "http://127.0.0.1:1", "UNLEASH_ADMIN_TOKEN": "*:*.x"})})
	if err != nil {
		t.Fatal(err)
	}
	bound := b.Bind(conn.Vendor)
	if bound == nil || len(bound.Files()) != 1 || bound.Files()[0].Flag.Key != "a" {
		t.Fatalf("bound = %v", bound)
	}
	// Restricting the bound repository leaves the loaded one whole.
	bound.Restrict(nil)
	if len(bound.Files()) != 0 || len(repo.Files()) != 1 {
		t.Errorf("after Restrict: bound %d flags, loaded %d; want 0 and 1", len(bound.Files()), len(repo.Files()))
	}
}

func TestProviderCheckExport(t *testing.T) {
	e := unleash.Provider().(provider.Exporter)
	if err := e.CheckExport(provider.Values{"project": []string{"default", "web-2"}}); err != nil {
		t.Errorf("good projects: %v", err)
	}
	if err := e.CheckExport(provider.Values{}); err != nil {
		t.Errorf("no project (the default one): %v", err)
	}
	var usage *provider.UsageError
	if err := e.CheckExport(provider.Values{"project": []string{"../etc"}}); !errors.As(err, &usage) {
		t.Errorf("a path as project: %v", err)
	}
}
