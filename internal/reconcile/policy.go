package reconcile

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/flagrepo"
	"github.com/flagsync/flagsync/internal/loadcache"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/policy"
)

// This file is the policy step and what it needs at load: flagsync.yaml's policies are
// parsed once and compiled once per service against the shape of that service's flag
// files (a policy that reads a field the files cannot have is a validation error, as any
// problem of the files), then evaluated once per planned change before anything is
// applied.

// FlagShaper is implemented by a Vendor whose flag files have a JSON Schema: the policies
// of a repository are compiled against it (policy.ShapeFromJSONSchema). Without it, only
// what policies read from change is checked before they run.
type FlagShaper interface {
	// FlagSchema returns the JSON Schema of one flag file.
	FlagSchema() []byte
}

// PolicyRepo is implemented by a Repo whose flags policies can read: the flag file's
// content and the live flag, in the flag file's shape, as plain data (maps, lists,
// strings, int64, float64, bools; see policy.Plain). flagsync's own fields (owner,
// expires, permanent) are part of the flag file's content.
type PolicyRepo interface {
	// PolicyDocuments returns one document per flag address given (flag-level
	// addresses of this service, from the last Plan), in the same order. It reads no
	// API: live is what the last Read returned. The policy step calls it from several
	// goroutines at once, each with a part of the flags.
	PolicyDocuments(flags []plan.Address) []PolicyDocument
}

// PolicyDocument is what policies read of one flag.
type PolicyDocument struct {
	// Flag is the flag file's content; nil for a flag that is not in Git (an archive
	// by pruning), which policies read as an empty map.
	Flag map[string]any
	// Live is the live flag in the same shape; nil when the service does not have it.
	Live map[string]any
	// File and Line are where the flag is defined (File empty when it is not in Git).
	File string
	Line int
}

// shapes caches each flag schema's shape: a schema is parsed once per process.
var shapes sync.Map // string(schema) → *policy.Shape

func shapeOf(v Vendor) (*policy.Shape, error) {
	fs, ok := v.(FlagShaper)
	if !ok {
		return nil, nil
	}
	schema := fs.FlagSchema()
	if len(schema) == 0 {
		return nil, nil
	}
	if s, ok := shapes.Load(string(schema)); ok {
		return s.(*policy.Shape), nil
	}
	s, err := policy.ShapeFromJSONSchema(schema)
	if err != nil {
		return nil, fmt.Errorf("policies: the flag schema of %s: %w", v.Service(), err)
	}
	shapes.Store(string(schema), s)
	return s, nil
}

// compilePolicies compiles the settings' policies for each service the repository needs
// and sets each valid part's. It returns the problems as diagnostics of the settings
// file, once each (a policy wrong for every service is reported once), and the
// settings' own problems (ParseYAML's, promote's) unless the vendor's schema already
// placed one at the same key (vendor).
func (l *Loaded) compilePolicies(settingsDiags, vendor []diag.Diagnostic) ([]diag.Diagnostic, error) {
	s := l.Settings
	out := dropCovered(settingsDiags, vendor, s.File)
	if len(s.Policies) == 0 {
		return out, nil
	}
	seen := map[string]bool{}
	for _, d := range out {
		seen[d.String()] = true
	}
	sets := map[string]*policy.Set{}
	for _, v := range l.Needed {
		shape, err := shapeOf(v)
		if err != nil {
			return nil, err
		}
		var opts []policy.Option
		if shape != nil {
			opts = append(opts, policy.WithShape(shape))
		}
		set, probs := policy.Compile(s.Policies, opts...)
		for _, d := range flagrepo.PolicyDiagnostics(s.File, probs) {
			if k := d.String(); !seen[k] {
				seen[k] = true
				out = append(out, d)
			}
		}
		sets[v.Service()] = set
	}
	for i := range l.Parts {
		l.Parts[i].Policies = sets[l.Parts[i].Vendor.Service()]
	}
	return out, nil
}

// dropCovered leaves out the diagnostics of a settings key (policies, promote) the
// vendor's schema already reported a problem at: the same mistake, said twice.
func dropCovered(ours, vendor []diag.Diagnostic, file string) []diag.Diagnostic {
	covered := map[string]bool{}
	for _, d := range vendor {
		if d.File == file {
			covered[topKey(d.Field)] = true
		}
	}
	var out []diag.Diagnostic
	for _, d := range ours {
		if !covered[topKey(d.Field)] {
			out = append(out, d)
		}
	}
	return out
}

// topKey is the first key of a field path: "policies" for "policies[2].expr (x)".
func topKey(field string) string {
	if i := strings.IndexAny(field, ".[ "); i >= 0 {
		return field[:i]
	}
	return field
}

// HasPolicies reports whether any service of the repository has a policy to evaluate.
func (l *Loaded) HasPolicies() bool {
	for _, pt := range l.Parts {
		if pt.Policies.Len() > 0 {
			return true
		}
	}
	return false
}

// policy evaluates the policies on every planned change (see EvaluatePolicies): a change
// a deny policy refuses leaves the plan's changes for its refused ones, with the changes
// that need it; warnings are added to the plan, which the price step then prices and
// shows.
func (r *run) policy(context.Context) (bool, error) {
	if !r.loaded.HasPolicies() {
		return true, nil
	}
	start := time.Now()
	now := time.Now()
	if r.in.Now != nil {
		now = r.in.Now()
	}
	merged := r.planned.merged
	kept := make([]plan.Change, 0, len(merged.Changes))
	offset := 0
	evaluated, refused, warned := 0, 0, 0
	for i, pt := range r.loaded.Parts {
		part := r.planned.parts[i]
		n := len(part.Changes)
		changes := merged.Changes[offset : offset+n]
		offset += n
		if pt.Policies.Len() == 0 || n == 0 {
			kept = append(kept, changes...)
			continue
		}
		v := judge(changes, pt.Policies, pt.Repo, now)
		evaluated += n
		partKept := make([]plan.Change, 0, n)
		for j := range changes {
			if v.keep[j] {
				kept = append(kept, changes[j])
				partKept = append(partKept, part.Changes[j])
			}
		}
		part.Changes = partKept
		r.planned.parts[i] = part
		merged.Blocked = append(merged.Blocked, v.blocked...)
		merged.Warnings = append(merged.Warnings, v.warnings...)
		refused += len(v.blocked)
		warned += len(v.warnings)
	}
	merged.Changes = kept
	r.planned.merged = merged
	r.rep.Plan = merged
	r.rep.Refused, r.rep.AwaitingApproval = splitBlocked(merged.Blocked)
	r.logger.Info("policies evaluated", "changes", evaluated, "refused", refused, "warnings", warned,
		"duration_ms", time.Since(start).Milliseconds())
	return true, nil
}

// verdict is what the policies decided on one service's changes.
type verdict struct {
	keep     []bool // per change: applied (true) or refused
	blocked  []plan.Blocked
	warnings []plan.Warning
}

// EvaluatePolicies evaluates set on every change of p (one service's plan, whose flags
// repo reads for the policies; repo may be nil) at time now, and returns the plan as it
// will be applied: the changes a deny policy refuses (or whose policy failed to evaluate)
// move to Blocked (kind plan.BlockedPolicy) with the changes that need them (the later
// changes of a flag whose create was refused, the changes whose After names a refused
// one), and the warn policies' messages on the other changes are in Warnings. Orders are
// kept: the refused changes leave gaps. The pipeline's policy step does this for each
// service.
func EvaluatePolicies(p plan.Plan, set *policy.Set, repo Repo, now time.Time) plan.Plan {
	if set.Len() == 0 || len(p.Changes) == 0 {
		return p
	}
	// The flag, live and change documents are short-lived garbage, as a load's parse is:
	// at GOGC=100 the collector took a third of the step's CPU (10,000 flags × 3
	// environments, 5 policies: 0.46 CPU-s and 237 ms at 100, 0.31 CPU-s and 164 ms at 200).
	defer loadcache.TuneGC()()
	v := judge(p.Changes, set, repo, now)
	out := p
	out.Changes = make([]plan.Change, 0, len(p.Changes))
	for i := range p.Changes {
		if v.keep[i] {
			out.Changes = append(out.Changes, p.Changes[i])
		}
	}
	out.Blocked = append(append([]plan.Blocked(nil), p.Blocked...), v.blocked...)
	out.Warnings = append(append([]plan.Warning(nil), p.Warnings...), v.warnings...)
	return out
}

// judge evaluates the policies on changes, concurrently, then decides what is refused in
// plan order.
func judge(changes []plan.Change, set *policy.Set, repo Repo, now time.Time) verdict {
	docs := documents(changes, repo)
	results := make([][]policy.Result, len(changes))
	// Each goroutine takes a run of consecutive changes: a flag's changes are next to one
	// another and share its documents, which are built (policy.Lazy) by the first reader.
	workers := max(1, min(runtime.GOMAXPROCS(0), len(changes)/256))
	chunk := (len(changes) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(changes); lo += chunk {
		hi := min(lo+chunk, len(changes))
		wg.Go(func() {
			var in policy.Input
			var buf []policy.Result
			for i := lo; i < hi; i++ {
				c := &changes[i]
				d := docs[c.Flag()]
				in = policy.Input{Change: policyChange(c), Flag: d.Flag, Live: d.Live, Now: now}
				buf = set.AppendEvaluate(buf[:0], &in)
				results[i] = policy.Refusals(buf)
			}
		})
	}
	wg.Wait()

	v := verdict{keep: make([]bool, len(changes))}
	refusedBy := map[int]string{}           // order of a refused change → the policies that refused it
	createRefused := map[plan.Address]int{} // flag → order of its refused create
	for i := range changes {
		c := &changes[i]
		d := docs[c.Flag()]
		var names, messages []string
		var warnings []plan.Warning
		for _, r := range results[i] {
			if r.Level == policy.Deny {
				names = append(names, r.Name)
				messages = append(messages, r.Name+": "+r.Message)
				continue
			}
			warnings = append(warnings, plan.Warning{Address: c.Address, Order: c.Order, Action: c.Action,
				Policy: r.Name, Message: r.Message, File: d.File, Line: d.Line})
		}
		reason := strings.Join(messages, "; ")
		if len(names) == 0 {
			reason, names = needs(c, refusedBy, createRefused, changes)
		}
		if len(names) == 0 {
			v.keep[i] = true
			v.warnings = append(v.warnings, warnings...)
			continue
		}
		policies := strings.Join(names, ", ")
		refusedBy[c.Order] = policies
		if c.Action == plan.ActionCreate {
			createRefused[c.Flag()] = c.Order
		}
		v.blocked = append(v.blocked, plan.Blocked{Address: c.Address, Kind: plan.BlockedPolicy, Policy: policies,
			Action: c.Action, Order: c.Order, File: d.File, Line: d.Line, Reason: reason})
	}
	return v
}

// needs says why c cannot be applied because a change it needs was refused: an earlier
// create of its flag, or a change its After names. It returns the refusing policies'
// names, or none.
func needs(c *plan.Change, refusedBy map[int]string, createRefused map[plan.Address]int, changes []plan.Change) (string, []string) {
	if o, ok := createRefused[c.Flag()]; ok {
		return fmt.Sprintf("not applied: the flag's create (change %d) was refused by %s", o, refusedBy[o]), []string{refusedBy[o]}
	}
	for _, o := range c.After {
		if p, ok := refusedBy[o]; ok {
			return fmt.Sprintf("not applied: it needs change %d, which %s refused", o, p), []string{p}
		}
	}
	return "", nil
}

// documents asks repo for the documents of every flag changes touch, in parallel chunks
// (PolicyDocuments reads the repository only, and converting 10,000 flags is a good part
// of the step).
func documents(changes []plan.Change, repo Repo) map[plan.Address]PolicyDocument {
	var flags []plan.Address
	seen := map[plan.Address]bool{}
	for i := range changes {
		if a := changes[i].Flag(); !seen[a] {
			seen[a] = true
			flags = append(flags, a)
		}
	}
	out := make(map[plan.Address]PolicyDocument, len(flags))
	pr, ok := repo.(PolicyRepo)
	if !ok {
		return out
	}
	docs := make([]PolicyDocument, len(flags))
	workers := max(1, min(runtime.GOMAXPROCS(0), len(flags)/256))
	chunk := (len(flags) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(flags); lo += chunk {
		hi := min(lo+chunk, len(flags))
		wg.Go(func() { copy(docs[lo:hi], pr.PolicyDocuments(flags[lo:hi])) })
	}
	wg.Wait()
	for i, a := range flags {
		out[a] = docs[i]
	}
	return out
}

// policyChange is the change as policies see it: the neutral address (the service in
// lower case, as vendors are named in flag files) and the fields as plain data.
func policyChange(c *plan.Change) policy.Change {
	pc := policy.Change{Service: strings.ToLower(c.Service), Action: string(c.Action), Scope: c.Scope, Key: c.Key, Environment: c.Environment}
	if len(c.Fields) > 0 {
		pc.Fields = make([]policy.FieldChange, len(c.Fields))
		for i, f := range c.Fields {
			pc.Fields[i] = policy.FieldChange{Path: f.Path, Before: plainValue(f.Before), After: plainValue(f.After)}
		}
	}
	return pc
}

// plainValue is v as plain data, its numbers as a JSON round trip reads them (a whole
// float64 is an int64, as in the flag and live documents); a value that cannot be
// converted is its text. Scalars and pointers to scalars, what planners put in most
// fields, are converted without the JSON round trip.
func plainValue(v any) any {
	if s, ok := plainScalar(v); ok {
		return s
	}
	p, err := policy.Plain(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return wholeNumbers(p)
}

// plainScalar converts a scalar, or a pointer to one (nil: null), as its JSON encoding
// would read back; ok is false for anything else.
func plainScalar(v any) (any, bool) {
	switch t := v.(type) {
	case nil:
		return nil, true
	case string, bool, int64:
		return t, true
	case int:
		return int64(t), true
	case float64:
		return wholeNumbers(t), true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, true
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.String:
		return rv.String(), true
	case reflect.Bool:
		return rv.Bool(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return int64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, false
		}
		return wholeNumbers(f), true
	}
	return nil, false
}

// wholeNumbers turns the whole float64s of plain data into int64s.
func wholeNumbers(v any) any {
	switch t := v.(type) {
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1e15 {
			return int64(t)
		}
	case map[string]any:
		for k, e := range t {
			t[k] = wholeNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = wholeNumbers(e)
		}
	}
	return v
}
