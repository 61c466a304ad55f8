package promote

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/")

// caseOptions reads a case's settings.yaml: flagsync.yaml's environments and promote keys,
// and the command's arguments under args.
func caseOptions(t *testing.T, dir string) Options {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "settings.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var opts Options
	root := doc.Content[0]
	if _, v := lookup(root, "promote"); v != nil {
		if opts.Settings, err = ParseSettings(v); err != nil {
			t.Fatal(err)
		}
	}
	if _, v := lookup(root, "environments"); v != nil {
		if err := v.Decode(&opts.Order); err != nil {
			t.Fatal(err)
		}
	}
	_, args := lookup(root, "args")
	_, from := lookup(args, "from")
	_, to := lookup(args, "to")
	opts.From, opts.To = from.Value, to.Value
	return opts
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/promote -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n%s", path, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the first lines where two texts differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
		}
	}
	return b.String()
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(dir, "in.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			opts := caseOptions(t, dir)
			res, err := Promote(src, opts)
			if err != nil {
				golden(t, filepath.Join(dir, "error.txt"), []byte(err.Error()+"\n"))
				return
			}
			golden(t, filepath.Join(dir, "out.yaml"), res.Out)
			sum, _ := json.MarshalIndent(res, "", "  ")
			golden(t, filepath.Join(dir, "summary.json"), append(sum, '\n'))
			if !res.Changed && !bytes.Equal(res.Out, src) {
				t.Error("unchanged, but the output differs from the input")
			}
			// Promoting again changes nothing: the target is the source, mapped and kept.
			again, err := Promote(res.Out, opts)
			if err != nil {
				t.Fatalf("second promotion: %v", err)
			}
			if again.Changed || !bytes.Equal(again.Out, res.Out) {
				t.Errorf("a second promotion changes %+v", again.Fields)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	src := []byte("featureKey: a\nenvironments:\n  staging: {featureEnabled: true, defaultVariationKey: on}\n")
	cases := []struct {
		name string
		src  string
		opts Options
		is   error
		want string
	}{
		{"no source", string(src), Options{From: "qa", To: "production"}, ErrNoSource, "environments has no qa (it has staging)"},
		{"no environments", "featureKey: a\n", Options{From: "staging", To: "production"}, ErrNoEnvironments, ""},
		{"flow environments", "environments: {staging: {featureEnabled: true}}\n", Options{From: "staging", To: "production"}, ErrUnsupported, "flow style"},
		{"aliases", "x: &a {featureEnabled: true}\nenvironments:\n  staging: *a\n", Options{From: "staging", To: "production"}, ErrUnsupported, "aliases"},
		{"same environment", string(src), Options{From: "staging", To: "staging"}, nil, "two different environments"},
		{"bad keep path", string(src), Options{From: "staging", To: "production", Settings: Settings{Keep: []string{"rolloutRules[x"}}}, nil, "missing ]"},
		{"keep path ends at an element", string(src), Options{From: "staging", To: "production", Settings: Settings{Keep: []string{"rolloutRules[0]"}}}, nil, "must end at a field"},
		{"not YAML", "a: [", Options{From: "staging", To: "production"}, nil, "read the flag file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Promote([]byte(c.src), c.opts)
			if err == nil {
				t.Fatal("no error")
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("%v is not %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "promote "+c.opts.From+" to "+c.opts.To+": ") {
				t.Errorf("error %q, want it to start with the environments and contain %q", err, c.want)
			}
		})
	}
}

func TestParseSettings(t *testing.T) {
	var n yaml.Node
	src := "segments:\n  staging: {403694: 403700, beta: gamma}\nkeep: [\"rolloutRules[*].exposition\"]\n"
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	s, err := ParseSettings(n.Content[0])
	if err != nil {
		t.Fatal(err)
	}
	if s.Segments["staging"]["403694"] != "403700" || s.Segments["staging"]["beta"] != "gamma" || s.Keep[0] != "rolloutRules[*].exposition" {
		t.Errorf("settings %+v", s)
	}
	for bad, want := range map[string]string{
		"segmnts: {}":                   "promote.segmnts: unknown key",
		"segments: [a]":                 "must map environments",
		"segments: {staging: [1]}":      "must map source ids",
		"segments: {staging: {1: [2]}}": "ids must be numbers or names",
		"keep: ['a..b']":                "empty field name",
	} {
		if err := yaml.Unmarshal([]byte(bad), &n); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseSettings(n.Content[0]); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", bad, err, want)
		}
	}
}

// TestExamplesKeepEveryOtherByte promotes staging to production in each example flag file
// that has both, and checks that the lines before production's block and after it are the
// input's own bytes, and that the file still reads back (Promote verifies the data).
func TestExamplesKeepEveryOtherByte(t *testing.T) {
	files, _ := filepath.Glob("../../examples/flags/*.yaml")
	more, _ := filepath.Glob("../../examples/flags/*/*.yaml")
	tested := 0
	for _, f := range append(files, more...) {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(src, []byte("\n  staging:")) || !bytes.Contains(src, []byte("\n  production:")) {
			continue
		}
		tested++
		res, err := Promote(src, Options{From: "staging", To: "production", Settings: Settings{Segments: map[string]map[string]string{"staging": {"403694": "403700"}}}})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// Before production's key, and from the first top-level line after it, the
		// output is the input's text.
		in, out := string(src), string(res.Out)
		start := strings.Index(in, "\n  production:") + 1
		end := len(in)
		for off := start; off < len(in); {
			nl := strings.IndexByte(in[off:], '\n')
			if nl < 0 {
				break
			}
			off += nl + 1
			if off < len(in) && in[off] != ' ' && in[off] != '\n' {
				end = off
				break
			}
		}
		if !strings.HasPrefix(out, in[:start]) {
			t.Errorf("%s: the text before production changed", f)
		}
		if !strings.HasSuffix(out, in[end:]) {
			t.Errorf("%s: the text after production's block changed", f)
		}
		if res.Reformatted {
			t.Errorf("%s: re-rendered without a keep path", f)
		}
	}
	if tested < 3 {
		t.Fatalf("only %d example files have staging and production", tested)
	}
}

// TestSegmentValues maps ids to names and back, in plain and quoted scalars, and in the
// re-rendered path, and checks the data the file then holds.
func TestSegmentValues(t *testing.T) {
	src := `featureKey: a
environments:
  staging:
    featureEnabled: true
    defaultVariationKey: on
    rolloutRules:
      - {name: r1, type: TARGETED_DELIVERY, segmentId: 403694, variationKey: on}
      - {name: r2, type: TARGETED_DELIVERY, segmentId: '17', variationKey: on}
      - {name: r3, type: TARGETED_DELIVERY, segmentId: "beta", variationKey: on}
  production:
    featureEnabled: false
    defaultVariationKey: off
    integrations: {deliveryRules: []}
`
	table := map[string]string{"403694": "gamma", "17": "18", "beta": "403700"}
	for _, keep := range [][]string{nil, {"integrations"}} {
		res, err := Promote([]byte(src), Options{From: "staging", To: "production",
			Settings: Settings{Segments: map[string]map[string]string{"staging": table}, Keep: keep}})
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Environments map[string]struct {
				RolloutRules []map[string]any `yaml:"rolloutRules"`
			} `yaml:"environments"`
		}
		if err := yaml.Unmarshal(res.Out, &doc); err != nil {
			t.Fatal(err)
		}
		rules := doc.Environments["production"].RolloutRules
		got := []any{rules[0]["segmentId"], rules[1]["segmentId"], rules[2]["segmentId"]}
		if want := []any{"gamma", "18", "403700"}; !reflect.DeepEqual(got, want) {
			t.Errorf("keep %v: segment ids %#v, want %#v\n%s", keep, got, want, res.Out)
		}
		if res.Reformatted != (keep != nil) {
			t.Errorf("keep %v: reformatted %v", keep, res.Reformatted)
		}
		if len(res.Segments) != 3 || len(res.Unmapped) != 0 {
			t.Errorf("keep %v: segments %+v unmapped %+v", keep, res.Segments, res.Unmapped)
		}
	}
}

// TestLayouts covers the combinations of flow and block blocks and a missing target.
func TestLayouts(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"inline to inline",
			"environments:\n  staging: {featureEnabled: true, defaultVariationKey: on}\n  production: {featureEnabled: false, defaultVariationKey: off}  # prod\nx: 1\n",
			"environments:\n  staging: {featureEnabled: true, defaultVariationKey: on}\n  production: {featureEnabled: true, defaultVariationKey: on}\nx: 1\n"},
		{"inline to new",
			"environments:\n  staging: {featureEnabled: true, defaultVariationKey: on}\nx: 1\n",
			"environments:\n  staging: {featureEnabled: true, defaultVariationKey: on}\n  production: {featureEnabled: true, defaultVariationKey: on}\nx: 1\n"},
		{"block to new at the end of the file",
			"x: 1\nenvironments:\n  staging:\n    featureEnabled: true\n    defaultVariationKey: on",
			"x: 1\nenvironments:\n  staging:\n    featureEnabled: true\n    defaultVariationKey: on\n  production:\n    featureEnabled: true\n    defaultVariationKey: on\n"},
		{"four-space indentation",
			"environments:\n    staging:\n        featureEnabled: true\n        defaultVariationKey: on\n    production:\n        featureEnabled: false\n",
			"environments:\n    staging:\n        featureEnabled: true\n        defaultVariationKey: on\n    production:\n        featureEnabled: true\n        defaultVariationKey: on\n"},
		{"quoted environment key",
			"environments:\n  staging:\n    featureEnabled: true\n  \"production\":\n    featureEnabled: false\n",
			"environments:\n  staging:\n    featureEnabled: true\n  \"production\":\n    featureEnabled: true\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Promote([]byte(c.in), Options{From: "staging", To: "production"})
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Out) != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", res.Out, c.want)
			}
			again, err := Promote(res.Out, Options{From: "staging", To: "production"})
			if err != nil || again.Changed {
				t.Errorf("second promotion: %v, changed %v", err, again != nil && again.Changed)
			}
		})
	}
}
