package notify

import (
	"net/url"
	"strings"
	"time"
)

// Kind is what happened; it is the "type" of a webhook message.
type Kind string

// Kinds.
const (
	// SyncFailed: a sync failed, after syncing (or after starting); sent once per
	// failing streak, not on every failed retry.
	SyncFailed Kind = "sync_failed"
	// DriftFound: the live flags differ from Git; sent once per distinct drift.
	DriftFound Kind = "drift_found"
	// RefusedChanges: the plan holds changes flagsync refused to apply (e.g. guarded
	// deletions); sent once per distinct set.
	RefusedChanges Kind = "refused_changes"
	// Recovered: a scope that failed, drifted or refused changes is converged again.
	Recovered Kind = "recovered"
)

// Kinds lists every Kind, in the order a single observation sends them.
var Kinds = []Kind{SyncFailed, DriftFound, RefusedChanges, Recovered}

func (k Kind) valid() bool {
	for _, x := range Kinds {
		if k == x {
			return true
		}
	}
	return false
}

// Outcome is what one sync (or drift check) of a scope came to, as the daemon reports
// it after every run; the Notifier decides whether anything changed.
type Outcome struct {
	// Scope names what the state is about, e.g. "kameleoon/checkout-site"; "" for a
	// daemon with one.
	Scope    string
	Revision string // the Git revision synced or attempted
	// Summary is the plan's one summary line, or the error of a failed sync. It goes
	// into messages as is: never put a secret in it.
	Summary string
	// Failed: the sync did not complete. Drift and Refused are then not looked at.
	Failed bool
	// Drift identifies the drift found (e.g. a hash of the drifted changes); "" when
	// the live flags match Git.
	Drift string
	// Refused identifies the refused changes; "" when none.
	Refused string
}

func (o Outcome) converged() bool { return !o.Failed && o.Drift == "" && o.Refused == "" }

// Event is one notification.
type Event struct {
	Kind     Kind      `json:"-"`
	Scope    string    `json:"scope,omitempty"`
	Revision string    `json:"revision,omitempty"`
	Summary  string    `json:"summary"`
	PlanURL  string    `json:"plan_url,omitempty"`
	Time     time.Time `json:"-"` // when the event occurred
}

// expandPlanURL fills a plan link template: {revision}, {scope} and {kind} are
// replaced by their path-escaped values. An empty template gives no link.
func expandPlanURL(tmpl string, ev Event) string {
	if tmpl == "" {
		return ""
	}
	return strings.NewReplacer(
		"{revision}", url.PathEscape(ev.Revision),
		"{scope}", url.PathEscape(ev.Scope),
		"{kind}", url.PathEscape(string(ev.Kind)),
	).Replace(tmpl)
}
