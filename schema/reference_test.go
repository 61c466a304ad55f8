package schema_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/schema"
)

var update = flag.Bool("update", false, "regenerate docs/*-reference.md from the schemas")

// TestReferenceDocsUpToDate keeps the field references in docs/ equal to what the
// schemas say; `go test ./schema -update` regenerates them after a schema change.
func TestReferenceDocsUpToDate(t *testing.T) {
	for _, tc := range []struct {
		file, title string
		schema      []byte
	}{
		{"flag-file-reference.md", "Flag file reference", schema.Flag()},
		{"settings-reference.md", "flagsync.yaml reference", schema.Settings()},
		{"split-flag-file-reference.md", "Split flag file reference", schema.SplitFlag()},
		{"split-settings-reference.md", "flagsync.yaml reference (Split repositories)", schema.SplitSettings()},
	} {
		got, err := schema.Reference(tc.title, tc.schema)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("..", "docs", tc.file)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run `go test ./schema -update`)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("docs/%s is out of date with the schema: run `go test ./schema -update`", tc.file)
		}
	}
}

func TestReferenceListsEveryField(t *testing.T) {
	ref, err := schema.Reference("Flag file reference", schema.Flag())
	if err != nil {
		t.Fatal(err)
	}
	text := string(ref)
	for _, want := range []string{
		"## `environments.<key>.rolloutRules[]`",
		"| `exposition` | number |",
		"## `environments.<key>.rolloutRules[].rollbackConditions[]`",
		"| `featureKey` | string | yes |",
		"one of `TARGETED_DELIVERY`, `PROGRESSIVE_DELIVERY`, `EXPERIMENTATION`",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("reference lacks %q", want)
		}
	}
}
