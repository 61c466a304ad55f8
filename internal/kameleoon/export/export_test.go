package kexport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/export"
	"github.com/flagsync/flagsync/internal/kameleoon"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kexport "github.com/flagsync/flagsync/internal/kameleoon/export"
	kload "github.com/flagsync/flagsync/internal/kameleoon/load"
	model "github.com/flagsync/flagsync/internal/kameleoon/model"
	kplan "github.com/flagsync/flagsync/internal/kameleoon/plan"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const (
	siteA = "siteaaaa01"
	siteB = "sitebbbb02"
)

// accountEnvironments are the seeded project's environments, deliberately not in the
// order export writes them (development, staging, production, then alphabetical).
var accountEnvironments = []string{"production", "qa", "development", "staging", "canary"}

// newAccount starts a sandbox seeded with testdata/account.json (flags in the API's
// read shape, per site) and returns it with a client for it.
func newAccount(t *testing.T) (*ksandbox.Server, *kclient.Client) {
	t.Helper()
	sb, ts := ksandboxtest.NewTestServer(t, ksandbox.Options{Environments: accountEnvironments, RatePer10s: -1, RatePerHour: -1})
	raw, err := os.ReadFile(filepath.Join("testdata", "account.json"))
	if err != nil {
		t.Fatal(err)
	}
	var account map[string][]json.RawMessage
	if err := json.Unmarshal(raw, &account); err != nil {
		t.Fatalf("testdata/account.json: %v", err)
	}
	for site, flags := range account {
		for _, f := range flags {
			if err := sb.SetFlagJSON(site, f); err != nil {
				t.Fatalf("seed %s: %v", site, err)
			}
		}
	}
	client, err := kclient.New(kclient.Config{
		BaseURL: ts.URL, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret,
		Budget: kclient.NewBudget(10000, 100000), BackoffBase: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	sb.ResetCalls()
	return sb, client
}

// exportTo reads the sites, builds the files and writes them into a new folder.
func exportTo(t *testing.T, client *kclient.Client, sites ...string) (string, *export.Export, []kexport.Site) {
	t.Helper()
	live, err := kexport.Read(context.Background(), client, sites)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kexport.Build(live, export.Options{Schema: "../schema"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := export.Write(dir, e.Files, false); err != nil {
		t.Fatal(err)
	}
	return dir, e, live
}

func allFlags(sites []kexport.Site) []model.Flag {
	var out []model.Flag
	for _, s := range sites {
		out = append(out, s.Flags...)
	}
	return out
}

// TestRoundTrip is the acceptance test: a varied account exported, loaded as a
// repository and planned against the same live flags gives no change at all.
func TestRoundTrip(t *testing.T) {
	sb, client := newAccount(t)
	dir, e, live := exportTo(t, client, siteA, siteB)

	// One list per site (the sandbox serves up to 100 flags a page), nothing else.
	var paths []string
	for _, c := range sb.Calls() {
		if c.Path != "/oauth/token" {
			paths = append(paths, c.Method+" "+c.Path)
		}
	}
	if want := []string{"GET /feature-flags", "GET /feature-flags"}; !slices.Equal(paths, want) {
		t.Errorf("export calls = %q, want one list per site %q", paths, want)
	}
	if e.Flags != 6 || e.Archived != 1 {
		t.Errorf("exported %d flags, %d archived; want 6 and 1", e.Flags, e.Archived)
	}
	wantFiles := []string{"flagsync.yaml",
		"siteaaaa01/checkout_redesign.yaml", "siteaaaa01/flagsync.flag.yaml", "siteaaaa01/legacy_widget.yaml", "siteaaaa01/simple.yaml",
		"sitebbbb02/search_ranking.yaml", "sitebbbb02/simple.yaml"}
	var got []string
	for _, f := range e.Files {
		got = append(got, f.Path)
	}
	if !slices.Equal(got, wantFiles) {
		t.Errorf("files = %q, want %q", got, wantFiles)
	}

	desired, err := kload.Load(os.DirFS(dir), ".")
	if err != nil {
		t.Fatalf("the exported files do not load:\n%v", err)
	}
	if want := []string{"development", "staging", "production", "canary", "qa"}; !slices.Equal(desired.Settings.Environments, want) {
		t.Errorf("flagsync.yaml environments = %q, want %q", desired.Settings.Environments, want)
	}
	if desired.Settings.SiteCode != "" {
		t.Errorf("flagsync.yaml of a two-site export names site %q", desired.Settings.SiteCode)
	}
	p, err := kplan.Compute(desired, allFlags(live), kplan.OptionsFor(desired.Settings))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 0 || len(p.Unmanaged) != 0 {
		var b strings.Builder
		_ = plan.RenderText(&b, p, plan.TextOptions{})
		t.Fatalf("the export does not plan to zero changes:\n%s", b.String())
	}

	// Archived flags are frozen for the planner; kexport.Verify compares them as if restored.
	check, err := kexport.Verify(e, live)
	if err != nil {
		t.Fatal(err)
	}
	if !check.OK() {
		var b strings.Builder
		_ = plan.RenderText(&b, check.Plan, plan.TextOptions{})
		t.Fatalf("Verify: diagnostics %v\n%s", check.Diagnostics, b.String())
	}

	// The whole sync pipeline, as a dry run against the same sandbox.
	sb.ResetCalls()
	rep, err := reconcile.Run(context.Background(), reconcile.Input{FS: os.DirFS(dir), Dir: ".", Vendors: []reconcile.Vendor{kameleoon.Vendor(client)}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Plan.Changes) != 0 || len(rep.Plan.Unmanaged) != 0 || sb.Writes() != 0 {
		t.Errorf("dry run: %d changes, %d unmanaged, %d writes", len(rep.Plan.Changes), len(rep.Plan.Unmanaged), sb.Writes())
	}
}

// TestVerifyCatchesLoss makes sure the round-trip checks can fail: a file that drops a
// field, or an archived flag whose content differs, shows up.
func TestVerifyCatchesLoss(t *testing.T) {
	_, client := newAccount(t)
	live, err := kexport.Read(context.Background(), client, []string{siteA})
	if err != nil {
		t.Fatal(err)
	}
	e, err := kexport.Build(live, export.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tamper := func(file, old, new string) *export.Export {
		c := *e
		c.Files = slices.Clone(e.Files)
		for i := range c.Files {
			if c.Files[i].Path == file {
				if !bytes.Contains(c.Files[i].Data, []byte(old)) {
					t.Fatalf("%s has no %q", file, old)
				}
				c.Files[i].Data = bytes.Replace(c.Files[i].Data, []byte(old), []byte(new), 1)
			}
		}
		return &c
	}
	tests := []struct {
		name     string
		export   *export.Export
		wantDiag bool
	}{
		{"exposition changed", tamper("checkout_redesign.yaml", "exposition: 12.5", "exposition: 12"), false},
		{"archived content changed", tamper("legacy_widget.yaml", "exposition: 100", "exposition: 99"), false},
		{"archived mark lost", tamper("legacy_widget.yaml", "archived: true", "archived: false"), false},
		{"quoted number unquoted in a name", tamper("flagsync.flag.yaml", `- key: "123"`, `- key: 123`), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check, err := kexport.Verify(tt.export, live)
			if err != nil {
				t.Fatal(err)
			}
			if check.OK() {
				t.Fatal("kexport.Verify found nothing")
			}
			if (len(check.Diagnostics) > 0) != tt.wantDiag {
				t.Errorf("diagnostics = %v, want some: %v", check.Diagnostics, tt.wantDiag)
			}
		})
	}
}

func TestExportIsByteIdentical(t *testing.T) {
	sb, client := newAccount(t)
	_, first, live := exportTo(t, client, siteA, siteB)

	// Again from the API, and from the same flags listed in another order.
	_, second, _ := exportTo(t, client, siteA, siteB)
	reversed := slices.Clone(live)
	for i := range reversed {
		reversed[i].Flags = slices.Clone(reversed[i].Flags)
		slices.Reverse(reversed[i].Flags)
	}
	third, err := kexport.Build(reversed, export.Options{Schema: "../schema"})
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []*export.Export{second, third} {
		if len(other.Files) != len(first.Files) {
			t.Fatalf("%d files, then %d", len(first.Files), len(other.Files))
		}
		for i := range first.Files {
			if other.Files[i].Path != first.Files[i].Path || !bytes.Equal(other.Files[i].Data, first.Files[i].Data) {
				t.Errorf("%s differs between two exports of the same flags", first.Files[i].Path)
			}
		}
	}
	if sb.Writes() != 0 {
		t.Errorf("export sent %d writes", sb.Writes())
	}
}

// TestGolden shows reviewers the format: the richest flag and flagsync.yaml of the
// two-site export. Regenerate with go test ./internal/export -update.
func TestGolden(t *testing.T) {
	_, client := newAccount(t)
	_, e, _ := exportTo(t, client, siteA, siteB)
	for _, name := range []string{"flagsync.yaml", "siteaaaa01/checkout_redesign.yaml", "siteaaaa01/flagsync.flag.yaml"} {
		i := slices.IndexFunc(e.Files, func(f export.File) bool { return f.Path == name })
		if i < 0 {
			t.Fatalf("no file %s", name)
		}
		golden := filepath.Join("testdata", "golden", strings.ReplaceAll(name, "/", "__"))
		if *update {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, e.Files[i].Data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./internal/export -update)", err)
		}
		if got := e.Files[i].Data; !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s:\n%s", name, golden, lineDiff(string(want), string(got)))
		}
	}
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 10; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
			shown++
		}
	}
	return b.String()
}

func TestSingleSiteLayout(t *testing.T) {
	_, client := newAccount(t)
	dir, e, live := exportTo(t, client, siteB)
	var got []string
	for _, f := range e.Files {
		got = append(got, f.Path)
		if f.Flag != nil && bytes.Contains(f.Data, []byte("siteCode:")) {
			t.Errorf("%s names its siteCode although flagsync.yaml has the default", f.Path)
		}
	}
	if want := []string{"flagsync.yaml", "search_ranking.yaml", "simple.yaml"}; !slices.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
	desired, err := kload.Load(os.DirFS(dir), ".")
	if err != nil {
		t.Fatal(err)
	}
	if desired.Settings.SiteCode != siteB {
		t.Errorf("flagsync.yaml siteCode = %q, want %q", desired.Settings.SiteCode, siteB)
	}
	p, err := kplan.Compute(desired, allFlags(live), kplan.OptionsFor(desired.Settings))
	if err != nil || len(p.Changes) != 0 || len(p.Unmanaged) != 0 {
		t.Errorf("plan: %v, %d changes, %d unmanaged", err, len(p.Changes), len(p.Unmanaged))
	}
	if !strings.HasPrefix(string(e.Files[1].Data), "# yaml-language-server: $schema=../schema/flag.schema.json\n# Exported from Kameleoon site sitebbbb02 by flagsync export.\n") {
		t.Errorf("header of %s:\n%s", e.Files[1].Path, e.Files[1].Data)
	}
}

// indentValue returns what follows "key: " in an encoded two-key mapping, its lines
// after the first indented by indent to sit at the same place in another file.
func indentValue(encoded []byte, key, indent string) string {
	text := string(encoded)
	start := strings.Index(text, key+": ")
	rest := text[start+len(key)+2:]
	// The value ends at the next line that starts a key at column 1.
	end := len(rest)
	for _, k := range []string{"\nvalue: ", "\nother: "} {
		if i := strings.Index(rest, k); i >= 0 && i+1 < end {
			end = i + 1
		}
	}
	lines := strings.SplitAfter(rest[:end], "\n")
	for i := 1; i < len(lines); i++ {
		if lines[i] != "" {
			lines[i] = indent + lines[i]
		}
	}
	return strings.Join(lines, "")
}

func TestEnvironmentWithoutDefaultVariationIsLeftOut(t *testing.T) {
	f := model.Flag{SiteCode: siteA, FeatureKey: "half", Name: "Half",
		Variations: []model.Variation{{Key: "off"}, {Key: "on"}},
		Environments: map[string]model.Environment{
			"production":  {FeatureEnabled: true, DefaultVariationKey: "on"},
			"development": {},
		}}
	sites := []kexport.Site{{Code: siteA, Flags: []model.Flag{f}}}
	e, err := kexport.Build(sites, export.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Notes) != 1 || !strings.Contains(e.Notes[0], "environment development is not in the file") {
		t.Errorf("notes = %q", e.Notes)
	}
	if bytes.Contains(e.Files[1].Data, []byte("development")) {
		t.Errorf("the environment without a default variation was written:\n%s", e.Files[1].Data)
	}
	check, err := kexport.Verify(e, sites)
	if err != nil {
		t.Fatal(err)
	}
	if !check.OK() {
		t.Errorf("Verify: %v %v", check.Diagnostics, check.Plan.Changes)
	}
}

func TestBuildRejectsUnsafeNames(t *testing.T) {
	for _, key := range []string{"../up", "a/b", ".hidden", ""} {
		sites := []kexport.Site{{Code: siteA, Flags: []model.Flag{{FeatureKey: key, Name: "x", Variations: []model.Variation{{Key: "a"}}}}}}
		if _, err := kexport.Build(sites, export.Options{}); err == nil {
			t.Errorf("feature key %q was accepted as a file name", key)
		}
	}
	if _, err := kexport.Build([]kexport.Site{{Code: siteA}, {Code: siteA}}, export.Options{}); err == nil {
		t.Error("a site listed twice was accepted")
	}
}

// TestQuoting checks every string the exporter writes reads back as the same string,
// and that the ambiguous ones are quoted for readers other than flagsync's loader.
func TestQuoting(t *testing.T) {
	tests := []struct {
		s      string
		quoted bool
	}{
		{"plain text", false},
		{"on", true}, {"off", true}, {"yes", true}, {"No", true}, {"y", true}, {"true", true}, {"False", true},
		{"null", true}, {"~", true}, {"", true},
		{"42", true}, {"-0.5", true}, {"1e3", true}, {"0x1F", true}, {"0755", true}, {"1:30", true}, {".inf", true},
		{"2025-12-11", true}, {"2025-12-11T11:58:01", true}, {"2025-12-11 11:58", true},
		{"Checkout: redesign", true}, {"- item", true}, {"#hash", true}, {"a # comment", true},
		{"{\"a\": 1}", true}, {"[1, 2]", true}, {"&anchor", true}, {"*alias", true}, {"!tag", true},
		{" leading space", true}, {"trailing space ", true}, {"multi\nline\n", false}, {"tab\there", true},
		{"trailing space \nnext", true}, {"crlf\r\nline", true}, {"  indented first line\nsecond\n\n", false}, {"no final newline\nx", false},
		{"café ✓", false}, {"bell\a", true},
		{"Europe/Paris", false}, {"a@example.com", false}, {"managed-by-flagsync", false},
	}
	for _, tt := range tests {
		n := export.Str(tt.s)
		m := export.NewMapping()
		m.Add("value", n)
		m.Add("other", export.Str(tt.s))
		out, err := export.EncodeYAML(m.Node())
		if err != nil {
			t.Fatal(err)
		}
		isQuoted := strings.HasPrefix(string(out), `value: "`) || strings.HasPrefix(string(out), `value: '`)
		if tt.quoted && !isQuoted {
			t.Errorf("%q is written unquoted: %s", tt.s, out)
		}
		if !tt.quoted && isQuoted {
			t.Errorf("%q is quoted needlessly: %s", tt.s, out)
		}
		// kexport.Read back through the flag loader: as a variable value (kept as the literal
		// text) and as a name (a typed scalar).
		file := "featureKey: k\nname: " + indentValue(out, "other", "") + "variables:\n  - key: v\n    type: STRING\n    value: " + indentValue(out, "value", "    ") +
			"variations:\n  - key: a\n"
		if tt.s == "" {
			continue // a name must not be empty; the empty value is in the round trip
		}
		d, err := kload.Load(fstest.MapFS{"f.yaml": {Data: []byte(file)}, "flagsync.yaml": {Data: []byte("siteCode: siteaaaa01\n")}}, ".")
		if err != nil {
			t.Errorf("%q: the written file does not load: %v\n%s", tt.s, err, file)
			continue
		}
		if got := d.Flags[0].Variables[0].Value; got != tt.s {
			t.Errorf("value %q reads back as %q", tt.s, got)
		}
		if got := d.Flags[0].Name; got != tt.s {
			t.Errorf("name %q reads back as %q", tt.s, got)
		}
	}
}
