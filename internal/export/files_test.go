package export

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWriteRefusesToOverwrite(t *testing.T) {
	files := []File{{Path: "flagsync.yaml", Data: []byte("prune: false\n")}, {Path: "site/a.yaml", Data: []byte("new a\n")}, {Path: "site/b.yaml", Data: []byte("new b\n")}}
	dir := t.TempDir()
	mustWrite := func(rel, content string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(rel string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if errors.Is(err, os.ErrNotExist) {
			return "<none>"
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	mustWrite("site/a.yaml", "old a\n")
	mustWrite("site/mine.yaml", "kept\n")

	_, err := Write(dir, files, false)
	var exists *ExistsError
	if !errors.As(err, &exists) || !slices.Equal(exists.Paths, []string{"site/a.yaml"}) {
		t.Fatalf("Write without overwrite: %v", err)
	}
	if read("site/a.yaml") != "old a\n" || read("site/b.yaml") != "<none>" || read("flagsync.yaml") != "<none>" {
		t.Error("a refused write wrote something")
	}

	replaced, err := Write(dir, files, true)
	if err != nil || !slices.Equal(replaced, []string{"site/a.yaml"}) {
		t.Fatalf("Write with overwrite: replaced %q, %v", replaced, err)
	}
	for rel, want := range map[string]string{"flagsync.yaml": "prune: false\n", "site/a.yaml": "new a\n", "site/b.yaml": "new b\n", "site/mine.yaml": "kept\n"} {
		if got := read(rel); got != want {
			t.Errorf("%s = %q, want %q", rel, got, want)
		}
	}

	mustWrite("dir.yaml/x", "")
	if _, err := Write(dir, []File{{Path: "dir.yaml", Data: []byte("x")}}, true); err == nil {
		t.Error("Write over a directory succeeded")
	}
}

func TestSchemaRef(t *testing.T) {
	tests := []struct {
		schema string
		depth  int
		want   string
	}{
		{"", 0, ""},
		{"schema", 0, "schema/flag.schema.json"},
		{"../schema", 1, "../../schema/flag.schema.json"},
		{"../../schema", 0, "../../schema/flag.schema.json"},
		{"https://example.com/flagsync/schema/", 2, "https://example.com/flagsync/schema/flag.schema.json"},
	}
	for _, tt := range tests {
		if got := schemaRef(tt.schema, "flag.schema.json", tt.depth); got != tt.want {
			t.Errorf("schemaRef(%q, %d) = %q, want %q", tt.schema, tt.depth, got, tt.want)
		}
	}
}

func TestOrderEnvironments(t *testing.T) {
	got := OrderEnvironments([]string{"qa", "production", "alpha", "development", "staging"})
	if want := []string{"development", "staging", "production", "alpha", "qa"}; !slices.Equal(got, want) {
		t.Errorf("order = %q, want %q", got, want)
	}
}
