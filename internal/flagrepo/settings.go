package flagrepo

import (
	"bytes"
	"fmt"
	"io/fs"

	"gopkg.in/yaml.v3"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/policy"
	"github.com/flagsync/flagsync/internal/promote"
)

// Settings are what flagsync.yaml says that belongs to no vendor: the policies evaluated
// on every plan, what promote must not copy between environments, and the environments'
// order. Each vendor's loader checks the rest of the file (and these keys against its
// settings schema).
type Settings struct {
	// File is the settings file read, "" when the repository has none.
	File string
	// Policies are the entries of policies:, as written, with their positions in File
	// (see policy.ParseYAML). An entry with a shape problem is kept, marked, so that
	// policy.Compile's indexes are the file's.
	Policies []policy.Spec
	// Promote is promote:.
	Promote promote.Settings
	// Environments is environments:, the known environments in apply order (every
	// vendor's settings have it).
	Environments []string
}

// ReadSettings reads the vendor-neutral keys of the settings file at the root of dir
// (see Settings). Problems in them are diagnostics placed in the file: the shape of
// policies: (policy.ParseYAML; compiling the expressions needs a vendor's flag shape and
// is reconcile.Load's) and of promote:. A file that is not YAML, or whose top level is not
// a mapping, gives no diagnostic here: the vendor's loader reports it.
func ReadSettings(fsys fs.FS, dir string) (Settings, []diag.Diagnostic, error) {
	file, data, _, err := ReadSettingsFile(fsys, dir)
	if err != nil || file == "" {
		return Settings{}, nil, err
	}
	s := Settings{File: file}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return s, nil, nil
	}
	root := doc.Content[0]
	var diags []diag.Diagnostic
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "policies":
			specs, probs := policy.ParseYAML(file, data, v)
			s.Policies = specs
			diags = append(diags, PolicyDiagnostics(file, probs)...)
		case "promote":
			p, err := promote.ParseSettings(v)
			if err != nil {
				diags = append(diags, diag.Diagnostic{File: file, Line: v.Line, Column: v.Column, Field: "promote", Message: err.Error()})
				continue
			}
			s.Promote = p
		case "environments":
			if v.Kind != yaml.SequenceNode {
				continue // the vendor's schema says what is wrong
			}
			for _, e := range v.Content {
				if e.Kind == yaml.ScalarNode {
					s.Environments = append(s.Environments, e.Value)
				}
			}
		}
	}
	return s, diags, nil
}

// PolicyDiagnostics turns the problems of policies (policy.ParseYAML's, policy.Compile's)
// into diagnostics of the settings file: file:line:col: policies[2].expr (name): message.
// A problem without a position is placed at the top of file.
func PolicyDiagnostics(file string, probs []policy.Problem) []diag.Diagnostic {
	out := make([]diag.Diagnostic, 0, len(probs))
	for _, p := range probs {
		d := diag.Diagnostic{File: p.Pos.File, Line: p.Pos.Line, Column: p.Pos.Column, Field: p.Path(), Message: p.Message}
		if d.File == "" {
			d.File = file
		}
		if d.Line == 0 {
			d.Line, d.Column = 1, 1
		}
		if p.Name != "" {
			d.Field = fmt.Sprintf("%s (%s)", d.Field, p.Name)
		}
		out = append(out, d)
	}
	return out
}
