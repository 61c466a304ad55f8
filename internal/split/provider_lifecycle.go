package split

import (
	"encoding/json"
	"time"

	"github.com/flagsync/flagsync/internal/lifecycle"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
	splitplan "github.com/flagsync/flagsync/internal/split/plan"
)

// Lifecycle says where each desired flag stands, from its file and the last read
// (lifecycle.Reader): Split has no health and no archive; a flag's age is that of its
// oldest definition read (creationTime), and an environment's last change its
// definition's lastUpdateTime.
func (r *repo) Lifecycle() []lifecycle.Flag {
	live := make(map[splitmodel.Ref]*splitmodel.Flag, len(r.live))
	for i := range r.live {
		live[r.live[i].Ref()] = &r.live[i]
	}
	out := make([]lifecycle.Flag, 0, len(r.desired.Flags))
	for i := range r.desired.Flags {
		d := &r.desired.Flags[i]
		f := lifecycle.Flag{Address: splitplan.AddressOf(d.Ref(), ""), File: d.Source.File, Line: d.Source.Line,
			Owner: d.Owner, Expires: d.Expires, Permanent: d.Permanent}
		if l := live[d.Ref()]; l != nil {
			f.Live = true
			for _, env := range l.EnvironmentNames() {
				def := l.Environments[env]
				times := definitionTimes(def.Wire)
				if !times.created.IsZero() && (f.Created.IsZero() || times.created.Before(f.Created)) {
					f.Created = times.created
				}
				f.Environments = append(f.Environments, lifecycle.Environment{Name: env, Serving: splitServing(&def), Since: times.updated})
			}
		}
		out = append(out, f)
	}
	return out
}

// splitServing is what a definition serves to everyone: Off when it is killed (every key
// gets the default treatment) or when every key gets the treatment named "off"; On when
// every key gets one other treatment (no rules, no individual targets, all the traffic,
// a default rule of one treatment); Partial otherwise.
func splitServing(d *splitmodel.Definition) lifecycle.Serving {
	if d.Killed {
		return lifecycle.Off
	}
	if len(d.Rules) > 0 || d.Allocation() != 100 {
		return lifecycle.Partial
	}
	for _, t := range d.Treatments {
		if len(t.Keys) > 0 || len(t.Segments) > 0 {
			return lifecycle.Partial
		}
	}
	rule := d.EffectiveDefaultRule()
	if len(rule) != 1 || rule[0].Size != 100 {
		return lifecycle.Partial
	}
	if rule[0].Treatment == "off" {
		return lifecycle.Off
	}
	return lifecycle.On
}

type defTimes struct{ created, updated time.Time }

// definitionTimes reads creationTime and lastUpdateTime (milliseconds since the epoch)
// of a definition as the API returned it.
func definitionTimes(wire json.RawMessage) defTimes {
	var w struct {
		CreationTime   int64 `json:"creationTime"`
		LastUpdateTime int64 `json:"lastUpdateTime"`
	}
	var t defTimes
	if len(wire) == 0 || json.Unmarshal(wire, &w) != nil {
		return t
	}
	if w.CreationTime > 0 {
		t.created = time.UnixMilli(w.CreationTime).UTC()
	}
	if w.LastUpdateTime > 0 {
		t.updated = time.UnixMilli(w.LastUpdateTime).UTC()
	}
	return t
}
