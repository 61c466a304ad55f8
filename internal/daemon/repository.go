package daemon

import (
	"io/fs"
	"log/slog"

	"github.com/flagsync/flagsync/internal/reconcile"
)

// load loads and validates the flag files of every service the repository needs, each
// vendor of the daemon its own (see reconcile.Load): the one load of a sync, whose result
// indexes the revision and is then synced. Invalid files are one *diag.InvalidError with
// every problem.
func (d *Daemon) load(fsys fs.FS, rev string, logger *slog.Logger) (*reconcile.Loaded, error) {
	return reconcile.Load(d.cfg.Vendors, reconcile.Source{FS: fsys, Dir: d.cfg.Dir, Revision: rev, Logger: logger.With("revision", rev), Cache: d.cfg.Cache})
}
