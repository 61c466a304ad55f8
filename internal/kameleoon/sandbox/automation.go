package ksandbox

import (
	"fmt"
	"slices"
)

// Kameleoon changes some rules on its own: a rule whose rollback condition fires is
// paused, a rule outside its release window reads PAUSED, a PROGRESSIVE_DELIVERY rule
// ramps its exposure toward its exposition. The hooks in this file make the sandbox do
// the same, in each reading of the vendor docs, so that tests can show that flagsync
// never fights it; automate carries what the automation did through later writes, as
// Kameleoon does.
//
// The read shape follows the vendor pages: a rule shows `status`; once the automation
// made status differ from the written state, it also shows `state` (the vendor
// tutorial's response after a release window ended: status PAUSED, state ACTIVE),
// unless the hook was told to hide it (the reference pages' read shape, status only).
// A PROGRESSIVE_DELIVERY rule shows `currentExposition`, where its ramp is (read-only;
// equal to exposition until RampProgressive moves it), unless the ramp moves exposition
// itself (RampOptions.ExpositionMoves). What the read shape does not show (why a rule
// is paused, a hidden written state) is not kept in the state file.

// Reasons the automation holds a rule PAUSED.
const (
	pausedByRollback = "rollback"
	pausedByRelease  = "release"
)

// automation is what Kameleoon's automation did to a stored rule beyond its read shape.
type automation struct {
	pausedBy    string // why status reads PAUSED while the written state did not change
	hiddenState string // the written state, when the read shape shows only status
	hideCurrent bool   // the ramp moves exposition itself: no currentExposition shown
}

// writtenState is the rule's last written state: `state` when shown, else the hidden
// one, else `status` (which equals it unless the automation paused the rule).
func (r *rule) writtenState() string {
	switch {
	case r.State != "":
		return r.State
	case r.automation.hiddenState != "":
		return r.automation.hiddenState
	}
	return r.Status
}

// automate finishes rule r built from w, given the rule it replaces (prev, nil for a new
// rule): a write that leaves the written state as it was does not undo a pause
// Kameleoon made (the vendor tutorial patches state ACTIVE and still reads status PAUSED
// after the window ended), except that a new release window is judged afresh; one that
// changes it does. A ramp goes on from where it is, never above the new target. Seeds
// keep status, state and currentExposition as given.
func (b *builder) automate(r *rule, w *wRule, prev *rule) {
	if b.seed {
		if w.Status != nil && w.State != nil && *w.Status != *w.State {
			r.Status, r.State = *w.Status, *w.State
		}
		if r.Type == "PROGRESSIVE_DELIVERY" {
			r.CurrentExposition = clonePtr(w.CurrentExposition)
			if r.CurrentExposition == nil {
				r.CurrentExposition = clonePtr(r.Exposition)
			}
		}
		return
	}
	written := r.Status // what the write says: its state, or ACTIVE
	if prev != nil {
		prevWritten := prev.writtenState()
		held := prev.Status != prevWritten && written == prevWritten
		if held && prev.automation.pausedBy == pausedByRelease && !sameRelease(prev.Release, r.Release) {
			held = false
		}
		if held {
			r.Status = prev.Status
			r.automation.pausedBy = prev.automation.pausedBy
		}
		switch {
		case prev.State != "":
			r.State = written
		case held && prev.automation.hiddenState != "":
			r.automation.hiddenState = written
		}
	}
	if r.Type != "PROGRESSIVE_DELIVERY" {
		return
	}
	ramping := prev != nil && prev.Type == "PROGRESSIVE_DELIVERY"
	switch {
	case ramping && prev.automation.hideCurrent:
		r.automation.hideCurrent = true
	case ramping && prev.CurrentExposition != nil:
		at := *prev.CurrentExposition
		if r.Exposition != nil && at > *r.Exposition {
			at = *r.Exposition
		}
		r.CurrentExposition = &at
	default:
		r.CurrentExposition = clonePtr(r.Exposition)
	}
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func sameRelease(a, b *release) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// RollbackOptions say how FireRollback pauses a rule: the docs do not say whether a
// fired rollback writes `state` too, nor whether the read shape shows it.
type RollbackOptions struct {
	// StateToo makes the rollback write state PAUSED as well; by default only status
	// reads PAUSED and the written state stays ACTIVE.
	StateToo bool
	// HideState leaves state out of the read shape (status only, as on Kameleoon's
	// reference pages); by default it is shown beside status, as in the vendor tutorial.
	HideState bool
}

// FireRollback does what Kameleoon does when a rollback condition of rule ruleName (in
// environment env of the flag) fires: the rule reads status PAUSED. The rule must have
// rollback conditions.
func (s *Server) FireRollback(siteCode, featureKey, env, ruleName string, opts RollbackOptions) error {
	return s.automateRule(siteCode, featureKey, env, ruleName, "fire rollback", func(r *rule) error {
		if len(r.RollbackConditions) == 0 {
			return fmt.Errorf("rule %q has no rollback conditions", r.Name)
		}
		written := r.writtenState()
		r.automation.pausedBy = pausedByRollback
		if opts.StateToo {
			written, r.automation.pausedBy = "PAUSED", ""
		}
		pause(r, written, opts.HideState)
		return nil
	})
}

// WindowOptions say how EndReleaseWindow shows a rule paused by its window.
type WindowOptions struct {
	// HideState leaves state out of the read shape (status only); by default it is shown
	// beside status, as in the vendor tutorial's response.
	HideState bool
}

// EndReleaseWindow does what Kameleoon does when the release window of rule ruleName
// ends: the rule reads status PAUSED, its written state unchanged. The rule must have a
// release window.
func (s *Server) EndReleaseWindow(siteCode, featureKey, env, ruleName string, opts WindowOptions) error {
	return s.automateRule(siteCode, featureKey, env, ruleName, "end release window", func(r *rule) error {
		if r.Release == nil || *r.Release == (release{}) {
			return fmt.Errorf("rule %q has no release window", r.Name)
		}
		written := r.writtenState()
		r.automation.pausedBy = pausedByRelease
		pause(r, written, opts.HideState)
		return nil
	})
}

// pause sets r's status PAUSED with written state written, shown or hidden.
func pause(r *rule, written string, hide bool) {
	r.Status = "PAUSED"
	r.State, r.automation.hiddenState = "", ""
	switch {
	case hide && written != r.Status:
		r.automation.hiddenState = written
	case !hide:
		r.State = written
	}
}

// RampOptions say how RampProgressive shows a ramp: the docs name a read-only
// currentExposition but do not say whether exposition itself moves.
type RampOptions struct {
	// ExpositionMoves moves exposition itself and shows no currentExposition; by default
	// exposition stays the target and currentExposition moves.
	ExpositionMoves bool
}

// RampProgressive does what Kameleoon's progressive delivery does to rule ruleName: its
// exposure is now at (between 0 and its exposition, the target). The rule must be a
// PROGRESSIVE_DELIVERY rule.
func (s *Server) RampProgressive(siteCode, featureKey, env, ruleName string, at float64, opts RampOptions) error {
	return s.automateRule(siteCode, featureKey, env, ruleName, "ramp", func(r *rule) error {
		if r.Type != "PROGRESSIVE_DELIVERY" {
			return fmt.Errorf("rule %q is %s, not PROGRESSIVE_DELIVERY", r.Name, r.Type)
		}
		if r.Exposition == nil || at < 0 || at > *r.Exposition {
			return fmt.Errorf("rule %q: ramp to %v outside 0 to its exposition", r.Name, at)
		}
		if opts.ExpositionMoves {
			r.Exposition, r.CurrentExposition, r.automation.hideCurrent = &at, nil, true
			return nil
		}
		r.CurrentExposition = &at
		return nil
	})
}

// automateRule applies change to a copy of rule ruleName of environment env and stores
// the flag, as Kameleoon's automation would: no call, no dates changed.
func (s *Server) automateRule(siteCode, featureKey, env, ruleName, what string, change func(*rule) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref := flagRef{siteCode, featureKey}
	prev, ok := s.flags[ref]
	if !ok {
		return fmt.Errorf("sandbox %s: flag %s/%s not found", what, siteCode, featureKey)
	}
	next := *prev
	next.EnvironmentConfigurations = slices.Clone(prev.EnvironmentConfigurations)
	e := next.environment(env)
	if e == nil {
		return fmt.Errorf("sandbox %s: flag %s/%s has no environment %q", what, siteCode, featureKey, env)
	}
	e.RolloutRules = slices.Clone(e.RolloutRules)
	i := slices.IndexFunc(e.RolloutRules, func(r rule) bool { return r.Name == ruleName })
	if i < 0 {
		return fmt.Errorf("sandbox %s: no rule %q in %s/%s %s", what, ruleName, siteCode, featureKey, env)
	}
	if err := change(&e.RolloutRules[i]); err != nil {
		return fmt.Errorf("sandbox %s: %w", what, err)
	}
	if err := s.commit(ref, &next, s.ids); err != nil {
		return err
	}
	s.log.Info("automation", "what", what, "flag", siteCode+"/"+featureKey, "env", env, "rule", ruleName)
	return nil
}
