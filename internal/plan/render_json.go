package plan

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/flagsync/flagsync/internal/api"
)

// JSONFormatVersion is the format_version of the JSON plan RenderJSON writes. Version 2
// names every flag with the neutral address (service, scope, key, environment) instead
// of Kameleoon's siteCode, featureKey and environmentKey (version 1, which had no
// format_version); see docs/plan.md.
const JSONFormatVersion = 2

// jsonPlan is the documented, stable shape RenderJSON writes (see docs/plan.md). Every
// key is always present; lists are never null.
type jsonPlan struct {
	FormatVersion int          `json:"format_version"`
	Revision      string       `json:"revision"`
	Service       string       `json:"service"`
	Summary       Summary      `json:"summary"`
	Changes       []jsonChange `json:"changes"`
	Unmanaged     []jsonFlag   `json:"unmanaged"`
	Blocked       []Blocked    `json:"blocked"`
	Notes         []jsonNote   `json:"notes"`
	// Warnings are the warn policies' messages; absent when there are none.
	Warnings []jsonWarning `json:"warnings,omitempty"`
	Price    *Price        `json:"price,omitempty"` // present when a sync priced the plan
}

// jsonFlag names a flag: its address without an environment.
type jsonFlag struct {
	Service string `json:"service"`
	Scope   string `json:"scope"`
	Key     string `json:"key"`
}

type jsonChange struct {
	Order       int           `json:"order"`
	Action      Action        `json:"action"`
	Service     string        `json:"service"`
	Scope       string        `json:"scope"`
	Key         string        `json:"key"`
	Environment string        `json:"environment"` // "" for flag-level changes
	Request     jsonRequest   `json:"request"`
	Fields      []FieldChange `json:"fields"`
	Reason      string        `json:"reason"`
	After       []int         `json:"after,omitempty"` // present only when the change needs others first
}

type jsonRequest struct {
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body"` // embedded JSON, null when the call has no body
}

// jsonNote is a Note with its environment always present ("" for a flag-level field).
type jsonNote struct {
	Service     string   `json:"service"`
	Scope       string   `json:"scope"`
	Key         string   `json:"key"`
	Environment string   `json:"environment"`
	Kind        NoteKind `json:"kind"`
	Path        string   `json:"path"`
	Git         any      `json:"git"`
	Live        any      `json:"live"`
	Ignore      string   `json:"ignore,omitempty"`
	Source      string   `json:"source,omitempty"`
	Reason      string   `json:"reason"`
}

// RenderJSON writes p for machines as one indented JSON document: {"format_version",
// "revision", "service", "summary", "changes", "unmanaged", "blocked", "notes"}, and
// "warnings" when policies warned about changes and "price" when a sync priced the plan.
// Request bodies are embedded as JSON, exactly as they will be sent.
func RenderJSON(w io.Writer, p Plan) error {
	out := jsonPlan{
		FormatVersion: JSONFormatVersion,
		Revision:      p.Revision,
		Service:       p.ServiceName(),
		Summary:       p.Summary(),
		Changes:       make([]jsonChange, 0, len(p.Changes)),
		Unmanaged:     make([]jsonFlag, 0, len(p.Unmanaged)),
		Blocked:       p.Blocked,
		Notes:         make([]jsonNote, 0, len(p.Notes)),
		Warnings:      jsonWarnings(p.Warnings),
		Price:         p.Price,
	}
	for _, a := range p.Unmanaged {
		out.Unmanaged = append(out.Unmanaged, jsonFlag{Service: a.Service, Scope: a.Scope, Key: a.Key})
	}
	if out.Blocked == nil {
		out.Blocked = []Blocked{}
	}
	for _, n := range p.Notes {
		out.Notes = append(out.Notes, jsonNote{
			Service: n.Service, Scope: n.Scope, Key: n.Key, Environment: n.Environment, Kind: n.Kind, Path: n.Path,
			Git: n.Git, Live: n.Live, Ignore: n.Ignore, Source: n.Source, Reason: n.Reason,
		})
	}
	for _, c := range p.Changes {
		jc := jsonChange{
			Order: c.Order, Action: c.Action, Service: c.Service, Scope: c.Scope, Key: c.Key, Environment: c.Environment,
			Request: jsonRequestOf(c.Request), Fields: c.Fields, Reason: c.Reason, After: c.After,
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
