package kload

import (
	"cmp"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/flagrepo"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// Load reads the flag folder dir (slash-separated, "." for the root) of fsys: the
// settings in dir/flagsync.yaml and one flag per *.yaml or *.yml file below dir
// (dot-files and dot-directories such as .git and .github are skipped). Paths in
// diagnostics and in each flag's Source are fsys paths, that is relative to the
// repository root.
//
// When anything does not validate, Load returns an *diag.InvalidError listing every problem
// of every file; semantic checks run on the files that pass the schema. Other errors
// (a missing folder, an unreadable file) are returned wrapped. The returned flags are
// sorted by site code, then feature key; Revision is left for the caller to set.
func Load(fsys fs.FS, dir string) (*kmodel.Desired, error) {
	sch, err := loadSchemas()
	if err != nil {
		return nil, fmt.Errorf("load flags: %w", err)
	}
	dir = path.Clean(strings.TrimSuffix(dir, "/"))
	if dir == "" {
		dir = "."
	}
	if !fs.ValidPath(dir) {
		return nil, fmt.Errorf("load flags from %q: not a relative slash-separated path inside the repository", dir)
	}

	settings, diags, err := loadSettings(fsys, dir, sch)
	if err != nil {
		return nil, err
	}
	settingsValid := len(diags) == 0

	files, misplaced, err := listFlagFiles(fsys, dir)
	if err != nil {
		return nil, err
	}
	for _, p := range misplaced {
		diags = append(diags, diag.Diagnostic{File: p, Line: 1, Column: 1,
			Message: fmt.Sprintf("%s is read only at the root of the flag folder (%s): move it there, or rename it if it is a flag", path.Base(p), dir)})
	}

	var checkSettings *kmodel.Settings
	if settingsValid {
		checkSettings = &settings
	}
	results, err := loadFlagFiles(fsys, files, sch, checkSettings)
	if err != nil {
		return nil, err
	}

	desired := &kmodel.Desired{Settings: settings}
	type first struct {
		file      string
		line, col int
	}
	seen := make(map[kmodel.Ref]*first)
	for i := range results {
		r := &results[i]
		diags = append(diags, r.diags...)
		if r.ref == nil {
			continue
		}
		if f, dup := seen[*r.ref]; dup {
			diags = append(diags,
				diag.Diagnostic{File: r.file, Line: r.keyLine, Column: r.keyCol, Field: "featureKey",
					Message: fmt.Sprintf("flag %s is also defined in %s:%d:%d", r.ref, f.file, f.line, f.col)},
				diag.Diagnostic{File: f.file, Line: f.line, Column: f.col, Field: "featureKey",
					Message: fmt.Sprintf("flag %s is also defined in %s:%d:%d", r.ref, r.file, r.keyLine, r.keyCol)})
			continue
		}
		seen[*r.ref] = &first{file: r.file, line: r.keyLine, col: r.keyCol}
		if r.flag != nil {
			desired.Flags = append(desired.Flags, *r.flag)
		}
	}

	if len(diags) > 0 {
		diag.SortDiagnostics(diags)
		return nil, &diag.InvalidError{Diagnostics: diags, Files: len(files)}
	}
	slices.SortFunc(desired.Flags, func(a, b kmodel.Flag) int {
		return cmp.Or(strings.Compare(a.SiteCode, b.SiteCode), strings.Compare(a.FeatureKey, b.FeatureKey))
	})
	return desired, nil
}

// loadSettings reads flagsync.yaml (or flagsync.yml) at the root of dir. A missing file
// means default settings.
func loadSettings(fsys fs.FS, dir string, sch *schemas) (kmodel.Settings, []diag.Diagnostic, error) {
	file, data, diags, err := flagrepo.ReadSettingsFile(fsys, dir)
	if err != nil || file == "" {
		return kmodel.Settings{}, nil, err
	}
	doc, pd := parseDocument(file, data, true, false)
	diags = append(diags, pd...)
	if doc == nil {
		return kmodel.Settings{}, diags, nil
	}
	sd, err := sch.settings.Validate(doc)
	if err != nil {
		return kmodel.Settings{}, nil, err
	}
	diags = append(diags, sd...)
	if len(diags) > 0 {
		return kmodel.Settings{}, diags, nil
	}
	var s kmodel.Settings
	if err := doc.Decode(&s); err != nil {
		return kmodel.Settings{}, []diag.Diagnostic{{File: file, Line: 1, Column: 1, Message: err.Error()}}, nil
	}
	if d := checkIgnores(doc, s.Ignore, nil, ignoreScope{environments: s.Environments}); len(d) > 0 {
		return kmodel.Settings{}, d, nil
	}
	return s, nil, nil
}

// listFlagFiles returns the flag files below dir in lexical order, and settings files
// found below the root, which are not read.
func listFlagFiles(fsys fs.FS, dir string) (files, misplaced []string, err error) {
	err = fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
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
		if d.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			return nil
		}
		if slices.Contains(flagrepo.SettingsNames, name) {
			if path.Dir(p) != dir {
				misplaced = append(misplaced, p)
			}
			return nil
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list flag files in %s: %w", dir, err)
	}
	return files, misplaced, nil
}

// fileResult is what loading one flag file gave.
type fileResult struct {
	flag            *kmodel.Flag // nil unless the file is valid on its own
	ref             *kmodel.Ref  // the flag's identity when siteCode and featureKey are valid, for duplicates
	file            string
	keyLine, keyCol int // position of the featureKey value
	diags           []diag.Diagnostic
}

// loadFlagFiles reads the files one by one (an fs.FS is not promised to be safe for
// concurrent use) and parses and validates them on GOMAXPROCS goroutines.
func loadFlagFiles(fsys fs.FS, files []string, sch *schemas, settings *kmodel.Settings) ([]fileResult, error) {
	results := make([]fileResult, len(files))
	type job struct {
		i    int
		data []byte
	}
	jobs := make(chan job, 64)
	var readErr error
	go func() {
		defer close(jobs)
		for i, f := range files {
			data, err := fs.ReadFile(fsys, f)
			if err != nil {
				readErr = fmt.Errorf("read flag file %s: %w", f, err)
				return
			}
			jobs <- job{i, data}
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var validateErr error
	for range max(1, min(runtime.GOMAXPROCS(0), len(files))) {
		wg.Go(func() {
			for j := range jobs {
				r, err := safeLoadFlagFile(files[j.i], j.data, sch, settings)
				if err != nil {
					mu.Lock()
					validateErr = cmp.Or(validateErr, err)
					mu.Unlock()
				}
				results[j.i] = r
			}
		})
	}
	wg.Wait()
	if readErr != nil {
		return nil, readErr
	}
	if validateErr != nil {
		return nil, validateErr
	}
	return results, nil
}

// safeLoadFlagFile is loadFlagFile turning a panic into an error: a bug met on one
// odd file must not take a long-running process down.
func safeLoadFlagFile(file string, data []byte, sch *schemas, settings *kmodel.Settings) (r fileResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = fileResult{}, fmt.Errorf("load flag file %s: internal error: %v", file, p)
		}
	}()
	return loadFlagFile(file, data, sch, settings)
}

// loadFlagFile parses, validates and checks one flag file. The error is reserved for
// failures of the validator itself; problems in the file are diagnostics.
//
// The semantic checks run even when the schema found problems, on what could be read,
// so that one run shows everything; a semantic problem inside a field that already has
// a problem, or that depends on variations or variables that have one, is not reported
// twice.
func loadFlagFile(file string, data []byte, sch *schemas, settings *kmodel.Settings) (fileResult, error) {
	doc, diags := parseDocument(file, data, false, true)
	if doc == nil {
		return fileResult{file: file, diags: diags}, nil
	}
	sd, err := sch.flag.Validate(doc)
	if err != nil {
		return fileResult{}, err
	}
	diags = append(diags, sd...)

	var f kmodel.Flag
	if err := doc.Decode(&f); err != nil && len(diags) == 0 {
		// The schema guarantees the shape; this is a bug, but a reported one.
		diags = append(diags, diag.Diagnostic{File: file, Line: doc.Root().Line, Column: doc.Root().Column, Message: err.Error()})
	}
	c := checker{doc: doc, settings: settings, known: diags}
	siteCodeOK := !c.troubled("siteCode")
	if f.SiteCode == "" && siteCodeOK && settings != nil {
		if settings.SiteCode != "" {
			f.SiteCode = settings.SiteCode
		} else {
			c.diags = append(c.diags, diag.Diagnostic{File: file, Line: doc.Root().Line, Column: doc.Root().Column,
				Message: `missing required field "siteCode" (or set a default siteCode in ` + flagrepo.SettingsFile + `)`})
		}
	}
	c.flag(&f)
	diags = append(diags, c.diags...)

	r := fileResult{file: file, diags: diags}
	if key := doc.Locate("featureKey"); key.Found && f.FeatureKey != "" && f.SiteCode != "" && siteCodeOK && !c.troubled("featureKey") {
		ref := f.Ref()
		r.ref, r.keyLine, r.keyCol = &ref, key.Node.Line, key.Node.Column
		f.Source = kmodel.Source{File: file, Line: key.Key.Line}
	}
	if len(diags) == 0 {
		r.flag = &f
	}
	return r, nil
}
