package daemon

import (
	"errors"
	"io/fs"

	"github.com/flagsync/flagsync/internal/diag"
	kload "github.com/flagsync/flagsync/internal/kameleoon/load"
	kplan "github.com/flagsync/flagsync/internal/kameleoon/plan"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
	splitload "github.com/flagsync/flagsync/internal/split/load"
	splitplan "github.com/flagsync/flagsync/internal/split/plan"
)

// fileFlag is one flag of a valid repository and the file that defines it.
type fileFlag struct {
	file string
	ref  plan.Address
}

// loadRepository loads and validates the flag files of every service the repository
// has — Kameleoon's with the Kameleoon loader, Split's (vendor: split) with Split's —
// and returns each flag with its file, or one *diag.InvalidError with every problem.
func loadRepository(fsys fs.FS, dir string) ([]fileFlag, error) {
	repo, err := splitload.Survey(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []fileFlag
	var diags []diag.Diagnostic
	files := 0
	collect := func(err error) error {
		var invalid *diag.InvalidError
		if errors.As(err, &invalid) {
			diags = append(diags, invalid.Diagnostics...)
			files += invalid.Files
			return nil
		}
		return err
	}
	if repo.Kameleoon() {
		d, err := kload.Load(reconcile.Without(fsys, repo.SplitFiles), dir)
		if err := collect(err); err != nil {
			return nil, err
		}
		if d != nil {
			for _, f := range d.Flags {
				out = append(out, fileFlag{f.Source.File, kplan.AddressOf(f.Ref(), "")})
			}
		}
	}
	if repo.Split() {
		d, err := splitload.Load(fsys, dir)
		if err := collect(err); err != nil {
			return nil, err
		}
		if d != nil {
			for _, f := range d.Flags {
				out = append(out, fileFlag{f.Source.File, splitplan.AddressOf(f.Ref(), "")})
			}
		}
	}
	if len(diags) > 0 {
		diag.SortDiagnostics(diags)
		return nil, &diag.InvalidError{Diagnostics: diags, Files: files}
	}
	return out, nil
}
