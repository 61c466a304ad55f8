package export

import (
	"cmp"
	"path"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/flagrepo"
	"github.com/flagsync/flagsync/internal/plan"
)

// Options shape the exported files.
type Options struct {
	// Schema is where each file's yaml-language-server comment points editors for
	// validation as you type: the URL of a folder holding flag.schema.json and
	// settings.schema.json, or that folder's slash-separated path relative to the output
	// folder (each file then gets a path relative to itself). Empty: no such comment.
	Schema string
}

// File is one file of an export.
type File struct {
	Path string        // slash-separated, relative to the output folder
	Data []byte        // the file's content
	Flag *plan.Address // the flag the file holds; nil for flagsync.yaml
}

// Export is a set of flag files that describe live flags exactly. Each vendor's export
// builds one.
type Export struct {
	// Files are flagsync.yaml first, then one file per flag, by scope and key.
	Files []File
	// Scopes are the exported scopes (Kameleoon's site codes, Split's workspace), in
	// the order asked for.
	Scopes []string
	// Flags counts the exported flags; Archived, those of them that are archived.
	Flags, Archived int
	// Notes say what was left out of the files and why, for people.
	Notes []string
}

// DefaultEnvironmentOrder is the order environments are written in when present;
// other environment keys follow alphabetically.
var DefaultEnvironmentOrder = []string{"development", "staging", "production"}

// SafeName is what a feature key or site code must look like to be used as a file or
// folder name: no separators, no leading dot.
var SafeName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]*$`)

// FileName is the flag file's name. A flag whose key is "flagsync" gets another name,
// since flagsync.yaml is the settings file.
func FileName(featureKey string) string {
	name := featureKey + ".yaml"
	if name == flagrepo.SettingsFile || name == "flagsync.yml" {
		return featureKey + ".flag.yaml"
	}
	return name
}

// Depth counts the folders between the output folder and the file at p.
func Depth(p string) int { return strings.Count(p, "/") }

// OrderEnvironments sorts environment keys: those of DefaultEnvironmentOrder first, in
// that order, then the others alphabetically.
func OrderEnvironments(keys []string) []string {
	rank := func(k string) int {
		if i := slices.Index(DefaultEnvironmentOrder, k); i >= 0 {
			return i
		}
		return len(DefaultEnvironmentOrder)
	}
	out := slices.Clone(keys)
	slices.SortFunc(out, func(a, b string) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a, b))
	})
	return out
}

// HeaderLines are the comment lines a file starts with: the schema reference for
// editors, if any, and what the file is.
func HeaderLines(schema, schemaFile string, depth int, what string) []string {
	var lines []string
	if ref := schemaRef(schema, schemaFile, depth); ref != "" {
		lines = append(lines, "yaml-language-server: $schema="+ref)
	}
	return append(lines, what)
}

// schemaRef is where a file depth folders below the output folder finds schemaFile.
func schemaRef(schema, schemaFile string, depth int) string {
	switch {
	case schema == "":
		return ""
	case strings.Contains(schema, "://"):
		return strings.TrimSuffix(schema, "/") + "/" + schemaFile
	}
	parts := make([]string, 0, depth+2)
	for range depth {
		parts = append(parts, "..")
	}
	return path.Join(append(parts, schema, schemaFile)...)
}

// WithHeader encodes root after the given comment lines.
func WithHeader(root *yaml.Node, lines []string) ([]byte, error) {
	body, err := EncodeYAML(root)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("# " + l + "\n")
	}
	b.Write(body)
	return []byte(b.String()), nil
}

// Check is what Verify found.
type Check struct {
	// Diagnostics are the loader's problems with the files; empty when they are valid.
	Diagnostics []diag.Diagnostic
	// Plan is what a sync of the files would change; it has no changes and no unmanaged
	// flags when the files describe the live flags exactly. Archived flags, which a sync
	// leaves alone, are compared as if restored on both sides, so that nothing of theirs
	// is lost either.
	Plan plan.Plan
}

// OK reports whether the files are valid and plan to nothing.
func (c *Check) OK() bool {
	return len(c.Diagnostics) == 0 && len(c.Plan.Changes) == 0 && len(c.Plan.Unmanaged) == 0
}
