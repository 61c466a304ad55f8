package kclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"

	"github.com/flagsync/flagsync/internal/api"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// This file is the only place that knows Kameleoon's wire shapes: the read shape of a
// flag (environmentConfigurations array, `status`, `archived`, server-owned ids and
// dates) and the write shapes of the create, flag patch and environment patch bodies
// (`state`, `isArchived`, ids carried for rules that persist).

// OptionalFields are the fields the list and get endpoints return empty unless asked for.
// flagsync manages all of them, so it always asks.
var OptionalFields = []string{"tags", "description", "variables", "variations", "secondaryGoalIds", "environmentConfigurations"}

// FlagPath is the path of one flag.
func FlagPath(siteCode, featureKey string) string {
	return "/feature-flags/" + url.PathEscape(siteCode) + "/" + url.PathEscape(featureKey)
}

// EnvironmentPath is the path of one flag's environment.
func EnvironmentPath(siteCode, featureKey, env string) string {
	return FlagPath(siteCode, featureKey) + "/" + url.PathEscape(env)
}

// --- read shape -----------------------------------------------------------------

// number decodes a JSON number that the API may send as 59 or 59.0.
type number float64

func (n *number) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = 0
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		// Some fields are documented as strings of digits.
		var s string
		if err2 := json.Unmarshal(b, &s); err2 != nil {
			return err
		}
		if err := json.Unmarshal([]byte(s), &f); err != nil {
			return fmt.Errorf("number %q: %w", s, err)
		}
	}
	*n = number(f)
	return nil
}

func (n number) int() int64 { return int64(math.Round(float64(n))) }

type readFlag struct {
	ID                        number            `json:"id"`
	SiteCode                  string            `json:"siteCode"`
	FeatureKey                string            `json:"featureKey"`
	Name                      string            `json:"name"`
	Description               string            `json:"description"`
	Tags                      []string          `json:"tags"`
	AttributionWindow         number            `json:"attributionWindow"`
	BucketingKey              *readBucketingKey `json:"bucketingKey"`
	PrimaryGoalID             number            `json:"primaryGoalId"`
	SecondaryGoalIDs          []number          `json:"secondaryGoalIds"`
	Variables                 []kmodel.Variable `json:"variables"`
	Variations                []readVariation   `json:"variations"`
	EnvironmentConfigurations []readEnvironment `json:"environmentConfigurations"`
	Archived                  *bool             `json:"archived"`
	IsArchived                *bool             `json:"isArchived"`
	DateCreated               string            `json:"dateCreated"` // read-only; for the lifecycle report
	Health                    string            `json:"health"`      // read-only; for the lifecycle report

	// orderConflicts, set by model, are the environments whose rules the API listed in an
	// order their orderIndex contradicts.
	orderConflicts []string
}

type readBucketingKey struct {
	BucketingKeyType string `json:"bucketingKeyType"`
	CustomDataID     number `json:"customDataId"`
}

type readVariation struct {
	Key       string `json:"key"`
	Name      string `json:"name"`
	Variables []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"variables"`
}

type readEnvironment struct {
	EnvironmentKey      string               `json:"environmentKey"`
	DateModified        string               `json:"dateModified"` // read-only; for the lifecycle report
	FeatureEnabled      bool                 `json:"featureEnabled"`
	DefaultVariationKey string               `json:"defaultVariationKey"`
	RolloutRules        []readRule           `json:"rolloutRules"`
	Integrations        *kmodel.Integrations `json:"integrations"`
}

type readRule struct {
	ID                      number                  `json:"id"`
	ExperimentID            number                  `json:"experimentId"`
	Name                    string                  `json:"name"`
	Type                    string                  `json:"type"`
	State                   string                  `json:"state"`
	Status                  string                  `json:"status"`
	OrderIndex              *number                 `json:"orderIndex"`
	SegmentID               number                  `json:"segmentId"`
	Exposition              *number                 `json:"exposition"`
	CurrentExposition       *number                 `json:"currentExposition"`
	VariationKey            string                  `json:"variationKey"`
	ControlVariationKey     string                  `json:"controlVariationKey"`
	TrafficAllocationMethod string                  `json:"trafficAllocationMethod"`
	MultiArmedBandit        bool                    `json:"multiArmedBandit"`
	TrafficAllocations      []readTrafficAllocation `json:"trafficAllocations"`
	Reallocation            bool                    `json:"reallocation"`
	Release                 *kmodel.Release         `json:"release"`
	RollbackConditions      []readRollback          `json:"rollbackConditions"`
}

type readTrafficAllocation struct {
	VariationKey string `json:"variationKey"`
	Exposition   number `json:"exposition"`
}

type readRollback struct {
	ID                 number   `json:"id"`
	Target             string   `json:"target"`
	Criteria           string   `json:"criteria"`
	ComparisonOperator string   `json:"comparisonOperator"`
	MatchValue         number   `json:"matchValue"`
	GoalID             number   `json:"goalId"`
	Visitors           number   `json:"visitors"`
	Recipients         []string `json:"recipients"`
}

// DecodeFlag converts one flag in the API's read shape to the model.
func DecodeFlag(data []byte) (kmodel.Flag, error) {
	f, _, err := decodeFlag(data)
	return f, err
}

// decodeFlag is DecodeFlag, and also returns the environments whose rules are listed in
// an order their orderIndex contradicts.
func decodeFlag(data []byte) (kmodel.Flag, []string, error) {
	var r readFlag
	if err := json.Unmarshal(data, &r); err != nil {
		return kmodel.Flag{}, nil, fmt.Errorf("decode flag: %w", err)
	}
	f := r.model()
	return f, r.orderConflicts, nil
}

// DecodeFlags converts a JSON array of flags in the read shape to the model.
func DecodeFlags(data []byte) ([]kmodel.Flag, error) {
	var rs []readFlag
	if err := json.Unmarshal(data, &rs); err != nil {
		return nil, fmt.Errorf("decode flag list: %w", err)
	}
	out := make([]kmodel.Flag, len(rs))
	for i := range rs {
		out[i] = rs[i].model()
	}
	return out, nil
}

func (r *readFlag) model() kmodel.Flag {
	f := kmodel.Flag{
		ID:                r.ID.int(),
		SiteCode:          r.SiteCode,
		FeatureKey:        r.FeatureKey,
		Name:              r.Name,
		Description:       r.Description,
		Tags:              r.Tags,
		AttributionWindow: r.AttributionWindow.int(),
		PrimaryGoalID:     r.PrimaryGoalID.int(),
		Variables:         r.Variables,
		DateCreated:       r.DateCreated,
		Health:            r.Health,
	}
	if r.BucketingKey != nil {
		f.BucketingKey = &kmodel.BucketingKey{BucketingKeyType: r.BucketingKey.BucketingKeyType, CustomDataID: r.BucketingKey.CustomDataID.int()}
	}
	for _, g := range r.SecondaryGoalIDs {
		f.SecondaryGoalIDs = append(f.SecondaryGoalIDs, g.int())
	}
	for _, v := range r.Variations {
		mv := kmodel.Variation{Key: v.Key, Name: v.Name}
		for _, vv := range v.Variables {
			mv.Variables = append(mv.Variables, kmodel.VariationVariable{Key: vv.Key, Value: vv.Value})
		}
		f.Variations = append(f.Variations, mv)
	}
	switch {
	case r.Archived != nil:
		f.Archived = *r.Archived
	case r.IsArchived != nil:
		f.Archived = *r.IsArchived
	}
	if len(r.EnvironmentConfigurations) > 0 {
		f.Environments = make(map[string]kmodel.Environment, len(r.EnvironmentConfigurations))
	}
	for _, e := range r.EnvironmentConfigurations {
		env := kmodel.Environment{
			FeatureEnabled:      e.FeatureEnabled,
			DefaultVariationKey: e.DefaultVariationKey,
			Integrations:        e.Integrations,
			DateModified:        e.DateModified,
		}
		rules := e.RolloutRules
		// Order is orderIndex when every rule carries one, else the array order; equal
		// indices keep their array order. flagsync writes orderIndex equal to the array
		// position, so the two agree on what it wrote. They disagree only after another
		// writer: a server that orders by orderIndex may list by something else (then
		// orderIndex is right), and one that orders by position may keep a stale
		// orderIndex on rules written without one (then the array is right). flagsync
		// reads orderIndex, the field the write reference names, and the client warns:
		// any patch of that environment writes both the same way again.
		indexed := len(rules) > 0
		for _, rr := range rules {
			if rr.OrderIndex == nil {
				indexed = false
			}
		}
		if indexed && !sort.SliceIsSorted(rules, func(i, j int) bool { return *rules[i].OrderIndex < *rules[j].OrderIndex }) {
			rules = slices.Clone(rules)
			sort.SliceStable(rules, func(i, j int) bool { return *rules[i].OrderIndex < *rules[j].OrderIndex })
			r.orderConflicts = append(r.orderConflicts, e.EnvironmentKey)
		}
		for _, rr := range rules {
			env.RolloutRules = append(env.RolloutRules, rr.model())
		}
		f.Environments[e.EnvironmentKey] = env
	}
	return f
}

func (rr *readRule) model() kmodel.Rule {
	m := kmodel.Rule{
		ID:                      rr.ID.int(),
		ExperimentID:            rr.ExperimentID.int(),
		Name:                    rr.Name,
		Type:                    rr.Type,
		SegmentID:               rr.SegmentID.int(),
		VariationKey:            rr.VariationKey,
		ControlVariationKey:     rr.ControlVariationKey,
		TrafficAllocationMethod: rr.TrafficAllocationMethod,
		Reallocation:            rr.Reallocation,
		Release:                 rr.Release,
	}
	// `state` is what was written (Git's); `status` is whether the rule serves now
	// (Kameleoon's, read-only). The reference pages' read shape carries only `status`;
	// the vendor tutorial's carries both, with status PAUSED and state ACTIVE after the
	// release window ended. Both are kept as read: State stays "" when the read shape
	// has no `state` (flag.Rule.WrittenState falls back on Status), so the planner can
	// tell Kameleoon's automation from a written change.
	m.State = rr.State
	m.Status = rr.Status
	if rr.CurrentExposition != nil {
		x := float64(*rr.CurrentExposition)
		m.CurrentExposition = &x
	}
	if m.TrafficAllocationMethod == "" && rr.MultiArmedBandit {
		m.TrafficAllocationMethod = "MULTI_ARMED_BANDIT"
	}
	if rr.Exposition != nil {
		x := float64(*rr.Exposition)
		m.Exposition = &x
	}
	for _, a := range rr.TrafficAllocations {
		m.TrafficAllocations = append(m.TrafficAllocations, kmodel.TrafficAllocation{VariationKey: a.VariationKey, Exposition: float64(a.Exposition)})
	}
	for _, c := range rr.RollbackConditions {
		m.RollbackConditions = append(m.RollbackConditions, kmodel.RollbackCondition{
			ID: c.ID.int(), Target: c.Target, Criteria: c.Criteria, ComparisonOperator: c.ComparisonOperator,
			MatchValue: float64(c.MatchValue), GoalID: c.GoalID.int(), Visitors: c.Visitors.int(), Recipients: c.Recipients,
		})
	}
	return m
}

// --- write shapes ---------------------------------------------------------------

type writeEnvironment struct {
	EnvironmentKey      string           `json:"environmentKey"`
	FeatureEnabled      bool             `json:"featureEnabled"`
	DefaultVariationKey string           `json:"defaultVariationKey,omitempty"`
	RolloutRules        []writeRule      `json:"rolloutRules"`
	Integrations        map[string][]any `json:"integrations"`
}

type writeRule struct {
	ID                      int64                      `json:"id,omitempty"`
	Name                    string                     `json:"name"`
	Type                    string                     `json:"type"`
	OrderIndex              int                        `json:"orderIndex"`
	State                   string                     `json:"state,omitempty"`
	SegmentID               int64                      `json:"segmentId,omitempty"`
	Exposition              *float64                   `json:"exposition,omitempty"`
	VariationKey            string                     `json:"variationKey,omitempty"`
	ControlVariationKey     string                     `json:"controlVariationKey,omitempty"`
	TrafficAllocationMethod string                     `json:"trafficAllocationMethod,omitempty"`
	TrafficAllocations      []kmodel.TrafficAllocation `json:"trafficAllocations,omitempty"`
	Reallocation            bool                       `json:"reallocation,omitempty"`
	Release                 *kmodel.Release            `json:"release,omitempty"`
	RollbackConditions      []writeRollback            `json:"rollbackConditions,omitempty"`
}

type writeRollback struct {
	ID                 int64    `json:"id,omitempty"`
	Target             string   `json:"target"`
	Criteria           string   `json:"criteria"`
	ComparisonOperator string   `json:"comparisonOperator"`
	MatchValue         float64  `json:"matchValue"`
	GoalID             int64    `json:"goalId,omitempty"`
	Visitors           int64    `json:"visitors,omitempty"`
	Recipients         []string `json:"recipients"`
}

// writeRules is rules in write shape. Each carries orderIndex equal to its position, so
// that the order converges whether the API orders rules by array position or by
// orderIndex (the docs show both, and say neither is the order).
func writeRules(rules []kmodel.Rule) []writeRule {
	out := make([]writeRule, 0, len(rules))
	for i, r := range rules {
		w := writeRule{
			ID: r.ID, Name: r.Name, Type: r.Type, OrderIndex: i, State: r.State, SegmentID: r.SegmentID,
			Exposition: r.Exposition, VariationKey: r.VariationKey, ControlVariationKey: r.ControlVariationKey,
			TrafficAllocationMethod: r.TrafficAllocationMethod, TrafficAllocations: r.TrafficAllocations,
			Reallocation: r.Reallocation, Release: r.Release,
		}
		for _, c := range r.RollbackConditions {
			rc := writeRollback{
				ID: c.ID, Target: c.Target, Criteria: c.Criteria, ComparisonOperator: c.ComparisonOperator,
				MatchValue: c.MatchValue, GoalID: c.GoalID, Visitors: c.Visitors, Recipients: c.Recipients,
			}
			if rc.Recipients == nil {
				rc.Recipients = []string{}
			}
			w.RollbackConditions = append(w.RollbackConditions, rc)
		}
		out = append(out, w)
	}
	return out
}

func writeEnv(key string, e kmodel.Environment) writeEnvironment {
	return writeEnvironment{
		EnvironmentKey:      key,
		FeatureEnabled:      e.FeatureEnabled,
		DefaultVariationKey: e.DefaultVariationKey,
		RolloutRules:        writeRules(e.RolloutRules),
		Integrations:        writeIntegrations(e.Integrations),
	}
}

// writeIntegrations always writes both arrays: the model's omitempty would drop them.
func writeIntegrations(in *kmodel.Integrations) map[string][]any {
	out := map[string][]any{"deliveryRules": {}, "experimentRules": {}}
	if in != nil {
		out["deliveryRules"] = nonNil(in.DeliveryRules)
		out["experimentRules"] = nonNil(in.ExperimentRules)
	}
	return out
}

// flagFields returns the flag-level fields of f in write shape, keyed by wire name.
// Absent values are written explicitly (empty string, empty array, null) because a
// flag in Git is fully owned: leaving a field out must reset it.
func flagFields(f *kmodel.Flag) map[string]any {
	m := map[string]any{
		"name":              f.Name,
		"description":       f.Description,
		"tags":              nonNil(f.Tags),
		"secondaryGoalIds":  nonNil(f.SecondaryGoalIDs),
		"variables":         nonNil(f.Variables),
		"variations":        writeVariations(f.Variations),
		"isArchived":        f.Archived,
		"attributionWindow": nil,
		"primaryGoalId":     nil,
		"bucketingKey":      nil,
	}
	if f.AttributionWindow != 0 {
		m["attributionWindow"] = f.AttributionWindow
	}
	if f.PrimaryGoalID != 0 {
		m["primaryGoalId"] = f.PrimaryGoalID
	}
	if f.BucketingKey != nil {
		// The flag patch is an RFC 7396 merge patch, in which an object merges member by
		// member: without an explicit null, going from CUSTOM_DATA back to VISITOR_CODE
		// would keep the old customDataId.
		bk := map[string]any{"bucketingKeyType": f.BucketingKey.BucketingKeyType, "customDataId": nil}
		if f.BucketingKey.CustomDataID != 0 {
			bk["customDataId"] = f.BucketingKey.CustomDataID
		}
		m["bucketingKey"] = bk
	}
	return m
}

func writeVariations(vs []kmodel.Variation) []map[string]any {
	out := make([]map[string]any, 0, len(vs))
	for _, v := range vs {
		out = append(out, map[string]any{"key": v.Key, "name": v.Name, "variables": nonNil(v.Variables)})
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// envOrder lists keys in the configured order first, then the rest alphabetically.
func envOrder(envs map[string]kmodel.Environment, order []string) []string {
	seen := make(map[string]bool, len(envs))
	var keys []string
	for _, k := range order {
		if _, ok := envs[k]; ok && !seen[k] {
			keys = append(keys, k)
			seen[k] = true
		}
	}
	var rest []string
	for k := range envs {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(keys, rest...)
}

func encode(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only model values reach here; they always encode.
		panic(fmt.Sprintf("encode request body: %v", err))
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// CreateFlagRequest is the POST that creates f with all its environments, listed in
// the given order first. The caller decides the tags (flagsync's ownership tag included); an
// archived flag is created live and archived by a separate patch.
func CreateFlagRequest(f *kmodel.Flag, order []string) api.Request {
	body := flagFields(f)
	delete(body, "isArchived")
	for k, v := range body {
		if v == nil {
			delete(body, k)
		}
	}
	if f.BucketingKey != nil && f.BucketingKey.CustomDataID == 0 {
		body["bucketingKey"] = map[string]any{"bucketingKeyType": f.BucketingKey.BucketingKeyType}
	}
	body["siteCode"] = f.SiteCode
	body["featureKey"] = f.FeatureKey
	if len(f.Environments) > 0 {
		envs := make([]writeEnvironment, 0, len(f.Environments))
		for _, k := range envOrder(f.Environments, order) {
			envs = append(envs, writeEnv(k, f.Environments[k]))
		}
		body["environmentConfigurations"] = envs
	}
	return api.Request{Method: "POST", Path: "/feature-flags", Body: encode(body)}
}

// FlagPatchFields are the model field names UpdateFlagRequest accepts.
var FlagPatchFields = []string{"name", "description", "tags", "attributionWindow", "bucketingKey", "primaryGoalId", "secondaryGoalIds", "variables", "variations", "archived"}

// UpdateFlagRequest is the flag-level JSON merge patch that sets the named fields (model
// names, see FlagPatchFields) to their values in after. Arrays are sent whole.
func UpdateFlagRequest(after *kmodel.Flag, fields []string) api.Request {
	all := flagFields(after)
	body := make(map[string]any, len(fields))
	for _, name := range fields {
		wire := name
		if name == "archived" {
			wire = "isArchived"
		}
		v, ok := all[wire]
		if !ok {
			panic(fmt.Sprintf("UpdateFlagRequest: unknown field %q", name))
		}
		body[wire] = v
	}
	return api.Request{Method: "PATCH", Path: FlagPath(after.SiteCode, after.FeatureKey), Body: encode(body)}
}

// ArchiveFlagRequest archives (or with archived=false restores) a flag.
func ArchiveFlagRequest(siteCode, featureKey string, archived bool) api.Request {
	return api.Request{Method: "PATCH", Path: FlagPath(siteCode, featureKey), Body: encode(map[string]any{"isArchived": archived})}
}

// EnvironmentPatchFields are the field names PatchEnvironmentRequest accepts.
var EnvironmentPatchFields = []string{"featureEnabled", "defaultVariationKey", "rolloutRules", "integrations"}

// EnvironmentPatchRequired are the members every environment patch body carries,
// whatever changed: the newer reference page of the environment PATCH marks them
// required, and the older pages, which require nothing, accept them too.
var EnvironmentPatchRequired = []string{"featureKey", "name", "integrations", "rolloutRules"}

// PatchEnvironmentRequest is the environment-level JSON merge patch for one environment
// of flag siteCode/featureKey. It carries featureKey, the flag's name as Git wants it, and
// the environment's integrations and rolloutRules as in after (see
// EnvironmentPatchRequired), plus the other named fields (see EnvironmentPatchFields) with
// their values in after. Rules are sent whole with the ids they carry, so rules that
// persist keep their id and experiment, and with orderIndex equal to their position.
// Because the required members are sent as after holds them, the caller passes the
// environment as it must end up, not only the fields that changed.
func PatchEnvironmentRequest(siteCode, featureKey, name, env string, after kmodel.Environment, fields []string) api.Request {
	w := writeEnv(env, after)
	body := map[string]any{
		"featureKey":   featureKey,
		"name":         name,
		"integrations": w.Integrations,
		"rolloutRules": w.RolloutRules,
	}
	for _, field := range fields {
		switch field {
		case "featureEnabled":
			body[field] = w.FeatureEnabled
		case "defaultVariationKey":
			body[field] = w.DefaultVariationKey
		case "rolloutRules", "integrations":
			// always sent
		default:
			panic(fmt.Sprintf("PatchEnvironmentRequest: unknown field %q", field))
		}
	}
	return api.Request{Method: "PATCH", Path: EnvironmentPath(siteCode, featureKey, env), Body: encode(body)}
}
