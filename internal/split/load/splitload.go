package splitload

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/flagrepo"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
	"github.com/flagsync/flagsync/schema"
)

// reservedFlagNames cannot name a Split flag.
var reservedFlagNames = []string{"datetime", "string", "set", "integer"}

// Claim finds the Split flag files below dir: every flag file when flagsync.yaml says
// vendor: split (whole is then true: the repository is Split's), otherwise the files
// whose top level says vendor: split. It reads the settings and looks for a vendor key
// in each file without parsing the others; problems are Load's to report.
func Claim(fsys fs.FS, dir string) (files []string, whole bool, err error) {
	s, err := Survey(fsys, dir)
	if err != nil {
		return nil, false, err
	}
	return s.SplitFiles, s.Whole, nil
}

// Repository says which flag services a flag folder's files are for.
type Repository struct {
	SplitFiles []string // Split flag files
	Whole      bool     // flagsync.yaml says vendor: split: every flag file is Split's
	OtherFiles int      // flag files that are not Split's (Kameleoon's)
	Settings   bool     // a flagsync.yaml (or .yml) exists
}

// Kameleoon reports whether the folder has anything for Kameleoon: it is not a Split
// repository and has Kameleoon flag files or settings, or nothing at all (an empty
// Kameleoon repository).
func (r Repository) Kameleoon() bool {
	return !r.Whole && (r.OtherFiles > 0 || r.Settings || len(r.SplitFiles) == 0)
}

// Split reports whether the folder has anything for Split.
func (r Repository) Split() bool { return r.Whole || len(r.SplitFiles) > 0 }

// Survey reads the settings and looks for a vendor key in each flag file (see Claim).
func Survey(fsys fs.FS, dir string) (Repository, error) {
	dir = cleanDir(dir)
	var r Repository
	var err error
	r.Whole, r.Settings, err = splitRepository(fsys, dir)
	if err != nil {
		return Repository{}, err
	}
	all, err := flagrepo.FlagFiles(fsys, dir)
	if err != nil {
		return Repository{}, err
	}
	if r.Whole {
		r.SplitFiles = all
		return r, nil
	}
	for _, f := range all {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return Repository{}, fmt.Errorf("read flag file %s: %w", f, err)
		}
		if flagrepo.DeclaresVendor(data, splitmodel.Vendor) {
			r.SplitFiles = append(r.SplitFiles, f)
		} else {
			r.OtherFiles++
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

// splitRepository reports whether the settings file names vendor split, and whether
// there is a settings file.
func splitRepository(fsys fs.FS, dir string) (split, exists bool, err error) {
	for _, name := range flagrepo.SettingsNames {
		data, err := fs.ReadFile(fsys, path.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, false, fmt.Errorf("read settings %s: %w", path.Join(dir, name), err)
		}
		return flagrepo.DeclaresVendor(data, splitmodel.Vendor), true, nil
	}
	return false, false, nil
}

// Load reads the Split flag files below dir (see Claim) and, in a Split repository, the
// settings. When anything does not validate it returns a *diag.InvalidError with every
// problem of every file. Flags are sorted by workspace, then name; Revision is left for
// the caller to set.
func Load(fsys fs.FS, dir string) (*splitmodel.Desired, error) {
	dir = cleanDir(dir)
	files, whole, err := Claim(fsys, dir)
	if err != nil {
		return nil, err
	}
	desired := &splitmodel.Desired{}
	var diags []diag.Diagnostic
	var settings *splitmodel.Settings
	if whole {
		s, sd, err := loadSettings(fsys, dir)
		if err != nil {
			return nil, err
		}
		diags = append(diags, sd...)
		if len(sd) == 0 {
			settings = &s
			desired.Settings = s
		}
	} else {
		settings = &splitmodel.Settings{}
	}

	type first struct {
		file      string
		line, col int
	}
	seen := map[splitmodel.Ref]first{}
	docs := map[splitmodel.Ref]*diag.Document{}
	for _, file := range files {
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, fmt.Errorf("read flag file %s: %w", file, err)
		}
		f, fd, key, doc, err := loadFile(file, data, settings, whole)
		if err != nil {
			return nil, err
		}
		diags = append(diags, fd...)
		if f == nil || key.line == 0 {
			continue
		}
		ref := f.Ref()
		if prev, dup := seen[ref]; dup {
			diags = append(diags,
				diag.Diagnostic{File: file, Line: key.line, Column: key.col, Field: "name", Message: fmt.Sprintf("flag %s is also defined in %s:%d:%d", ref, prev.file, prev.line, prev.col)},
				diag.Diagnostic{File: prev.file, Line: prev.line, Column: prev.col, Field: "name", Message: fmt.Sprintf("flag %s is also defined in %s:%d:%d", ref, file, key.line, key.col)})
			continue
		}
		seen[ref] = first{file, key.line, key.col}
		if len(fd) == 0 {
			desired.Flags = append(desired.Flags, *f)
			docs[ref] = doc
		}
	}
	diags = append(diags, dependencyProblems(desired.Flags, docs)...)
	if len(diags) > 0 {
		diag.SortDiagnostics(diags)
		return nil, &diag.InvalidError{Diagnostics: diags, Files: len(files)}
	}
	slices.SortFunc(desired.Flags, func(a, b splitmodel.Flag) int {
		return cmp.Or(strings.Compare(a.Workspace, b.Workspace), strings.Compare(a.Name, b.Name))
	})
	return desired, nil
}

// loadSettings reads the settings of a Split repository, which Claim found.
func loadSettings(fsys fs.FS, dir string) (splitmodel.Settings, []diag.Diagnostic, error) {
	file, data, diags, err := flagrepo.ReadSettingsFile(fsys, dir)
	if err != nil {
		return splitmodel.Settings{}, nil, err
	}
	sch, err := compiled()
	if err != nil {
		return splitmodel.Settings{}, nil, err
	}
	doc, pd := diag.ParseDocument(file, data, "settings", "")
	diags = append(diags, pd...)
	if doc == nil {
		return splitmodel.Settings{}, diags, nil
	}
	sd, err := sch.settings.Validate(doc)
	if err != nil {
		return splitmodel.Settings{}, nil, err
	}
	diags = append(diags, sd...)
	if len(diags) > 0 {
		return splitmodel.Settings{}, diags, nil
	}
	var s splitmodel.Settings
	if err := doc.Decode(&s); err != nil {
		return splitmodel.Settings{}, []diag.Diagnostic{{File: file, Line: 1, Column: 1, Message: err.Error()}}, nil
	}
	return s, nil, nil
}

type position struct{ line, col int }

// hints explain unknown fields people copy from the Admin API's responses.
var hints = map[string]string{
	"id":                    "ids are set by Split and not written in flag files",
	"environment":           "the environment is the key of this entry under environments",
	"creationTime":          "dates are set by Split and not written in flag files",
	"lastUpdateTime":        "dates are set by Split and not written in flag files",
	"lastTrafficReceivedAt": "dates are set by Split and not written in flag files",
	"combiner":              "Split combines a condition's matchers with AND; leave combiner out",
	"flagSets":              "flag sets are not managed by flagsync",
	"rolloutStatus":         "the rollout status is not managed by flagsync",
	"owners":                "owners are not managed by flagsync",
	"featureKey":            `a Split flag is identified by its name; did you mean "name"? (featureKey is Kameleoon's)`,
	"variations":            `Split flags have treatments, per environment: environments.<name>.treatments`,
}

type schemas struct{ flag, settings *diag.Schema }

// compiled compiles the Split schemas once per process.
var compiled = sync.OnceValues(func() (*schemas, error) {
	f, err := diag.CompileSchema(schema.SplitFlagName, schema.SplitFlag(), hints)
	if err != nil {
		return nil, err
	}
	s, err := diag.CompileSchema(schema.SplitSettingsName, schema.SplitSettings(), hints)
	if err != nil {
		return nil, err
	}
	return &schemas{flag: f, settings: s}, nil
})

// loadFile parses, validates and checks one Split flag file. The error is reserved for
// failures of the validator itself.
func loadFile(file string, data []byte, settings *splitmodel.Settings, whole bool) (f *splitmodel.Flag, diags []diag.Diagnostic, key position, doc *diag.Document, err error) {
	defer func() {
		// A bug in a checker must not take the whole run down: it is one file's problem.
		if r := recover(); r != nil {
			f, diags, key, doc, err = nil, nil, position{}, nil, fmt.Errorf("load %s: %v", file, r)
		}
	}()
	sch, err := compiled()
	if err != nil {
		return nil, nil, position{}, nil, err
	}
	doc, diags = diag.ParseDocument(file, data, "flag fields", "file is empty: a Split flag file needs at least name and environments")
	if doc == nil {
		return nil, diags, position{}, nil, nil
	}
	sd, err := sch.flag.Validate(doc)
	if err != nil {
		return nil, nil, position{}, nil, err
	}
	diags = append(diags, sd...)
	f = &splitmodel.Flag{}
	if err := doc.Decode(f); err != nil && len(diags) == 0 {
		// The schema guarantees the shape; this is a bug, but a reported one.
		diags = append(diags, diag.Diagnostic{File: file, Line: 1, Column: 1, Message: err.Error()})
	}
	c := checker{Checks: doc.Checks(diags), doc: doc}
	c.flag(f, settings, whole)
	diags = append(diags, c.Diags...)
	if doc.Has("name") && f.Name != "" && f.Workspace != "" && !c.Troubled("name") {
		line, col, _ := doc.At(true, "name")
		key = position{line, col}
		f.Source = splitmodel.Source{File: file, Line: line}
	}
	return f, diags, key, doc, nil
}

// checker runs the checks the schema cannot express.
type checker struct {
	*diag.Checks
	doc *diag.Document
}

func (c *checker) flag(f *splitmodel.Flag, settings *splitmodel.Settings, whole bool) {
	if settings != nil {
		where := "or set a default in " + flagrepo.SettingsFile + " with vendor: split"
		if whole {
			where = "or set a default in " + flagrepo.SettingsFile
		}
		if f.Workspace == "" {
			if settings.Workspace == "" {
				c.Add(false, `missing required field "workspace" (`+where+`)`)
			}
			f.Workspace = settings.Workspace
		}
		if f.TrafficType == "" {
			if settings.TrafficType == "" {
				c.Add(false, `missing required field "trafficType" (`+where+`)`)
			}
			f.TrafficType = settings.TrafficType
		}
	}
	if !whole && !c.doc.Has("vendor") {
		c.Add(false, `missing "vendor: split"`)
	}
	if slices.Contains(reservedFlagNames, strings.ToLower(f.Name)) {
		c.Add(false, fmt.Sprintf("%q is a reserved word and cannot name a flag", f.Name), "name")
	}
	for _, env := range f.EnvironmentNames() {
		if settings != nil && len(settings.Environments) > 0 && !slices.Contains(settings.Environments, env) {
			c.Add(true, fmt.Sprintf("unknown environment %q%s (%s lists %s)", env, diag.DidYouMean(env, settings.Environments),
				flagrepo.SettingsFile, strings.Join(settings.Environments, ", ")), "environments", env)
		}
		d := f.Environments[env]
		namesTroubled := false
		for i := range d.Treatments {
			if _, _, field := c.doc.At(false, "environments", env, "treatments", i, "name"); c.Troubled(field) {
				namesTroubled = true
			}
		}
		for _, p := range splitmodel.Validate(&d) {
			path := append([]any{"environments", env}, p.Path...)
			if _, _, field := c.doc.At(false, path...); c.Troubled(field) {
				continue // a consequence of a problem the schema found inside it
			}
			if p.Unknown != "" && namesTroubled {
				continue // a reference to a treatment whose name the schema refused
			}
			msg := p.Message
			if p.Unknown != "" {
				if hint := diag.DidYouMean(p.Unknown, p.Known); hint != "" {
					msg = fmt.Sprintf("unknown treatment %q%s", p.Unknown, hint)
				}
			}
			c.Add(false, msg, path...)
		}
	}
}
