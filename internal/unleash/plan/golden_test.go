package unleashplan_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/flagsync/flagsync/internal/plan"
	unleashload "github.com/flagsync/flagsync/internal/unleash/load"
	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
	unleashplan "github.com/flagsync/flagsync/internal/unleash/plan"
	unleashwire "github.com/flagsync/flagsync/internal/unleash/wire"
)

var update = flag.Bool("update", false, "rewrite the golden plan.txt, plan.md and plan.json files")

const goldenRevision = "4f1c2a9e0b7d3c5a8e6f1b2d4c9a7e3f5b8d0c1a"

// liveFile is a case's live.json: one project as the admin API shows it. Each feature is
// written once, in the shape of GET …/features/{name} (metadata and environments with
// their strategies) plus the list's tags and variantCount; the test derives from it the
// project list's entry and, for a flag with strategies, the GET's answer, and decodes both
// with the client's own conversions.
type liveFile struct {
	Project  string                `json:"project"`
	Segments []unleashwire.Segment `json:"segments"`
	Archived []string              `json:"archived"`
	Features []struct {
		unleashwire.Feature
		Tags         []unleashwire.Tag `json:"tags"`
		VariantCount map[string]int    `json:"variantCount"`
	} `json:"features"`
}

// ReadLive reads a live.json into the live state the planner takes.
func readLive(t *testing.T, path string) *unleashmodel.Live {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lf liveFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&lf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	names := map[int]string{}
	ids := map[string]int{}
	for _, s := range lf.Segments {
		names[s.ID], ids[s.Name] = s.Name, s.ID
	}
	p := unleashmodel.Project{Name: lf.Project, Archived: lf.Archived, ArchivedRead: true}
	for _, f := range lf.Features {
		listed := unleashwire.ListedFeature{Name: f.Name, Type: f.Type, Description: f.Description,
			ImpressionData: f.ImpressionData, Tags: f.Tags}
		for _, e := range f.Environments {
			listed.Environments = append(listed.Environments, unleashwire.ListedEnv{Name: e.Name, Enabled: e.Enabled,
				HasStrategies: len(e.Strategies) > 0, VariantCount: f.VariantCount[e.Name]})
			if len(p.Flags) == 0 {
				p.Environments = append(p.Environments, e.Name)
			}
		}
		mf := unleashwire.FlagFromList(lf.Project, listed)
		if err := unleashwire.SetStrategies(&mf, f.Feature, names); err != nil {
			t.Fatal(err)
		}
		p.Flags = append(p.Flags, mf)
	}
	if len(p.Flags) == 0 {
		p.Environments = []string{"development", "production"}
	}
	return &unleashmodel.Live{Projects: []unleashmodel.Project{p}, SegmentIDs: ids}
}

// options is a case's optional options.json: the guard's settings.
type options struct {
	MaxArchive       int  `json:"maxArchive"`
	AllowMassArchive bool `json:"allowMassArchive"`
}

// TestGolden plans every testdata/<case>: desired/ (an Unleash repository, loaded with
// unleashload.Load) against live.json, and compares the three renderings with plan.txt,
// plan.md and plan.json (a refusal's error is the last line of plan.txt).
// `go test ./internal/unleash/plan -update` rewrites them.
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
			desired, err := unleashload.Load(os.DirFS(dir), "desired")
			if err != nil {
				t.Fatalf("load desired: %v", err)
			}
			desired.Revision = goldenRevision
			live := readLive(t, filepath.Join(dir, "live.json"))
			opts := unleashplan.OptionsFor(desired)
			if b, err := os.ReadFile(filepath.Join(dir, "options.json")); err == nil {
				var o options
				if err := json.Unmarshal(b, &o); err != nil {
					t.Fatal(err)
				}
				opts.MaxArchive, opts.AllowMassArchive = o.MaxArchive, o.AllowMassArchive
			}
			p, planErr := unleashplan.Compute(desired, live, opts)
			var mae *plan.MassArchiveError
			var refused *unleashplan.RefusedError
			if planErr != nil && !errors.As(planErr, &mae) && !errors.As(planErr, &refused) {
				t.Fatalf("Compute: %v", planErr)
			}
			// Pure: the same inputs give the same plan.
			again, _ := unleashplan.Compute(desired, live, opts)
			var txt, md, js, js2 bytes.Buffer
			if err := plan.RenderText(&txt, p, plan.TextOptions{}); err != nil {
				t.Fatal(err)
			}
			if planErr != nil {
				fmt.Fprintf(&txt, "error: %v\n", planErr)
			}
			if err := plan.RenderMarkdown(&md, p, plan.MarkdownOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := plan.RenderJSON(&js, p); err != nil {
				t.Fatal(err)
			}
			if err := plan.RenderJSON(&js2, again); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(js.Bytes(), js2.Bytes()) {
				t.Errorf("two Computes of the same inputs differ")
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
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the golden file (run with -update to see the diff in git):\n%s", path, got)
				}
			}
		})
	}
	if cases < 15 {
		t.Errorf("only %d golden cases", cases)
	}
}
