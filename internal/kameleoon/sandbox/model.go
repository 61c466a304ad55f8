package ksandbox

import (
	"encoding/json"
)

// This file holds the two shapes of a flag the sandbox knows. The read shape (flagDoc and
// its parts) is what the API returns and what the state file stores: rules carry `status`,
// the flag carries `archived`, ids and dates are filled in. The write shape (wFlag and its
// parts) is what create and patch bodies carry: every field is a pointer so that "absent"
// (or null, after a merge patch) can be told from "empty", rules carry `state`, the flag
// carries `isArchived`, and the read-only fields are accepted but ignored (they are only
// used when a flag is seeded directly in the read shape).

// flagDoc is one stored flag in the read shape. Field order follows the vendor tutorial's
// responses. Stored values are never mutated: a write builds a new flagDoc.
type flagDoc struct {
	ID                        int64         `json:"id"`
	SiteCode                  string        `json:"siteCode"`
	FeatureKey                string        `json:"featureKey"`
	Name                      string        `json:"name"`
	Description               string        `json:"description"`
	Tags                      []string      `json:"tags"`
	Variables                 []variable    `json:"variables"`
	Variations                []variation   `json:"variations"`
	PrimaryGoalID             *int64        `json:"primaryGoalId,omitempty"`
	SecondaryGoalIDs          []int64       `json:"secondaryGoalIds"`
	AttributionWindow         int64         `json:"attributionWindow"`
	BucketingKey              *bucketingKey `json:"bucketingKey,omitempty"`
	Health                    string        `json:"health"`
	DateCreated               string        `json:"dateCreated"`
	DateModified              string        `json:"dateModified"`
	DateContentModified       string        `json:"dateContentModified"`
	EnvironmentConfigurations []environment `json:"environmentConfigurations"`
	CreatedByID               int64         `json:"createdById"`
	Archived                  bool          `json:"archived"`
}

type variable struct {
	Key           string   `json:"key"`
	Type          string   `json:"type"`
	Value         string   `json:"value"`
	AllowedValues []string `json:"allowedValues,omitempty"`
}

type variation struct {
	Name      string              `json:"name"`
	Key       string              `json:"key"`
	Variables []variationVariable `json:"variables"`
}

// variationVariable is read back with the type of the flag-level variable, as in the
// vendor tutorial's responses.
type variationVariable struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

type bucketingKey struct {
	BucketingKeyType string `json:"bucketingKeyType"`
	CustomDataID     *int64 `json:"customDataId,omitempty"`
}

type environment struct {
	EnvironmentKey      string       `json:"environmentKey"`
	FeatureEnabled      bool         `json:"featureEnabled"`
	DefaultVariationKey string       `json:"defaultVariationKey"`
	RolloutRules        []rule       `json:"rolloutRules"`
	Integrations        integrations `json:"integrations"`
	DateModified        string       `json:"dateModified"`
}

// integrations' element shape is not documented; elements are kept as sent.
type integrations struct {
	DeliveryRules   []json.RawMessage `json:"deliveryRules"`
	ExperimentRules []json.RawMessage `json:"experimentRules"`
}

type rule struct {
	ID                      int64               `json:"id"`
	Name                    string              `json:"name"`
	Type                    string              `json:"type"`
	ExperimentID            int64               `json:"experimentId"`
	OrderIndex              int                 `json:"orderIndex"`
	Variations              []json.RawMessage   `json:"variations"`
	TrafficAllocations      []trafficAllocation `json:"trafficAllocations"`
	ReallocationTimestamp   json.RawMessage     `json:"reallocationTimestamp"` // nil renders as null
	Release                 *release            `json:"release,omitempty"`
	Status                  string              `json:"status"`
	State                   string              `json:"state,omitempty"` // shown once Kameleoon's automation made status differ (see automation.go)
	RollbackConditions      []rollbackCondition `json:"rollbackConditions"`
	SegmentID               *int64              `json:"segmentId,omitempty"`
	Exposition              *float64            `json:"exposition,omitempty"`
	CurrentExposition       *float64            `json:"currentExposition,omitempty"` // PROGRESSIVE_DELIVERY: where the ramp is
	VariationKey            string              `json:"variationKey,omitempty"`
	ControlVariationKey     string              `json:"controlVariationKey,omitempty"`
	TrafficAllocationMethod string              `json:"trafficAllocationMethod,omitempty"`
	MultiArmedBandit        bool                `json:"multiArmedBandit,omitempty"`
	Reallocation            bool                `json:"reallocation,omitempty"`

	// What Kameleoon's automation did to the rule, beyond what the read shape shows
	// (see automation.go). Not kept in the state file.
	automation automation
}

type trafficAllocation struct {
	VariationKey string  `json:"variationKey"`
	Exposition   float64 `json:"exposition"`
	VariationID  *int64  `json:"variationId,omitempty"`
}

type release struct {
	ReleaseFrom string `json:"releaseFrom,omitempty"`
	ReleaseTo   string `json:"releaseTo,omitempty"`
	TimeZone    string `json:"timeZone,omitempty"`
}

type rollbackCondition struct {
	ID                 int64    `json:"id"`
	Target             string   `json:"target"`
	Criteria           string   `json:"criteria"`
	ComparisonOperator string   `json:"comparisonOperator"`
	MatchValue         float64  `json:"matchValue"`
	GoalID             *int64   `json:"goalId,omitempty"`
	Visitors           *int64   `json:"visitors,omitempty"`
	Recipients         []string `json:"recipients"`
}

// --- write shape ------------------------------------------------------------------

type wFlag struct {
	FeatureKey                *string         `json:"featureKey,omitempty"`
	Name                      *string         `json:"name,omitempty"`
	SiteCode                  *string         `json:"siteCode,omitempty"`
	Description               *string         `json:"description,omitempty"`
	Tags                      *[]string       `json:"tags,omitempty"`
	Variables                 *[]wVariable    `json:"variables,omitempty"`
	Variations                *[]wVariation   `json:"variations,omitempty"`
	AttributionWindow         *int64          `json:"attributionWindow,omitempty"`
	BucketingKey              *wBucketingKey  `json:"bucketingKey,omitempty"`
	PrimaryGoalID             *int64          `json:"primaryGoalId,omitempty"`
	SecondaryGoalIDs          *[]int64        `json:"secondaryGoalIds,omitempty"`
	EnvironmentConfigurations *[]wEnvironment `json:"environmentConfigurations,omitempty"`
	IsArchived                *bool           `json:"isArchived,omitempty"`

	// Read-only: ignored in create and patch bodies, used when seeding.
	ID                  *int64  `json:"id,omitempty"`
	Archived            *bool   `json:"archived,omitempty"`
	Health              *string `json:"health,omitempty"`
	TeamID              *int64  `json:"teamId,omitempty"`
	CreatedByID         *int64  `json:"createdById,omitempty"`
	DateCreated         *string `json:"dateCreated,omitempty"`
	DateModified        *string `json:"dateModified,omitempty"`
	DateContentModified *string `json:"dateContentModified,omitempty"`
}

type wVariable struct {
	Key           *string   `json:"key,omitempty"`
	Type          *string   `json:"type,omitempty"`
	Value         *string   `json:"value,omitempty"`
	AllowedValues *[]string `json:"allowedValues,omitempty"`
}

type wVariation struct {
	Key       *string               `json:"key,omitempty"`
	Name      *string               `json:"name,omitempty"`
	Variables *[]wVariationVariable `json:"variables,omitempty"`
}

type wVariationVariable struct {
	Key   *string `json:"key,omitempty"`
	Type  *string `json:"type,omitempty"` // optional; must match the flag-level variable's type
	Value *string `json:"value,omitempty"`
}

type wBucketingKey struct {
	BucketingKeyType *string `json:"bucketingKeyType,omitempty"`
	CustomDataID     *int64  `json:"customDataId,omitempty"`
}

type wEnvironment struct {
	EnvironmentKey      *string        `json:"environmentKey,omitempty"`
	FeatureEnabled      *bool          `json:"featureEnabled,omitempty"`
	DefaultVariationKey *string        `json:"defaultVariationKey,omitempty"`
	RolloutRules        *[]wRule       `json:"rolloutRules,omitempty"`
	Integrations        *wIntegrations `json:"integrations,omitempty"`

	DateModified *string `json:"dateModified,omitempty"` // read-only
}

type wIntegrations struct {
	DeliveryRules   *[]json.RawMessage `json:"deliveryRules,omitempty"`
	ExperimentRules *[]json.RawMessage `json:"experimentRules,omitempty"`
}

type wRule struct {
	ID                      *int64                `json:"id,omitempty"`
	Name                    *string               `json:"name,omitempty"`
	Type                    *string               `json:"type,omitempty"`
	State                   *string               `json:"state,omitempty"`
	SegmentID               *int64                `json:"segmentId,omitempty"`
	Exposition              *float64              `json:"exposition,omitempty"`
	VariationKey            *string               `json:"variationKey,omitempty"`
	ControlVariationKey     *string               `json:"controlVariationKey,omitempty"`
	TrafficAllocationMethod *string               `json:"trafficAllocationMethod,omitempty"`
	MultiArmedBandit        *bool                 `json:"multiArmedBandit,omitempty"`
	TrafficAllocations      *[]wTrafficAllocation `json:"trafficAllocations,omitempty"`
	Reallocation            *bool                 `json:"reallocation,omitempty"`
	ReallocationTimestamp   json.RawMessage       `json:"reallocationTimestamp,omitempty"`
	Release                 *wRelease             `json:"release,omitempty"`
	RollbackConditions      *[]wRollbackCondition `json:"rollbackConditions,omitempty"`
	Variations              *[]json.RawMessage    `json:"variations,omitempty"`
	OrderIndex              *int64                `json:"orderIndex,omitempty"` // ignored (the array position is the order) unless the order-index variant is on

	// Read-only: ignored in create and patch bodies, used when seeding.
	ExperimentID      *int64   `json:"experimentId,omitempty"`
	Status            *string  `json:"status,omitempty"`
	CurrentExposition *float64 `json:"currentExposition,omitempty"`
}

type wTrafficAllocation struct {
	VariationKey *string  `json:"variationKey,omitempty"`
	Exposition   *float64 `json:"exposition,omitempty"`
	VariationID  *int64   `json:"variationId,omitempty"`
}

type wRelease struct {
	ReleaseFrom *string `json:"releaseFrom,omitempty"`
	ReleaseTo   *string `json:"releaseTo,omitempty"`
	TimeZone    *string `json:"timeZone,omitempty"`
}

type wRollbackCondition struct {
	ID                 *int64    `json:"id,omitempty"`
	Target             *string   `json:"target,omitempty"`
	Criteria           *string   `json:"criteria,omitempty"`
	ComparisonOperator *string   `json:"comparisonOperator,omitempty"`
	MatchValue         *float64  `json:"matchValue,omitempty"`
	GoalID             *int64    `json:"goalId,omitempty"`
	Visitors           *int64    `json:"visitors,omitempty"`
	Recipients         *[]string `json:"recipients,omitempty"`
}

// --- read shape → write shape (the document a merge patch applies to) -------------

func ptr[T any](v T) *T { return &v }

func val[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// writeView is f in the write shape with every writable field present, ids of rules and
// rollback conditions included: applying a merge patch to it and building the result
// gives back f when the patch is empty.
func writeView(f *flagDoc) *wFlag {
	w := &wFlag{
		FeatureKey:        ptr(f.FeatureKey),
		Name:              ptr(f.Name),
		SiteCode:          ptr(f.SiteCode),
		Description:       ptr(f.Description),
		Tags:              ptr(f.Tags),
		AttributionWindow: ptr(f.AttributionWindow),
		PrimaryGoalID:     f.PrimaryGoalID,
		SecondaryGoalIDs:  ptr(f.SecondaryGoalIDs),
		IsArchived:        ptr(f.Archived),
	}
	vars := make([]wVariable, 0, len(f.Variables))
	for _, v := range f.Variables {
		wv := wVariable{Key: ptr(v.Key), Type: ptr(v.Type), Value: ptr(v.Value)}
		if v.AllowedValues != nil {
			wv.AllowedValues = ptr(v.AllowedValues)
		}
		vars = append(vars, wv)
	}
	w.Variables = &vars
	vs := make([]wVariation, 0, len(f.Variations))
	for _, v := range f.Variations {
		vv := make([]wVariationVariable, 0, len(v.Variables))
		for _, x := range v.Variables {
			vv = append(vv, wVariationVariable{Key: ptr(x.Key), Value: ptr(x.Value)})
		}
		vs = append(vs, wVariation{Key: ptr(v.Key), Name: ptr(v.Name), Variables: &vv})
	}
	w.Variations = &vs
	if f.BucketingKey != nil {
		w.BucketingKey = &wBucketingKey{BucketingKeyType: ptr(f.BucketingKey.BucketingKeyType), CustomDataID: f.BucketingKey.CustomDataID}
	}
	envs := make([]wEnvironment, 0, len(f.EnvironmentConfigurations))
	for i := range f.EnvironmentConfigurations {
		envs = append(envs, writeEnvView(&f.EnvironmentConfigurations[i]))
	}
	w.EnvironmentConfigurations = &envs
	return w
}

func writeEnvView(e *environment) wEnvironment {
	rules := make([]wRule, 0, len(e.RolloutRules))
	for i := range e.RolloutRules {
		rules = append(rules, writeRuleView(&e.RolloutRules[i]))
	}
	return wEnvironment{
		EnvironmentKey:      ptr(e.EnvironmentKey),
		FeatureEnabled:      ptr(e.FeatureEnabled),
		DefaultVariationKey: ptr(e.DefaultVariationKey),
		RolloutRules:        &rules,
		Integrations: &wIntegrations{
			DeliveryRules:   ptr(e.Integrations.DeliveryRules),
			ExperimentRules: ptr(e.Integrations.ExperimentRules),
		},
	}
}

func writeRuleView(r *rule) wRule {
	w := wRule{
		ID:                    ptr(r.ID),
		Name:                  ptr(r.Name),
		Type:                  ptr(r.Type),
		State:                 ptr(r.writtenState()),
		SegmentID:             r.SegmentID,
		Exposition:            r.Exposition,
		Variations:            ptr(r.Variations),
		ReallocationTimestamp: r.ReallocationTimestamp,
		OrderIndex:            ptr(int64(r.OrderIndex)),
	}
	if r.VariationKey != "" {
		w.VariationKey = ptr(r.VariationKey)
	}
	if r.ControlVariationKey != "" {
		w.ControlVariationKey = ptr(r.ControlVariationKey)
	}
	if r.TrafficAllocationMethod != "" {
		w.TrafficAllocationMethod = ptr(r.TrafficAllocationMethod)
	}
	if r.MultiArmedBandit {
		w.MultiArmedBandit = ptr(true)
	}
	if r.Reallocation {
		w.Reallocation = ptr(true)
	}
	if r.Release != nil {
		w.Release = &wRelease{}
		if r.Release.ReleaseFrom != "" {
			w.Release.ReleaseFrom = ptr(r.Release.ReleaseFrom)
		}
		if r.Release.ReleaseTo != "" {
			w.Release.ReleaseTo = ptr(r.Release.ReleaseTo)
		}
		if r.Release.TimeZone != "" {
			w.Release.TimeZone = ptr(r.Release.TimeZone)
		}
	}
	allocs := make([]wTrafficAllocation, 0, len(r.TrafficAllocations))
	for _, a := range r.TrafficAllocations {
		allocs = append(allocs, wTrafficAllocation{VariationKey: ptr(a.VariationKey), Exposition: ptr(a.Exposition), VariationID: a.VariationID})
	}
	w.TrafficAllocations = &allocs
	conds := make([]wRollbackCondition, 0, len(r.RollbackConditions))
	for _, c := range r.RollbackConditions {
		conds = append(conds, wRollbackCondition{
			ID: ptr(c.ID), Target: ptr(c.Target), Criteria: ptr(c.Criteria), ComparisonOperator: ptr(c.ComparisonOperator),
			MatchValue: ptr(c.MatchValue), GoalID: c.GoalID, Visitors: c.Visitors, Recipients: ptr(c.Recipients),
		})
	}
	w.RollbackConditions = &conds
	return w
}
