package fake

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"

	"gopkg.in/yaml.v3"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/flagrepo"
	"github.com/flagsync/flagsync/internal/plan"
)

// Name is the fake service's name on the command line and in files' vendor: key.
const Name = "fake"

// Service names the fake service for people, in plans.
const Service = "Fake"

// Scope is the one scope of the fake service.
const Scope = "space"

// Flag is one flag, as a flag file says it and as the service holds it.
type Flag struct {
	Key     string `yaml:"key" json:"key"`
	Enabled bool   `yaml:"enabled" json:"enabled"`
	Value   string `yaml:"value" json:"value"`

	// Set by the service only.
	Managed  bool `yaml:"-" json:"managed"`  // created by flagsync: pruning may archive it
	Archived bool `yaml:"-" json:"archived"` // archived
	Locked   bool `yaml:"-" json:"locked"`   // someone locked it: the planner refuses to change it

	file string // where a desired flag is defined
	line int
}

// Address is where the flag is, in plans.
func Address(key string) plan.Address { return plan.Address{Service: Service, Scope: Scope, Key: key} }

// keyPattern is what a flag key may be.
var keyPattern = regexp.MustCompile(`^[a-z0-9_]+$`)

// claim returns the files that say vendor: fake, or every flag file (whole) when the
// settings file does.
func claim(fsys fs.FS, dir string) (files []string, whole bool, err error) {
	_, data, _, err := flagrepo.ReadSettingsFile(fsys, dir)
	if err != nil {
		return nil, false, err
	}
	all, err := flagrepo.FlagFiles(fsys, dir)
	if err != nil {
		return nil, false, err
	}
	if flagrepo.DeclaresVendor(data, Name) {
		return all, true, nil
	}
	for _, f := range all {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, false, fmt.Errorf("read flag file %s: %w", f, err)
		}
		if flagrepo.DeclaresVendor(b, Name) {
			files = append(files, f)
		}
	}
	return files, false, nil
}

// load reads and validates every flag file below dir: each a mapping of vendor, key,
// enabled and value, with a unique key. Problems are one *diag.InvalidError.
func load(fsys fs.FS, dir string) ([]Flag, error) {
	files, err := flagrepo.FlagFiles(fsys, path.Clean(dir))
	if err != nil {
		return nil, err
	}
	var flags []Flag
	var diags []diag.Diagnostic
	seen := map[string]string{}
	for _, file := range files {
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, fmt.Errorf("read flag file %s: %w", file, err)
		}
		f, ds := loadFile(file, data)
		if f != nil && f.Key != "" {
			if other, dup := seen[f.Key]; dup {
				ds = append(ds, diag.Diagnostic{File: file, Line: f.line, Column: 1, Field: "key",
					Message: fmt.Sprintf("flag %q is also defined in %s", f.Key, other)})
			}
			seen[f.Key] = file
		}
		if len(ds) > 0 {
			diags = append(diags, ds...)
			continue
		}
		flags = append(flags, *f)
	}
	if len(diags) > 0 {
		diag.SortDiagnostics(diags)
		return nil, &diag.InvalidError{Diagnostics: diags, Files: len(files)}
	}
	sort.Slice(flags, func(i, j int) bool { return flags[i].Key < flags[j].Key })
	return flags, nil
}

// loadFile checks one flag file: known fields of the right kinds, a valid key.
func loadFile(file string, data []byte) (*Flag, []diag.Diagnostic) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, []diag.Diagnostic{{File: file, Line: 1, Column: 1, Message: "not YAML: " + err.Error()}}
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, []diag.Diagnostic{{File: file, Line: 1, Column: 1, Message: "want a mapping of key, enabled and value"}}
	}
	m := doc.Content[0]
	f := &Flag{file: file, line: m.Line}
	var diags []diag.Diagnostic
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		bad := func(msg string) {
			diags = append(diags, diag.Diagnostic{File: file, Line: v.Line, Column: v.Column, Field: k.Value, Message: msg})
		}
		switch k.Value {
		case "vendor":
		case "key":
			f.Key, f.line = v.Value, k.Line
			if v.Kind != yaml.ScalarNode || !keyPattern.MatchString(v.Value) {
				bad("want lower-case letters, digits and _")
			}
		case "enabled":
			if v.Kind != yaml.ScalarNode || v.Decode(&f.Enabled) != nil {
				bad("want true or false")
			}
		case "value":
			if v.Kind != yaml.ScalarNode {
				bad("want a string")
			}
			f.Value = v.Value
		default:
			diags = append(diags, diag.Diagnostic{File: file, Line: k.Line, Column: k.Column, Field: k.Value, Message: "unknown field"})
		}
	}
	if f.Key == "" && len(diags) == 0 {
		diags = append(diags, diag.Diagnostic{File: file, Line: m.Line, Column: m.Column, Message: `missing required field "key"`})
	}
	return f, diags
}
