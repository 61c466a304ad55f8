package prcomment

import (
	"errors"
	"io/fs"

	"github.com/flagsync/flagsync/internal/diag"
	kload "github.com/flagsync/flagsync/internal/kameleoon/load"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	"github.com/flagsync/flagsync/internal/reconcile"
	splitload "github.com/flagsync/flagsync/internal/split/load"
)

// LocateFlags reads the flag files in dir of fsys (Kameleoon's and Split's) and returns
// where each flag is defined, so that a report can annotate a refused change on its
// flag's file. It reads files only. Invalid files locate nothing: their problems carry
// their own lines.
func LocateFlags(fsys fs.FS, dir string) (map[kmodel.Ref]kmodel.Source, error) {
	repo, err := splitload.Survey(fsys, dir)
	if err != nil {
		return nil, err
	}
	out := map[kmodel.Ref]kmodel.Source{}
	if repo.Kameleoon() {
		desired, err := kload.Load(reconcile.Without(fsys, repo.SplitFiles), dir)
		if err := skipInvalid(err); err != nil {
			return nil, err
		}
		if desired != nil {
			for _, f := range desired.Flags {
				out[f.Ref()] = f.Source
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
				out[f.Ref()] = f.Source
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
