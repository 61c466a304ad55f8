package daemon

import (
	"io/fs"

	"github.com/flagsync/flagsync/internal/reconcile"
)

// locate loads and validates the flag files of every service the repository has, each
// vendor of the daemon its own (see reconcile.Locate), and returns each flag with its
// file, or one *diag.InvalidError with every problem.
func (d *Daemon) locate(fsys fs.FS) ([]reconcile.FlagFile, error) {
	flags, err := reconcile.Locate(d.cfg.Vendors, reconcile.Source{FS: fsys, Dir: d.cfg.Dir, Logger: d.log})
	if err != nil {
		return nil, err
	}
	return flags, nil
}
