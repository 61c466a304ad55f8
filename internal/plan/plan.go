package plan

import (
	"fmt"

	"github.com/flagsync/flagsync/internal/api"
)

// Address names what a change touches in words every vendor shares, the way Terraform's
// addrs name a resource whatever its provider: the service, where the flag lives in it,
// the flag, and the environment. A vendor maps its own names onto it (Kameleoon: site
// code and feature key; Split: workspace id and flag name); the core never reads a
// vendor's field names.
type Address struct {
	Service     string `json:"service"`               // the flag service, as people name it: "Kameleoon", "Split"
	Scope       string `json:"scope"`                 // where the flag lives: Kameleoon's site code, Split's workspace id
	Key         string `json:"key"`                   // the flag within its scope: Kameleoon's feature key, Split's flag name
	Environment string `json:"environment,omitempty"` // the environment a change touches; "" for the flag itself
}

// Flag returns the address of the flag itself, without the environment.
func (a Address) Flag() Address {
	a.Environment = ""
	return a
}

// String renders the flag as plans show it: scope/key.
func (a Address) String() string { return a.Scope + "/" + a.Key }

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
	Order   int           `json:"order"` // position in the plan's total order, from 1
	Action  Action        `json:"action"`
	Address               // the flag, and the environment for an environment-level write
	Request api.Request   `json:"request"`
	Fields  []FieldChange `json:"fields"`
	Reason  string        `json:"reason"`
	// After lists the orders of earlier changes of other flags this one needs applied
	// first (a Split definition after the definitions of the flags its rules name). Apply
	// sends it only once they were applied, and skips it otherwise.
	After []int `json:"after,omitempty"`
}

// FieldChange is one field's value before and after, in the file format's field names
// (e.g. "rolloutRules[1].exposition"). Before is nil for a create.
type FieldChange struct {
	Path   string `json:"path"`
	Before any    `json:"before"`
	After  any    `json:"after"`
}

// Plan is the ordered list of changes for one revision.
type Plan struct {
	Revision  string    `json:"revision"`
	Changes   []Change  `json:"changes"`
	Unmanaged []Address `json:"unmanaged"` // live flags not in Git, left untouched

	// Blocked lists the changes the planner refuses to make, each with its reason: the
	// archives the mass-archive guard refused (they have no change in Changes, and the
	// planner also returns a *MassArchiveError) and vendor-specific refusals such as the
	// removal of a variation that a Kameleoon environment the flag file does not list
	// still uses (the variation is kept; the rest of the flag's changes are planned).
	// Where any is refused, the service will still differ from Git after the plan is
	// applied.
	Blocked []Blocked `json:"blocked,omitempty"`

	// Notes are the differences the plan leaves alone on purpose: fields an `ignore:`
	// path hands to someone else, and what Kameleoon's own automation changed (a rule it
	// paused, a progressive ramp). Nothing is written for them; they do not count as
	// changes or as refused changes.
	Notes []Note `json:"notes,omitempty"`

	// Warnings are the messages of warn policies (flagsync.yaml's policies:) on changes
	// that are applied all the same, in plan order. Changes a deny policy refuses are in
	// Blocked (kind BlockedPolicy) instead.
	Warnings []Warning `json:"warnings,omitempty"`

	// Service names the flag service the plan is for, as renderers write it
	// ("Kameleoon", "Split"; "Kameleoon and Split" for a merged plan). Each vendor's
	// planner sets it.
	Service string `json:"service,omitempty"`

	// Price is what the plan costs in API calls (see Price); nil for a plan no sync has
	// priced.
	Price *Price `json:"price,omitempty"`
}

// ServiceName is the flag service the plan is for, for people: Service, or "the flag
// service" when no vendor named one.
func (p Plan) ServiceName() string {
	if p.Service == "" {
		return "the flag service"
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
	// BlockedMissingDependency is a change that needs something the service does not
	// have and the plan does not create (a Split definition naming a flag that exists in
	// that environment neither in Git nor in Split): the service would refuse it. A new
	// flag with such a change is refused whole, so that it is not left half-created.
	BlockedMissingDependency BlockedKind = "missing-dependency"
	// BlockedAwaitingApproval is a change already filed for approval in the service (a
	// Split change request that is open): the vendor neither writes nor files it again
	// while it waits. The change stays in Plan.Changes, so that the service is known to
	// differ from Git until the request is approved and applied, and apply reports it as
	// awaiting approval; it is counted and shown apart, not as a refusal nor by its
	// action.
	BlockedAwaitingApproval BlockedKind = "awaiting-approval"
	// BlockedPolicy is a change a deny policy of flagsync.yaml refused (or that failed to
	// evaluate, which refuses too), or a change that needed one so refused (a later change
	// of a flag whose create was refused, a change whose Change.After names a refused
	// one). It is not in Plan.Changes and is never applied.
	BlockedPolicy BlockedKind = "policy"
)

// Blocked is a change the planner refused to make, and why.
type Blocked struct {
	Address             // the flag (no environment)
	Kind    BlockedKind `json:"kind,omitempty"` // empty: BlockedMassArchive
	// Variation and Environments are set for BlockedVariationInUse: the variation Git
	// removes and the environments that still use it (not in the flag file, or in a
	// field an ignore rule leaves to Kameleoon), sorted.
	Variation    string   `json:"variation,omitempty"`
	Environments []string `json:"environments,omitempty"`
	// ChangeRequest is set for BlockedAwaitingApproval: the service's id of the request
	// that waits for approval.
	ChangeRequest string `json:"changeRequest,omitempty"`
	// Policy, Action, Order, File and Line are set for BlockedPolicy: the names of the
	// policies that refused the change (comma-separated), the change's action and its
	// order in the plan before it was refused, and where the flag is defined (File is
	// empty for a flag no longer in Git).
	Policy string `json:"policy,omitempty"`
	Action Action `json:"action,omitempty"`
	Order  int    `json:"order,omitempty"`
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Reason string `json:"reason"`
}

// Warning is the message of a warn policy on a planned change, which is applied all the
// same.
type Warning struct {
	Address        // the change's flag and environment
	Order   int    `json:"order"`  // the change's order in the plan
	Action  Action `json:"action"` // the change's action
	Policy  string `json:"policy"` // the policy's name
	Message string `json:"message"`
	File    string `json:"file,omitempty"` // where the flag is defined
	Line    int    `json:"line,omitempty"`
}

// Where is file:line, file, or "" when the place is unknown.
func where(file string, line int) string {
	if file == "" {
		return ""
	}
	if line > 0 {
		return fmt.Sprintf("%s:%d", file, line)
	}
	return file
}

// Where says where the refused change's flag is defined: file:line, or "".
func (b Blocked) Where() string { return where(b.File, b.Line) }

// Where says where the warned change's flag is defined: file:line, or "".
func (w Warning) Where() string { return where(w.File, w.Line) }

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
	Address          // the flag, and the environment ("" for a flag-level field)
	Kind    NoteKind `json:"kind"`
	Path    string   `json:"path"` // the field, as in FieldChange.Path
	Git     any      `json:"git"`  // Git's value (null: absent)
	Live    any      `json:"live"` // the service's value, which stays
	// Ignore and Source are set for NoteIgnored: the ignore path that matched and the
	// file it is written in (flagsync.yaml or the flag file).
	Ignore string `json:"ignore,omitempty"`
	Source string `json:"source,omitempty"`
	Reason string `json:"reason"`
}
