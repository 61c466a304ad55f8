package splitclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/jsonpatch"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
)

// This file is the only place that knows the Admin API's wire shapes: the read shapes of
// a flag (tags as objects, the traffic type as {id, name}) and of a definition (server
// members such as environment, creationTime and a condition's combiner), and the write
// shapes of the create bodies. The JSON Patches are built in patch.go.

// APIPrefix is the path prefix of every Admin API endpoint. Request paths carry it, so a
// base URL is a host (https://api.split.io) or a gateway prefix in front of it.
const APIPrefix = "/internal/api/v2"

func esc(s string) string { return url.PathEscape(s) }

// FlagsPath is the collection of a workspace's feature flags (list).
func FlagsPath(workspace string) string { return APIPrefix + "/splits/ws/" + esc(workspace) }

// FlagPath is one feature flag (get, partial update).
func FlagPath(workspace, name string) string { return FlagsPath(workspace) + "/" + esc(name) }

// CreateFlagPath is where a flag of a traffic type (id or name) is created.
func CreateFlagPath(workspace, trafficType string) string {
	return FlagsPath(workspace) + "/trafficTypes/" + esc(trafficType)
}

// DefinitionsPath is the collection of a workspace's definitions in one environment (id
// or case-sensitive name).
func DefinitionsPath(workspace, env string) string {
	return FlagsPath(workspace) + "/environments/" + esc(env)
}

// DefinitionPath is one flag's definition in one environment (get, create, partial
// update).
func DefinitionPath(workspace, name, env string) string {
	return FlagPath(workspace, name) + "/environments/" + esc(env)
}

// KillPath kills a flag in one environment.
func KillPath(workspace, name, env string) string {
	return DefinitionPath(workspace, name, env) + "/kill"
}

// RestorePath restores a killed flag in one environment.
func RestorePath(workspace, name, env string) string {
	return DefinitionPath(workspace, name, env) + "/restore"
}

// --- read shapes ------------------------------------------------------------------

// number decodes a JSON number, or null as 0.
type number float64

// UnmarshalJSON reads a number, or null as 0.
func (n *number) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = 0
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = number(f)
	return nil
}

func (n number) int() int { return int(math.Round(float64(n))) }

type readRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type readTag struct {
	Name string `json:"name"`
}

type readFlag struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	TrafficType *readRef  `json:"trafficType"`
	Tags        []readTag `json:"tags"`
}

// DecodeFlag converts one flag in the API's read shape to the model (without
// definitions).
func DecodeFlag(data []byte, workspace string) (splitmodel.Flag, error) {
	var r readFlag
	if err := json.Unmarshal(data, &r); err != nil {
		return splitmodel.Flag{}, fmt.Errorf("decode flag: %w", err)
	}
	f := splitmodel.Flag{ID: r.ID, Workspace: workspace, Name: r.Name, Description: r.Description}
	if r.TrafficType != nil {
		f.TrafficType, f.TrafficTypeID = r.TrafficType.Name, r.TrafficType.ID
	}
	for _, t := range r.Tags {
		f.Tags = append(f.Tags, t.Name)
	}
	return f, nil
}

type readDefinition struct {
	Name                string          `json:"name"`
	Killed              bool            `json:"killed"`
	ImpressionsDisabled bool            `json:"impressionsDisabled"`
	Treatments          []readTreatment `json:"treatments"`
	DefaultTreatment    string          `json:"defaultTreatment"`
	BaselineTreatment   *string         `json:"baselineTreatment"`
	TrafficAllocation   *number         `json:"trafficAllocation"`
	Rules               []readRule      `json:"rules"`
	DefaultRule         []readBucket    `json:"defaultRule"`
}

type readTreatment struct {
	Name           string   `json:"name"`
	Description    string   `json:"description"`
	Configurations *string  `json:"configurations"`
	Keys           []string `json:"keys"`
	Segments       []string `json:"segments"`
}

type readRule struct {
	Condition struct {
		Matchers []readMatcher `json:"matchers"`
	} `json:"condition"`
	Buckets []readBucket `json:"buckets"`
}

type readMatcher struct {
	Type      string   `json:"type"`
	Negate    bool     `json:"negate"`
	Attribute string   `json:"attribute"`
	String    string   `json:"string"`
	Bool      *bool    `json:"bool"`
	Strings   []string `json:"strings"`
	Number    *float64 `json:"number"`
	Date      *number  `json:"date"`
	Between   *struct {
		From number `json:"from"`
		To   number `json:"to"`
	} `json:"between"`
	Depends *splitmodel.Depends `json:"depends"`
}

type readBucket struct {
	Treatment string `json:"treatment"`
	Size      number `json:"size"`
}

// DecodeDefinition converts one definition in the API's read shape to the model and
// returns the flag name it belongs to. The model keeps the raw JSON in Wire.
func DecodeDefinition(data []byte) (string, splitmodel.Definition, error) {
	var r readDefinition
	if err := json.Unmarshal(data, &r); err != nil {
		return "", splitmodel.Definition{}, fmt.Errorf("decode definition: %w", err)
	}
	d := splitmodel.Definition{
		DefaultTreatment:    r.DefaultTreatment,
		Killed:              r.Killed,
		ImpressionsDisabled: r.ImpressionsDisabled,
		Wire:                slices.Clip(bytes.TrimSpace(data)),
	}
	if r.BaselineTreatment != nil {
		d.BaselineTreatment = *r.BaselineTreatment
	}
	if r.TrafficAllocation != nil {
		a := r.TrafficAllocation.int()
		d.TrafficAllocation = &a
	}
	for _, t := range r.Treatments {
		mt := splitmodel.Treatment{Name: t.Name, Description: t.Description, Keys: t.Keys, Segments: t.Segments}
		if t.Configurations != nil {
			mt.Configurations = *t.Configurations
		}
		d.Treatments = append(d.Treatments, mt)
	}
	for _, rr := range r.Rules {
		rule := splitmodel.Rule{Buckets: buckets(rr.Buckets)}
		for _, m := range rr.Condition.Matchers {
			mm := splitmodel.Matcher{
				Type: m.Type, Negate: m.Negate, Attribute: m.Attribute, String: m.String,
				Bool: m.Bool, Strings: m.Strings, Number: m.Number, Depends: m.Depends,
			}
			if m.Date != nil {
				v := int64(math.Round(float64(*m.Date)))
				mm.Date = &v
			}
			if m.Between != nil {
				mm.Between = &splitmodel.Between{From: float64(m.Between.From), To: float64(m.Between.To)}
			}
			rule.Condition.Matchers = append(rule.Condition.Matchers, mm)
		}
		d.Rules = append(d.Rules, rule)
	}
	d.DefaultRule = buckets(r.DefaultRule)
	return r.Name, splitmodel.Normalise(d), nil
}

func buckets(rs []readBucket) []splitmodel.Bucket {
	var out []splitmodel.Bucket
	for _, b := range rs {
		out = append(out, splitmodel.Bucket{Treatment: b.Treatment, Size: b.Size.int()})
	}
	return out
}

// --- write shapes -------------------------------------------------------------------

// wireTreatment, wireRule, wireMatcher and wireBucket are the write shapes. Members are
// in the order the vendor's examples write them; empty ones are left out.
type wireTreatment struct {
	Name           string   `json:"name"`
	Configurations string   `json:"configurations,omitempty"`
	Description    string   `json:"description,omitempty"`
	Keys           []string `json:"keys,omitempty"`
	Segments       []string `json:"segments,omitempty"`
}

type wireRule struct {
	Buckets   []wireBucket  `json:"buckets"`
	Condition wireCondition `json:"condition"`
}

type wireCondition struct {
	Matchers []wireMatcher `json:"matchers"`
}

type wireMatcher struct {
	Type      string              `json:"type"`
	Negate    bool                `json:"negate,omitempty"`
	Attribute string              `json:"attribute,omitempty"`
	String    string              `json:"string,omitempty"`
	Bool      *bool               `json:"bool,omitempty"`
	Strings   []string            `json:"strings,omitempty"`
	Number    *float64            `json:"number,omitempty"`
	Date      *int64              `json:"date,omitempty"`
	Between   *splitmodel.Between `json:"between,omitempty"`
	Depends   *splitmodel.Depends `json:"depends,omitempty"`
}

type wireBucket struct {
	Treatment string `json:"treatment"`
	Size      int    `json:"size"`
}

type wireDefinition struct {
	Treatments        []wireTreatment `json:"treatments"`
	DefaultTreatment  string          `json:"defaultTreatment"`
	BaselineTreatment string          `json:"baselineTreatment,omitempty"`
	TrafficAllocation int             `json:"trafficAllocation"`
	Rules             []wireRule      `json:"rules"`
	DefaultRule       []wireBucket    `json:"defaultRule"`
	Killed            bool            `json:"killed,omitempty"`
	// ImpressionsDisabled is sent only when set: the server's default is false.
	ImpressionsDisabled bool `json:"impressionsDisabled,omitempty"`
}

func writeTreatment(t splitmodel.Treatment) wireTreatment {
	return wireTreatment{Name: t.Name, Configurations: t.Configurations, Description: t.Description, Keys: t.Keys, Segments: t.Segments}
}

func writeBuckets(bs []splitmodel.Bucket) []wireBucket {
	out := make([]wireBucket, 0, len(bs))
	for _, b := range bs {
		out = append(out, wireBucket(b))
	}
	return out
}

func writeRule(r splitmodel.Rule) wireRule {
	w := wireRule{Buckets: writeBuckets(r.Buckets), Condition: wireCondition{Matchers: make([]wireMatcher, 0, len(r.Condition.Matchers))}}
	for _, m := range r.Condition.Matchers {
		w.Condition.Matchers = append(w.Condition.Matchers, wireMatcher{
			Type: m.Type, Negate: m.Negate, Attribute: m.Attribute, String: m.String, Bool: m.Bool,
			Strings: m.Strings, Number: m.Number, Date: m.Date, Between: m.Between, Depends: m.Depends,
		})
	}
	return w
}

func writeDefinition(d splitmodel.Definition) wireDefinition {
	d = splitmodel.Normalise(d)
	w := wireDefinition{
		Treatments:          make([]wireTreatment, 0, len(d.Treatments)),
		DefaultTreatment:    d.DefaultTreatment,
		BaselineTreatment:   d.BaselineTreatment,
		TrafficAllocation:   d.Allocation(),
		Rules:               make([]wireRule, 0, len(d.Rules)),
		DefaultRule:         writeBuckets(d.DefaultRule),
		Killed:              d.Killed,
		ImpressionsDisabled: d.ImpressionsDisabled,
	}
	for _, t := range d.Treatments {
		w.Treatments = append(w.Treatments, writeTreatment(t))
	}
	for _, r := range d.Rules {
		w.Rules = append(w.Rules, writeRule(r))
	}
	return w
}

// EncodeDefinition is d in the write shape, as a create sends it (and as the sandbox
// stores it before adding its own members).
func EncodeDefinition(d splitmodel.Definition) json.RawMessage { return encode(writeDefinition(d)) }

// EncodeTreatment, EncodeRule, EncodeBuckets and EncodeTags are the write shapes of a
// treatment, a rule, a default rule and a flag's tags: the values the JSON Patches of a
// definition and of a flag carry.
func EncodeTreatment(t splitmodel.Treatment) json.RawMessage { return encode(writeTreatment(t)) }

// EncodeRule is a rule's write shape (see EncodeTreatment).
func EncodeRule(r splitmodel.Rule) json.RawMessage { return encode(writeRule(r)) }

// EncodeBuckets is a default rule's write shape (see EncodeTreatment).
func EncodeBuckets(bs []splitmodel.Bucket) json.RawMessage { return encode(writeBuckets(bs)) }

// EncodeTags is a flag's tags in their write shape (see EncodeTreatment).
func EncodeTags(tags []string) json.RawMessage { return encode(writeTags(tags)) }

func encode(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("encode request body: %v", err)) // only model values reach here
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

type writeTag struct {
	Name string `json:"name"`
}

func writeTags(tags []string) []writeTag {
	out := make([]writeTag, 0, len(tags))
	for _, t := range tags {
		out = append(out, writeTag{t})
	}
	return out
}

// CreateFlagRequest is the POST that creates f in its workspace with its traffic type,
// description and tags (the caller decides the tags, flagsync's ownership tag included).
// It configures no environment: definitions are created one by one.
func CreateFlagRequest(f *splitmodel.Flag, tags []string) api.Request {
	body := struct {
		Name        string     `json:"name"`
		Description string     `json:"description"`
		Tags        []writeTag `json:"tags,omitempty"`
	}{f.Name, f.Description, writeTags(tags)}
	return api.Request{Method: "POST", Path: CreateFlagPath(f.Workspace, f.TrafficType), Body: encode(body)}
}

// CreateDefinitionRequest is the POST that configures flag name in environment env.
func CreateDefinitionRequest(workspace, name, env string, d splitmodel.Definition) api.Request {
	return api.Request{Method: "POST", Path: DefinitionPath(workspace, name, env), Body: EncodeDefinition(d)}
}

// PatchDefinitionRequest is the PATCH that applies p to flag name's definition in env.
func PatchDefinitionRequest(workspace, name, env string, p jsonpatch.Patch) api.Request {
	return api.Request{Method: "PATCH", Path: DefinitionPath(workspace, name, env), Body: p.JSON()}
}

// PatchFlagRequest is the PATCH that applies p to flag name (description, tags).
func PatchFlagRequest(workspace, name string, p jsonpatch.Patch) api.Request {
	return api.Request{Method: "PATCH", Path: FlagPath(workspace, name), Body: p.JSON()}
}

// IsCreateFlag reports whether req creates a flag, and returns the workspace and name it
// creates when it does.
func IsCreateFlag(req api.Request) (workspace, name string, ok bool) {
	if req.Method != "POST" {
		return "", "", false
	}
	rest, found := strings.CutPrefix(req.Path, APIPrefix+"/splits/ws/")
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[1] != "trafficTypes" {
		return "", "", false
	}
	ws, err := url.PathUnescape(parts[0])
	if err != nil {
		return "", "", false
	}
	var body struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(req.Body, &body) != nil || body.Name == "" {
		return "", "", false
	}
	return ws, body.Name, true
}
