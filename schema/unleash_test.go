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

func TestUnleashSchemasAreTheFilesAndCompile(t *testing.T) {
	for name, embedded := range map[string][]byte{schema.UnleashFlagName: schema.UnleashFlag(), schema.UnleashSettingsName: schema.UnleashSettings()} {
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
			if d, _ := m["description"].(string); strings.TrimSpace(d) == "" {
				t.Errorf("%s: no description at %s", name, at)
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

// TestUnleashAjv validates the Unleash example repository with ajv in strict mode, as
// editors read it, through ajvcheck/check.mjs given a folder where the Unleash schemas
// carry the names it loads; and checks that ajv rejects a file the loader rejects.
func TestUnleashAjv(t *testing.T) {
	if _, err := os.Stat(filepath.Join("ajvcheck", "node_modules", "ajv")); errors.Is(err, fs.ErrNotExist) {
		t.Skip("schema/ajvcheck/node_modules is absent: run `npm ci --prefix schema/ajvcheck` to check the schemas with ajv")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node_modules is installed but node is not on PATH: %v", err)
	}
	dir := t.TempDir()
	for file, name := range map[string]string{"flag.schema.json": schema.UnleashFlagName, "settings.schema.json": schema.UnleashSettingsName} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var files []string
	err = filepath.WalkDir(filepath.Join("..", "examples", "unleash"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("found only %d Unleash example files", len(files))
	}
	out, err := exec.Command(node, append([]string{filepath.Join("ajvcheck", "check.mjs"), dir}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ajv: %v\n%s", err, out)
	}
	for _, f := range files {
		if !strings.Contains(string(out), "ok "+f+"\n") {
			t.Errorf("ajv did not accept %s:\n%s", f, out)
		}
	}

	bad := filepath.Join(t.TempDir(), "typo.yaml")
	data := "name: typo\nenvironments:\n  production:\n    enabled: true\n    strategies:\n" +
		"      - {name: flexibleRollout, parameters: {rollout: 50}, constraints: [{contextName: userId, operator: IS_IN}]}\n"
	if err := os.WriteFile(bad, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(node, filepath.Join("ajvcheck", "check.mjs"), dir, bad).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "invalid "+bad) {
		t.Errorf("ajv on a bad file: err %v, output:\n%s", err, out)
	}
}
