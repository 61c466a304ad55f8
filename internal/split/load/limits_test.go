package splitload

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/diag"
)

// gate is a flag other flags depend on.
const gate = `name: beta_gate
environments:
  Staging:
    treatments: [{name: "on"}, {name: "off"}]
    defaultTreatment: "off"
  Production:
    treatments: [{name: "on"}, {name: "off"}]
    defaultTreatment: "off"
`

// dependent names flag %s's treatment %s in Production.
const dependent = `name: checkout
environments:
  Production:
    treatments: [{name: "on"}, {name: "off"}]
    defaultTreatment: "off"
    rules:
      - condition:
          matchers:
            - type: IN_SPLIT
              depends: {splitName: %s, treatment: %s}
        buckets: [{treatment: "on", size: 100}]
`

func loadDiagnostics(t *testing.T, files map[string]string) []string {
	t.Helper()
	fsys := fstest.MapFS{"flags/flagsync.yaml": {Data: []byte(settings)}}
	for name, body := range files {
		fsys["flags/"+name] = &fstest.MapFile{Data: []byte(body)}
	}
	_, err := Load(fsys, "flags")
	if err == nil {
		return nil
	}
	var invalid *diag.InvalidError
	if !errors.As(err, &invalid) {
		t.Fatalf("Load: %v", err)
	}
	var got []string
	for _, d := range invalid.Diagnostics {
		got = append(got, d.String())
	}
	return got
}

func TestDependencyValidation(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"a flag Git configures there", map[string]string{"gate.yaml": gate, "checkout.yaml": fmt.Sprintf(dependent, "beta_gate", `"on"`)}, nil},
		{"a flag Git does not manage is checked at plan time", map[string]string{"checkout.yaml": fmt.Sprintf(dependent, "legacy_gate", `"on"`)}, nil},
		{"an environment Git leaves to Split is checked at plan time", map[string]string{
			"gate.yaml":     strings.Split(gate, "  Production:")[0],
			"checkout.yaml": fmt.Sprintf(dependent, "beta_gate", `"on"`)}, nil},
		{"unknown treatment of a Git flag", map[string]string{"gate.yaml": gate, "checkout.yaml": fmt.Sprintf(dependent, "beta_gate", `"onn"`)}, []string{
			`flags/checkout.yaml:10:58: environments.Production.rules[0].condition.matchers[0].depends.treatment: flag beta_gate has no treatment "onn" in Production; did you mean "on"?`,
		}},
		{"itself", map[string]string{"checkout.yaml": fmt.Sprintf(dependent, "checkout", `"on"`)}, []string{
			`flags/checkout.yaml:10:36: environments.Production.rules[0].condition.matchers[0].depends.splitName: flag checkout cannot depend on itself`,
		}},
		{"a cycle", map[string]string{
			"gate.yaml": strings.Replace(gate, "  Production:\n    treatments: [{name: \"on\"}, {name: \"off\"}]\n    defaultTreatment: \"off\"\n",
				"  Production:\n    treatments: [{name: \"on\"}, {name: \"off\"}]\n    defaultTreatment: \"off\"\n    rules:\n      - condition: {matchers: [{type: IN_SPLIT, depends: {splitName: checkout, treatment: \"on\"}}]}\n        buckets: [{treatment: \"on\", size: 100}]\n", 1),
			"checkout.yaml": fmt.Sprintf(dependent, "beta_gate", `"on"`)}, []string{
			`flags/gate.yaml:10:70: environments.Production.rules[0].condition.matchers[0].depends.splitName: dependency cycle in environment Production: beta_gate → checkout → beta_gate; a flag's definition is applied after those of the flags it names, which a cycle makes impossible`,
		}},
		{"not a flag name", map[string]string{"checkout.yaml": fmt.Sprintf(dependent, `"9 lives"`, `"on"`)}, []string{
			`flags/checkout.yaml:9:15: environments.Production.rules[0].condition.matchers[0]: depends.splitName "9 lives" is not a flag name`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := loadDiagnostics(t, tt.files)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("diagnostics:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestPublishedLimits checks that validate refuses what Split refuses, before anything is
// written: fewer than 2 treatments, more than 500 keys in a treatment, a configuration
// over 1 KB.
func TestPublishedLimits(t *testing.T) {
	keys := make([]string, 501)
	for i := range keys {
		keys[i] = fmt.Sprintf("u%d", i)
	}
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"one treatment", "name: paywall\nenvironments:\n  Production:\n    treatments: [{name: \"on\"}]\n    defaultTreatment: \"on\"\n", []string{
			`flags/f.yaml:4:17: environments.Production.treatments: must have at least 2 items`,
		}},
		{"501 keys", strings.Replace(valid, `keys: ["1"]`, "keys: ["+strings.Join(keys, ", ")+"]", 1), []string{
			`flags/f.yaml:6:15: environments.Production.treatments[0].keys: must have at most 500 items`,
		}},
		{"a configuration over 1 KB", strings.Replace(valid, `keys: ["1"]`, `configurations: '{"t": "`+strings.Repeat("é", 600)+`"}'`, 1), []string{
			`flags/f.yaml:6:25: environments.Production.treatments[0].configurations: is 1209 bytes; a treatment's configuration may hold at most 1024 (1 KB)`,
		}},
		{"numeric treatment names, quoted", strings.NewReplacer(`name: "on"`, `name: "1"`, `name: "off"`, `name: "2"`, `treatment: "on"`, `treatment: "1"`, `treatment: "off"`, `treatment: "2"`, `defaultTreatment: "off"`, `defaultTreatment: "2"`).Replace(valid), nil},
		{"numeric treatment names, unquoted", strings.NewReplacer(`name: "on"`, `name: 1`, `name: "off"`, `name: "2"`, `treatment: "on"`, `treatment: "1"`, `treatment: "off"`, `treatment: "2"`, `defaultTreatment: "off"`, `defaultTreatment: "2"`).Replace(valid), []string{
			`flags/f.yaml:5:15: environments.Production.treatments[0].name: must be a string, got 1; quote it: "1"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := loadDiagnostics(t, map[string]string{"f.yaml": tt.file})
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("diagnostics:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestIndentationErrorLine checks that a Split file whose indentation is broken deep
// inside is reported at the misindented line.
func TestIndentationErrorLine(t *testing.T) {
	bad := strings.Replace(valid, `    defaultTreatment: "off"`, `   defaultTreatment: "off"`, 1)
	got := loadDiagnostics(t, map[string]string{"f.yaml": bad})
	if len(got) != 1 || !strings.HasPrefix(got[0], "flags/f.yaml:8:4: YAML syntax error: bad indentation") {
		t.Errorf("diagnostics: %q", got)
	}
}
