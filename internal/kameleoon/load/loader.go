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
	"github.com/flagsync/flagsync/internal/loadcache"
	"github.com/flagsync/flagsync/schema"
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
//
// Load is LoadWith without options: no validation cache.
func Load(fsys fs.FS, dir string) (*kmodel.Desired, error) {
	return LoadWith(fsys, dir, Options{})
}

// Options tune LoadWith. The zero value is Load's behaviour.
type Options struct {
	// Cache, when not nil, keeps what each flag file gave on its own (the decoded flag
	// and its diagnostics) by the file's content, so that an unchanged file is not
	// parsed again: see docs/cache.md. flagsync.yaml's checks (the default siteCode, the
	// environments it lists) and the checks across files (duplicate flags) run on every
	// load, so changing flagsync.yaml invalidates nothing.
	Cache *loadcache.Cache
	// SchemaFirst makes every file take the schema path (YAML to JSON values, the JSON
	// Schema validator, then the decoding) as loading did before the fast path, without
	// the cache and with the garbage collector's setting left alone. The result is the
	// same; it is there for the benchmark's before/after figures and for the tests that
	// prove both paths agree.
	SchemaFirst bool
	// Stats, when not nil, receives how the files were loaded.
	Stats *Stats
}

// Stats counts how the flag files of one load were read.
type Stats struct {
	Files  int // flag files found (flagsync.yaml not counted)
	Cached int // read from the validation cache: not parsed
	Fast   int // parsed, and valid on the fast path (decoded into the model, checked in Go)
	Schema int // parsed on the schema path: the fast path found a problem, or SchemaFirst
	// Cache is what the validation cache's session did (zero without a cache).
	Cache loadcache.Stats
}

// LoadWith is Load with options.
func LoadWith(fsys fs.FS, dir string, opts Options) (*kmodel.Desired, error) {
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
	if !opts.SchemaFirst {
		defer loadcache.TuneGC()()
	}
	var stats Stats
	results, err := loadFlagFiles(fsys, files, sch, checkSettings, opts, &stats)
	if err != nil {
		return nil, err
	}
	if opts.Stats != nil {
		*opts.Stats = stats
	}

	desired := &kmodel.Desired{Settings: settings}
	type first struct {
		file      string
		line, col int
	}
	seen := make(map[kmodel.Ref]first, len(results))
	var valid []*kmodel.Flag
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
		seen[*r.ref] = first{file: r.file, line: r.keyLine, col: r.keyCol}
		if r.flag != nil {
			valid = append(valid, r.flag)
		}
	}

	if len(diags) > 0 {
		diag.SortDiagnostics(diags)
		return nil, &diag.InvalidError{Diagnostics: diags, Files: len(files)}
	}
	// Sorting pointers rather than the flags themselves moves 8 bytes a swap, not 300.
	slices.SortFunc(valid, func(a, b *kmodel.Flag) int {
		return cmp.Or(strings.Compare(a.SiteCode, b.SiteCode), strings.Compare(a.FeatureKey, b.FeatureKey))
	})
	if len(valid) > 0 {
		desired.Flags = make([]kmodel.Flag, len(valid))
		for i, f := range valid {
			desired.Flags[i] = *f
		}
	}
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
// concurrent use), looking each up in the validation cache, and parses and validates the
// others on GOMAXPROCS goroutines; then it keeps what they gave in the cache.
func loadFlagFiles(fsys fs.FS, files []string, sch *schemas, settings *kmodel.Settings, opts Options, stats *Stats) ([]fileResult, error) {
	results := make([]fileResult, len(files))
	stats.Files = len(files)
	var cache *loadcache.Session
	codec, err := entryCodec()
	if err != nil {
		return nil, err
	}
	if opts.Cache != nil && !opts.SchemaFirst {
		cache = opts.Cache.Begin(cacheContext(codec))
	}
	type job struct {
		i      int
		data   []byte // nil when the entry was found by the file's blob id, unread
		key    string // the cache key: the blob id's, else the content's once hashed
		cached []byte // the entry the cache holds for key
	}
	jobs := make(chan job, 64)
	var readErr error
	go func() {
		defer close(jobs)
		for i, f := range files {
			j := job{i: i}
			if cache != nil {
				if key, ok := loadcache.BlobKey(fsys, f); ok {
					j.key = key
					if j.cached, ok = cache.Get(key); ok {
						jobs <- j
						continue
					}
				}
			}
			data, err := fs.ReadFile(fsys, f)
			if err != nil {
				readErr = fmt.Errorf("read flag file %s: %w", f, err)
				return
			}
			j.data = data
			jobs <- j
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var validateErr error
	type unreadFile struct {
		i   int
		key string
	}
	var unread []unreadFile // entries found by blob id that did not decode: their files are read after
	for range max(1, min(runtime.GOMAXPROCS(0), len(files))) {
		wg.Go(func() {
			var count Stats
			for j := range jobs {
				if cache != nil && j.key == "" {
					// Hashing here rather than where the files are read spreads it over
					// the goroutines.
					j.key = loadcache.DataKey(j.data)
					j.cached, _ = cache.Get(j.key)
				}
				if j.cached != nil {
					var e fileEntry
					if err := codec.Decode(j.cached, &e); err == nil {
						results[j.i] = finish(files[j.i], e, settings)
						count.Cached++
						continue
					}
					cache.Forget(j.key)
					if j.data == nil {
						mu.Lock()
						unread = append(unread, unreadFile{j.i, j.key})
						mu.Unlock()
						continue
					}
				}
				r, err := loadOne(files[j.i], j.data, sch, settings, opts, cache, j.key, codec, &count)
				if err != nil {
					mu.Lock()
					validateErr = cmp.Or(validateErr, err)
					mu.Unlock()
					continue
				}
				results[j.i] = r
			}
			mu.Lock()
			stats.Cached += count.Cached
			stats.Fast += count.Fast
			stats.Schema += count.Schema
			mu.Unlock()
		})
	}
	wg.Wait()
	if readErr != nil {
		return nil, readErr
	}
	slices.SortFunc(unread, func(a, b unreadFile) int { return cmp.Compare(a.i, b.i) })
	for _, u := range unread {
		data, err := fs.ReadFile(fsys, files[u.i])
		if err != nil {
			return nil, fmt.Errorf("read flag file %s: %w", files[u.i], err)
		}
		if results[u.i], err = loadOne(files[u.i], data, sch, settings, opts, cache, u.key, codec, stats); err != nil {
			validateErr = cmp.Or(validateErr, err)
		}
	}
	if validateErr != nil {
		return nil, validateErr
	}
	if cache != nil {
		cache.Commit()
		stats.Cache = cache.Stats()
	}
	return results, nil
}

// loadOne parses and checks one file, keeps what it gave in the cache under key, and
// counts the path it took.
func loadOne(file string, data []byte, sch *schemas, settings *kmodel.Settings, opts Options,
	cache *loadcache.Session, key string, codec *loadcache.Codec[fileEntry], count *Stats) (fileResult, error) {
	e, fast, err := analyse(file, data, sch, opts.SchemaFirst)
	if err != nil {
		return fileResult{}, err
	}
	if fast {
		count.Fast++
	} else {
		count.Schema++
	}
	if cache != nil && cacheable(e, file) {
		if v, err := codec.Encode(&e); err == nil {
			cache.Put(key, v)
		}
	}
	return finish(file, e, settings), nil
}

// cacheable reports whether an entry can be kept for any file of the same content: not
// when a message names the file it came from (none does today; this keeps it so).
func cacheable(e fileEntry, file string) bool {
	return !slices.ContainsFunc(e.Diags, func(d diag.Diagnostic) bool { return strings.Contains(d.Message, file) })
}

// entryCodec encodes the cache's entries.
var entryCodec = sync.OnceValues(loadcache.NewCodec[fileEntry])

// cacheContext is what, besides a file's content, decides its entry: the flag schema
// and the entries' encoding (the cache adds the binary's version). No setting is part
// of it: finish applies flagsync.yaml on every load.
func cacheContext(codec *loadcache.Codec[fileEntry]) loadcache.Context {
	return loadcache.Context{Vendor: "kameleoon", Schema: schema.Flag(), Format: codec.Fingerprint()}
}

// fileEntry is what one flag file gives on its own, before the settings in
// flagsync.yaml apply: what the validation cache keeps, keyed by the file's content. It
// names no file (the Diagnostics' File is empty, the flag's Source too), so the same
// content gives the same entry wherever it is; finish adds the file and the settings.
type fileEntry struct {
	Flag   kmodel.Flag       // decoded as far as it could be read; Source left empty
	Diags  []diag.Diagnostic // the file's problems on its own, File left empty
	Parsed bool              // the file is a mapping that could be checked: the settings' checks apply

	RootLine, RootColumn int  // the top-level mapping, where a missing siteCode is reported
	SiteCodeOK           bool // no problem at or inside siteCode
	Key                  entryKey
	// Envs are the flag's environments, sorted by key. The flag's Environments map is
	// kept here as this list (Flag.Environments is nil, HasEnvironments tells whether
	// it was not): finish builds the map again with a typed insert, much cheaper than
	// the codec's insert through reflection, which showed high in the warm load's profile.
	Envs            []entryEnv
	HasEnvironments bool
}

// entryKey is where featureKey is written.
type entryKey struct {
	Found        bool // featureKey is written
	OK           bool // no problem at or inside it
	Line, Column int  // its value, where duplicates are reported
	KeyLine      int  // its key, the flag's Source line
}

// entryEnv is an environment of the flag, for the check against the environments
// flagsync.yaml lists.
type entryEnv struct {
	Key          string
	Line, Column int  // the environment's key
	Quiet        bool // a problem is already reported at or above it: report nothing more there
	Environment  kmodel.Environment
}

// stowEnvironments moves the flag's environments into e.Envs (see fileEntry).
func (e *fileEntry) stowEnvironments() {
	e.HasEnvironments = e.Flag.Environments != nil
	for i := range e.Envs {
		e.Envs[i].Environment = e.Flag.Environments[e.Envs[i].Key]
	}
	e.Flag.Environments = nil
}

// finish applies the settings to what one file gave on its own (a missing siteCode
// takes flagsync.yaml's default; environments must be among those flagsync.yaml lists)
// and places the result in file. settings is nil when flagsync.yaml is itself invalid.
func finish(file string, e fileEntry, settings *kmodel.Settings) fileResult {
	r := fileResult{file: file}
	var diags []diag.Diagnostic // most files have none: no allocation for them
	if len(e.Diags) > 0 {
		diags = make([]diag.Diagnostic, len(e.Diags), len(e.Diags)+1)
		for i, d := range e.Diags {
			d.File = file
			diags[i] = d
		}
	}
	if !e.Parsed {
		r.diags = diags
		return r
	}
	f := e.Flag
	if e.HasEnvironments {
		f.Environments = make(map[string]kmodel.Environment, len(e.Envs))
		for _, env := range e.Envs {
			f.Environments[env.Key] = env.Environment
		}
	}
	if f.SiteCode == "" && e.SiteCodeOK && settings != nil {
		if settings.SiteCode != "" {
			f.SiteCode = settings.SiteCode
		} else {
			diags = append(diags, diag.Diagnostic{File: file, Line: e.RootLine, Column: e.RootColumn,
				Message: `missing required field "siteCode" (or set a default siteCode in ` + flagrepo.SettingsFile + `)`})
		}
	}
	if settings != nil && len(settings.Environments) > 0 {
		for _, env := range e.Envs {
			if env.Quiet || slices.Contains(settings.Environments, env.Key) {
				continue
			}
			diags = append(diags, diag.Diagnostic{File: file, Line: env.Line, Column: env.Column, Field: diag.FieldPath("environments", env.Key),
				Message: fmt.Sprintf("unknown environment %q%s (flagsync.yaml lists %s)", env.Key,
					diag.DidYouMean(env.Key, settings.Environments), strings.Join(settings.Environments, ", "))})
		}
	}
	if e.Key.Found && e.Key.OK && e.SiteCodeOK && f.FeatureKey != "" && f.SiteCode != "" {
		ref := f.Ref()
		r.ref, r.keyLine, r.keyCol = &ref, e.Key.Line, e.Key.Column
		f.Source = kmodel.Source{File: file, Line: e.Key.KeyLine}
	}
	r.diags = diags
	if len(diags) == 0 {
		r.flag = &f
	}
	return r
}

// analyse checks one flag file on its own: on the fast path, then on the schema path
// when the fast path finds anything wrong (or when schemaFirst), so that every
// diagnostic comes from the schema path. fast reports which path gave the entry. The
// error is reserved for failures of the validator itself; a panic on one odd file is
// one too, so that it does not take a long-running process down.
func analyse(file string, data []byte, sch *schemas, schemaFirst bool) (e fileEntry, fast bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			e, fast, err = fileEntry{}, false, fmt.Errorf("load flag file %s: internal error: %v", file, p)
		}
	}()
	if !schemaFirst {
		if e, ok := analyseFast(data); ok {
			return e, true, nil
		}
	}
	e, err = analyseSchema(file, data, sch)
	return e, false, err
}

// analyseSchema parses, validates and checks one flag file on the schema path: YAML to
// JSON values, the JSON Schema, the decoding, the semantic checks, each problem a
// diagnostic placed on its node.
//
// The semantic checks run even when the schema found problems, on what could be read,
// so that one run shows everything; a semantic problem inside a field that already has
// a problem, or that depends on variations or variables that have one, is not reported
// twice.
func analyseSchema(file string, data []byte, sch *schemas) (fileEntry, error) {
	doc, diags := parseDocument(file, data, false, true)
	if doc == nil {
		return fileEntry{Diags: withoutFile(diags)}, nil
	}
	sd, err := sch.flag.Validate(doc)
	if err != nil {
		return fileEntry{}, err
	}
	diags = append(diags, sd...)

	var f kmodel.Flag
	if err := doc.Decode(&f); err != nil && len(diags) == 0 {
		// The schema guarantees the shape; this is a bug, but a reported one.
		diags = append(diags, diag.Diagnostic{File: file, Line: doc.Root().Line, Column: doc.Root().Column, Message: err.Error()})
	}
	c := checker{doc: doc, known: diags}
	c.flag(&f)

	e := fileEntry{Flag: f, Parsed: true, RootLine: doc.Root().Line, RootColumn: doc.Root().Column, SiteCodeOK: !c.troubled("siteCode")}
	if key := doc.Locate("featureKey"); key.Found {
		e.Key = entryKey{Found: true, OK: !c.troubled("featureKey"), Line: key.Node.Line, Column: key.Node.Column, KeyLine: key.Key.Line}
	}
	for _, ek := range f.EnvironmentKeys() {
		l := doc.Locate("environments", ek)
		line, col := l.At(true)
		quiet := slices.ContainsFunc(diags, func(d diag.Diagnostic) bool { return d.Field != "" && diag.Under(l.Field, d.Field) })
		e.Envs = append(e.Envs, entryEnv{Key: ek, Line: line, Column: col, Quiet: quiet})
	}
	e.Diags = withoutFile(append(diags, c.diags...))
	e.stowEnvironments()
	return e, nil
}

// withoutFile returns the diagnostics with File cleared, as a fileEntry keeps them.
func withoutFile(diags []diag.Diagnostic) []diag.Diagnostic {
	for i := range diags {
		diags[i].File = ""
	}
	return diags
}
