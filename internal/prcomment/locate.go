package prcomment

import (
	"errors"
	"io/fs"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// LocateFlags reads the flag files in dir of fsys, each vendor its own (see
// reconcile.Locate), and returns where each flag is defined, so that a report can
// annotate a refused change on its flag's file. It reads files only: the vendors need no
// client. Invalid files locate nothing: their problems carry their own lines.
func LocateFlags(vendors []reconcile.Vendor, fsys fs.FS, dir string) (map[plan.Address]reconcile.FlagFile, error) {
	flags, err := reconcile.Locate(vendors, reconcile.Source{FS: fsys, Dir: dir})
	var invalid *diag.InvalidError
	if err != nil && !errors.As(err, &invalid) {
		return nil, err
	}
	out := make(map[plan.Address]reconcile.FlagFile, len(flags))
	for _, f := range flags {
		out[f.Flag] = f
	}
	return out, nil
}
