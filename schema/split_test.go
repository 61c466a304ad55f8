package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/flagsync/flagsync/schema"
)

func TestSplitSchemasAreTheFilesAndCompile(t *testing.T) {
	for name, embedded := range map[string][]byte{schema.SplitFlagName: schema.SplitFlag(), schema.SplitSettingsName: schema.SplitSettings()} {
		onDisk, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(onDisk, embedded) {
			t.Errorf("embedded %s differs from the file", name)
		}
		c := jsonschema.NewCompiler()
		c.Draft = jsonschema.Draft2020
		if err := c.AddResource("mem://"+name, bytes.NewReader(embedded)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Compile("mem://" + name); err != nil {
			t.Errorf("compile %s: %v", name, err)
		}
		// Every value has help for editors.
		var root any
		if err := json.Unmarshal(embedded, &root); err != nil {
			t.Fatal(err)
		}
		var walk func(v any, at string)
		walk = func(v any, at string) {
			m, ok := v.(map[string]any)
			if !ok {
				return
			}
			if _, isRef := m["$ref"]; !isRef {
				if d, _ := m["description"].(string); strings.TrimSpace(d) == "" {
					t.Errorf("%s: no description at %s", name, at)
				}
			}
			for _, k := range []string{"properties", "$defs"} {
				if sub, ok := m[k].(map[string]any); ok {
					for n, p := range sub {
						walk(p, at+"/"+k+"/"+n)
					}
				}
			}
			for _, k := range []string{"items", "additionalProperties", "propertyNames"} {
				walk(m[k], at+"/"+k)
			}
		}
		walk(root, "#")
	}
}

// TestSplitAjv validates every file of examples/split with ajv (strict mode), as editors
// do, and checks that ajv accepts numeric treatment names (quoted) and refuses a
// definition with one treatment. It needs the node packages: npm ci --prefix
// schema/ajvcheck.
func TestSplitAjv(t *testing.T) {
	if _, err := os.Stat(filepath.Join("ajvcheck", "node_modules", "ajv")); errors.Is(err, fs.ErrNotExist) {
		t.Skip("schema/ajvcheck/node_modules is absent: run `npm ci --prefix schema/ajvcheck` to check the schemas with ajv")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node_modules is installed but node is not on PATH: %v", err)
	}
	var files []string
	err = filepath.WalkDir(filepath.Join("..", "examples", "split"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) < 6 {
		t.Fatalf("example files: %d, %v", len(files), err)
	}
	tmp := t.TempDir()
	numeric := filepath.Join(tmp, "numeric.yaml")
	single := filepath.Join(tmp, "single.yaml")
	for path, data := range map[string]string{
		numeric: "name: tiers\nenvironments:\n  Production:\n    treatments: [{name: \"1\"}, {name: \"2\"}]\n    defaultTreatment: \"1\"\n",
		single:  "name: single\nenvironments:\n  Production:\n    treatments: [{name: \"on\"}]\n    defaultTreatment: \"on\"\n",
	} {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(node, append([]string{filepath.Join("ajvcheck", "check.mjs"), "."}, append(files, numeric, single)...)...)
	cmd.Env = append(os.Environ(), "FLAGSYNC_SCHEMA_PREFIX=split-")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("ajv: %v (want exit 1 for the one-treatment file)\n%s", err, out)
	}
	for _, f := range append(files, numeric) {
		if !strings.Contains(string(out), "ok "+f+"\n") {
			t.Errorf("ajv did not accept %s:\n%s", f, out)
		}
	}
	if !strings.Contains(string(out), "invalid "+single) {
		t.Errorf("ajv accepted a definition with one treatment:\n%s", out)
	}
}
