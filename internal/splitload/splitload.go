package splitload

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/flagsync/flagsync/internal/flag"
	"github.com/flagsync/flagsync/internal/loader"
	"github.com/flagsync/flagsync/internal/splitflag"
	"github.com/flagsync/flagsync/schema"
)

var settingsNames = []string{loader.SettingsFile, "flagsync.yml"}

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
	all, err := flagFiles(fsys, dir)
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
		if vendorOf(data) == splitflag.Vendor {
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
	for _, name := range settingsNames {
		data, err := fs.ReadFile(fsys, path.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, false, fmt.Errorf("read settings %s: %w", path.Join(dir, name), err)
		}
		return vendorOf(data) == splitflag.Vendor, true, nil
	}
	return false, false, nil
}

// vendorOf returns the value of a top-level vendor key, or "". Only files with a line
// starting with "vendor:" are parsed.
func vendorOf(data []byte) string {
	if !bytes.HasPrefix(data, []byte("vendor:")) && !bytes.Contains(data, []byte("\nvendor:")) {
		return ""
	}
	var top struct {
		Vendor any `yaml:"vendor"`
	}
	if yaml.Unmarshal(data, &top) != nil {
		// A file that does not parse is still claimed when it plainly says so, so that its
		// problems are reported against the Split schema.
		for line := range bytes.Lines(data) {
			if v, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("vendor:")); ok && strings.Trim(strings.TrimSpace(string(v)), `"'`) == splitflag.Vendor {
				return splitflag.Vendor
			}
		}
		return ""
	}
	s, _ := top.Vendor.(string)
	return s
}

// flagFiles lists the *.yaml and *.yml files below dir (not dot-files, not the settings
// files), in lexical order.
func flagFiles(fsys fs.FS, dir string) ([]string, error) {
	var files []string
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if p != dir && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) || slices.Contains(settingsNames, name) {
			return nil
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list flag files in %s: %w", dir, err)
	}
	return files, nil
}

// Load reads the Split flag files below dir (see Claim) and, in a Split repository, the
// settings. When anything does not validate it returns a *loader.InvalidError with every
// problem of every file. Flags are sorted by workspace, then name; Revision is left for
// the caller to set.
func Load(fsys fs.FS, dir string) (*splitflag.Desired, error) {
	dir = cleanDir(dir)
	files, whole, err := Claim(fsys, dir)
	if err != nil {
		return nil, err
	}
	desired := &splitflag.Desired{}
	var diags []loader.Diagnostic
	var settings *splitflag.Settings
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
		settings = &splitflag.Settings{}
	}

	type first struct {
		file      string
		line, col int
	}
	seen := map[flag.Ref]first{}
	for _, file := range files {
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, fmt.Errorf("read flag file %s: %w", file, err)
		}
		f, fd, key, err := loadFile(file, data, settings, whole)
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
				loader.Diagnostic{File: file, Line: key.line, Column: key.col, Field: "name", Message: fmt.Sprintf("flag %s is also defined in %s:%d:%d", ref, prev.file, prev.line, prev.col)},
				loader.Diagnostic{File: prev.file, Line: prev.line, Column: prev.col, Field: "name", Message: fmt.Sprintf("flag %s is also defined in %s:%d:%d", ref, file, key.line, key.col)})
			continue
		}
		seen[ref] = first{file, key.line, key.col}
		if len(fd) == 0 {
			desired.Flags = append(desired.Flags, *f)
		}
	}
	if len(diags) > 0 {
		slices.SortFunc(diags, func(a, b loader.Diagnostic) int {
			return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column),
				strings.Compare(a.Field, b.Field), strings.Compare(a.Message, b.Message))
		})
		return nil, &loader.InvalidError{Diagnostics: diags, Files: len(files)}
	}
	slices.SortFunc(desired.Flags, func(a, b splitflag.Flag) int {
		return cmp.Or(strings.Compare(a.Workspace, b.Workspace), strings.Compare(a.Name, b.Name))
	})
	return desired, nil
}

func loadSettings(fsys fs.FS, dir string) (splitflag.Settings, []loader.Diagnostic, error) {
	var found []string
	var data []byte
	for _, name := range settingsNames {
		p := path.Join(dir, name)
		b, err := fs.ReadFile(fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return splitflag.Settings{}, nil, fmt.Errorf("read settings %s: %w", p, err)
		}
		if len(found) == 0 {
			data = b
		}
		found = append(found, p)
	}
	var diags []loader.Diagnostic
	if len(found) > 1 {
		diags = append(diags, loader.Diagnostic{File: found[1], Line: 1, Column: 1,
			Message: fmt.Sprintf("both %s and %s exist: keep one", path.Base(found[0]), path.Base(found[1]))})
	}
	doc, pd := parse(found[0], data, true)
	diags = append(diags, pd...)
	if doc == nil {
		return splitflag.Settings{}, diags, nil
	}
	sd, err := doc.validate(schema.SplitSettingsName)
	if err != nil {
		return splitflag.Settings{}, nil, err
	}
	diags = append(diags, sd...)
	if len(diags) > 0 {
		return splitflag.Settings{}, diags, nil
	}
	var s splitflag.Settings
	if err := doc.decode(&s); err != nil {
		return splitflag.Settings{}, []loader.Diagnostic{{File: found[0], Line: 1, Column: 1, Message: err.Error()}}, nil
	}
	return s, nil, nil
}

type position struct{ line, col int }

// loadFile parses, validates and checks one Split flag file. The error is reserved for
// failures of the validator itself.
func loadFile(file string, data []byte, settings *splitflag.Settings, whole bool) (*splitflag.Flag, []loader.Diagnostic, position, error) {
	doc, diags := parse(file, data, false)
	if doc == nil {
		return nil, diags, position{}, nil
	}
	sd, err := doc.validate(schema.SplitFlagName)
	if err != nil {
		return nil, nil, position{}, err
	}
	diags = append(diags, sd...)
	var f splitflag.Flag
	if err := doc.decode(&f); err != nil && len(diags) == 0 {
		diags = append(diags, loader.Diagnostic{File: file, Line: 1, Column: 1, Message: "cannot read the file's values: " + err.Error()})
	}
	c := checker{doc: doc, known: diags}
	c.flag(&f, settings, whole)
	diags = append(diags, c.diags...)
	var key position
	if k, _, found := doc.node([]any{"name"}); len(found) == 1 && f.Name != "" && f.Workspace != "" {
		key = position{k.Line, k.Column}
		f.Source = flag.Source{File: file, Line: k.Line}
	}
	return &f, diags, key, nil
}

// checker runs the checks the schema cannot express.
type checker struct {
	doc   *yamlDoc
	known []loader.Diagnostic
	diags []loader.Diagnostic
}

// add reports msg at path, unless a problem is already known there or above it.
func (c *checker) add(atKey bool, msg string, path ...any) {
	line, col, field := c.doc.at(atKey, path...)
	for _, d := range c.known {
		if d.Field != "" && (field == d.Field || strings.HasPrefix(field, d.Field+".") || strings.HasPrefix(field, d.Field+"[")) {
			return
		}
	}
	c.diags = append(c.diags, loader.Diagnostic{File: c.doc.file, Line: line, Column: col, Field: field, Message: msg})
}

func (c *checker) flag(f *splitflag.Flag, settings *splitflag.Settings, whole bool) {
	if settings != nil {
		where := "or set a default in " + loader.SettingsFile + " with vendor: split"
		if whole {
			where = "or set a default in " + loader.SettingsFile
		}
		if f.Workspace == "" {
			if settings.Workspace == "" {
				c.add(false, `missing required field "workspace" (`+where+`)`)
			}
			f.Workspace = settings.Workspace
		}
		if f.TrafficType == "" {
			if settings.TrafficType == "" {
				c.add(false, `missing required field "trafficType" (`+where+`)`)
			}
			f.TrafficType = settings.TrafficType
		}
	}
	if !whole {
		if _, _, found := c.doc.node([]any{"vendor"}); len(found) == 0 {
			c.add(false, `missing "vendor: split"`)
		}
	}
	if slices.Contains(reservedFlagNames, strings.ToLower(f.Name)) {
		c.add(false, fmt.Sprintf("%q is a reserved word and cannot name a flag", f.Name), "name")
	}
	for _, env := range f.EnvironmentNames() {
		if settings != nil && len(settings.Environments) > 0 && !slices.Contains(settings.Environments, env) {
			c.add(true, fmt.Sprintf("unknown environment %q (%s lists %s)", env, loader.SettingsFile, strings.Join(settings.Environments, ", ")), "environments", env)
		}
		d := f.Environments[env]
		for _, p := range splitflag.Validate(&d) {
			c.add(false, p.Message, append([]any{"environments", env}, p.Path...)...)
		}
	}
}
