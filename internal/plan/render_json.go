package plan

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/flagsync/flagsync/internal/api"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// jsonPlan is the documented, stable shape RenderJSON writes (see the README). Every
// key is always present; lists are never null.
type jsonPlan struct {
	Revision  string       `json:"revision"`
	Summary   Summary      `json:"summary"`
	Changes   []jsonChange `json:"changes"`
	Unmanaged []kmodel.Ref `json:"unmanaged"`
	Blocked   []Blocked    `json:"blocked"`
	Notes     []Note       `json:"notes"`
	Service   string       `json:"service,omitempty"` // absent for Kameleoon
}

type jsonChange struct {
	Order          int           `json:"order"`
	Action         Action        `json:"action"`
	SiteCode       string        `json:"siteCode"`
	FeatureKey     string        `json:"featureKey"`
	EnvironmentKey string        `json:"environmentKey"` // "" for flag-level changes
	Request        jsonRequest   `json:"request"`
	Fields         []FieldChange `json:"fields"`
	Reason         string        `json:"reason"`
}

type jsonRequest struct {
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body"` // embedded JSON, null when the call has no body
}

// RenderJSON writes p for machines as one indented JSON document:
// {"revision", "summary", "changes", "unmanaged", "blocked", "notes"}. Request bodies are
// embedded as JSON, exactly as they will be sent.
func RenderJSON(w io.Writer, p Plan) error {
	out := jsonPlan{
		Revision:  p.Revision,
		Summary:   p.Summary(),
		Changes:   make([]jsonChange, 0, len(p.Changes)),
		Unmanaged: p.Unmanaged,
		Blocked:   p.Blocked,
		Notes:     p.Notes,
		Service:   p.Service,
	}
	if out.Notes == nil {
		out.Notes = []Note{}
	}
	if out.Unmanaged == nil {
		out.Unmanaged = []kmodel.Ref{}
	}
	if out.Blocked == nil {
		out.Blocked = []Blocked{}
	}
	for _, c := range p.Changes {
		jc := jsonChange{
			Order: c.Order, Action: c.Action, SiteCode: c.SiteCode, FeatureKey: c.FeatureKey,
			EnvironmentKey: c.EnvironmentKey, Request: jsonRequestOf(c.Request), Fields: c.Fields, Reason: c.Reason,
		}
		if jc.Fields == nil {
			jc.Fields = []FieldChange{}
		}
		out.Changes = append(out.Changes, jc)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("render plan as json: %w", err)
	}
	return nil
}

func jsonRequestOf(r api.Request) jsonRequest {
	body := r.Body
	if len(body) == 0 {
		body = json.RawMessage("null")
	}
	return jsonRequest{Method: r.Method, Path: r.Path, Body: body}
}
