package reconcile

import (
	"context"
	"io/fs"
	"log/slog"

	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/loadcache"
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
	// Cache, when not nil, is the validation cache a vendor's loader may keep what each
	// flag file gave in (see internal/loadcache); a loader that does not use it ignores
	// it. FS is a loadcache.BlobIDFS when the snapshot knows its files' Git blob ids.
	Cache *loadcache.Cache
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

// Fallback is implemented by the vendor that takes the flag files no vendor claims (its
// files name no vendor: Kameleoon's, the first service flagsync synced). At most one
// vendor of a run is a fallback; without one, a file no vendor claims is a problem of
// the repository. The fallback is needed when such files exist, when the repository has
// a settings file no vendor claimed as a whole, or when it has no flag file at all.
type Fallback interface {
	Vendor
	// TakesUnclaimed reports whether the vendor takes the unclaimed files.
	TakesUnclaimed() bool
}

// Binder is implemented by a Repo that can be carried over to a connected Vendor of its
// service without loading the files again: a repository is loaded before its service
// is connected (to validate it, and because an embedded sandbox takes its environments
// from the files), then read and written through the connection. A Repo that is not a
// Binder is loaded again through the connected vendor.
type Binder interface {
	Repo
	// Bind returns the repository, read and written through v from now on, or nil when v
	// is not a vendor of the repository's service.
	Bind(v Vendor) Repo
}
