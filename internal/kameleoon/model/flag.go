package kmodel

import (
	"cmp"
	"sort"
	"strings"
)

// Rule types accepted by Kameleoon's rollout rules.
const (
	RuleTargetedDelivery    = "TARGETED_DELIVERY"
	RuleProgressiveDelivery = "PROGRESSIVE_DELIVERY"
	RuleExperimentation     = "EXPERIMENTATION"
)

// Variable types.
const (
	TypeBoolean = "BOOLEAN"
	TypeNumber  = "NUMBER"
	TypeString  = "STRING"
	TypeJSON    = "JSON"
	TypeJS      = "JS"
	TypeCSS     = "CSS"
	TypeEnum    = "ENUM"
)

// Rule states: what is written as `state` (Git's), and what Kameleoon reads back as
// `status` (Kameleoon's, read-only; it differs from `state` when Kameleoon's automation
// paused the rule).
const (
	StateActive = "ACTIVE"
	StatePaused = "PAUSED"
)

// DefaultAttributionWindow is the attribution window Kameleoon uses when none is set
// (7 days in milliseconds, as in the vendor tutorial). The planner treats an absent
// window and this value as equal so that a server-filled default is not drift.
const DefaultAttributionWindow int64 = 604800000

// OwnershipTag is added to the tags of every flag flagsync creates. Only flags carrying
// it may be archived by pruning; the planner never shows it as drift.
const OwnershipTag = "managed-by-flagsync"

// Ref identifies a flag across sites.
type Ref struct {
	SiteCode   string `json:"siteCode"`
	FeatureKey string `json:"featureKey"`
}

// String renders the ref as siteCode/featureKey.
func (r Ref) String() string { return r.SiteCode + "/" + r.FeatureKey }

// CompareRefs orders flags by site code, then feature key: the order of a plan's flags.
func CompareRefs(a, b Ref) int {
	return cmp.Or(strings.Compare(a.SiteCode, b.SiteCode), strings.Compare(a.FeatureKey, b.FeatureKey))
}

// Flag is one feature flag. JSON names are the Automation API's own field names (and so
// the flag file's), except Environments, which is keyed by environment key instead of the
// API's environmentConfigurations array. Of the server-owned fields, only ID, the dates
// flagsync report reads and health are kept, on flags read from the API.
type Flag struct {
	ID                int64                  `json:"-"`
	SiteCode          string                 `json:"siteCode"`
	FeatureKey        string                 `json:"featureKey"`
	Name              string                 `json:"name"`
	Description       string                 `json:"description,omitempty"`
	Tags              []string               `json:"tags,omitempty"`
	AttributionWindow int64                  `json:"attributionWindow,omitempty"`
	BucketingKey      *BucketingKey          `json:"bucketingKey,omitempty"`
	PrimaryGoalID     int64                  `json:"primaryGoalId,omitempty"`
	SecondaryGoalIDs  []int64                `json:"secondaryGoalIds,omitempty"`
	Variables         []Variable             `json:"variables,omitempty"`
	Variations        []Variation            `json:"variations,omitempty"`
	Environments      map[string]Environment `json:"environments,omitempty"`
	Archived          bool                   `json:"archived,omitempty"`

	// Ignore lists the fields of this flag that flagsync leaves alone (see IgnorePath),
	// as written in the flag file; flagsync.yaml's ignore list adds to it.
	Ignore []string `json:"ignore,omitempty"`

	// Owner, Expires (a date, YYYY-MM-DD, as written) and Permanent are flagsync's own
	// metadata of a flag file (flagsync report, policies): never sent to Kameleoon.
	// Files only.
	Owner     string `json:"owner,omitempty"`
	Expires   string `json:"expires,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`

	// DateCreated and Health are Kameleoon's own, read-only: when the flag was created
	// (as Kameleoon writes it) and its verdict on the flag (PERMANENT, HEALTHY, STALE,
	// SMELLY). Live flags only; never planned nor written (flagsync report reads them).
	DateCreated string `json:"-"`
	Health      string `json:"-"`

	// Source is where a desired flag was read from (empty for live flags).
	Source Source `json:"-"`
}

// Ref returns the flag's identity.
func (f *Flag) Ref() Ref { return Ref{SiteCode: f.SiteCode, FeatureKey: f.FeatureKey} }

// EnvironmentKeys returns the flag's environment keys sorted alphabetically.
func (f *Flag) EnvironmentKeys() []string {
	keys := make([]string, 0, len(f.Environments))
	for k := range f.Environments {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Source is a position in the flag repository.
type Source struct {
	File string // path relative to the repository root, slash-separated
	Line int
}

// BucketingKey is the hash attribute used for bucketing visitors.
type BucketingKey struct {
	BucketingKeyType string `json:"bucketingKeyType"` // VISITOR_CODE or CUSTOM_DATA
	CustomDataID     int64  `json:"customDataId,omitempty"`
}

// Variable is a flag-level variable with its default value. Value is always a string on
// the wire, whatever the type.
type Variable struct {
	Key           string   `json:"key"`
	Type          string   `json:"type"`
	Value         string   `json:"value"`
	AllowedValues []string `json:"allowedValues,omitempty"` // ENUM only
}

// Variation is one variation of a flag, overriding some variables.
type Variation struct {
	Key       string              `json:"key"`
	Name      string              `json:"name,omitempty"`
	Variables []VariationVariable `json:"variables,omitempty"`
}

// VariationVariable overrides a flag-level variable's value in one variation.
type VariationVariable struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Environment is a flag's configuration in one environment.
type Environment struct {
	FeatureEnabled      bool          `json:"featureEnabled"`
	DefaultVariationKey string        `json:"defaultVariationKey,omitempty"`
	RolloutRules        []Rule        `json:"rolloutRules,omitempty"`
	Integrations        *Integrations `json:"integrations,omitempty"`

	// DateModified is Kameleoon's read-only dateModified of the environment: when it
	// last changed. Live environments only; never planned nor written (flagsync report
	// reads it).
	DateModified string `json:"-"`
}

// Integrations are third-party integrations of an environment. Their element shape is
// not documented, so elements are kept as decoded JSON.
type Integrations struct {
	DeliveryRules   []any `json:"deliveryRules,omitempty"`
	ExperimentRules []any `json:"experimentRules,omitempty"`
}

// Rule is a rollout rule. Rules are identified by Name within an environment; ID,
// ExperimentID, Status and CurrentExposition are server-owned (read-only) and set only
// on rules read from the API.
type Rule struct {
	ID           int64 `json:"-"`
	ExperimentID int64 `json:"-"`
	// Status is the read-only `status` Kameleoon reports (ACTIVE or PAUSED): whether the
	// rule serves now. It differs from State when Kameleoon's automation paused the rule
	// (a rollback condition fired, the release window is over) and is never written.
	Status string `json:"-"`
	// CurrentExposition is the read-only `currentExposition` of a PROGRESSIVE_DELIVERY
	// rule: where Kameleoon's ramp is now, on its way to Exposition. Never written.
	CurrentExposition *float64 `json:"-"`

	Name                    string              `json:"name"`
	Type                    string              `json:"type"`
	State                   string              `json:"state,omitempty"` // ACTIVE or PAUSED, the written `state`; "" when a read shape carries only `status`
	SegmentID               int64               `json:"segmentId,omitempty"`
	Exposition              *float64            `json:"exposition,omitempty"`
	VariationKey            string              `json:"variationKey,omitempty"`
	ControlVariationKey     string              `json:"controlVariationKey,omitempty"`
	TrafficAllocationMethod string              `json:"trafficAllocationMethod,omitempty"`
	TrafficAllocations      []TrafficAllocation `json:"trafficAllocations,omitempty"`
	Reallocation            bool                `json:"reallocation,omitempty"`
	Release                 *Release            `json:"release,omitempty"`
	RollbackConditions      []RollbackCondition `json:"rollbackConditions,omitempty"`
}

// WrittenState is the rule's written state as best known: State; for a rule read from
// a shape that carries only `status` (as Kameleoon's reference pages show it), Status;
// ACTIVE when neither is set (the API's default).
func (r *Rule) WrittenState() string {
	switch {
	case r.State != "":
		return r.State
	case r.Status != "":
		return r.Status
	}
	return StateActive
}

// TrafficAllocation gives a share of a rule's exposed traffic to a variation.
type TrafficAllocation struct {
	VariationKey string  `json:"variationKey"`
	Exposition   float64 `json:"exposition"`
}

// Release is a rule's scheduled window. Times are local times in TimeZone, as written.
type Release struct {
	ReleaseFrom string `json:"releaseFrom,omitempty"`
	ReleaseTo   string `json:"releaseTo,omitempty"`
	TimeZone    string `json:"timeZone,omitempty"`
}

// RollbackCondition stops a rule (or an environment) when a metric crosses a threshold.
// ID is server-owned and set only on conditions read from the API.
type RollbackCondition struct {
	ID                 int64    `json:"-"`
	Target             string   `json:"target"`             // RULE or ENVIRONMENT
	Criteria           string   `json:"criteria"`           // UPLIFT, DOWNLIFT, CONVERSION_RATE
	ComparisonOperator string   `json:"comparisonOperator"` // GREATER_THAN, LESS_THAN
	MatchValue         float64  `json:"matchValue"`
	GoalID             int64    `json:"goalId,omitempty"`
	Visitors           int64    `json:"visitors,omitempty"`
	Recipients         []string `json:"recipients,omitempty"`
}

// Settings are the repository settings from flagsync.yaml.
type Settings struct {
	SiteCode     string   `json:"siteCode,omitempty"`
	Environments []string `json:"environments,omitempty"` // known keys, in apply order
	Prune        bool     `json:"prune,omitempty"`
	// Ignore lists fields flagsync leaves alone in every flag (see IgnorePath).
	Ignore []string `json:"ignore,omitempty"`
}

// Desired is a whole validated flag repository.
type Desired struct {
	Revision string
	Settings Settings
	Flags    []Flag // sorted by site code, then feature key
}
