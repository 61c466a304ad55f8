package unleashload

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/flagrepo"
	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
	"github.com/flagsync/flagsync/schema"
)

// Repository says which of a flag folder's files are Unleash's.
type Repository struct {
	Files    []string // Unleash flag files, in lexical order
	Whole    bool     // flagsync.yaml says vendor: unleash: every flag file is Unleash's
	Others   int      // flag files that are not Unleash's
	Settings bool     // a flagsync.yaml (or .yml) exists
}

// Claim finds the Unleash flag files below dir: every flag file when flagsync.yaml says
// vendor: unleash (whole is then true: the repository is Unleash's), otherwise the files
// whose top level says vendor: unleash. It reads the settings and looks for a vendor key
// in each file without parsing the others; problems are Load's to report.
func Claim(fsys fs.FS, dir string) (files []string, whole bool, err error) {
	r, err := Survey(fsys, dir)
	if err != nil {
		return nil, false, err
	}
	return r.Files, r.Whole, nil
}

// Survey reads the settings and looks for a vendor key in each flag file (see Claim).
func Survey(fsys fs.FS, dir string) (Repository, error) {
	dir = cleanDir(dir)
	var r Repository
	for _, name := range flagrepo.SettingsNames {
		data, err := fs.ReadFile(fsys, path.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return Repository{}, fmt.Errorf("read settings %s: %w", path.Join(dir, name), err)
		}
		r.Settings, r.Whole = true, flagrepo.DeclaresVendor(data, unleashmodel.Vendor)
		break
	}
	all, err := flagrepo.FlagFiles(fsys, dir)
	if err != nil {
		return Repository{}, err
	}
	if r.Whole {
		r.Files = all
		return r, nil
	}
	for _, f := range all {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return Repository{}, fmt.Errorf("read flag file %s: %w", f, err)
		}
		if flagrepo.DeclaresVendor(data, unleashmodel.Vendor) {
			r.Files = append(r.Files, f)
		} else {
			r.Others++
		}
	}
	return r, nil
}

func cleanDir(dir string) string {
	dir = path.Clean(strings.TrimSuffix(dir, "/"))
	if dir == "" {
		return "."
	}
	return dir
}

// hints explain unknown fields people copy from the admin API's answers or from other
// vendors' files.
var hints = map[string]string{
	"id":           "ids are set by Unleash and not written in flag files",
	"sortOrder":    "the order of strategies is the order they are written in",
	"featureName":  "a strategy belongs to the flag of its file",
	"createdAt":    "dates are set by Unleash and not written in flag files",
	"stale":        "stale is not managed by flagsync",
	"favorite":     "favorites are not managed by flagsync",
	"strategies":   "strategies are per environment: environments.<name>.strategies",
	"enabled":      "enabled is per environment: environments.<name>.enabled",
	"variants":     "feature (environment) variants are deprecated in Unleash 8: write variants on a strategy, environments.<name>.strategies[i].variants",
	"featureKey":   `an Unleash flag is identified by its name; did you mean "name"? (featureKey is Kameleoon's)`,
	"workspace":    `an Unleash flag belongs to a project; did you mean "project"? (workspace is Split's)`,
	"segmentId":    "segments are named per strategy: segments: [name]",
	"environment":  "the environment is the key of this entry under environments",
	"strategyName": `a strategy's type is its name: name: flexibleRollout`,
}

type schemas struct{ flag, settings *diag.Schema }

// compiled compiles the Unleash schemas once per process.
var compiled = sync.OnceValues(func() (*schemas, error) {
	f, err := diag.CompileSchema(schema.UnleashFlagName, schema.UnleashFlag(), hints)
	if err != nil {
		return nil, err
	}
	s, err := diag.CompileSchema(schema.UnleashSettingsName, schema.UnleashSettings(), hints)
	if err != nil {
		return nil, err
	}
	return &schemas{flag: f, settings: s}, nil
})

// Load reads the Unleash flag files below dir (see Claim) and, in an Unleash repository,
// the settings. When anything does not validate it returns a *diag.InvalidError with every
// problem of every file. Flags are sorted by project, then name; Revision is left for the
// caller to set.
func Load(fsys fs.FS, dir string) (*unleashmodel.Desired, error) {
	dir = cleanDir(dir)
	files, whole, err := Claim(fsys, dir)
	if err != nil {
		return nil, err
	}
	desired := &unleashmodel.Desired{}
	var diags []diag.Diagnostic
	settings := &unleashmodel.Settings{}
	if whole {
		s, file, sd, err := loadSettings(fsys, dir)
		if err != nil {
			return nil, err
		}
		diags = append(diags, sd...)
		if len(sd) > 0 {
			settings = nil // its defaults are unknown: checks that need them are skipped
		} else {
			settings, desired.Settings, desired.SettingsFile = &s, s, file
		}
	}

	type first struct {
		file      string
		line, col int
	}
	seen := map[unleashmodel.Ref]first{}
	for _, file := range files {
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, fmt.Errorf("read flag file %s: %w", file, err)
		}
		f, fd, err := loadFile(file, data, settings)
		if err != nil {
			return nil, err
		}
		diags = append(diags, fd...)
		if f == nil || f.Source.Line == 0 {
			continue
		}
		ref := f.Ref()
		if prev, dup := seen[ref]; dup {
			msg := func(file string, line, col int) string {
				return fmt.Sprintf("flag %s is also defined in %s:%d:%d", ref, file, line, col)
			}
			diags = append(diags,
				diag.Diagnostic{File: file, Line: f.Source.Line, Column: f.Source.Col, Field: "name", Message: msg(prev.file, prev.line, prev.col)},
				diag.Diagnostic{File: prev.file, Line: prev.line, Column: prev.col, Field: "name", Message: msg(file, f.Source.Line, f.Source.Col)})
			continue
		}
		seen[ref] = first{file, f.Source.Line, f.Source.Col}
		if len(fd) == 0 {
			desired.Flags = append(desired.Flags, *f)
		}
	}
	if len(diags) > 0 {
		diag.SortDiagnostics(diags)
		return nil, &diag.InvalidError{Diagnostics: diags, Files: len(files)}
	}
	slices.SortFunc(desired.Flags, func(a, b unleashmodel.Flag) int { return unleashmodel.CompareRefs(a.Ref(), b.Ref()) })
	return desired, nil
}

// loadSettings reads the settings of an Unleash repository, which Claim found.
func loadSettings(fsys fs.FS, dir string) (unleashmodel.Settings, string, []diag.Diagnostic, error) {
	file, data, diags, err := flagrepo.ReadSettingsFile(fsys, dir)
	if err != nil {
		return unleashmodel.Settings{}, "", nil, err
	}
	sch, err := compiled()
	if err != nil {
		return unleashmodel.Settings{}, "", nil, err
	}
	doc, pd := diag.ParseDocument(file, data, "settings", "")
	diags = append(diags, pd...)
	if doc == nil {
		return unleashmodel.Settings{}, file, diags, nil
	}
	sd, err := sch.settings.Validate(doc)
	if err != nil {
		return unleashmodel.Settings{}, "", nil, err
	}
	diags = append(diags, sd...)
	var s unleashmodel.Settings
	if err := doc.Decode(&s); err != nil && len(diags) == 0 {
		diags = append(diags, diag.Diagnostic{File: file, Line: 1, Column: 1, Message: err.Error()})
	}
	diags = append(diags, checkIgnores(doc, s.Ignore, diags)...)
	return s, file, diags, nil
}

// loadFile parses, validates and checks one Unleash flag file. The flag's Source is set
// when its name is usable (so that duplicates can be told); the error is reserved for
// failures of the validator itself.
func loadFile(file string, data []byte, settings *unleashmodel.Settings) (f *unleashmodel.Flag, diags []diag.Diagnostic, err error) {
	defer func() {
		// A bug in a checker must not take the whole run down: it is one file's problem.
		if r := recover(); r != nil {
			f, diags, err = nil, nil, fmt.Errorf("load %s: %v", file, r)
		}
	}()
	sch, err := compiled()
	if err != nil {
		return nil, nil, err
	}
	doc, diags := diag.ParseDocument(file, data, "flag fields", "file is empty: an Unleash flag file needs at least a name")
	if doc == nil {
		return nil, diags, nil
	}
	sd, err := sch.flag.Validate(doc)
	if err != nil {
		return nil, nil, err
	}
	diags = append(diags, sd...)
	stringifyParameters(doc.Value())
	f = &unleashmodel.Flag{}
	if err := doc.Decode(f); err != nil && len(diags) == 0 {
		// The schema guarantees the shape; this is a bug, but a reported one.
		diags = append(diags, diag.Diagnostic{File: file, Line: 1, Column: 1, Message: err.Error()})
	}
	c := checker{Checks: doc.Checks(diags), doc: doc}
	c.flag(f, settings)
	diags = append(diags, c.Diags...)
	diags = append(diags, checkIgnores(doc, f.Ignore, diags)...)
	if doc.Has("name") && f.Name != "" && !c.Troubled("name") {
		line, col, _ := doc.At(true, "name")
		f.Source = unleashmodel.Source{File: file, Line: line, Col: col}
	}
	return f, diags, nil
}

// stringifyParameters turns the numbers of strategies' parameters into their text:
// Unleash keeps parameters as strings, and rollout: 50 means "50".
func stringifyParameters(v map[string]any) {
	envs, _ := v["environments"].(map[string]any)
	for _, e := range envs {
		em, _ := e.(map[string]any)
		list, _ := em["strategies"].([]any)
		for _, s := range list {
			sm, _ := s.(map[string]any)
			params, _ := sm["parameters"].(map[string]any)
			for k, p := range params {
				if n, ok := p.(json.Number); ok {
					params[k] = n.String()
				}
			}
		}
	}
}

// checker runs the checks the schema cannot express.
type checker struct {
	*diag.Checks
	doc *diag.Document
}

func (c *checker) flag(f *unleashmodel.Flag, settings *unleashmodel.Settings) {
	if f.Project == "" {
		f.Project = unleashmodel.DefaultProject
		if settings != nil && settings.Project != "" {
			f.Project = settings.Project
		}
	}
	for _, env := range f.EnvironmentNames() {
		if settings != nil && len(settings.Environments) > 0 && !slices.Contains(settings.Environments, env) {
			c.Add(true, fmt.Sprintf("unknown environment %q%s (%s lists %s)", env, diag.DidYouMean(env, settings.Environments),
				flagrepo.SettingsFile, strings.Join(settings.Environments, ", ")), "environments", env)
		}
		if settings == nil || len(settings.Segments) == 0 {
			continue
		}
		for i, s := range f.Environments[env].Strategies {
			for j, name := range s.Segments {
				if !slices.Contains(settings.Segments, name) {
					c.Add(false, fmt.Sprintf("unknown segment %q%s (%s lists %s)", name, diag.DidYouMean(name, settings.Segments),
						flagrepo.SettingsFile, strings.Join(settings.Segments, ", ")), "environments", env, "strategies", i, "segments", j)
				}
			}
		}
	}
	var ignores []string
	if settings != nil {
		ignores = append(ignores, settings.Ignore...)
	}
	ignores = append(ignores, f.Ignore...)
	for _, p := range unleashmodel.Validate(f) {
		if _, _, field := c.doc.At(false, p.Path...); c.Troubled(field) {
			continue // a consequence of a problem the schema found inside it
		}
		if len(p.Path) == 3 && p.Path[2] == "enabled" && strategiesIgnored(ignores, fmt.Sprint(p.Path[1])) {
			continue // the strategies are Unleash's: Git's (none enabled) are never written
		}
		c.Add(p.AtKey, p.Message+diag.DidYouMean(p.Near, p.Candidates), p.Path...)
	}
}

// checkIgnores checks the paths of doc's top-level ignore list and returns a diagnostic for
// each that does not parse or can never match a field flagsync writes, placed on the path's
// text at the step the problem is at. Entries that already have a problem are skipped.
func checkIgnores(doc *diag.Document, paths []string, known []diag.Diagnostic) []diag.Diagnostic {
	var diags []diag.Diagnostic
	for i, s := range paths {
		l := doc.Locate("ignore", i)
		if !l.Found || slices.ContainsFunc(known, func(d diag.Diagnostic) bool {
			return d.Field != "" && (diag.Under(l.Field, d.Field) || diag.Under(d.Field, l.Field))
		}) {
			continue
		}
		_, err := unleashmodel.ParseIgnorePath(s)
		var pe *unleashmodel.PathError
		if !errors.As(err, &pe) {
			continue
		}
		msg := fmt.Sprintf("ignore path %q: %s", s, pe.Msg) + diag.DidYouMean(pe.Near, pe.Candidates)
		line, col := l.At(false)
		col += columnOffset(l.Node, pe.Offset)
		diags = append(diags, diag.Diagnostic{File: doc.File(), Line: line, Column: col, Field: l.Field, Message: msg})
	}
	return diags
}

// columnOffset is how many columns after a scalar's start the byte at offset of its value
// is written, as far as that can be told: a plain or quoted scalar on one line.
func columnOffset(n *yaml.Node, offset int) int {
	if strings.ContainsAny(n.Value, "\n\\'") || offset > len(n.Value) {
		return 0
	}
	switch n.Style {
	case 0:
		return offset
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		return 1 + offset
	}
	return 0
}

// strategiesIgnored reports whether an ignore path hands env's strategies to Unleash.
func strategiesIgnored(paths []string, env string) bool {
	for _, s := range paths {
		if p, err := unleashmodel.ParseIgnorePath(s); err == nil && p.Matches("environments."+env+".strategies") {
			return true
		}
	}
	return false
}
