package kameleoon

import (
	"time"

	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	kplan "github.com/flagsync/flagsync/internal/kameleoon/plan"
	"github.com/flagsync/flagsync/internal/lifecycle"
)

// Lifecycle says where each desired flag stands, from its file and the last read
// (lifecycle.Reader): dateCreated, Kameleoon's health (STALE and SMELLY count as stale),
// archived flags, and what each environment serves since its dateModified, all as the
// client decoded them from the read (kmodel.Flag's read-only fields).
func (s *run) Lifecycle() []lifecycle.Flag {
	live := make(map[kmodel.Ref]*kmodel.Flag, len(s.live))
	for i := range s.live {
		live[s.live[i].Ref()] = &s.live[i]
	}
	out := make([]lifecycle.Flag, 0, len(s.desired.Flags))
	for i := range s.desired.Flags {
		d := &s.desired.Flags[i]
		f := lifecycle.Flag{Address: kplan.AddressOf(d.Ref(), ""), File: d.Source.File, Line: d.Source.Line,
			Owner: d.Owner, Expires: d.Expires, Permanent: d.Permanent, ArchivedInGit: d.Archived}
		if l := live[d.Ref()]; l != nil {
			f.Live, f.Archived, f.Health = true, l.Archived, l.Health
			f.Stale = l.Health == "STALE" || l.Health == "SMELLY"
			f.Created = parseDate(l.DateCreated)
			for _, env := range l.EnvironmentKeys() {
				e := l.Environments[env]
				f.Environments = append(f.Environments, lifecycle.Environment{Name: env, Serving: kameleoonServing(&e),
					Since: parseDate(e.DateModified)})
			}
		}
		out = append(out, f)
	}
	return out
}

// kameleoonServing is what an environment serves to everyone. Off: the environment is
// disabled, or every visitor gets the variation "off". On: every visitor gets one other
// variation: the first rule that serves (its status or state not PAUSED) targets everyone
// (no segment, exposition 100, no release window, one variation, not an experiment), or
// no rule serves and the default variation is served. Partial otherwise.
func kameleoonServing(e *kmodel.Environment) lifecycle.Serving {
	if !e.FeatureEnabled {
		return lifecycle.Off
	}
	served := e.DefaultVariationKey
	for i := range e.RolloutRules {
		r := &e.RolloutRules[i]
		state := r.Status
		if state == "" {
			state = r.WrittenState()
		}
		if state == kmodel.StatePaused {
			continue
		}
		everyone := r.SegmentID == 0 && r.Release == nil && r.Type != kmodel.RuleExperimentation && r.VariationKey != "" &&
			full(r.Exposition) && full(r.CurrentExposition)
		if !everyone {
			return lifecycle.Partial
		}
		served = r.VariationKey
		break
	}
	switch served {
	case "":
		return lifecycle.Partial
	case "off":
		return lifecycle.Off
	}
	return lifecycle.On
}

// full reports whether an exposition is 100 (or unset, which means 100).
func full(x *float64) bool { return x == nil || *x >= 100 }

// parseDate reads a date Kameleoon writes: RFC 3339, or a date-time without a zone (UTC);
// zero when it is empty or malformed.
func parseDate(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
