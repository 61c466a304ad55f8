package kameleoon

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"testing"
	"testing/fstest"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"

	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/schema"
)

var updatePolicyGolden = flag.Bool("update", false, "rewrite the golden policy plans of testdata/policy")

// policyGoldenNow is the time the golden policy plans are computed at.
var policyGoldenNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// TestPolicyGolden plans every testdata/policy/<policy>: the flag files of desired/, with
// a flagsync.yaml holding the policy of that name as docs/policies.md writes it (at level
// deny, then warn), against live.json (the API's read shape), through the whole pipeline
// (a dry run). The plans are compared with deny.plan.{txt,md,json} and
// warn.plan.{txt,md,json}; `go test ./internal/kameleoon -run TestPolicyGolden -update`
// rewrites them.
func TestPolicyGolden(t *testing.T) {
	entries, err := os.ReadDir("testdata/policy")
	if err != nil {
		t.Fatal(err)
	}
	docs := documentedPolicies(t)
	if len(entries) < 4 {
		t.Fatalf("%d cases, want one per example policy", len(entries))
	}
	for _, e := range entries {
		name := e.Name()
		entry, ok := docs[name]
		if !ok {
			t.Fatalf("testdata/policy/%s: docs/policies.md has no policy of that name", name)
		}
		for _, level := range []string{"deny", "warn"} {
			t.Run(name+"/"+level, func(t *testing.T) {
				dir := filepath.Join("testdata", "policy", name)
				fsys := fstest.MapFS{"flags/flagsync.yaml": {Data: settingsWith(t, entry, level)}}
				files, err := os.ReadDir(filepath.Join(dir, "desired"))
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range files {
					b, err := os.ReadFile(filepath.Join(dir, "desired", f.Name()))
					if err != nil {
						t.Fatal(err)
					}
					fsys[path.Join("flags", f.Name())] = &fstest.MapFile{Data: b}
				}
				liveJSON, err := os.ReadFile(filepath.Join(dir, "live.json"))
				if err != nil {
					t.Fatal(err)
				}
				live, err := kclient.DecodeFlags(liveJSON)
				if err != nil {
					t.Fatal(err)
				}
				client := &fakeClient{live: live}
				rep, err := reconcile.Run(context.Background(), reconcile.Input{Revision: "4f1c2a9e0b7d3c5a8e6f1b2d4c9a7e3f5b8d0c1a", FS: fsys, Dir: "flags",
					Vendors: []reconcile.Vendor{Vendor(client)}, DryRun: true, Now: func() time.Time { return policyGoldenNow }})
				if err != nil {
					t.Fatal(err)
				}
				if len(rep.Plan.PolicyRefused()) == 0 && len(rep.Plan.Warnings) == 0 {
					t.Fatal("the policy refused nothing: the case shows nothing")
				}
				if level == "warn" && len(rep.Plan.PolicyRefused()) > 0 {
					t.Errorf("a warn policy refused changes: %+v", rep.Plan.PolicyRefused())
				}
				if level == "deny" && len(rep.Plan.Warnings) > 0 {
					t.Errorf("a deny policy warned: %+v", rep.Plan.Warnings)
				}
				var txt, md, js bytes.Buffer
				if err := plan.RenderText(&txt, rep.Plan, plan.TextOptions{}); err != nil {
					t.Fatal(err)
				}
				if err := plan.RenderMarkdown(&md, rep.Plan, plan.MarkdownOptions{}); err != nil {
					t.Fatal(err)
				}
				if err := plan.RenderJSON(&js, rep.Plan); err != nil {
					t.Fatal(err)
				}
				var doc any
				if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
					t.Fatal(err)
				}
				if err := planSchema(t).Validate(doc); err != nil {
					t.Errorf("the JSON plan does not follow schema/plan.schema.json: %v", err)
				}
				for ext, got := range map[string][]byte{"txt": txt.Bytes(), "md": md.Bytes(), "json": js.Bytes()} {
					file := filepath.Join(dir, level+".plan."+ext)
					if *updatePolicyGolden {
						if err := os.WriteFile(file, got, 0o644); err != nil {
							t.Fatal(err)
						}
						continue
					}
					want, err := os.ReadFile(file)
					if err != nil {
						t.Fatalf("%v (run go test ./internal/kameleoon -run TestPolicyGolden -update)", err)
					}
					if !bytes.Equal(want, got) {
						t.Errorf("%s differs:\n--- golden\n%s\n--- got\n%s", file, want, got)
					}
				}
			})
		}
	}
}

// planSchema is schema/plan.schema.json, compiled.
func planSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	if err := c.AddResource("plan.schema.json", bytes.NewReader(schema.Plan())); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("plan.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// documentedPolicies returns each policy of docs/policies.md's YAML blocks, by name, as
// its YAML node.
func documentedPolicies(t testing.TB) map[string]*yaml.Node {
	t.Helper()
	src, err := os.ReadFile("../../docs/policies.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*yaml.Node{}
	for _, b := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(src), -1) {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(b[1]), &doc); err != nil || len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value != "policies" {
				continue
			}
			for _, entry := range root.Content[i+1].Content {
				for j := 0; j+1 < len(entry.Content); j += 2 {
					if entry.Content[j].Value == "name" {
						out[entry.Content[j+1].Value] = entry
					}
				}
			}
		}
	}
	return out
}

// settingsWith is the cases' flagsync.yaml: the example repository's settings and the
// one policy, at level.
func settingsWith(t *testing.T, entry *yaml.Node, level string) []byte {
	t.Helper()
	e := *entry
	e.Content = nil
	for j := 0; j+1 < len(entry.Content); j += 2 {
		if entry.Content[j].Value == "level" {
			continue
		}
		e.Content = append(e.Content, entry.Content[j], entry.Content[j+1])
	}
	e.Content = append(e.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "level"}, &yaml.Node{Kind: yaml.ScalarNode, Value: level})
	policies := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Value: "policies"}, {Kind: yaml.SequenceNode, Content: []*yaml.Node{&e}}}}
	b, err := yaml.Marshal(policies)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte("siteCode: pzllysfw2f\nenvironments: [development, staging, production]\n"), b...)
}

// TestPolicyGoldenCasesAreTheExamples: every example policy of docs/policies.md but the
// companion not-expired has its golden case.
func TestPolicyGoldenCasesAreTheExamples(t *testing.T) {
	for name := range documentedPolicies(t) {
		if name == "not-expired" {
			continue
		}
		if _, err := os.Stat(filepath.Join("testdata", "policy", name, "live.json")); err != nil {
			t.Errorf("docs/policies.md's %s has no golden case: %v", name, err)
		}
	}
}

// documentedPoliciesYAML is a policies: list of every policy of docs/policies.md.
func documentedPoliciesYAML(tb testing.TB) []byte {
	tb.Helper()
	docs := documentedPolicies(tb)
	seq := &yaml.Node{Kind: yaml.SequenceNode}
	for _, name := range []string{"production-exposure-step", "staging-before-production", "owner-and-expiry", "not-expired", "experiment-needs-primary-goal"} {
		seq.Content = append(seq.Content, docs[name])
	}
	b, err := yaml.Marshal(seq)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustNode(tb testing.TB, src []byte) *yaml.Node {
	tb.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal(src, &n); err != nil {
		tb.Fatal(err)
	}
	return &n
}
