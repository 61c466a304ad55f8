package daemon

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flagsync/flagsync/internal/lifecycle"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// observeLifecycle exports flagsync_flags{state}: how many flags in Git are in each of
// flagsync report's states (overdue, stale, fully-on, …), from the read a full sync just
// made; no API call of its own. The gauge appears after the first full sync.
func (d *Daemon) observeLifecycle(l *reconcile.Loaded) {
	if l == nil {
		return
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "flagsync_flags",
		Help: "Flags in Git in each lifecycle state of flagsync report (overdue, stale, fully-on, fully-off, archived-live, no-owner, no-expiry, permanent, not-live), from the last full sync's read.",
	}, []string{"state"})
	if err := d.m.Registry.Register(g); err != nil {
		var dup prometheus.AlreadyRegisteredError
		if !errors.As(err, &dup) {
			d.log.Warn("lifecycle metrics not exported", "error", err)
			return
		}
		existing, ok := dup.ExistingCollector.(*prometheus.GaugeVec)
		if !ok {
			return
		}
		g = existing
	}
	rep := lifecycle.Build(lifecycle.Collect(l), lifecycle.Options{Now: time.Now()})
	for _, s := range lifecycle.States {
		g.WithLabelValues(s).Set(float64(rep.Counts[s]))
	}
}
