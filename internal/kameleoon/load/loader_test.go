package kload

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/flagrepo"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

const standardSettings = "siteCode: pzllysfw2f\nenvironments: [development, staging, production]\n"

// flagDir is the flag folder of directory fixtures that do not keep flags at their root.
var flagDir = map[string]string{"duplicate_flag": "flags", "ignore_in_settings": "flags"}

func loadFixture(t *testing.T, name string) error {
	t.Helper()
	p := filepath.Join("testdata", "invalid", name)
	if strings.HasSuffix(name, ".yaml") {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fsys := fstest.MapFS{
			"flags/flagsync.yaml": {Data: []byte(standardSettings)},
			"flags/" + name:       {Data: data},
		}
		_, err = Load(fsys, "flags")
		return err
	}
	dir := flagDir[name]
	if dir == "" {
		dir = "."
	}
	_, err := Load(os.DirFS(p), dir)
	return err
}

func diagnosticLines(t *testing.T, err error) []string {
	t.Helper()
	var inv *diag.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("Load error = %v (%T), want *diag.InvalidError", err, err)
	}
	lines := make([]string, len(inv.Diagnostics))
	for i, d := range inv.Diagnostics {
		lines[i] = d.String()
	}
	return lines
}

func TestLoadInvalid(t *testing.T) {
	if len(invalidCases) < 30 {
		t.Fatalf("only %d invalid cases", len(invalidCases))
	}
	for _, tc := range invalidCases {
		t.Run(strings.TrimSuffix(tc.name, ".yaml"), func(t *testing.T) {
			got := diagnosticLines(t, loadFixture(t, tc.name))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestEveryFixtureHasACase keeps testdata/invalid and the table in step.
func TestEveryFixtureHasACase(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("testdata", "invalid"))
	if err != nil {
		t.Fatal(err)
	}
	listed := make(map[string]bool)
	for _, tc := range invalidCases {
		listed[tc.name] = true
	}
	for _, e := range entries {
		if !listed[e.Name()] {
			t.Errorf("fixture %s has no case in invalidCases", e.Name())
		}
		delete(listed, e.Name())
	}
	for name := range listed {
		t.Errorf("case %s has no fixture", name)
	}
}

func TestExamplesValidate(t *testing.T) {
	d, err := Load(os.DirFS(filepath.Join("..", "..", "..")), "examples/flags")
	if err != nil {
		t.Fatalf("examples do not validate:\n%v", err)
	}
	if got := len(d.Flags); got < 6 || got > 10 {
		t.Errorf("examples hold %d flags, want 6 to 10", got)
	}
	sites := map[string]bool{}
	types := map[string]bool{}
	rules := map[string]bool{}
	archived := 0
	inSubfolder := 0
	for i, f := range d.Flags {
		sites[f.SiteCode] = true
		if i > 0 {
			prev := d.Flags[i-1]
			if prev.SiteCode > f.SiteCode || prev.SiteCode == f.SiteCode && prev.FeatureKey >= f.FeatureKey {
				t.Errorf("flags not sorted: %s before %s", prev.Ref(), f.Ref())
			}
		}
		if !strings.HasPrefix(f.Source.File, "examples/flags/") || f.Source.Line < 1 {
			t.Errorf("%s: Source = %+v", f.Ref(), f.Source)
		}
		if strings.Count(f.Source.File, "/") > 2 {
			inSubfolder++
		}
		for _, v := range f.Variables {
			types[v.Type] = true
		}
		for _, e := range f.Environments {
			for _, r := range e.RolloutRules {
				rules[r.Type] = true
			}
		}
		if f.Archived {
			archived++
		}
	}
	if len(sites) != 2 {
		t.Errorf("examples use %d sites, want 2", len(sites))
	}
	for _, typ := range []string{kmodel.TypeBoolean, kmodel.TypeNumber, kmodel.TypeString, kmodel.TypeJSON, kmodel.TypeJS, kmodel.TypeCSS} {
		if !types[typ] {
			t.Errorf("no example variable of type %s", typ)
		}
	}
	for _, typ := range []string{kmodel.RuleTargetedDelivery, kmodel.RuleProgressiveDelivery, kmodel.RuleExperimentation} {
		if !rules[typ] {
			t.Errorf("no example rule of type %s", typ)
		}
	}
	if archived == 0 || inSubfolder == 0 {
		t.Errorf("archived flags %d, flags in subfolders %d: want some of each", archived, inSubfolder)
	}
	want := kmodel.Settings{SiteCode: "pzllysfw2f", Environments: []string{"development", "staging", "production"}}
	if !reflect.DeepEqual(d.Settings, want) {
		t.Errorf("Settings = %+v, want %+v", d.Settings, want)
	}
}

// TestExampleFilesStartWithSchemaComment checks that editors find the schema of every
// example file.
func TestExampleFilesStartWithSchemaComment(t *testing.T) {
	root := filepath.Join("..", "..", "..", "examples", "flags")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		first, _, _ := strings.Cut(string(data), "\n")
		schemaFile := "flag.schema.json"
		if d.Name() == flagrepo.SettingsFile {
			schemaFile = "settings.schema.json"
		}
		rel, _ := filepath.Rel(filepath.Dir(p), filepath.Join("..", "..", "..", "schema", schemaFile))
		want := "# yaml-language-server: $schema=" + filepath.ToSlash(rel)
		if first != want {
			t.Errorf("%s starts with %q, want %q", p, first, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestYAMLTrapsReadAsWritten checks the values yaml.v3 would otherwise turn into
// something else.
func TestYAMLTrapsReadAsWritten(t *testing.T) {
	const file = `siteCode: pzllysfw2f
featureKey: traps
name: Traps
variables:
  - {key: n, type: NUMBER, value: 42}
  - {key: f, type: NUMBER, value: 1.50}
  - {key: b, type: BOOLEAN, value: true}
  - {key: s, type: STRING, value: 2025-12-11}
  - {key: h, type: STRING, value: 0x1F}
  - {key: e, type: STRING, value: ""}
variations:
  - key: off
  - key: on
    variables: [{key: n, value: -7}, {key: b, value: false}, {key: s, value: yes}]
  - key: no
environments:
  production:
    featureEnabled: true
    defaultVariationKey: off
    rolloutRules:
      - name: window
        type: PROGRESSIVE_DELIVERY
        exposition: 59.5
        variationKey: on
        release:
          releaseFrom: 2025-12-11T11:58:01
          releaseTo: 2025-12-13 11:58:01
          timeZone: Europe/Paris
`
	// releaseTo with a space is not in the schema's date-time form: check that it is kept
	// as written and reported, not turned into a time.
	_, err := Load(fstest.MapFS{"f.yaml": {Data: []byte(file)}}, ".")
	got := diagnosticLines(t, err)
	want := []string{`f.yaml:27:22: environments.production.rolloutRules[0].release.releaseTo: "2025-12-13 11:58:01" is not valid: a date-time such as 2025-12-11T11:58:01`}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	fixed := strings.Replace(file, "2025-12-13 11:58:01", "2025-12-13T11:58:01", 1)
	d, err := Load(fstest.MapFS{"f.yaml": {Data: []byte(fixed)}}, ".")
	if err != nil {
		t.Fatal(err)
	}
	f := d.Flags[0]
	values := map[string]string{}
	for _, v := range f.Variables {
		values[v.Key] = v.Value
	}
	wantValues := map[string]string{"n": "42", "f": "1.50", "b": "true", "s": "2025-12-11", "h": "0x1F", "e": ""}
	if !reflect.DeepEqual(values, wantValues) {
		t.Errorf("variable values = %v, want %v", values, wantValues)
	}
	wantOn := []kmodel.VariationVariable{{Key: "n", Value: "-7"}, {Key: "b", Value: "false"}, {Key: "s", Value: "yes"}}
	if !reflect.DeepEqual(f.Variations[1].Variables, wantOn) {
		t.Errorf("variation on = %+v, want %+v", f.Variations[1].Variables, wantOn)
	}
	if keys := []string{f.Variations[0].Key, f.Variations[1].Key, f.Variations[2].Key}; !reflect.DeepEqual(keys, []string{"off", "on", "no"}) {
		t.Errorf("variation keys = %q", keys)
	}
	rule := f.Environments["production"].RolloutRules[0]
	if rule.Release == nil || rule.Release.ReleaseFrom != "2025-12-11T11:58:01" || rule.Release.ReleaseTo != "2025-12-13T11:58:01" {
		t.Errorf("release = %+v", rule.Release)
	}
	if rule.Exposition == nil || *rule.Exposition != 59.5 {
		t.Errorf("exposition = %v", rule.Exposition)
	}
	if f.Source != (kmodel.Source{File: "f.yaml", Line: 2}) {
		t.Errorf("Source = %+v", f.Source)
	}
}

// TestManyProblemsInOneRun checks that every problem of every file comes out in one run,
// sorted by file, line and column, with the file count.
func TestManyProblemsInOneRun(t *testing.T) {
	fsys := fstest.MapFS{
		"flags/flagsync.yaml": {Data: []byte(standardSettings)},
		"flags/b.yaml": {Data: []byte(`featureKey: b
name: B
variations: [{key: off}, {key: on}]
environments:
  production:
    defaultVariationKey: onn
    rolloutRules:
      - name: r
        type: PROGRESSIVE_DELIVERY
        exposition: 101
        variationKey: on
        exposure: 3
`)},
		"flags/a.yaml": {Data: []byte(`featureKey: A
name: A
variations: [{key: off}]
environments:
  prod:
    defaultVariationKey: off
`)},
		"flags/ok.yaml":     {Data: []byte("featureKey: ok\nname: OK\nvariations: [{key: off}]\n")},
		"flags/sub/c.yml":   {Data: []byte("featureKey: c\nname: C\n\tvariations: []\n")},
		"flags/sub/d.yaml":  {Data: []byte("- a\n- b\n")},
		"flags/.hidden.yml": {Data: []byte("not: [a flag\n")},
		"flags/README.md":   {Data: []byte("# not YAML\n")},
		"other/x.yaml":      {Data: []byte("outside the flag folder\n")},
	}
	_, err := Load(fsys, "flags")
	got := diagnosticLines(t, err)
	want := []string{
		`flags/a.yaml:1:13: featureKey: "A" is not valid: lower-case letters, digits, '_' and '-' only`,
		`flags/a.yaml:5:3: environments.prod: unknown environment "prod"; did you mean "production"? (flagsync.yaml lists development, staging, production)`,
		`flags/b.yaml:6:26: environments.production.defaultVariationKey: unknown variation "onn"; did you mean "on"?`,
		`flags/b.yaml:10:21: environments.production.rolloutRules[0].exposition: must be <= 100`,
		`flags/b.yaml:12:9: environments.production.rolloutRules[0].exposure: unknown field "exposure"; did you mean "exposition"?`,
		`flags/sub/c.yml:3:1: tab character in indentation: YAML indents with spaces only`,
		`flags/sub/d.yaml:1:1: the top level must be a mapping of flag fields, got a list`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var inv *diag.InvalidError
	errors.As(err, &inv)
	if inv.Files != 5 || inv.FileCount() != 4 {
		t.Errorf("Files = %d, FileCount() = %d; want 5 and 4", inv.Files, inv.FileCount())
	}
	if err.Error() != strings.Join(want, "\n") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestLoadEmptyFolderAndNoSettings(t *testing.T) {
	d, err := Load(fstest.MapFS{"flags/.keep": {}}, "flags")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Flags) != 0 || !reflect.DeepEqual(d.Settings, kmodel.Settings{}) {
		t.Errorf("Load = %+v", d)
	}
	// An empty flagsync.yaml is allowed: every setting is optional.
	d, err = Load(fstest.MapFS{"flagsync.yaml": {Data: []byte("# nothing yet\n")}, "a.yaml": {Data: []byte("siteCode: pzllysfw2f\nfeatureKey: a\nname: A\nvariations: [{key: on}]\n")}}, ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Flags) != 1 || d.Flags[0].SiteCode != "pzllysfw2f" {
		t.Errorf("Load = %+v", d)
	}
}

// failingFS fails to read one file, as a broken disk or a Git object store might.
type failingFS struct {
	fstest.MapFS
	bad string
}

var errDisk = errors.New("disk on fire")

func (f failingFS) Open(name string) (fs.File, error) {
	if name == f.bad {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errDisk}
	}
	return f.MapFS.Open(name)
}

func (f failingFS) ReadFile(name string) ([]byte, error) {
	if name == f.bad {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errDisk}
	}
	return f.MapFS.ReadFile(name)
}

func TestLoadIOErrors(t *testing.T) {
	_, err := Load(fstest.MapFS{}, "missing")
	var inv *diag.InvalidError
	if err == nil || errors.As(err, &inv) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing folder: err = %v", err)
	}
	fsys := failingFS{MapFS: fstest.MapFS{
		"flags/a.yaml": {Data: []byte("featureKey: a\n")},
		"flags/b.yaml": {Data: []byte("featureKey: b\n")},
	}, bad: "flags/b.yaml"}
	_, err = Load(fsys, "flags")
	if !errors.Is(err, errDisk) || errors.As(err, &inv) || !strings.Contains(err.Error(), "flags/b.yaml") {
		t.Errorf("unreadable file: err = %v", err)
	}
	_, err = Load(fstest.MapFS{}, "../outside")
	if err == nil || errors.As(err, &inv) {
		t.Errorf("path outside the repository: err = %v", err)
	}
}

// TestIgnorePathsLoad: valid ignore lists in flagsync.yaml and in a flag file load as
// written, quoted or not.
func TestIgnorePathsLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"flags/flagsync.yaml": {Data: []byte(standardSettings + "ignore:\n  - environments.*.featureEnabled\n  - tags\n")},
		"flags/checkout.yaml": {Data: []byte(`featureKey: checkout
name: Checkout
variables: [{key: color, type: STRING, value: blue}]
variations: [{key: off}, {key: on, variables: [{key: color, value: green}]}]
environments:
  production:
    defaultVariationKey: off
    rolloutRules:
      - {name: beta testers, type: PROGRESSIVE_DELIVERY, exposition: 10, variationKey: on}
ignore:
  - environments.production.rolloutRules[name=beta testers].exposition
  - "variations[key=on].variables[key=color]"
  - environments.*.rolloutRules[*].state
`)},
	}
	d, err := Load(fsys, "flags")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.Settings.Ignore, []string{"environments.*.featureEnabled", "tags"}; !reflect.DeepEqual(got, want) {
		t.Errorf("settings ignore = %q, want %q", got, want)
	}
	want := []string{"environments.production.rolloutRules[name=beta testers].exposition", "variations[key=on].variables[key=color]", "environments.*.rolloutRules[*].state"}
	if got := d.Flags[0].Ignore; !reflect.DeepEqual(got, want) {
		t.Errorf("flag ignore = %q, want %q", got, want)
	}
}
