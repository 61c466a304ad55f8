package reconcile

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"path"
	"strings"

	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
)

// Vendor is one flag service the pipeline syncs: the seam between the pipeline (Run owns
// the order of the steps, the guards, apply and the report) and what knows the service
// (its flag files, its live state, its planner, its client). Each vendor's folder
// provides one (kameleoon.Vendor, split.Vendor); the pipeline never names a vendor. A
// Vendor is used by one Run at a time or concurrently; what one run learns lives in the
// Repo its Load returns.
type Vendor interface {
	// Service names the service for people and logs ("Kameleoon", "Split").
	Service() string
	// Claim returns the files of the flag folder that are this service's, so that other
	// services do not load them, and whether the repository as a whole is this service's
	// (its flagsync.yaml says so), in which case no other service loads anything. Claim
	// reads as little as it can; problems in the files are Load's to report.
	Claim(src Source) (files []string, whole bool, err error)
	// Load reads and validates this service's flag files in src. Invalid files are a
	// *diag.InvalidError.
	Load(src Source) (Repo, error)
	// Do sends one planned request exactly (apply.Doer).
	apply.Doer
}

// Source is the flag folder of one run, as a Vendor sees it: files other services
// claimed are hidden from FS.
type Source struct {
	FS       fs.FS
	Dir      string
	Revision string
	Logger   *slog.Logger
}

// Repo is a service's part of a repository for one run: its desired flags, and the live
// state it read.
type Repo interface {
	// Restrict keeps only the named flags (a partial run).
	Restrict(only []plan.Address)
	// Scopes are what a full run reads (site codes, workspace ids), for the report.
	Scopes() []string
	// Read reads the live state the plan needs: every scope in a full run; in a partial
	// run, only the desired flags, each on its own.
	Read(ctx context.Context, partial bool) error
	// Plan computes the plan from the last read (a pure step). The error is a guard's
	// refusal, returned with a usable plan.
	Plan(opts PlanOptions) (plan.Plan, error)
	// Confirm reads again what the results touched, with as few calls as it can, and
	// returns the changes that remain.
	Confirm(ctx context.Context, results []apply.Result, opts PlanOptions) ([]plan.Change, error)
	// Files returns where each desired flag is defined, for the daemon's index of a
	// revision and for annotations on a pull request.
	Files() []FlagFile
}

// FlagFile is where one desired flag is defined.
type FlagFile struct {
	Flag plan.Address // the flag (no environment)
	File string       // its flag file, a repository path
	Line int          // the line of its key in the file
}

// PlanOptions are what the pipeline asks of every service's planner.
type PlanOptions struct {
	Revision         string
	Partial          bool // neither prunes nor reports unmanaged flags: the run has not seen everything
	Prune            bool // as well as the settings' prune: true
	MaxArchive       int
	AllowMassArchive bool
}

// part is one service's share of a run.
type part struct {
	vendor Vendor
	repo   Repo
}

// load lets each vendor claim its files, then has each load its own: a vendor never
// sees the files another claimed, and a vendor that claims the whole repository is the
// only one. Every vendor's problems are reported together, as one *diag.InvalidError.
func load(vendors []Vendor, src Source) ([]part, error) {
	parts, invalid, err := loadParts(vendors, src)
	switch {
	case err != nil:
		return nil, err
	case invalid != nil:
		return nil, invalid
	}
	return parts, nil
}

// loadParts is load, returning the parts of the vendors whose files are valid beside the
// problems of the others.
func loadParts(vendors []Vendor, src Source) ([]part, *diag.InvalidError, error) {
	claims := make([][]string, 0, len(vendors))
	for _, v := range vendors {
		files, whole, err := v.Claim(src)
		if err != nil {
			return nil, nil, err
		}
		if whole {
			vendors, claims = []Vendor{v}, [][]string{nil}
			break
		}
		claims = append(claims, files)
	}
	var parts []part
	var diags []diag.Diagnostic
	files := 0
	for i, v := range vendors {
		hidden := map[string]bool{}
		for j, c := range claims {
			if j != i {
				for _, f := range c {
					hidden[f] = true
				}
			}
		}
		repo, err := v.Load(hide(src, hidden))
		var invalid *diag.InvalidError
		switch {
		case errors.As(err, &invalid):
			diags = append(diags, invalid.Diagnostics...)
			files += invalid.Files
			continue
		case err != nil:
			return nil, nil, err
		}
		parts = append(parts, part{vendor: v, repo: repo})
	}
	if len(diags) > 0 {
		diag.SortDiagnostics(diags)
		return parts, &diag.InvalidError{Diagnostics: diags, Files: files}, nil
	}
	return parts, nil, nil
}

// Locate loads the repository in src as Run does, each vendor claiming its files, and
// returns where each desired flag is defined. It reads files only. When files are
// invalid, the error is a *diag.InvalidError with every vendor's problems, returned with
// the flags of the vendors whose files are valid.
func Locate(vendors []Vendor, src Source) ([]FlagFile, error) {
	parts, invalid, err := loadParts(vendors, src)
	if err != nil {
		return nil, err
	}
	var out []FlagFile
	for _, pt := range parts {
		out = append(out, pt.repo.Files()...)
	}
	if invalid != nil {
		return out, invalid
	}
	return out, nil
}

// merge joins the services' plans into the one plan a run shows and applies: changes in
// the services' order, renumbered.
func merge(revision string, plans []plan.Plan) plan.Plan {
	if len(plans) == 1 {
		return plans[0]
	}
	out := plan.Plan{Revision: revision, Changes: []plan.Change{}, Unmanaged: []plan.Address{}}
	var services []string
	for _, p := range plans {
		if len(p.Changes)+len(p.Unmanaged)+len(p.Blocked)+len(p.Notes) > 0 || len(plans) == 1 {
			services = append(services, p.ServiceName())
		}
		for _, c := range p.Changes {
			c.Order = len(out.Changes) + 1
			out.Changes = append(out.Changes, c)
		}
		out.Unmanaged = append(out.Unmanaged, p.Unmanaged...)
		out.Blocked = append(out.Blocked, p.Blocked...)
		out.Notes = append(out.Notes, p.Notes...)
	}
	switch {
	case len(services) == 0:
		// Nothing to show: the plan speaks for the first service.
		out.Service = plans[0].Service
	case len(services) == 1:
		out.Service = services[0]
	default:
		out.Service = strings.Join(services, " and ")
	}
	return out
}

// Without returns fsys without the given files (slash-separated paths): they are neither
// listed nor opened. A service's loader reads a repository that holds other services'
// files through it.
func Without(fsys fs.FS, files []string) fs.FS {
	if len(files) == 0 {
		return fsys
	}
	hidden := make(map[string]bool, len(files))
	for _, f := range files {
		hidden[path.Clean(f)] = true
	}
	return hiddenFS{fsys: fsys, hidden: hidden}
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

// ReadFile reads a file that is not hidden.
func (h hiddenFS) ReadFile(name string) ([]byte, error) {
	if h.hidden[path.Clean(name)] {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return fs.ReadFile(h.fsys, name)
}
