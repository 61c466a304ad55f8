package kplan

import (
	"bytes"
	"encoding/json"
	"errors"
	stdflag "flag"
	"os"
	"path/filepath"
	"testing"

	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kload "github.com/flagsync/flagsync/internal/kameleoon/load"
	"github.com/flagsync/flagsync/internal/plan"
)

var update = stdflag.Bool("update", false, "rewrite the golden plan.txt, plan.md and plan.json files")

// goldenRevision is the revision every golden plan is computed for.
const goldenRevision = "4f1c2a9e0b7d3c5a8e6f1b2d4c9a7e3f5b8d0c1a"

// goldenOptions is a case's optional options.json: what flagsync.yaml cannot say.
type goldenOptions struct {
	MaxArchive       int  `json:"maxArchive"`
	AllowMassArchive bool `json:"allowMassArchive"`
	MarkdownMaxChars int  `json:"markdownMaxChars"`
}

// TestGolden plans every testdata/<case>: desired/ (flag files and an optional
// flagsync.yaml, loaded with kload.Load) against live.json (the API's read shape,
// decoded with kclient.DecodeFlags), and compares the three renderings with plan.txt,
// plan.md and plan.json. `go test ./internal/kameleoon/plan -update` rewrites them.
func TestGolden(t *testing.T) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	cases := 0
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "fuzz" { // testdata/fuzz is the fuzz corpus
			continue
		}
		cases++
		name := e.Name()
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			desired, err := kload.Load(os.DirFS(dir), "desired")
			if err != nil {
				t.Fatalf("load desired: %v", err)
			}
			desired.Revision = goldenRevision
			liveJSON, err := os.ReadFile(filepath.Join(dir, "live.json"))
			if err != nil {
				t.Fatal(err)
			}
			live, err := kclient.DecodeFlags(liveJSON)
			if err != nil {
				t.Fatal(err)
			}
			var gopts goldenOptions
			if b, err := os.ReadFile(filepath.Join(dir, "options.json")); err == nil {
				if err := json.Unmarshal(b, &gopts); err != nil {
					t.Fatalf("options.json: %v", err)
				}
			}
			opts := OptionsFor(desired.Settings)
			opts.MaxArchive, opts.AllowMassArchive = gopts.MaxArchive, gopts.AllowMassArchive

			p, err := Compute(desired, live, opts)
			var mae *plan.MassArchiveError
			if err != nil && !errors.As(err, &mae) {
				t.Fatalf("Compute: %v", err)
			}
			if (mae != nil) != (p.RefusedArchives() > 0) {
				t.Fatalf("error %v does not match %d archives refused by the mass-archive guard", err, p.RefusedArchives())
			}

			var txt, md, js bytes.Buffer
			if err := plan.RenderText(&txt, p, plan.TextOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := plan.RenderMarkdown(&md, p, plan.MarkdownOptions{MaxChars: gopts.MarkdownMaxChars}); err != nil {
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
					t.Fatalf("%v (run go test ./internal/kameleoon/plan -update)", err)
				}
				if !bytes.Equal(want, got) {
					t.Errorf("%s differs (- golden, + got):\n%s", path, lineDiff(string(want), string(got)))
				}
			}
		})
	}
	if cases < 25 {
		t.Errorf("only %d golden cases; the planner's spec wants at least 25", cases)
	}
}
