package flagrepo

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestReadSettings(t *testing.T) {
	src := `siteCode: pzllysfw2f
environments: [development, staging, production]
promote:
  segments:
    staging: {403694: 403700}
  keep: [featureEnabled]
policies:
  - name: a
    message: m
    expr: "true"
`
	s, diags, err := ReadSettings(fstest.MapFS{"flags/flagsync.yaml": {Data: []byte(src)}}, "flags")
	if err != nil || len(diags) > 0 {
		t.Fatalf("err %v, diags %v", err, diags)
	}
	if s.File != "flags/flagsync.yaml" || len(s.Policies) != 1 || s.Policies[0].Name != "a" || s.Policies[0].Pos.Expr.Line != 10 {
		t.Errorf("settings %+v", s)
	}
	if strings.Join(s.Environments, ",") != "development,staging,production" || s.Promote.Segments["staging"]["403694"] != "403700" ||
		len(s.Promote.Keep) != 1 {
		t.Errorf("environments %v, promote %+v", s.Environments, s.Promote)
	}

	none, diags, err := ReadSettings(fstest.MapFS{"a.yaml": {Data: []byte("x: 1")}}, ".")
	if err != nil || len(diags) > 0 || none.File != "" {
		t.Errorf("no settings file: %+v %v %v", none, diags, err)
	}
}

func TestReadSettingsProblems(t *testing.T) {
	src := "promote:\n  keep: ['rolloutRules[']\npolicies:\n  - name: a\n    colour: red\n    expr: 'true'\n    message: m\n"
	_, diags, err := ReadSettings(fstest.MapFS{"flagsync.yaml": {Data: []byte(src)}}, ".")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range diags {
		got = append(got, d.String())
	}
	want := []string{
		"flagsync.yaml:2:3: promote: promote.keep: path \"rolloutRules[\": missing ]",
		"flagsync.yaml:5:5: policies[0].colour: unknown key (a policy has name, level, message, messageExpr and expr)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDeclaresVendor(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want bool
	}{
		{"vendor: split\nname: a\n", true},
		{"name: a\nvendor: \"split\"\n", true},
		{"name: a\nvendor: unleash\n", false},
		{"name: a\n# vendor: split\n", false},
		{"name: a\n  description: vendor: split\n", false},
		{"vendor: [split]\n", false},
		{"vendor: split\nname: [unclosed\n", true}, // does not parse: the line says so
		{"vendor: 'split'\n\tbad: tab\n", true},
		{"vendor: unleash\nname: [unclosed\n", false},
	} {
		if got := DeclaresVendor([]byte(c.doc), "split"); got != c.want {
			t.Errorf("DeclaresVendor(%q, split) = %v, want %v", c.doc, got, c.want)
		}
	}
}
