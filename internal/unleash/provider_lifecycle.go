package unleash

import (
	"slices"
	"time"

	"github.com/flagsync/flagsync/internal/lifecycle"
	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
	unleashplan "github.com/flagsync/flagsync/internal/unleash/plan"
)

// Lifecycle says where each desired flag stands, from its file and the last read
// (lifecycle.Reader): the flag's createdAt, Unleash's stale mark as its health, archived
// flags (looked up when Git has a flag the active list lacks), and what each environment
// serves. Unleash's flag list says nothing of when an environment last changed, so no
// environment is reported fully on or off for a number of days.
func (r *Repo) Lifecycle() []lifecycle.Flag {
	out := make([]lifecycle.Flag, 0, len(r.desired.Flags))
	for i := range r.desired.Flags {
		d := &r.desired.Flags[i]
		f := lifecycle.Flag{Address: unleashplan.AddressOf(d.Ref(), ""), File: d.Source.File, Line: d.Source.Line,
			Owner: d.Owner, Expires: d.Expires, Permanent: d.Permanent, ArchivedInGit: d.Archived}
		p := r.live.Project(d.Project)
		switch {
		case p == nil:
		case slices.Contains(p.Archived, d.Name):
			f.Live, f.Archived = true, true
		default:
			if l := liveFlag(p, d.Name); l != nil {
				f.Live, f.Stale = true, l.Stale
				if l.Stale {
					f.Health = "stale"
				}
				if t, err := time.Parse(time.RFC3339, l.CreatedAt); err == nil {
					f.Created = t.UTC()
				}
				for _, env := range l.EnvironmentNames() {
					e := l.Environments[env]
					f.Environments = append(f.Environments, lifecycle.Environment{Name: env, Serving: unleashServing(&e)})
				}
			}
		}
		out = append(out, f)
	}
	return out
}

// liveFlag is the project's active flag named name, or nil.
func liveFlag(p *unleashmodel.Project, name string) *unleashmodel.Flag {
	for i := range p.Flags {
		if p.Flags[i].Name == name {
			return &p.Flags[i]
		}
	}
	return nil
}

// unleashServing is what an environment serves to everyone: Off when it is disabled or
// every strategy is disabled; On when it has no strategy (Unleash's SDKs treat an enabled
// environment without strategies as on) or an enabled strategy without constraints or
// segments takes every context (default, or flexibleRollout at 100); Partial otherwise,
// or when its strategies were not read.
func unleashServing(e *unleashmodel.Environment) lifecycle.Serving {
	if !e.Enabled {
		return lifecycle.Off
	}
	if e.Unread {
		return lifecycle.Partial
	}
	active := 0
	for _, s := range e.Strategies {
		if s.Disabled {
			continue
		}
		active++
		if len(s.Constraints) > 0 || len(s.Segments) > 0 {
			continue
		}
		if s.Name == unleashmodel.StrategyDefault || (s.Name == "flexibleRollout" && s.Parameters["rollout"] == "100") {
			return lifecycle.On
		}
	}
	switch {
	case len(e.Strategies) == 0:
		return lifecycle.On
	case active == 0:
		return lifecycle.Off
	}
	return lifecycle.Partial
}
