package splitmodel

import (
	"cmp"
	"encoding/json"
	"slices"
	"sort"
	"strings"
)

// Vendor is the value of the vendor key (in flagsync.yaml or in a flag file) that makes
// files Split flag files.
const Vendor = "split"

// OwnershipTag is the tag flagsync gives every Split flag it creates: only flags carrying
// it may be pruned. It is the text every vendor's marker has, so one name means "managed".
const OwnershipTag = "managed-by-flagsync"

// DefaultTrafficAllocation is the share of traffic a definition's rules apply to when the
// file does not say (Split's "limit exposure" off).
const DefaultTrafficAllocation = 100

// Flag is one Split feature flag and its definitions. JSON names are the Admin API's own,
// and the flag file's; Environments is keyed by environment name (the API accepts an
// environment's id or its case-sensitive name in paths).
type Flag struct {
	Workspace    string                `json:"workspace,omitempty"` // the workspace (project) id
	Name         string                `json:"name"`
	Description  string                `json:"description,omitempty"`
	Tags         []string              `json:"tags,omitempty"`
	TrafficType  string                `json:"trafficType,omitempty"`
	Environments map[string]Definition `json:"environments,omitempty"`

	// Owner, Expires (a date, YYYY-MM-DD, as written) and Permanent are flagsync's own
	// metadata of a flag file (flagsync report, policies): never sent to Split.
	Owner     string `json:"owner,omitempty"`
	Expires   string `json:"expires,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`

	// ID is the flag's id in Split; set only on flags read from the API.
	ID string `json:"-"`
	// TrafficTypeID is the traffic type's id; set only on flags read from the API.
	TrafficTypeID string `json:"-"`
	// Source is where a desired flag was read from (empty for live flags).
	Source Source `json:"-"`
	// OpenChangeRequests are the change requests awaiting approval for the flag, by
	// environment name; set only on live flags whose environments require approvals
	// and whose client looked them up.
	OpenChangeRequests map[string]ChangeRequest `json:"-"`
}

// ChangeRequest is a change of a flag's definition in one environment that waits for
// approval (Split's change request).
type ChangeRequest struct {
	ID            string // the change request's id
	Status        string // REQUESTED while it waits
	OperationType string // CREATE, UPDATE, KILL, RESTORE, ARCHIVE
	Title         string
}

// Ref identifies a Split flag: its workspace id and its name.
type Ref struct {
	Workspace string
	Name      string
}

// String renders the ref as workspace/name.
func (r Ref) String() string { return r.Workspace + "/" + r.Name }

// CompareRefs orders flags by workspace, then name: the order of a plan's flags.
func CompareRefs(a, b Ref) int {
	return cmp.Or(strings.Compare(a.Workspace, b.Workspace), strings.Compare(a.Name, b.Name))
}

// Source is a position in the flag repository.
type Source struct {
	File string // path relative to the repository root, slash-separated
	Line int
}

// Ref returns the flag's identity.
func (f *Flag) Ref() Ref { return Ref{Workspace: f.Workspace, Name: f.Name} }

// EnvironmentNames returns the flag's environment names sorted alphabetically.
func (f *Flag) EnvironmentNames() []string {
	keys := make([]string, 0, len(f.Environments))
	for k := range f.Environments {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Definition is a flag's configuration in one environment.
type Definition struct {
	Treatments        []Treatment `json:"treatments"`
	DefaultTreatment  string      `json:"defaultTreatment"`
	BaselineTreatment string      `json:"baselineTreatment,omitempty"`
	TrafficAllocation *int        `json:"trafficAllocation,omitempty"` // nil means DefaultTrafficAllocation
	Killed            bool        `json:"killed,omitempty"`
	// ImpressionsDisabled stops the SDKs from tracking impressions of the flag in this
	// environment.
	ImpressionsDisabled bool     `json:"impressionsDisabled,omitempty"`
	Rules               []Rule   `json:"rules,omitempty"`
	DefaultRule         []Bucket `json:"defaultRule,omitempty"` // empty means 100 % of DefaultTreatment

	// Wire is the definition exactly as the API returned it (live definitions only).
	// Patches test old values against it, so that a test compares with what the server
	// holds, server-filled members included.
	Wire json.RawMessage `json:"-"`
}

// Allocation returns the traffic allocation, DefaultTrafficAllocation when unset.
func (d *Definition) Allocation() int {
	if d.TrafficAllocation == nil {
		return DefaultTrafficAllocation
	}
	return *d.TrafficAllocation
}

// EffectiveDefaultRule returns the default rule, or 100 % of the default treatment when
// none is written.
func (d *Definition) EffectiveDefaultRule() []Bucket {
	if len(d.DefaultRule) == 0 && d.DefaultTreatment != "" {
		return []Bucket{{Treatment: d.DefaultTreatment, Size: 100}}
	}
	return d.DefaultRule
}

// TreatmentNames lists the treatments' names in order.
func (d *Definition) TreatmentNames() []string {
	out := make([]string, len(d.Treatments))
	for i := range d.Treatments {
		out[i] = d.Treatments[i].Name
	}
	return out
}

// Treatment is one state of a flag. Keys and Segments are its individual targets: keys
// and segments that always get this treatment. Configurations is JSON text.
type Treatment struct {
	Name           string   `json:"name"`
	Description    string   `json:"description,omitempty"`
	Configurations string   `json:"configurations,omitempty"`
	Keys           []string `json:"keys,omitempty"`
	Segments       []string `json:"segments,omitempty"`
}

// Rule is a targeting rule: traffic that meets Condition is split by Buckets.
type Rule struct {
	Condition Condition `json:"condition"`
	Buckets   []Bucket  `json:"buckets"`
}

// Condition holds matchers that must all match (Split only supports AND).
type Condition struct {
	Matchers []Matcher `json:"matchers"`
}

// Matcher selects part of the traffic. Which fields it needs depends on Type (see the
// schema); the others are left out.
type Matcher struct {
	Type      string   `json:"type"`
	Negate    bool     `json:"negate,omitempty"`
	Attribute string   `json:"attribute,omitempty"`
	String    string   `json:"string,omitempty"`
	Bool      *bool    `json:"bool,omitempty"`
	Strings   []string `json:"strings,omitempty"`
	Number    *float64 `json:"number,omitempty"`
	Date      *int64   `json:"date,omitempty"` // milliseconds since the epoch
	Between   *Between `json:"between,omitempty"`
	Depends   *Depends `json:"depends,omitempty"`
}

// Between is the range of a BETWEEN_NUMBER or BETWEEN_DATE matcher.
type Between struct {
	From float64 `json:"from"`
	To   float64 `json:"to"`
}

// Depends is an IN_SPLIT matcher's dependency: another flag's treatment.
type Depends struct {
	SplitName string `json:"splitName"`
	Treatment string `json:"treatment"`
}

// Bucket gives Size percent of a rule's traffic to Treatment.
type Bucket struct {
	Treatment string `json:"treatment"`
	Size      int    `json:"size"`
}

// Settings are the settings of a Split repository (flagsync.yaml with vendor: split).
type Settings struct {
	Vendor       string   `json:"vendor,omitempty"`
	Workspace    string   `json:"workspace,omitempty"`   // default workspace id of flag files
	TrafficType  string   `json:"trafficType,omitempty"` // default traffic type of flag files
	Environments []string `json:"environments,omitempty"`
	Prune        bool     `json:"prune,omitempty"`
}

// Desired is every Split flag of a repository, validated.
type Desired struct {
	Revision string
	Settings Settings
	Flags    []Flag // sorted by workspace, then name
}

// Workspaces returns the workspace ids the flags and settings name, sorted.
func (d *Desired) Workspaces() []string {
	var out []string
	if d.Settings.Workspace != "" {
		out = append(out, d.Settings.Workspace)
	}
	for i := range d.Flags {
		out = append(out, d.Flags[i].Workspace)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// EnvironmentNames returns the environments the repository manages: the settings' list,
// then every other environment a flag names, alphabetically.
func (d *Desired) EnvironmentNames() []string {
	out := slices.Clone(d.Settings.Environments)
	var rest []string
	for i := range d.Flags {
		for k := range d.Flags[i].Environments {
			if !slices.Contains(out, k) && !slices.Contains(rest, k) {
				rest = append(rest, k)
			}
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// Normalise gives equal definitions one form: empty lists are nil, an unset traffic
// allocation is DefaultTrafficAllocation, an unset default rule is 100 % of the default
// treatment. Order is kept everywhere (keys and segments are compared as sets by the
// planner, but patched by index). Wire is kept.
func Normalise(d Definition) Definition {
	a := d.Allocation()
	d.TrafficAllocation = &a
	d.DefaultRule = nilIfEmpty(d.EffectiveDefaultRule())
	d.Treatments = nilIfEmpty(d.Treatments)
	for i := range d.Treatments {
		t := &d.Treatments[i]
		t.Keys, t.Segments = nilIfEmpty(t.Keys), nilIfEmpty(t.Segments)
	}
	d.Rules = nilIfEmpty(d.Rules)
	for i := range d.Rules {
		r := &d.Rules[i]
		r.Buckets = nilIfEmpty(r.Buckets)
		r.Condition.Matchers = nilIfEmpty(r.Condition.Matchers)
		for j := range r.Condition.Matchers {
			m := &r.Condition.Matchers[j]
			m.Strings = nilIfEmpty(m.Strings)
		}
	}
	return d
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}
