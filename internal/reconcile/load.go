package reconcile

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/flagrepo"
	"github.com/flagsync/flagsync/internal/loadcache"
	"github.com/flagsync/flagsync/internal/policy"
)

// Loaded is the load step's result: the flag services a repository needs, each with its
// validated files. It is what a run plans from, what the daemon indexes a revision by
// (Files) and what an embedded sandbox takes its environments from (Parts); nothing
// loads the repository a second time.
type Loaded struct {
	Revision string
	// Parts are the services the repository needs whose files are valid, in the order of
	// the vendors given to Load.
	Parts []Part
	// Needed are the vendors of every service the repository needs, valid or not (the
	// dispatch's answer), in the same order.
	Needed []Vendor
	// Settings are flagsync.yaml's vendor-neutral settings: the policies (compiled in
	// each part), promote's settings and the environments' order.
	Settings flagrepo.Settings

	src Source
}

// Part is one service's share of a loaded repository.
type Part struct {
	Vendor Vendor // the vendor that loaded it
	Repo   Repo   // its desired flags (and, once read, its live state)
	// Policies are flagsync.yaml's policies compiled against this service's flag
	// files; empty when the settings have none.
	Policies *policy.Set

	hidden map[string]bool // the files other services took
}

// Files returns where each desired flag of every service is defined.
func (l *Loaded) Files() []FlagFile {
	var out []FlagFile
	for _, pt := range l.Parts {
		out = append(out, pt.Repo.Files()...)
	}
	return out
}

// Connect returns the repository read and written through vendors: connected vendors of
// the loaded services (matched by Service). Each part is carried over without loading
// again when its Repo is a Binder; otherwise the connected vendor loads the same files.
func (l *Loaded) Connect(vendors []Vendor) (*Loaded, error) {
	out := &Loaded{Revision: l.Revision, src: l.src, Settings: l.Settings, Parts: make([]Part, 0, len(l.Parts))}
	for _, pt := range l.Parts {
		var v Vendor
		for _, c := range vendors {
			if c.Service() == pt.Vendor.Service() {
				v = c
				break
			}
		}
		if v == nil {
			return nil, fmt.Errorf("connect: no client for %s", pt.Vendor.Service())
		}
		var repo Repo
		if b, ok := pt.Repo.(Binder); ok {
			repo = b.Bind(v)
		}
		if repo == nil {
			var err error
			if repo, err = v.Load(hide(l.src, pt.hidden)); err != nil {
				return nil, fmt.Errorf("connect %s: %w", v.Service(), err)
			}
		}
		out.Parts = append(out.Parts, Part{Vendor: v, Repo: repo, Policies: pt.Policies, hidden: pt.hidden})
		out.Needed = append(out.Needed, v)
	}
	return out, nil
}

// Load is the first step of a run, and the one dispatch that decides which flag services
// a repository needs: each vendor claims its files (see Vendor.Claim and Fallback), and
// each vendor the repository needs loads and validates its own, never seeing the files
// another claimed. flagsync.yaml's vendor-neutral settings are read once (Loaded.Settings)
// and its policies compiled for each service (Part.Policies): a policy that does not
// compile is a problem of the repository like any other. Every service's problems are
// reported together, as one *diag.InvalidError returned with the parts whose files are
// valid.
func Load(vendors []Vendor, src Source) (*Loaded, error) {
	if len(vendors) == 0 {
		return nil, errors.New("no flag service to load them")
	}
	shares, unclaimed, err := dispatch(vendors, src)
	if err != nil {
		return nil, err
	}
	l := &Loaded{Revision: src.Revision, src: src}
	for _, sh := range shares {
		l.Needed = append(l.Needed, sh.vendor)
	}
	diags := unclaimed
	files := len(unclaimed)
	for i, sh := range shares {
		hidden := map[string]bool{}
		for j, other := range shares {
			if j != i {
				for _, f := range other.files {
					hidden[f] = true
				}
			}
		}
		repo, err := sh.vendor.Load(hide(src, hidden))
		var invalid *diag.InvalidError
		switch {
		case errors.As(err, &invalid):
			diags = append(diags, invalid.Diagnostics...)
			files += invalid.Files
			continue
		case err != nil:
			return nil, err
		}
		l.Parts = append(l.Parts, Part{Vendor: sh.vendor, Repo: repo, hidden: hidden})
	}
	settings, sd, err := flagrepo.ReadSettings(src.FS, cleanDir(src.Dir))
	if err != nil {
		return nil, err
	}
	l.Settings = settings
	pd, err := l.compilePolicies(sd, diags)
	if err != nil {
		return nil, err
	}
	diags = append(diags, pd...)
	if len(diags) > 0 {
		diag.SortDiagnostics(diags)
		return l, &diag.InvalidError{Diagnostics: diags, Files: files}
	}
	if len(l.Parts) == 0 {
		return nil, errors.New("no flag service claims the files")
	}
	return l, nil
}

// Locate loads the repository in src as a run does and returns where each desired flag
// is defined. It reads files only. When files are invalid, the error is a
// *diag.InvalidError with every service's problems, returned with the flags of the
// services whose files are valid.
func Locate(vendors []Vendor, src Source) ([]FlagFile, error) {
	l, err := Load(vendors, src)
	if l == nil {
		return nil, err
	}
	return l.Files(), err
}

// share is what one service takes of a repository.
type share struct {
	vendor Vendor
	files  []string // the files it claimed (none for the fallback, which takes the rest)
}

// dispatch decides which of vendors the repository in src needs: a vendor that claims
// the whole repository alone; otherwise every vendor that claims files, and the fallback
// (see Fallback) when files are left, when a settings file exists or when nothing was
// claimed. Without a fallback, each file no vendor claims is a problem (returned as
// diagnostics).
func dispatch(vendors []Vendor, src Source) (shares []share, unclaimed []diag.Diagnostic, err error) {
	var fallback Vendor
	claimed := 0
	taken := map[string]bool{}
	for _, v := range vendors {
		files, whole, err := v.Claim(src)
		if err != nil {
			return nil, nil, err
		}
		if whole {
			return []share{{vendor: v}}, nil, nil
		}
		if f, ok := v.(Fallback); ok && f.TakesUnclaimed() && fallback == nil {
			fallback = v
		}
		shares = append(shares, share{vendor: v, files: files})
		claimed += len(files)
		for _, f := range files {
			taken[path.Clean(f)] = true
		}
	}
	all, err := flagrepo.FlagFiles(src.FS, cleanDir(src.Dir))
	if err != nil {
		return nil, nil, err
	}
	var rest []string
	for _, f := range all {
		if !taken[f] {
			rest = append(rest, f)
		}
	}
	settings, err := flagrepo.HasSettings(src.FS, cleanDir(src.Dir))
	if err != nil {
		return nil, nil, err
	}
	needed := shares[:0]
	for _, sh := range shares {
		if len(sh.files) > 0 || (sh.vendor == fallback && (len(rest) > 0 || settings || claimed == 0)) {
			needed = append(needed, sh)
		}
	}
	if fallback == nil {
		unclaimed = unclaimedFiles(vendors, rest)
	}
	return needed, unclaimed, nil
}

// unclaimedFiles reports files no vendor claimed when none takes the rest.
func unclaimedFiles(vendors []Vendor, files []string) []diag.Diagnostic {
	var names []string
	for _, v := range vendors {
		names = append(names, v.Service())
	}
	out := make([]diag.Diagnostic, 0, len(files))
	for _, f := range files {
		out = append(out, diag.Diagnostic{File: f, Line: 1, Column: 1,
			Message: "no flag service claims this file: name one with vendor: (" + strings.Join(names, ", ") + ")"})
	}
	return out
}

func cleanDir(dir string) string {
	dir = path.Clean(strings.TrimSuffix(dir, "/"))
	if dir == "" {
		return "."
	}
	return dir
}

// hide returns src with the given files left out of its FS.
func hide(src Source, files map[string]bool) Source {
	if len(files) == 0 {
		return src
	}
	src.FS = hiddenFS{fsys: src.FS, hidden: files}
	return src
}

// hiddenFS is an fs.FS without some files: they are neither listed nor opened.
type hiddenFS struct {
	fsys   fs.FS
	hidden map[string]bool
}

// Open opens a file that is not hidden.
func (h hiddenFS) Open(name string) (fs.File, error) {
	if h.hidden[path.Clean(name)] {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return h.fsys.Open(name)
}

// ReadDir lists a folder without the hidden files.
func (h hiddenFS) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(h.fsys, name)
	if err != nil {
		return nil, err
	}
	out := entries[:0:0]
	for _, e := range entries {
		if !h.hidden[path.Join(name, e.Name())] {
			out = append(out, e)
		}
	}
	return out, nil
}

// BlobID returns the Git blob id of a file that is not hidden, when the underlying FS
// knows it (loadcache.BlobIDFS): a load through hiddenFS keys the validation cache by
// blob id as a load of the snapshot itself does, without reading the file.
func (h hiddenFS) BlobID(name string) (string, error) {
	if h.hidden[path.Clean(name)] {
		return "", &fs.PathError{Op: "blobid", Path: name, Err: fs.ErrNotExist}
	}
	b, ok := h.fsys.(loadcache.BlobIDFS)
	if !ok {
		return "", &fs.PathError{Op: "blobid", Path: name, Err: errors.ErrUnsupported}
	}
	return b.BlobID(name)
}

// ReadFile reads a file that is not hidden.
func (h hiddenFS) ReadFile(name string) ([]byte, error) {
	if h.hidden[path.Clean(name)] {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return fs.ReadFile(h.fsys, name)
}
