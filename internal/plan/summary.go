package plan

import (
	"fmt"
	"strings"
)

// Summary counts a plan's changes by action, and the flags it leaves alone or refused.
type Summary struct {
	Create    int `json:"create"`
	Update    int `json:"update"`
	Archive   int `json:"archive"`
	Unmanaged int `json:"unmanaged"`
	Blocked   int `json:"blocked"` // refused changes (Plan.Blocked, without those awaiting approval)
	Notes     int `json:"notes"`   // differences left alone on purpose (Plan.Notes)
	// AwaitingApproval counts the changes waiting for approval in the service (Blocked
	// entries of kind BlockedAwaitingApproval); absent when 0.
	AwaitingApproval int `json:"awaitingApproval,omitempty"`
	// Policy counts the refused changes a deny policy refused (Blocked entries of kind
	// BlockedPolicy, also counted in Blocked); absent when 0.
	Policy int `json:"policy,omitempty"`
	// Warnings counts the warn policies' messages on applied changes (Plan.Warnings);
	// absent when 0.
	Warnings int `json:"warnings,omitempty"`
}

// Summary counts p's changes by action. A change that waits for approval in the
// service (an awaiting-approval entry of Blocked has its address) is counted as awaiting
// approval, not by its action: the vendor does not write it again while it waits.
func (p Plan) Summary() Summary {
	waiting := p.AwaitingApproval()
	s := Summary{Unmanaged: len(p.Unmanaged), Blocked: len(p.Blocked) - len(waiting), Notes: len(p.Notes), AwaitingApproval: len(waiting),
		Policy: len(p.PolicyRefused()), Warnings: len(p.Warnings)}
	held := make(map[Address]bool, len(waiting))
	for _, b := range waiting {
		held[b.Address] = true
	}
	for i := range p.Changes {
		if held[p.Changes[i].Address] {
			continue
		}
		switch p.Changes[i].Action {
		case ActionCreate:
			s.Create++
		case ActionUpdate:
			s.Update++
		case ActionArchive:
			s.Archive++
		}
	}
	return s
}

// Changes is the number of API writes the plan makes.
func (s Summary) Changes() int { return s.Create + s.Update + s.Archive }

// HasChanges reports whether applying p would write anything.
func (p Plan) HasChanges() bool { return len(p.Changes) > 0 }

// SummaryLine is the one line every renderer ends with, e.g.
// "Plan: 2 to create, 5 to update, 0 to archive; 3 unmanaged flags left alone." or
// "No changes. Kameleoon matches revision abc1234." (the plan's ServiceName). Refused
// changes are counted after them: "; 6 archives refused by the mass-archive guard" and
// "; 1 change refused (Kameleoon will still differ from Git)", and those policies refused
// apart: "; 2 changes refused by policies". A plan whose only content is refused changes
// uses the first form: the service does not match Git. Notes come last: "; 2
// differences left alone (see the notes)", after the policies' warnings: "; 1 policy
// warning".
func (p Plan) SummaryLine() string {
	s := p.Summary()
	var b strings.Builder
	if s.Changes() == 0 && s.Blocked == 0 && s.AwaitingApproval == 0 {
		b.WriteString("No changes. " + p.ServiceName() + " matches ")
		if p.Revision != "" {
			b.WriteString("revision " + ShortRevision(p.Revision))
		} else {
			b.WriteString("the flag files")
		}
	} else {
		fmt.Fprintf(&b, "Plan: %d to create, %d to update, %d to archive", s.Create, s.Update, s.Archive)
	}
	if s.Unmanaged > 0 {
		fmt.Fprintf(&b, "; %d unmanaged %s left alone", s.Unmanaged, plural(s.Unmanaged, "flag"))
	}
	archives := p.RefusedArchives()
	if archives > 0 {
		fmt.Fprintf(&b, "; %d %s refused by the mass-archive guard", archives, plural(archives, "archive"))
	}
	if s.Policy > 0 {
		fmt.Fprintf(&b, "; %d %s refused by policies", s.Policy, plural(s.Policy, "change"))
	}
	if other := s.Blocked - archives - s.Policy; other > 0 {
		fmt.Fprintf(&b, "; %d %s refused (%s will still differ from Git)", other, plural(other, "change"), p.ServiceName())
	}
	if s.AwaitingApproval > 0 {
		fmt.Fprintf(&b, "; %d %s awaiting approval in %s", s.AwaitingApproval, plural(s.AwaitingApproval, "change"), p.ServiceName())
	}
	if s.Warnings > 0 {
		fmt.Fprintf(&b, "; %d policy %s", s.Warnings, plural(s.Warnings, "warning"))
	}
	if s.Notes > 0 {
		fmt.Fprintf(&b, "; %d %s left alone (see the notes)", s.Notes, plural(s.Notes, "difference"))
	}
	b.WriteString(".")
	return b.String()
}

// RefusedArchives counts the plan's archives refused by the mass-archive guard.
func (p Plan) RefusedArchives() int {
	archives, _ := p.splitBlocked()
	return len(archives)
}

// PolicyRefused returns the changes policies refused (Blocked entries of kind
// BlockedPolicy), in plan order.
func (p Plan) PolicyRefused() []Blocked {
	var out []Blocked
	for _, b := range p.Blocked {
		if b.Kind == BlockedPolicy {
			out = append(out, b)
		}
	}
	return out
}

// splitBlocked separates the plan's refused changes into the archives the mass-archive
// guard refused and every other refusal, each in plan order; changes awaiting approval
// and those policies refused are in neither (see AwaitingApproval and PolicyRefused).
func (p Plan) splitBlocked() (archives, others []Blocked) {
	for _, b := range p.Blocked {
		switch b.Kind {
		case BlockedMassArchive:
			archives = append(archives, b)
		case BlockedAwaitingApproval, BlockedPolicy:
		default:
			others = append(others, b)
		}
	}
	return archives, others
}

// AwaitingApproval returns the plan's changes that wait for approval in the service
// (Blocked entries of kind BlockedAwaitingApproval), in plan order.
func (p Plan) AwaitingApproval() []Blocked {
	var out []Blocked
	for _, b := range p.Blocked {
		if b.Kind == BlockedAwaitingApproval {
			out = append(out, b)
		}
	}
	return out
}

// ShortRevision abbreviates a full commit id the way Git does, keeping a "+dirty"
// suffix (a work tree with uncommitted changes).
func ShortRevision(rev string) string {
	base, dirty := strings.CutSuffix(rev, DirtySuffix)
	if len(base) == 40 && strings.Trim(base, "0123456789abcdef") == "" {
		base = base[:7]
	}
	if dirty {
		return base + DirtySuffix
	}
	return base
}

// DirtySuffix marks a revision whose files differ from the commit: a local work tree
// with uncommitted changes, read as it is on disk.
const DirtySuffix = "+dirty"
