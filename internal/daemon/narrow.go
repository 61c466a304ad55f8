package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/flagrepo"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// flagIndex maps each flag file of a valid revision to the flag it defines. It is what
// lets a new revision be checked and planned file by file: a file that did not change
// still holds the flag it held, and was valid.
type flagIndex struct {
	rev   string
	files map[string]plan.Address // flag file (repository path) → flag
	refs  map[plan.Address]string // flag → its file
}

// newFileIndex indexes the flags of a valid revision of any services.
func newFileIndex(rev string, flags []reconcile.FlagFile) *flagIndex {
	ix := &flagIndex{rev: rev, files: make(map[string]plan.Address, len(flags)), refs: make(map[plan.Address]string, len(flags))}
	for _, f := range flags {
		ix.files[f.File] = f.Flag
		ix.refs[f.Flag] = f.File
	}
	return ix
}

// loader loads a repository (a snapshot, or the changed files of one), or returns a
// *diag.InvalidError (see reconcile.Load).
type loader func(fsys fs.FS) (*reconcile.Loaded, error)

// narrowed is a new revision reduced to the flags its changed files define.
type narrowed struct {
	// full, when set, says why the change cannot be narrowed: the whole repository
	// must be loaded and reconciled. The other fields are then unset.
	full string
	// loaded is the settings and the changed flag files, loaded: exactly the changed
	// flags, ready to sync. Nil when no flag file changed.
	loaded *reconcile.Loaded
	only   []plan.Address // the changed flags, sorted
	files  []string       // the changed flag files
	next   *flagIndex     // the index of the new revision
}

// narrow maps the files changed since ix.rev to the flags they define at rev, and checks
// those files. Files outside the flag folder, or that the loader does not read, are
// ignored. The result asks for a full reconcile when a change reaches beyond the changed
// flags: a settings file changed, a flag file was deleted or now defines another flag
// (its old flag left Git: only a full run prunes or reports it), or a changed file takes
// a flag another file defines (only a full load reports the duplicate with both places).
//
// When a changed file is invalid, narrow returns the *diag.InvalidError: the whole
// revision is invalid, since every other file is as it was in a valid revision.
func (ix *flagIndex) narrow(snap fs.FS, dir, rev string, changed []string, load loader) (narrowed, error) {
	flagFiles, full, err := ix.changedFlagFiles(snap, dir, changed)
	if err != nil || full != "" {
		return narrowed{full: full}, err
	}
	sub := fstest.MapFS{}
	for _, name := range flagrepo.SettingsNames {
		p := path.Join(dir, name)
		b, err := fs.ReadFile(snap, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return narrowed{}, fmt.Errorf("read settings %s: %w", p, err)
		}
		sub[p] = &fstest.MapFile{Data: b}
	}
	for _, p := range flagFiles {
		b, err := fs.ReadFile(snap, p)
		if err != nil {
			return narrowed{}, fmt.Errorf("read changed file %s: %w", p, err)
		}
		sub[p] = &fstest.MapFile{Data: b}
	}
	out := narrowed{files: flagFiles, next: &flagIndex{rev: rev, files: ix.files, refs: ix.refs}}
	if len(flagFiles) == 0 {
		return out, nil
	}
	loaded, err := load(sub)
	if err != nil {
		return narrowed{}, err
	}
	out.loaded = loaded
	flags := loaded.Files()
	changedSet := make(map[string]bool, len(flagFiles))
	for _, p := range flagFiles {
		changedSet[p] = true
	}
	next := &flagIndex{rev: rev, files: maps.Clone(ix.files), refs: maps.Clone(ix.refs)}
	for _, f := range flags {
		file, ref := f.File, f.Flag
		if old, had := ix.files[file]; had && old != ref {
			return narrowed{full: fmt.Sprintf("flag file %s now defines %s instead of %s", file, ref, old)}, nil
		}
		if owner, taken := ix.refs[ref]; taken && owner != file && !changedSet[owner] {
			return narrowed{full: fmt.Sprintf("flag %s is defined in %s and in %s", ref, owner, file)}, nil
		}
		next.files[file] = ref
		next.refs[ref] = file
		out.only = append(out.only, ref)
	}
	slices.SortFunc(out.only, func(a, b plan.Address) int { return strings.Compare(a.String(), b.String()) })
	out.next = next
	return out, nil
}

// changedFlagFiles returns the changed files that are flag files of the flag folder, or
// why the change reaches beyond them (full).
func (ix *flagIndex) changedFlagFiles(snap fs.FS, dir string, changed []string) (flagFiles []string, full string, err error) {
	for _, p := range changed {
		rel, ok := below(dir, p)
		if !ok || hiddenPath(rel) {
			continue
		}
		if flagrepo.IsSettingsName(path.Base(p)) {
			return nil, "settings file " + p + " changed", nil
		}
		if !strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml") {
			continue
		}
		st, err := fs.Stat(snap, p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if _, had := ix.files[p]; had {
				return nil, "flag file " + p + " was deleted", nil
			}
			continue
		case err != nil:
			return nil, "", fmt.Errorf("read changed file %s: %w", p, err)
		case st.IsDir():
			return nil, "folder " + p + " looks like a flag file", nil
		}
		flagFiles = append(flagFiles, p)
	}
	return flagFiles, "", nil
}

// below returns p relative to dir when p is inside dir.
func below(dir, p string) (string, bool) {
	if dir == "." {
		return p, true
	}
	rel, ok := strings.CutPrefix(p, dir+"/")
	return rel, ok
}

// hiddenPath reports whether a path below the flag folder has an element the loader
// skips: a dot-file or a file in a dot-folder (.github, .git).
func hiddenPath(rel string) bool {
	for _, el := range strings.Split(rel, "/") {
		if strings.HasPrefix(el, ".") {
			return true
		}
	}
	return false
}
