package unleashwire

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/flagsync/flagsync/internal/api"
	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
)

// AdminPrefix starts every admin API path.
const AdminPrefix = "/api/admin"

func esc(s string) string { return url.PathEscape(s) }

// ProjectPath is /api/admin/projects/{project}.
func ProjectPath(project string) string { return AdminPrefix + "/projects/" + esc(project) }

// FeaturesPath is the project's feature list: /api/admin/projects/{project}/features.
func FeaturesPath(project string) string { return ProjectPath(project) + "/features" }

// FeaturePath is one feature: /api/admin/projects/{project}/features/{name}.
func FeaturePath(project, name string) string { return FeaturesPath(project) + "/" + esc(name) }

// EnvironmentPath is a feature's environment: …/features/{name}/environments/{env}.
func EnvironmentPath(project, name, env string) string {
	return FeaturePath(project, name) + "/environments/" + esc(env)
}

// StrategiesPath is a feature's strategies in one environment.
func StrategiesPath(project, name, env string) string {
	return EnvironmentPath(project, name, env) + "/strategies"
}

// TagsPath is a feature's tags: /api/admin/features/{name}/tags.
func TagsPath(name string) string { return AdminPrefix + "/features/" + esc(name) + "/tags" }

// SegmentsPath lists segments.
const SegmentsPath = AdminPrefix + "/segments"

// SearchPath is the feature search, rate-limited by Unleash (15 requests a minute).
const SearchPath = AdminPrefix + "/search/features"

// RevivePath revives an archived feature.
func RevivePath(name string) string { return AdminPrefix + "/archive/revive/" + esc(name) }

// ValidateNamePath answers whether a feature name is free (200), taken (409) or taken by an
// archived feature (409).
const ValidateNamePath = AdminPrefix + "/features/validate"

// --- reading -----------------------------------------------------------------------

// FeatureList is the answer of the project's feature list.
type FeatureList struct {
	Features []ListedFeature `json:"features"`
}

// ListedFeature is one feature of the project's list: metadata, tags, and per environment
// a summary without strategies.
type ListedFeature struct {
	Name           string      `json:"name"`
	Type           string      `json:"type"`
	Description    *string     `json:"description"`
	ImpressionData bool        `json:"impressionData"`
	Archived       bool        `json:"archived"`
	Tags           []Tag       `json:"tags"`
	Environments   []ListedEnv `json:"environments"`
	ArchivedAt     *string     `json:"archivedAt,omitempty"` // search results only
	CreatedAt      string      `json:"createdAt,omitempty"`
	Stale          bool        `json:"stale,omitempty"`
}

// ListedEnv is a feature's environment in the project's list.
type ListedEnv struct {
	Name          string `json:"name"`
	Enabled       bool   `json:"enabled"`
	HasStrategies bool   `json:"hasStrategies"`
	VariantCount  int    `json:"variantCount"`
}

// Tag is a tag as the API writes it.
type Tag struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// String renders the tag as the flag file writes it: type:value.
func (t Tag) String() string { return t.Type + ":" + t.Value }

// Feature is one feature as GET …/features/{name} returns it: metadata and every
// environment of the project with its strategies in sort order (no tags).
type Feature struct {
	Name           string       `json:"name"`
	Project        string       `json:"project"`
	Type           string       `json:"type"`
	Description    *string      `json:"description"`
	ImpressionData bool         `json:"impressionData"`
	Archived       bool         `json:"archived"`
	Environments   []FeatureEnv `json:"environments"`
}

// FeatureEnv is a feature's environment with its strategies.
type FeatureEnv struct {
	Name       string         `json:"name"`
	Enabled    bool           `json:"enabled"`
	Strategies []WireStrategy `json:"strategies"`
}

// WireStrategy is a strategy as the API reads and writes it.
type WireStrategy struct {
	ID          string           `json:"id,omitempty"`
	Name        string           `json:"name"`
	Title       *string          `json:"title"`
	Disabled    bool             `json:"disabled"`
	SortOrder   *int             `json:"sortOrder,omitempty"`
	Parameters  Parameters       `json:"parameters"`
	Constraints []WireConstraint `json:"constraints"`
	Segments    []int            `json:"segments"`
	Variants    []WireVariant    `json:"variants"`
}

// Parameters are a strategy's parameters. Unleash keeps them as strings; a number or a
// boolean stored by another client is read as its JSON text.
type Parameters map[string]string

// UnmarshalJSON reads an object of strings, numbers or booleans.
func (p *Parameters) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw == nil {
		*p = nil
		return nil
	}
	out := make(Parameters, len(raw))
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			out[k] = s
			continue
		}
		out[k] = string(v)
	}
	*p = out
	return nil
}

// WireConstraint is a constraint as the API reads and writes it: values is always present
// (Unleash keeps [] for the single-value operators); the flags are sent only when set, as
// Unleash stores them.
type WireConstraint struct {
	ContextName     string   `json:"contextName"`
	Operator        string   `json:"operator"`
	Values          []string `json:"values"`
	Value           string   `json:"value,omitempty"`
	CaseInsensitive bool     `json:"caseInsensitive,omitempty"`
	Inverted        bool     `json:"inverted,omitempty"`
}

// WireVariant is a strategy variant as the API reads and writes it.
type WireVariant struct {
	Name       string       `json:"name"`
	Weight     int          `json:"weight"`
	WeightType string       `json:"weightType"`
	Stickiness string       `json:"stickiness"`
	Payload    *WirePayload `json:"payload,omitempty"`
}

// WirePayload is a variant's payload.
type WirePayload struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// SegmentList is the answer of GET /api/admin/segments.
type SegmentList struct {
	Segments []Segment `json:"segments"`
}

// Segment is a segment as listed: flagsync needs its id and name.
type Segment struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// SearchResult is one page of the feature search.
type SearchResult struct {
	Features []ListedFeature `json:"features"`
	Total    int             `json:"total"`
}

// FlagFromList converts a listed feature (metadata, tags, environment summaries) to the
// model; environments with strategies are marked Unread until their strategies are read.
func FlagFromList(project string, lf ListedFeature) unleashmodel.Flag {
	f := unleashmodel.Flag{Project: project, Name: lf.Name, Type: lf.Type, ImpressionData: lf.ImpressionData,
		CreatedAt: lf.CreatedAt, Stale: lf.Stale}
	if lf.Description != nil {
		f.Description = *lf.Description
	}
	for _, t := range lf.Tags {
		f.Tags = append(f.Tags, t.String())
	}
	slices.Sort(f.Tags)
	f.Environments = make(map[string]unleashmodel.Environment, len(lf.Environments))
	for _, e := range lf.Environments {
		f.Environments[e.Name] = unleashmodel.Environment{Enabled: e.Enabled, Unread: e.HasStrategies}
		if e.VariantCount > 0 {
			if f.LegacyVariants == nil {
				f.LegacyVariants = map[string]int{}
			}
			f.LegacyVariants[e.Name] = e.VariantCount
		}
	}
	return f
}

// SetStrategies fills f's environments from a feature read with GET: enabled and the
// strategies in sort order (ties by id, as Unleash breaks them), segment ids named through
// names. A segment id without a name is an error: the segment list was read before the
// feature, so a segment created in between is named on the next read.
func SetStrategies(f *unleashmodel.Flag, wf Feature, names map[int]string) error {
	if f.Environments == nil {
		f.Environments = map[string]unleashmodel.Environment{}
	}
	for _, we := range wf.Environments {
		e := unleashmodel.Environment{Enabled: we.Enabled}
		ws := slices.Clone(we.Strategies)
		slices.SortStableFunc(ws, func(a, b WireStrategy) int {
			if d := sortOrder(a) - sortOrder(b); d != 0 {
				return d
			}
			switch {
			case a.ID < b.ID:
				return -1
			case a.ID > b.ID:
				return 1
			}
			return 0
		})
		for _, w := range ws {
			s, err := StrategyFromWire(w, names)
			if err != nil {
				return fmt.Errorf("feature %s, environment %s: %w", f.Name, we.Name, err)
			}
			e.Strategies = append(e.Strategies, s)
		}
		f.Environments[we.Name] = e
	}
	return nil
}

func sortOrder(w WireStrategy) int {
	if w.SortOrder == nil {
		return 0
	}
	return *w.SortOrder
}

// StrategyFromWire converts a strategy read from the API to the model.
func StrategyFromWire(w WireStrategy, names map[int]string) (unleashmodel.Strategy, error) {
	s := unleashmodel.Strategy{ID: w.ID, Name: w.Name, Disabled: w.Disabled, SortOrder: sortOrder(w)}
	if w.Title != nil {
		s.Title = *w.Title
	}
	if len(w.Parameters) > 0 {
		s.Parameters = map[string]string(w.Parameters)
	}
	for _, c := range w.Constraints {
		s.Constraints = append(s.Constraints, unleashmodel.Constraint{ContextName: c.ContextName, Operator: c.Operator,
			Values: c.Values, Value: c.Value, CaseInsensitive: c.CaseInsensitive, Inverted: c.Inverted})
	}
	for _, id := range w.Segments {
		name, ok := names[id]
		if !ok {
			return unleashmodel.Strategy{}, fmt.Errorf("strategy %s uses segment %d, which the segment list did not hold", w.ID, id)
		}
		s.Segments = append(s.Segments, name)
	}
	for _, v := range w.Variants {
		mv := unleashmodel.Variant{Name: v.Name, Weight: v.Weight, WeightType: v.WeightType, Stickiness: v.Stickiness}
		if v.Payload != nil {
			mv.Payload = &unleashmodel.Payload{Type: v.Payload.Type, Value: v.Payload.Value}
		}
		s.Variants = append(s.Variants, mv)
	}
	return s, nil
}

// --- writing -----------------------------------------------------------------------

// createFeature is the body of POST …/features. Tags are not sent: Unleash 8.2 fails
// (500) to create a flag with a tag value it has never seen, while the tag endpoint creates
// it.
type createFeature struct {
	Name           string `json:"name"`
	Type           string `json:"type"`
	Description    string `json:"description"`
	ImpressionData bool   `json:"impressionData"`
}

// StrategyBody is the body of a strategy POST (with SortOrder) or PUT (without: Unleash
// ignores it there). Title and Segments are always sent, since a PUT keeps what is left
// out.
type StrategyBody struct {
	Name        string            `json:"name"`
	Title       string            `json:"title"`
	Disabled    bool              `json:"disabled"`
	SortOrder   *int              `json:"sortOrder,omitempty"`
	Parameters  map[string]string `json:"parameters"`
	Constraints []WireConstraint  `json:"constraints"`
	Segments    []int             `json:"segments"`
	Variants    []WireVariant     `json:"variants"`
}

// SortOrder is one entry of a set-sort-order body.
type SortOrder struct {
	ID        string `json:"id"`
	SortOrder int    `json:"sortOrder"`
}

// PatchOp is one JSON Patch operation of a feature's metadata PATCH.
type PatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// TagChanges is the body of PUT /api/admin/features/{name}/tags.
type TagChanges struct {
	AddedTags   []Tag `json:"addedTags"`
	RemovedTags []Tag `json:"removedTags"`
}

func request(method, path string, body any) api.Request {
	r := api.Request{Method: method, Path: path}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			// Every body here is plain data that always encodes.
			panic(fmt.Sprintf("encode %s %s: %v", method, path, err))
		}
		r.Body = b
	}
	return r
}

// CreateFeatureRequest creates f (without its tags and environments).
func CreateFeatureRequest(f *unleashmodel.Flag) api.Request {
	return request(http.MethodPost, FeaturesPath(f.Project), createFeature{Name: f.Name, Type: f.FeatureType(),
		Description: f.Description, ImpressionData: f.ImpressionData})
}

// PatchFeatureRequest changes a feature's metadata with JSON Patch replace operations.
func PatchFeatureRequest(project, name string, ops []PatchOp) api.Request {
	return request(http.MethodPatch, FeaturePath(project, name), ops)
}

// TagsRequest adds and removes tags ("type:value") in one call.
func TagsRequest(name string, added, removed []string) api.Request {
	body := TagChanges{AddedTags: []Tag{}, RemovedTags: []Tag{}}
	for _, t := range added {
		typ, value, _ := unleashmodel.SplitTag(t)
		body.AddedTags = append(body.AddedTags, Tag{Type: typ, Value: value})
	}
	for _, t := range removed {
		typ, value, _ := unleashmodel.SplitTag(t)
		body.RemovedTags = append(body.RemovedTags, Tag{Type: typ, Value: value})
	}
	return request(http.MethodPut, TagsPath(name), body)
}

// StrategyBodyOf is the body that writes s, its segments named through ids (every name must
// be there; the planner checks). sortOrder is sent on a create only.
func StrategyBodyOf(s *unleashmodel.Strategy, ids map[string]int, sortOrder *int) StrategyBody {
	b := StrategyBody{Name: s.Name, Title: s.Title, Disabled: s.Disabled, SortOrder: sortOrder,
		Parameters: map[string]string{}, Constraints: []WireConstraint{}, Segments: []int{}, Variants: []WireVariant{}}
	for k, v := range s.Parameters {
		b.Parameters[k] = v
	}
	for _, c := range s.Constraints {
		values := c.Values
		if values == nil {
			values = []string{}
		}
		b.Constraints = append(b.Constraints, WireConstraint{ContextName: c.ContextName, Operator: c.Operator, Values: values,
			Value: c.Value, CaseInsensitive: c.CaseInsensitive, Inverted: c.Inverted})
	}
	for _, name := range s.Segments {
		b.Segments = append(b.Segments, ids[name])
	}
	slices.Sort(b.Segments)
	for _, v := range unleashmodel.FixWeights(s.Variants) {
		wv := WireVariant{Name: v.Name, Weight: v.Weight, WeightType: v.WeightType, Stickiness: v.Stickiness}
		if wv.WeightType == "" {
			wv.WeightType = unleashmodel.WeightVariable
		}
		if wv.Stickiness == "" {
			wv.Stickiness = unleashmodel.DefaultStickiness
		}
		if v.Payload != nil {
			wv.Payload = &WirePayload{Type: v.Payload.Type, Value: v.Payload.Value}
		}
		b.Variants = append(b.Variants, wv)
	}
	return b
}

// AddStrategyRequest adds s to an environment at sortOrder.
func AddStrategyRequest(project, name, env string, s *unleashmodel.Strategy, ids map[string]int, sortOrder int) api.Request {
	return request(http.MethodPost, StrategiesPath(project, name, env), StrategyBodyOf(s, ids, &sortOrder))
}

// UpdateStrategyRequest replaces strategy id with s; the id is kept.
func UpdateStrategyRequest(project, name, env, id string, s *unleashmodel.Strategy, ids map[string]int) api.Request {
	return request(http.MethodPut, StrategiesPath(project, name, env)+"/"+esc(id), StrategyBodyOf(s, ids, nil))
}

// DeleteStrategyRequest deletes strategy id.
func DeleteStrategyRequest(project, name, env, id string) api.Request {
	return request(http.MethodDelete, StrategiesPath(project, name, env)+"/"+esc(id), nil)
}

// SortOrderRequest sets the sort order of existing strategies.
func SortOrderRequest(project, name, env string, orders []SortOrder) api.Request {
	return request(http.MethodPost, StrategiesPath(project, name, env)+"/set-sort-order", orders)
}

// ToggleRequest turns an environment on or off.
func ToggleRequest(project, name, env string, on bool) api.Request {
	verb := "off"
	if on {
		verb = "on"
	}
	return request(http.MethodPost, EnvironmentPath(project, name, env)+"/"+verb, nil)
}

// ArchiveRequest archives a feature (Unleash's DELETE of an active feature archives it).
func ArchiveRequest(project, name string) api.Request {
	return request(http.MethodDelete, FeaturePath(project, name), nil)
}

// ReviveRequest revives an archived feature: its strategies and tags come back, every
// environment disabled.
func ReviveRequest(name string) api.Request {
	return request(http.MethodPost, RevivePath(name), nil)
}

// SearchQuery is the query of one page of the archived features of a project.
func SearchQuery(project string, archived bool, limit, offset int) url.Values {
	return url.Values{
		"project":  {"IS:" + project},
		"archived": {"IS:" + strconv.FormatBool(archived)},
		"limit":    {strconv.Itoa(limit)},
		"offset":   {strconv.Itoa(offset)},
	}
}
