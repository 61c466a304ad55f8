package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/schema"
)

func TestEmbeddedSchemasAreTheFiles(t *testing.T) {
	for name, embedded := range map[string][]byte{schema.FlagName: schema.Flag(), schema.SettingsName: schema.Settings()} {
		onDisk, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(onDisk, embedded) {
			t.Errorf("embedded %s differs from the file", name)
		}
		var v map[string]any
		if err := json.Unmarshal(embedded, &v); err != nil {
			t.Errorf("%s is not JSON: %v", name, err)
		}
		if v["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema = %v", name, v["$schema"])
		}
	}
}

// TestEveryPropertyHasADescription checks that editors have help to show for every
// field: every schema that describes a value (properties, items, $defs, map values) has
// a description. Conditions (if/then/else) only restate fields and are skipped.
func TestEveryPropertyHasADescription(t *testing.T) {
	for name, data := range map[string][]byte{schema.FlagName: schema.Flag(), schema.SettingsName: schema.Settings()} {
		var root any
		if err := json.Unmarshal(data, &root); err != nil {
			t.Fatal(err)
		}
		var missing []string
		var walk func(v any, at string, needs bool)
		walk = func(v any, at string, needs bool) {
			m, ok := v.(map[string]any)
			if !ok {
				return
			}
			if d, _ := m["description"].(string); needs && d == "" {
				missing = append(missing, at)
			}
			if props, ok := m["properties"].(map[string]any); ok {
				for k, p := range props {
					walk(p, at+"/properties/"+k, true)
				}
			}
			if defs, ok := m["$defs"].(map[string]any); ok {
				for k, d := range defs {
					walk(d, at+"/$defs/"+k, true)
				}
			}
			for _, k := range []string{"items", "additionalProperties", "propertyNames"} {
				if sub, ok := m[k].(map[string]any); ok {
					_, isRef := sub["$ref"]
					walk(sub, at+"/"+k, !isRef)
				}
			}
		}
		walk(root, "#", true)
		sort.Strings(missing)
		for _, m := range missing {
			t.Errorf("%s: no description at %s", name, m)
		}
	}
}

// TestAjv compiles both schemas with ajv (strict mode) and validates every example file
// with it, as read by the `yaml` package that editors use, and checks that ajv rejects
// a file the loader rejects. It needs the node packages: npm ci --prefix schema/ajvcheck.
func TestAjv(t *testing.T) {
	if _, err := os.Stat(filepath.Join("ajvcheck", "node_modules", "ajv")); errors.Is(err, fs.ErrNotExist) {
		t.Skip("schema/ajvcheck/node_modules is absent: run `npm ci --prefix schema/ajvcheck` to check the schemas with ajv")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node_modules is installed but node is not on PATH: %v", err)
	}
	var files []string
	err = filepath.WalkDir(filepath.Join("..", "examples", "flags"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 7 {
		t.Fatalf("found only %d example files", len(files))
	}

	out, err := exec.Command(node, append([]string{filepath.Join("ajvcheck", "check.mjs"), "."}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ajv: %v\n%s", err, out)
	}
	for _, f := range files {
		if !strings.Contains(string(out), "ok "+f+"\n") {
			t.Errorf("ajv did not accept %s:\n%s", f, out)
		}
	}

	// A file with a typo must fail in ajv too, or the check above proves nothing.
	bad := filepath.Join(t.TempDir(), "typo.yaml")
	data := "siteCode: pzllysfw2f\nfeatureKey: typo\nname: Typo\nvariations: [{key: on}]\n" +
		"environments:\n  production:\n    defaultVariationKey: on\n    rolloutRules:\n" +
		"      - {name: r, type: PROGRESSIVE_DELIVERY, variationKey: on, exposure: 120}\n"
	if err := os.WriteFile(bad, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(node, filepath.Join("ajvcheck", "check.mjs"), ".", bad).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "invalid "+bad) {
		t.Errorf("ajv on a bad file: err %v, output:\n%s", err, out)
	}
}
