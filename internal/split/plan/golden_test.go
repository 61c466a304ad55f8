package splitplan_test

import (
	"bytes"
	"encoding/json"
	"errors"
	stdflag "flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/plan"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitload "github.com/flagsync/flagsync/internal/split/load"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
	splitplan "github.com/flagsync/flagsync/internal/split/plan"
)

var update = stdflag.Bool("update", false, "rewrite the golden plan.txt, plan.md and plan.json files")

const goldenRevision = "4f1c2a9e0b7d3c5a8e6f1b2d4c9a7e3f5b8d0c1a"

// liveFile is a case's live.json: one workspace's flags and its definitions per
// environment, exactly as the Admin API's list calls return their objects.
type liveFile struct {
	Workspace   string                       `json:"workspace"`
	Flags       []json.RawMessage            `json:"flags"`
	Definitions map[string][]json.RawMessage `json:"definitions"`
	// ChangeRequests are the open change requests the client read: flag → environment
	// → request (optional).
	ChangeRequests map[string]map[string]splitmodel.ChangeRequest `json:"changeRequests"`
}

func readLive(t *testing.T, path string) []splitmodel.Flag {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lf liveFile
	if err := json.Unmarshal(b, &lf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var live []splitmodel.Flag
	at := map[string]int{}
	for _, raw := range lf.Flags {
		f, err := splitclient.DecodeFlag(raw, lf.Workspace)
		if err != nil {
			t.Fatal(err)
		}
		at[f.Name] = len(live)
		live = append(live, f)
	}
	for env, defs := range lf.Definitions {
		for _, raw := range defs {
			name, d, err := splitclient.DecodeDefinition(raw)
			if err != nil {
				t.Fatal(err)
			}
			i, ok := at[name]
			if !ok {
				t.Fatalf("%s: definition of unknown flag %s", path, name)
			}
			if live[i].Environments == nil {
				live[i].Environments = map[string]splitmodel.Definition{}
			}
			live[i].Environments[env] = d
		}
	}
	for name, crs := range lf.ChangeRequests {
		i, ok := at[name]
		if !ok {
			t.Fatalf("%s: change request of unknown flag %s", path, name)
		}
		live[i].OpenChangeRequests = crs
	}
	return live
}

// TestGolden plans every testdata/<case>: desired/ (a Split repository, loaded with
// splitload.Load) against live.json, and compares the three renderings with plan.txt,
// plan.md and plan.json. `go test ./internal/split/plan -update` rewrites them.
func TestGolden(t *testing.T) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	cases := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		cases++
		t.Run(e.Name(), func(t *testing.T) {
			dir := filepath.Join("testdata", e.Name())
			desired, err := splitload.Load(os.DirFS(dir), "desired")
			if err != nil {
				t.Fatalf("load desired: %v", err)
			}
			desired.Revision = goldenRevision
			live := readLive(t, filepath.Join(dir, "live.json"))
			p, err := splitplan.Compute(desired, live, splitplan.OptionsFor(desired.Settings))
			var mae *plan.MassArchiveError
			var tte *splitplan.TrafficTypeError
			if err != nil && !errors.As(err, &mae) && !errors.As(err, &tte) {
				t.Fatalf("Compute: %v", err)
			}
			var txt, md, js bytes.Buffer
			if err := plan.RenderText(&txt, p, plan.TextOptions{}); err != nil {
				t.Fatal(err)
			}
			if err != nil {
				fmt.Fprintf(&txt, "error: %v\n", err)
			}
			if err := plan.RenderMarkdown(&md, p, plan.MarkdownOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := plan.RenderJSON(&js, p); err != nil {
				t.Fatal(err)
			}
			for file, got := range map[string][]byte{"plan.txt": txt.Bytes(), "plan.md": md.Bytes(), "plan.json": js.Bytes()} {
				path := filepath.Join(dir, file)
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test ./internal/split/plan -update)", err)
				}
				if !bytes.Equal(want, got) {
					t.Errorf("%s differs:\n%s", path, firstDifference(string(want), string(got)))
				}
			}
			// Every planned patch applies to the live definition and leaves nothing to do.
			for _, c := range p.Changes {
				if c.Request.Method != "PATCH" || c.Environment == "" || c.Action != plan.ActionUpdate {
					continue
				}
				checkPatchConverges(t, desired, live, c)
			}
		})
	}
	if cases < 10 {
		t.Errorf("only %d golden cases", cases)
	}
}

func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, a, b)
		}
	}
	return "(same lines, different bytes)"
}
