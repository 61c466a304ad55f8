package splitload

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/diag"
)

const settings = "vendor: split\nworkspace: ws-1\ntrafficType: user\nenvironments: [Staging, Production]\n"

const valid = `name: paywall
environments:
  Production:
    treatments:
      - name: "on"
        keys: ["1"]
      - name: "off"
    defaultTreatment: "off"
    rules:
      - condition:
          matchers:
            - {type: IN_SEGMENT, string: beta}
        buckets:
          - {treatment: "on", size: 50}
          - {treatment: "off", size: 50}
`

// TestDiagnostics checks that Split files get the loader's diagnostics: file:line:col,
// the field, a plain message, and typo hints.
func TestDiagnostics(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // below flags/; flagsync.yaml is the Split settings unless given
		want  []string
	}{
		{"unknown field with a typo", map[string]string{"f.yaml": strings.Replace(valid, "defaultTreatment:", "defaultTreatmnt:", 1)}, []string{
			`flags/f.yaml:4:5: environments.Production: missing required field "defaultTreatment"`,
			`flags/f.yaml:8:5: environments.Production.defaultTreatmnt: unknown field "defaultTreatmnt"; did you mean "defaultTreatment"?`,
		}},
		{"server-owned field", map[string]string{"f.yaml": "id: abc\n" + valid}, []string{
			`flags/f.yaml:1:1: id: unknown field "id"; ids are set by Split and not written in flag files`,
		}},
		{"bucket sizes", map[string]string{"f.yaml": strings.Replace(valid, "size: 50}\n          - {treatment: \"off\", size: 50}", "size: 50}\n          - {treatment: \"off\", size: 40}", 1)}, []string{
			`flags/f.yaml:14:11: environments.Production.rules[0].buckets: bucket sizes add up to 90; they must add up to 100`,
		}},
		{"unknown treatment with a typo hint", map[string]string{"f.yaml": strings.Replace(valid, `defaultTreatment: "off"`, `defaultTreatment: "offf"`, 1)}, []string{
			`flags/f.yaml:8:23: environments.Production.defaultTreatment: unknown treatment "offf"; did you mean "off"?`,
		}},
		{"traffic allocation", map[string]string{"f.yaml": valid + "    trafficAllocation: 150\n"}, []string{
			`flags/f.yaml:16:24: environments.Production.trafficAllocation: must be <= 100`,
		}},
		{"a key in two treatments", map[string]string{"f.yaml": strings.Replace(valid, `      - name: "off"`, "      - name: \"off\"\n        keys: [\"1\"]", 1)}, []string{
			`flags/f.yaml:8:16: environments.Production.treatments[1].keys[0]: key "1" is already targeted by treatments[0]`,
		}},
		{"matcher type with a typo", map[string]string{"f.yaml": strings.Replace(valid, "IN_SEGMENT", "IN_SEGMNT", 1)}, []string{
			`flags/f.yaml:12:22: environments.Production.rules[0].condition.matchers[0].type: must be one of IN_SEGMENT, EQUAL_SET, ANY_OF_SET, ALL_OF_SET, PART_OF_SET, ON_DATE, ON_OR_AFTER_DATE, ON_OR_BEFORE_DATE, BETWEEN_DATE, BOOLEAN, EQUAL_NUMBER, LESS_THAN_OR_EQUAL_NUMBER, GREATER_THAN_OR_EQUAL_NUMBER, BETWEEN_NUMBER, IN_LIST_STRING, STARTS_WITH_STRING, ENDS_WITH_STRING, CONTAINS_STRING, MATCHES_STRING, IN_SPLIT, got "IN_SEGMNT"; did you mean "IN_SEGMENT"?`,
		}},
		{"matcher without its value", map[string]string{"f.yaml": strings.Replace(valid, "{type: IN_SEGMENT, string: beta}", "{type: IN_SEGMENT, strings: [beta]}", 1)}, []string{
			`flags/f.yaml:12:15: environments.Production.rules[0].condition.matchers[0]: a IN_SEGMENT matcher needs "string"`,
			`flags/f.yaml:12:15: environments.Production.rules[0].condition.matchers[0]: a IN_SEGMENT matcher takes "string", not "strings"`,
		}},
		{"unquoted number key", map[string]string{"f.yaml": strings.Replace(valid, `keys: ["1"]`, `keys: [1]`, 1)}, []string{
			`flags/f.yaml:6:16: environments.Production.treatments[0].keys[0]: must be a string, got 1; quote it: "1"`,
		}},
		{"configurations not JSON", map[string]string{"f.yaml": strings.Replace(valid, `keys: ["1"]`, `configurations: "{color: red}"`, 1)}, []string{
			`flags/f.yaml:6:25: environments.Production.treatments[0].configurations: must be JSON text`,
		}},
		{"unknown environment", map[string]string{"f.yaml": strings.Replace(valid, "  Production:", "  Productoin:", 1)}, []string{
			`flags/f.yaml:3:3: environments.Productoin: unknown environment "Productoin"; did you mean "Production"? (flagsync.yaml lists Staging, Production)`,
		}},
		{"reserved flag name", map[string]string{"f.yaml": strings.Replace(valid, "name: paywall", "name: datetime", 1)}, []string{
			`flags/f.yaml:1:7: name: "datetime" is a reserved word and cannot name a flag`,
		}},
		{"duplicate flag", map[string]string{"a.yaml": valid, "b/b.yaml": valid}, []string{
			`flags/a.yaml:1:1: name: flag ws-1/paywall is also defined in flags/b/b.yaml:1:1`,
			`flags/b/b.yaml:1:1: name: flag ws-1/paywall is also defined in flags/a.yaml:1:1`,
		}},
		{"tab in the indentation", map[string]string{"f.yaml": "name: x\nenvironments:\n\tProduction: {}\n"}, []string{
			`flags/f.yaml:3:1: tab character in indentation: YAML indents with spaces only`,
		}},
		{"empty file", map[string]string{"f.yaml": ""}, []string{
			`flags/f.yaml:1:1: file is empty: a Split flag file needs at least name and environments`,
		}},
		{"settings", map[string]string{"flagsync.yaml": "vendor: split\nworkspace: ws-1\nprun: true\n", "f.yaml": valid}, []string{
			`flags/flagsync.yaml:3:1: prun: unknown field "prun"; did you mean "prune"?`,
		}},
		{"a Split file in a Kameleoon repository names its workspace", map[string]string{"flagsync.yaml": "siteCode: pzllysfw2f\n", "f.yaml": "vendor: split\n" + valid}, []string{
			`flags/f.yaml:1:1: missing required field "trafficType" (or set a default in flagsync.yaml with vendor: split)`,
			`flags/f.yaml:1:1: missing required field "workspace" (or set a default in flagsync.yaml with vendor: split)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			if _, ok := tt.files["flagsync.yaml"]; !ok {
				fsys["flags/flagsync.yaml"] = &fstest.MapFile{Data: []byte(settings)}
			}
			for name, body := range tt.files {
				fsys["flags/"+name] = &fstest.MapFile{Data: []byte(body)}
			}
			_, err := Load(fsys, "flags")
			var invalid *diag.InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("Load: %v, want diagnostics", err)
			}
			var got []string
			for _, d := range invalid.Diagnostics {
				got = append(got, d.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("diagnostics:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestLoadDefaultsAndClaims(t *testing.T) {
	fsys := fstest.MapFS{
		"flags/flagsync.yaml":   {Data: []byte("siteCode: pzllysfw2f\n")},
		"flags/kameleoon.yaml":  {Data: []byte("featureKey: k\nname: K\nvariations: [{key: a}]\n")},
		"flags/split/s.yaml":    {Data: []byte("vendor: split\nworkspace: ws-9\ntrafficType: account\n" + valid)},
		"flags/.hidden/x.yaml":  {Data: []byte("vendor: split\n")},
		"flags/split/notes.txt": {Data: []byte("vendor: split\n")},
	}
	r, err := Survey(fsys, "flags")
	if err != nil {
		t.Fatal(err)
	}
	if r.Whole || len(r.SplitFiles) != 1 || r.SplitFiles[0] != "flags/split/s.yaml" || r.OtherFiles != 1 || !r.Kameleoon() || !r.Split() {
		t.Errorf("survey = %+v", r)
	}
	d, err := Load(fsys, "flags")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Flags) != 1 || d.Flags[0].Workspace != "ws-9" || d.Flags[0].TrafficType != "account" || d.Flags[0].Source.File != "flags/split/s.yaml" {
		t.Errorf("flags = %+v", d.Flags)
	}
	fsys["flags/flagsync.yaml"] = &fstest.MapFile{Data: []byte(settings)}
	delete(fsys, "flags/kameleoon.yaml")
	if r, _ := Survey(fsys, "flags"); !r.Whole || r.Kameleoon() {
		t.Errorf("a Split repository: %+v", r)
	}
	d, err = Load(fsys, "flags")
	if err != nil {
		t.Fatal(err)
	}
	if d.Settings.Workspace != "ws-1" || d.Flags[0].Workspace != "ws-9" || len(d.EnvironmentNames()) != 2 {
		t.Errorf("desired = %+v", d)
	}
}
