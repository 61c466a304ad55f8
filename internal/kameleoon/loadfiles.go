package kameleoon

import (
	"cmp"

	kload "github.com/flagsync/flagsync/internal/kameleoon/load"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// loadDesired loads and validates the Kameleoon flag files of src through the
// validation cache src carries (none: every file is parsed), and says at debug level how
// the files were read: how many came from the cache, how many were parsed.
func loadDesired(src reconcile.Source) (*kmodel.Desired, error) {
	var stats kload.Stats
	desired, err := kload.LoadWith(src.FS, src.Dir, kload.Options{Cache: src.Cache, Stats: &stats})
	if src.Logger != nil {
		cache := cmp.Or(src.Cache.Dir(), "off")
		src.Logger.Debug("Kameleoon flag files loaded", "files", stats.Files, "cached", stats.Cached,
			"parsed", stats.Fast+stats.Schema, "cache", cache)
	}
	return desired, err
}
