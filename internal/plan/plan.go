package plan

import (
	"github.com/flagsync/flagsync/internal/api"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
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
func (c *Change) Ref() kmodel.Ref { return kmodel.Ref{SiteCode: c.SiteCode, FeatureKey: c.FeatureKey} }

// FieldChange is one field's value before and after, in the file format's field names
// (e.g. "rolloutRules[1].exposition"). Before is nil for a create.
type FieldChange struct {
	Path   string `json:"path"`
	Before any    `json:"before"`
	After  any    `json:"after"`
}

// Plan is the ordered list of changes for one revision.
type Plan struct {
	Revision  string       `json:"revision"`
	Changes   []Change     `json:"changes"`
	Unmanaged []kmodel.Ref `json:"unmanaged"` // live flags not in Git, left untouched

	// Blocked lists the changes the planner refuses to make, each with its reason: the
	// archives the mass-archive guard refused (they have no change in Changes, and
	// Compute also returns a *MassArchiveError) and the removals of variations that an
	// environment the flag file does not list still uses (the variation is kept; the
	// rest of the flag's changes are planned). Where any is refused, Kameleoon will still
	// differ from Git after the plan is applied.
	Blocked []Blocked `json:"blocked,omitempty"`

	// Notes are the differences the plan leaves alone on purpose: fields an `ignore:`
	// path hands to someone else, and what Kameleoon's own automation changed (a rule it
	// paused, a progressive ramp). Nothing is written for them; they do not count as
	// changes or as refused changes.
	Notes []Note `json:"notes,omitempty"`

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

// BlockedKind says which of the planner's rules refused a change.
type BlockedKind string

// Kinds of refused changes.
const (
	// BlockedMassArchive is a prune archive the mass-archive guard refused. It is the
	// zero value, so a Blocked built without a kind means what it always meant.
	BlockedMassArchive BlockedKind = ""
	// BlockedVariationInUse is the removal of a variation that an environment the flag
	// file does not list still uses in Kameleoon (or one it lists, in a field an ignore
	// rule leaves to Kameleoon): Kameleoon would refuse the flag patch that removes it,
	// so the variation is kept.
	BlockedVariationInUse BlockedKind = "variation-in-use"
)

// Blocked is a change the planner refused to make, and why.
type Blocked struct {
	SiteCode   string      `json:"siteCode"`
	FeatureKey string      `json:"featureKey"`
	Kind       BlockedKind `json:"kind,omitempty"` // empty: BlockedMassArchive
	// Variation and Environments are set for BlockedVariationInUse: the variation Git
	// removes and the environments that still use it (not in the flag file, or in a
	// field an ignore rule leaves to Kameleoon), sorted.
	Variation    string   `json:"variation,omitempty"`
	Environments []string `json:"environments,omitempty"`
	Reason       string   `json:"reason"`
}

// Ref returns the flag whose change was refused.
func (b *Blocked) Ref() kmodel.Ref { return kmodel.Ref{SiteCode: b.SiteCode, FeatureKey: b.FeatureKey} }

// NoteKind says why the planner leaves a difference alone.
type NoteKind string

// Kinds of notes.
const (
	// NoteIgnored is a field an ignore path hands to someone else: owned outside Git,
	// never written.
	NoteIgnored NoteKind = "ignored"
	// NotePaused is a rule Git has ACTIVE that Kameleoon paused (a rollback condition
	// fired, or it is outside its release window): not re-activated.
	NotePaused NoteKind = "paused-by-kameleoon"
	// NoteRamp is a PROGRESSIVE_DELIVERY rule whose exposure Kameleoon is ramping: not
	// reverted.
	NoteRamp NoteKind = "progressive-ramp"
)

// Note is one difference between Git and the service that the plan leaves alone, and
// why. It is for people: nothing is written for it.
type Note struct {
	SiteCode       string   `json:"siteCode"`
	FeatureKey     string   `json:"featureKey"`
	EnvironmentKey string   `json:"environmentKey"` // "" for a flag-level field
	Kind           NoteKind `json:"kind"`
	Path           string   `json:"path"` // the field, as in FieldChange.Path
	Git            any      `json:"git"`  // Git's value (null: absent)
	Live           any      `json:"live"` // the service's value, which stays
	// Ignore and Source are set for NoteIgnored: the ignore path that matched and the
	// file it is written in (flagsync.yaml or the flag file).
	Ignore string `json:"ignore,omitempty"`
	Source string `json:"source,omitempty"`
	Reason string `json:"reason"`
}

// Ref returns the flag the note is about.
func (n *Note) Ref() kmodel.Ref { return kmodel.Ref{SiteCode: n.SiteCode, FeatureKey: n.FeatureKey} }
