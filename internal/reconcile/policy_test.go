package reconcile_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// scripted is a vendor whose plan is given: it takes every file, plans script, gives
// docs to the policies and records what it is asked to send.
type scripted struct {
	service string
	script  []plan.Change
	docs    map[string]reconcile.PolicyDocument // by flag key
	schema  []byte
	mu      *sync.Mutex
	sent    *[]string // "service key env" of each sent change
}

func newScripted(service string, changes ...plan.Change) *scripted {
	return &scripted{service: service, script: changes, docs: map[string]reconcile.PolicyDocument{}, mu: &sync.Mutex{}, sent: new([]string)}
}

func (v *scripted) Service() string                                { return v.service }
func (v *scripted) Claim(reconcile.Source) ([]string, bool, error) { return nil, false, nil }
func (v *scripted) TakesUnclaimed() bool                           { return true }
func (v *scripted) FlagSchema() []byte                             { return v.schema }
func (v *scripted) Load(reconcile.Source) (reconcile.Repo, error)  { return &scriptedRepo{v}, nil }
func (v *scripted) Do(ctx context.Context, req api.Request) (json.RawMessage, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	*v.sent = append(*v.sent, req.Path)
	return json.RawMessage(`{}`), nil
}

type scriptedRepo struct{ v *scripted }

func (r *scriptedRepo) Restrict([]plan.Address)          {}
func (r *scriptedRepo) Scopes() []string                 { return []string{"s"} }
func (r *scriptedRepo) Read(context.Context, bool) error { return nil }
func (r *scriptedRepo) Files() []reconcile.FlagFile      { return nil }
func (r *scriptedRepo) Plan(reconcile.PlanOptions) (plan.Plan, error) {
	p := plan.Plan{Service: r.v.service, Changes: append([]plan.Change(nil), r.v.script...), Unmanaged: []plan.Address{}}
	return p, nil
}
func (r *scriptedRepo) Confirm(context.Context, []apply.Result, reconcile.PlanOptions) ([]plan.Change, error) {
	return nil, nil
}
func (r *scriptedRepo) PolicyDocuments(flags []plan.Address) []reconcile.PolicyDocument {
	out := make([]reconcile.PolicyDocument, len(flags))
	for i, a := range flags {
		out[i] = r.v.docs[a.Key]
	}
	return out
}

func change(service string, order int, action plan.Action, key, env string, after ...int) plan.Change {
	return plan.Change{Order: order, Action: action, Address: plan.Address{Service: service, Scope: "s", Key: key, Environment: env},
		Request: api.Request{Method: "PATCH", Path: "/" + key + "/" + env}, Reason: "test", After: after}
}

const denyBlocked = `policies:
  - name: no-blocked
    message: the flag is blocked
    expr: 'change.environment != "" || !has(flag.blocked) || flag.blocked != true'
  - name: owner
    level: warn
    messageExpr: '"no owner for " + change.key'
    expr: has(flag.owner)
`

// TestDeniedChangesAreRefusedWithTheirDependents: a change a deny policy refuses is never
// sent, nor are the later changes of a flag whose create it refused, nor the changes
// whose After names a refused one; everything else is applied, warnings included, and
// the run is not converged.
func TestDeniedChangesAreRefusedWithTheirDependents(t *testing.T) {
	v := newScripted("Fake",
		change("Fake", 1, plan.ActionCreate, "a", ""),
		change("Fake", 2, plan.ActionUpdate, "a", "prod"),
		change("Fake", 3, plan.ActionUpdate, "b", "prod", 1),
		change("Fake", 4, plan.ActionUpdate, "c", "prod"),
		change("Fake", 5, plan.ActionUpdate, "d", "prod"),
		change("Fake", 6, plan.ActionUpdate, "e", "prod", 3),
	)
	v.docs["a"] = reconcile.PolicyDocument{Flag: map[string]any{"blocked": true, "owner": "x"}, File: "flags/a.yaml", Line: 3}
	v.docs["b"] = reconcile.PolicyDocument{Flag: map[string]any{"owner": "x"}}
	v.docs["c"] = reconcile.PolicyDocument{Flag: map[string]any{}, File: "flags/c.yaml", Line: 1}
	v.docs["d"] = reconcile.PolicyDocument{Flag: map[string]any{"owner": "x"}}
	v.docs["e"] = reconcile.PolicyDocument{Flag: map[string]any{"owner": "x"}}
	fsys := fstest.MapFS{"flags/flagsync.yaml": {Data: []byte(denyBlocked)}}
	var shown plan.Plan
	rep, err := reconcile.Run(context.Background(), reconcile.Input{FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{v},
		OnPlan: func(p plan.Plan) { shown = p }})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(*v.sent, " "); got != "/c/prod /d/prod" {
		t.Errorf("sent %q, want /c/prod /d/prod", got)
	}
	var orders []int
	for _, c := range rep.Plan.Changes {
		orders = append(orders, c.Order)
	}
	if len(orders) != 2 || orders[0] != 4 || orders[1] != 5 {
		t.Errorf("planned orders %v, want [4 5] (orders kept)", orders)
	}
	if len(rep.Refused) != 4 {
		t.Fatalf("refused %+v, want 4", rep.Refused)
	}
	want := []struct {
		order  int
		reason string
	}{
		{1, "no-blocked: the flag is blocked"},
		{2, "not applied: the flag's create (change 1) was refused by no-blocked"},
		{3, "not applied: it needs change 1, which no-blocked refused"},
		{6, "not applied: it needs change 3, which no-blocked refused"},
	}
	for i, w := range want {
		b := rep.Refused[i]
		if b.Kind != plan.BlockedPolicy || b.Order != w.order || b.Reason != w.reason || b.Policy != "no-blocked" {
			t.Errorf("refused[%d] = %+v, want order %d, %q", i, b, w.order, w.reason)
		}
	}
	if b := rep.Refused[0]; b.File != "flags/a.yaml" || b.Line != 3 || b.Action != plan.ActionCreate {
		t.Errorf("refused[0] place %+v", b)
	}
	if len(rep.Plan.Warnings) != 1 || rep.Plan.Warnings[0].Key != "c" || rep.Plan.Warnings[0].Message != "no owner for c" ||
		rep.Plan.Warnings[0].Where() != "flags/c.yaml:1" {
		t.Errorf("warnings %+v", rep.Plan.Warnings)
	}
	if rep.Converged || !strings.Contains(rep.NotConverged(), "4 changes refused by policies") {
		t.Errorf("converged %v (%s)", rep.Converged, rep.NotConverged())
	}
	if len(shown.Changes) != 2 || len(shown.Blocked) != 4 {
		t.Errorf("OnPlan saw %d changes and %d refused, want the plan after the policies", len(shown.Changes), len(shown.Blocked))
	}
	if s := rep.Plan.SummaryLine(); s != "Plan: 0 to create, 2 to update, 0 to archive; 4 changes refused by policies; 1 policy warning." {
		t.Errorf("summary %q", s)
	}
}

// TestEveryChangeRefused: when the policies refuse everything, nothing is applied and the
// run ends as a plan with nothing to apply would, not converged.
func TestEveryChangeRefused(t *testing.T) {
	v := newScripted("Fake", change("Fake", 1, plan.ActionUpdate, "a", ""))
	v.docs["a"] = reconcile.PolicyDocument{Flag: map[string]any{"blocked": true, "owner": "x"}}
	fsys := fstest.MapFS{"flagsync.yaml": {Data: []byte(denyBlocked)}}
	rep, err := reconcile.Run(context.Background(), reconcile.Input{FS: fsys, Dir: ".", Vendors: []reconcile.Vendor{v}})
	if err != nil {
		t.Fatal(err)
	}
	if len(*v.sent) != 0 || len(rep.Results) != 0 || rep.Converged || len(rep.Refused) != 1 {
		t.Errorf("sent %v, results %d, converged %v, refused %d", *v.sent, len(rep.Results), rep.Converged, len(rep.Refused))
	}
}

// TestPolicyProblemsAreValidationErrors: a policy that does not compile, or reads a field
// the vendor's flag files cannot have, is a problem of flagsync.yaml with its line and
// column, and nothing is read or planned.
func TestPolicyProblemsAreValidationErrors(t *testing.T) {
	v := newScripted("Fake", change("Fake", 1, plan.ActionUpdate, "a", "prod"))
	v.schema = []byte(`{"type": "object", "additionalProperties": false, "properties": {"owner": {"type": "string"}, "blocked": {"type": "boolean"}}}`)
	settings := `siteCode: abc
policies:
  - name: typo
    message: m
    expr: |
      has(flag.ownr)
  - name: syntax
    message: m
    expr: 'change.action =='
  - name: dup
    message: m
    expr: "true"
  - name: dup
    message: m
    expr: "true"
`
	fsys := fstest.MapFS{"flags/flagsync.yaml": {Data: []byte(settings)}}
	_, err := reconcile.Run(context.Background(), reconcile.Input{FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{v}})
	var invalid *diag.InvalidError
	if !errors.As(err, &invalid) {
		t.Fatalf("err = %v, want invalid", err)
	}
	var got []string
	for _, d := range invalid.Diagnostics {
		got = append(got, d.String())
	}
	want := []string{
		`flags/flagsync.yaml:6:10: policies[0].expr (typo): the flag file has no field "ownr" (did you mean owner?)`,
		"flags/flagsync.yaml:9:", // CEL's syntax error, placed in the one-line expression
		"flags/flagsync.yaml:13:11: policies[3].name (dup): duplicate policy name (policies[2] has it too)",
	}
	if len(got) != len(want) {
		t.Fatalf("diagnostics:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("diagnostic %d = %q, want %q…", i, got[i], want[i])
		}
	}
	if len(*v.sent) != 0 {
		t.Errorf("sent %v", *v.sent)
	}
}

// TestPoliciesSeeTheNeutralChange: change carries the neutral address (the service in
// lower case) and the vendor's names, and now is Input.Now.
func TestPoliciesSeeTheNeutralChange(t *testing.T) {
	v := newScripted("Kameleoon", change("Kameleoon", 1, plan.ActionUpdate, "a", "production"))
	v.script[0].Fields = []plan.FieldChange{{Path: "environments.production.featureEnabled", Before: false, After: true}}
	settings := `policies:
  - name: sees
    message: m
    expr: >-
      change.service == "kameleoon" && change.siteCode == "s" && change.featureKey == "a" &&
      change.environmentKey == "production" && change.touches("production") &&
      change.fields[0].after == true && now == timestamp("2026-03-01T00:00:00Z") && live == null
`
	fsys := fstest.MapFS{"flagsync.yaml": {Data: []byte(settings)}}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	rep, err := reconcile.Run(context.Background(), reconcile.Input{FS: fsys, Dir: ".", Vendors: []reconcile.Vendor{v}, DryRun: true,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Refused) != 0 || len(rep.Plan.Changes) != 1 {
		t.Errorf("refused %+v", rep.Refused)
	}
}

// TestMergeRenumbersAfter: with two services, the second's changes are renumbered after
// the first's, and so are the orders they need first.
func TestMergeRenumbersAfter(t *testing.T) {
	first := newScripted("First", change("First", 1, plan.ActionUpdate, "a", "x"), change("First", 2, plan.ActionUpdate, "b", "x"))
	second := newScripted("Second", change("Second", 1, plan.ActionUpdate, "c", "x"), change("Second", 2, plan.ActionUpdate, "d", "x", 1))
	fsys := fstest.MapFS{"flagsync.yaml": {Data: []byte("x: 1\n")}}
	rep, err := reconcile.Run(context.Background(), reconcile.Input{FS: fsys, Dir: ".", DryRun: true,
		Vendors: []reconcile.Vendor{first, claimsAll{second}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Plan.Changes) != 4 {
		t.Fatalf("%d changes", len(rep.Plan.Changes))
	}
	if c := rep.Plan.Changes[3]; c.Order != 4 || len(c.After) != 1 || c.After[0] != 3 {
		t.Errorf("the second service's dependent change: order %d after %v, want 4 after [3]", c.Order, c.After)
	}
}

// claimsAll is a vendor that claims the flag files but not the repository, so that two
// services share a run.
type claimsAll struct{ *scripted }

func (c claimsAll) Claim(reconcile.Source) ([]string, bool, error) {
	return []string{"c.yaml"}, false, nil
}
func (c claimsAll) TakesUnclaimed() bool { return false }
