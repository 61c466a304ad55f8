package plan

import (
	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/flag"
)

// Action is what a change does.
type Action string

// Actions, in the order they appear within one flag.
const (
	ActionCreate  Action = "create"  // POST a new flag with its environments
	ActionUpdate  Action = "update"  // flag-level or environment-level merge patch
	ActionArchive Action = "archive" // PATCH isArchived: true (archived: true in Git, or pruned)
)

// Change is one API write, as data. Apply sends Request exactly; Reason and Fields are for
// people and never branched on.
type Change struct {
	Order          int           `json:"order"` // position in the plan's total order, from 1
	Action         Action        `json:"action"`
	SiteCode       string        `json:"siteCode"`
	FeatureKey     string        `json:"featureKey"`
	EnvironmentKey string        `json:"environmentKey,omitempty"` // set for environment patches
	Request        api.Request   `json:"request"`
	Fields         []FieldChange `json:"fields"`
	Reason         string        `json:"reason"`
}

// Ref returns the flag the change touches.
func (c *Change) Ref() flag.Ref { return flag.Ref{SiteCode: c.SiteCode, FeatureKey: c.FeatureKey} }

// FieldChange is one field's value before and after, in the file format's field names
// (e.g. "rolloutRules[1].exposition"). Before is nil for a create.
type FieldChange struct {
	Path   string `json:"path"`
	Before any    `json:"before"`
	After  any    `json:"after"`
}

// Plan is the ordered list of changes for one revision.
type Plan struct {
	Revision  string     `json:"revision"`
	Changes   []Change   `json:"changes"`
	Unmanaged []flag.Ref `json:"unmanaged"` // live flags not in Git, left untouched

	// Blocked lists the flags whose archival the mass-archive guard refused; they have no
	// change in Changes. Compute also returns a *MassArchiveError when this is not empty.
	Blocked []Blocked `json:"blocked,omitempty"`

	// Service names the flag service the plan is for, as renderers write it ("Split");
	// empty means Kameleoon. For Split, a change's SiteCode holds the workspace id and its
	// FeatureKey the flag name.
	Service string `json:"service,omitempty"`
}

// ServiceName is the flag service the plan is for, for people: Service, or "Kameleoon".
func (p Plan) ServiceName() string {
	if p.Service == "" {
		return "Kameleoon"
	}
	return p.Service
}

// Blocked is a change the planner refused to make, and why.
type Blocked struct {
	SiteCode   string `json:"siteCode"`
	FeatureKey string `json:"featureKey"`
	Reason     string `json:"reason"`
}
