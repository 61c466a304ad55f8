package prcomment

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

// LocateFlags reads the flag files in dir of fsys (Kameleoon's and Split's) and returns
// where each flag is defined, so that a report can annotate a refused change on its
// flag's file. It reads files only. Invalid files locate nothing: their problems carry
// their own lines.
func LocateFlags(fsys fs.FS, dir string) (map[plan.Address]reconcile.FlagFile, error) {
	repo, err := splitload.Survey(fsys, dir)
	if err != nil {
		return nil, err
	}
	out := map[plan.Address]reconcile.FlagFile{}
	if repo.Kameleoon() {
		desired, err := kload.Load(reconcile.Without(fsys, repo.SplitFiles), dir)
		if err := skipInvalid(err); err != nil {
			return nil, err
		}
		if desired != nil {
			for _, f := range desired.Flags {
				a := kplan.AddressOf(f.Ref(), "")
				out[a] = reconcile.FlagFile{Flag: a, File: f.Source.File, Line: f.Source.Line}
			}
		}
	}
	if repo.Split() {
		desired, err := splitload.Load(fsys, dir)
		if err := skipInvalid(err); err != nil {
			return nil, err
		}
		if desired != nil {
			for _, f := range desired.Flags {
				a := splitplan.AddressOf(f.Ref(), "")
				out[a] = reconcile.FlagFile{Flag: a, File: f.Source.File, Line: f.Source.Line}
			}
		}
	}
	return out, nil
}

// skipInvalid drops a *diag.InvalidError: invalid files locate nothing.
func skipInvalid(err error) error {
	var invalid *diag.InvalidError
	if errors.As(err, &invalid) {
		return nil
	}
	return err
}
