// Package providertest is the contract every flag service's provider passes, whatever
// the vendor: its files validate (and invalid ones are diagnostics with positions), a
// plan and a dry run send nothing, a sync converges, a second sync writes nothing,
// refused changes are reported and never sent, and every call is charged to the
// client's budget. A vendor's tests run it against the vendor's sandbox with Run.
package providertest

import (
	"context"
	"errors"
	"log/slog"
	"path"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// Dir is the flag folder of the repositories a Harness builds.
const Dir = "flags"

// Harness is what a vendor gives the contract.
type Harness struct {
	// Name is the provider under test, as registered.
	Name string
	// NewWorld starts an empty service (the vendor's sandbox) and a client of it.
	NewWorld func(t *testing.T) *World
	// Repo returns a valid repository with n flags (n ≥ 3) in Dir, all new to an empty
	// service.
	Repo func(n int) fstest.MapFS
	// Edit changes one flag of a repository Repo built, so that a sync has something to
	// apply to it; it returns the flag's key.
	Edit func(fsys fstest.MapFS) string
	// Remove takes the flags with the given keys out of a repository Repo built.
	Remove func(fsys fstest.MapFS, keys ...string)
	// Keys returns the keys of the flags Repo(n) holds, in order.
	Keys func(n int) []string
	// Break makes a repository invalid and returns the file it broke.
	Break func(fsys fstest.MapFS) string
	// Refuse, when set, sets up a change the service's planner refuses: it changes the
	// repository (and the world's service) after a sync of Repo, so that the next plan
	// has at least one refused change and at least one change it applies.
	Refuse func(t *testing.T, w *World, fsys fstest.MapFS)
	// SteadyCalls is what a sync of an unchanged repository of Repo(n) costs in API
	// calls once the service holds it (the list calls of the read; 0: not checked).
	SteadyCalls func(n int) int64
}

// World is a service and a connected client of it.
type World struct {
	Vendor reconcile.Vendor // connected to the service
	Writes func() int       // writes the service has accepted so far
	Calls  func() int64     // API calls the client has made so far (its observer's count)
	Budget *api.Budget      // the client's rate budget
	Server any              // the vendor's own handle on the service, for its Refuse
	// Uncharged, when set, counts the calls the client leaves out of its budget by
	// design (Kameleoon's token requests, which its limits are not shown to count).
	Uncharged func() int64
}

// Run runs the contract against the provider named h.Name in reg (a test registers it
// with one line: reg.Register(vendor.Provider())).
func Run(t *testing.T, reg *provider.Registry, h Harness) {
	p, ok := reg.Lookup(h.Name)
	if !ok {
		t.Fatalf("provider %q is not registered", h.Name)
	}
	c := &contract{h: h, reg: reg, p: p}
	t.Run("Registration", c.registration)
	t.Run("Validate", c.validate)
	t.Run("Invalid", c.invalid)
	t.Run("PlanAndDryRun", c.dryRun)
	t.Run("SyncThenSecondSyncWritesNothing", c.sync)
	t.Run("GuardsRefuse", c.guards)
	t.Run("PruneWithinTheMassArchiveGuard", c.prune)
	if h.Refuse != nil {
		t.Run("RefusedByThePlanner", c.refused)
	}
	t.Run("Budget", c.budget)
}

type contract struct {
	h   Harness
	reg *provider.Registry
	p   provider.Provider
}

const n = 4

// run syncs fsys into w's service.
func (c *contract) run(t *testing.T, w *World, fsys fstest.MapFS, in reconcile.Input) (*reconcile.Report, error) {
	t.Helper()
	in.Revision, in.FS, in.Dir = "r", fsys, Dir
	in.Vendors, in.Calls = []reconcile.Vendor{w.Vendor}, w.Calls
	return reconcile.Run(context.Background(), in)
}

// mustSync syncs and fails the test unless the run converged.
func (c *contract) mustSync(t *testing.T, w *World, fsys fstest.MapFS) *reconcile.Report {
	t.Helper()
	rep, err := c.run(t, w, fsys, reconcile.Input{})
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if !rep.Converged || rep.Summary.Failed > 0 {
		t.Fatalf("sync: converged=%t summary=%+v remaining=%v refused=%v", rep.Converged, rep.Summary, rep.Remaining, rep.Refused)
	}
	return rep
}

// registration: the provider's words agree with its files' vendor, and the registry
// dispatches its repository to it alone.
func (c *contract) registration(t *testing.T) {
	h := c.p.Help()
	if c.p.Name() == "" || h.Service == "" || h.Scope == "" || h.Files == "" || h.Credentials == "" {
		t.Errorf("provider %q: help lacks words: %+v", c.p.Name(), h)
	}
	if got := c.p.Files().Service(); got != h.Service {
		t.Errorf("files vendor's service %q, help's %q", got, h.Service)
	}
	if p, ok := c.reg.Service(h.Service); !ok || p.Name() != c.p.Name() {
		t.Errorf("registry.Service(%q) = %v", h.Service, p)
	}
	names := map[string]bool{}
	for _, f := range c.p.Flags() {
		if names[f.Name] || f.Name == "" || f.Usage == "" {
			t.Errorf("connection flag %q: duplicate, unnamed or undescribed", f.Name)
		}
		names[f.Name] = true
	}
	if err := c.p.Check(provider.ConnectInput{Values: provider.Defaults(c.p.Flags()), Getenv: func(string) string { return "" }}); err != nil {
		t.Errorf("the default connection flags do not check: %v", err)
	}
	checkSandbox(t, c.p)
}

// reporter is what checkSandbox reports through: a *testing.T, or a recorder in the
// contract's own tests.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	TempDir() string
}

// sandbox: a provider has a working embedded sandbox, or declares that it has none
// (provider.Sandbox.None) and refuses --sandbox for its files with a usage error. A New
// that always refuses does not pass for a sandbox.
func checkSandbox(t reporter, p provider.Provider) {
	t.Helper()
	sb := p.Sandbox()
	if sb.Usage.Text == "" {
		t.Errorf("flagsync sandbox -h says nothing of the provider's sandbox (Sandbox().Usage)")
	}
	getenv := func(string) string { return "" }
	values := provider.Defaults(p.Flags())
	for _, f := range p.Flags() {
		if f.State {
			values[f.Name] = filepath.Join(t.TempDir(), "state.json")
		}
	}
	in := provider.ConnectInput{Values: values, Getenv: getenv, Sandbox: true}
	if sb.None != "" {
		if sb.New != nil || len(sb.Flags) > 0 || len(sb.DefaultEnvironments) > 0 {
			t.Errorf("the provider says it has no sandbox (%q) but declares New, flags or environments", sb.None)
		}
		if err := p.Check(in); err != nil {
			t.Errorf("Check refuses --sandbox, which every service shares: %v", err)
		}
		conn, err := p.Connect(context.Background(), in)
		var usage *provider.UsageError
		if !errors.As(err, &usage) {
			t.Errorf("Connect with --sandbox and no sandbox: %v, %v; want a *provider.UsageError", conn, err)
		}
		return
	}
	if sb.New == nil {
		t.Fatalf("the provider has no sandbox (Sandbox().New is nil) and does not say so (Sandbox().None)")
	}
	srv, err := sb.New(provider.SandboxInput{Values: provider.Defaults(sb.Flags), Getenv: getenv, Logger: slog.New(slog.DiscardHandler)})
	if err != nil || srv == nil || srv.Handler == nil || srv.Listening == nil {
		t.Errorf("flagsync sandbox --vendor %s with its defaults: %v, %v; want a server", p.Name(), srv, err)
	}
	conn, err := p.Connect(context.Background(), in)
	if err != nil || conn == nil || conn.Vendor == nil {
		t.Fatalf("Connect with --sandbox: %v, %v; want the embedded sandbox", conn, err)
	}
	if conn.Close != nil {
		conn.Close()
	}
}

// validate: a valid repository loads through the registry's dispatch, to this service
// alone, with every flag located in its file.
func (c *contract) validate(t *testing.T) {
	fsys := c.h.Repo(n)
	l, err := reconcile.Load(c.reg.FileVendors(), reconcile.Source{FS: fsys, Dir: Dir})
	if err != nil {
		t.Fatalf("load a valid repository: %v", err)
	}
	if len(l.Parts) != 1 || l.Parts[0].Vendor.Service() != c.p.Help().Service {
		t.Fatalf("the dispatch gave %d parts, want this service's alone", len(l.Parts))
	}
	files := l.Files()
	if len(files) != n {
		t.Fatalf("%d flags located, want %d", len(files), n)
	}
	keys := map[string]bool{}
	for _, f := range files {
		keys[f.Flag.Key] = true
		if f.Flag.Service != c.p.Help().Service || f.Flag.Environment != "" || f.Line < 1 || fsys[f.File] == nil {
			t.Errorf("flag %+v: want this service's flag address and its file and line", f)
		}
	}
	for _, k := range c.h.Keys(n) {
		if !keys[k] {
			t.Errorf("flag %s not located", k)
		}
	}
}

// invalid: an invalid repository is diagnostics with file:line:col, and a sync of it
// reads and writes nothing.
func (c *contract) invalid(t *testing.T) {
	fsys := c.h.Repo(n)
	broken := c.h.Break(fsys)
	_, err := reconcile.Load(c.reg.FileVendors(), reconcile.Source{FS: fsys, Dir: Dir})
	var invalid *diag.InvalidError
	if !errors.As(err, &invalid) || len(invalid.Diagnostics) == 0 {
		t.Fatalf("load of a broken repository: %v, want a *diag.InvalidError", err)
	}
	found := false
	for _, d := range invalid.Diagnostics {
		if d.Line < 1 || d.Column < 1 || d.Message == "" {
			t.Errorf("diagnostic %q: want a line, a column and a message", d.String())
		}
		found = found || d.File == broken
	}
	if !found {
		t.Errorf("no diagnostic names %s: %v", broken, invalid.Diagnostics)
	}
	w := c.h.NewWorld(t)
	rep, err := c.run(t, w, fsys, reconcile.Input{})
	if !errors.As(err, &invalid) || len(rep.Diagnostics) == 0 || w.Calls() != 0 || w.Writes() != 0 {
		t.Errorf("sync of invalid files: err=%v diagnostics=%d calls=%d writes=%d; want diagnostics and nothing sent",
			err, len(rep.Diagnostics), w.Calls(), w.Writes())
	}
}

// dryRun: a plan of new flags creates each, names the service, carries each request,
// and a dry run sends none of them.
func (c *contract) dryRun(t *testing.T) {
	w := c.h.NewWorld(t)
	rep, err := c.run(t, w, c.h.Repo(n), reconcile.Input{DryRun: true})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	creates := map[string]bool{}
	for _, ch := range rep.Plan.Changes {
		if ch.Service != c.p.Help().Service || ch.Request.Method == "" || ch.Request.Path == "" || ch.Order < 1 {
			t.Errorf("change %+v: want this service's address, an order and the request it sends", ch)
		}
		if ch.Action == plan.ActionCreate {
			creates[ch.Key] = true
		}
	}
	if len(creates) != n || rep.Plan.Service != c.p.Help().Service {
		t.Errorf("plan of %d new flags: %d creates, service %q", n, len(creates), rep.Plan.Service)
	}
	if w.Writes() != 0 || rep.Summary.Skipped != len(rep.Plan.Changes) || rep.Summary.Applied != 0 || rep.Converged {
		t.Errorf("dry run: %d writes, summary %+v, converged=%t; want nothing sent", w.Writes(), rep.Summary, rep.Converged)
	}
}

// sync: a sync applies every change with one write each and converges; a second sync
// plans and writes nothing; an edited flag is applied alone.
func (c *contract) sync(t *testing.T) {
	w := c.h.NewWorld(t)
	fsys := c.h.Repo(n)
	rep := c.mustSync(t, w, fsys)
	if !rep.Verified || rep.Summary.Applied != len(rep.Plan.Changes) || w.Writes() != rep.Summary.Applied {
		t.Errorf("first sync: verified=%t summary=%+v for %d changes, %d writes", rep.Verified, rep.Summary, len(rep.Plan.Changes), w.Writes())
	}
	writes := w.Writes()
	rep = c.mustSync(t, w, fsys)
	if len(rep.Plan.Changes) != 0 || w.Writes() != writes || len(rep.Plan.Unmanaged) != 0 {
		t.Errorf("second sync: %d changes, %d writes, %d unmanaged; want none", len(rep.Plan.Changes), w.Writes()-writes, len(rep.Plan.Unmanaged))
	}
	key := c.h.Edit(fsys)
	rep = c.mustSync(t, w, fsys)
	if len(rep.Plan.Changes) == 0 {
		t.Fatalf("the edit of %s planned nothing", key)
	}
	for _, ch := range rep.Plan.Changes {
		if ch.Key != key || ch.Action != plan.ActionUpdate {
			t.Errorf("after editing %s: %s %s", key, ch.Action, ch.Flag())
		}
	}
	writes = w.Writes()
	if rep := c.mustSync(t, w, fsys); len(rep.Plan.Changes) != 0 || w.Writes() != writes {
		t.Errorf("the sync after the edit's: %d changes, %d writes", len(rep.Plan.Changes), w.Writes()-writes)
	}
}

// guards: --max-changes refuses the whole plan and sends nothing; the plan is still
// reported.
func (c *contract) guards(t *testing.T) {
	w := c.h.NewWorld(t)
	rep, err := c.run(t, w, c.h.Repo(n), reconcile.Input{MaxChanges: 1})
	var tooMany *reconcile.TooManyChangesError
	if !errors.As(err, &tooMany) || w.Writes() != 0 || len(rep.Plan.Changes) < n {
		t.Errorf("max-changes 1: err=%v writes=%d changes=%d; want the plan refused, reported, and nothing sent", err, w.Writes(), len(rep.Plan.Changes))
	}
}

// prune: flags removed from Git are reported unmanaged without pruning; with pruning,
// more than the mass-archive guard allows are refused (reported, nothing sent), and
// once allowed they are archived, after which a sync is clean.
func (c *contract) prune(t *testing.T) {
	w := c.h.NewWorld(t)
	fsys := c.h.Repo(n)
	c.mustSync(t, w, fsys)
	gone := c.h.Keys(n)[:2]
	c.h.Remove(fsys, gone...)
	rep := c.mustSync(t, w, fsys)
	if len(rep.Plan.Unmanaged) != 2 || len(rep.Plan.Changes) != 0 {
		t.Errorf("flags removed from Git, no pruning: %d unmanaged, %d changes; want 2 and none", len(rep.Plan.Unmanaged), len(rep.Plan.Changes))
	}
	writes := w.Writes()
	rep, err := c.run(t, w, fsys, reconcile.Input{Prune: true, MaxArchive: 1})
	var mass *plan.MassArchiveError
	if !errors.As(err, &mass) || len(rep.Refused) != 2 || w.Writes() != writes {
		t.Fatalf("prune beyond the guard: err=%v refused=%d writes=%d; want 2 refused and nothing sent", err, len(rep.Refused), w.Writes()-writes)
	}
	rep, err = c.run(t, w, fsys, reconcile.Input{Prune: true, MaxArchive: 1, AllowMassArchive: true})
	if err != nil || !rep.Converged || rep.Summary.Applied == 0 || w.Writes() == writes {
		t.Fatalf("allowed prune: err=%v converged=%t summary=%+v", err, rep.Converged, rep.Summary)
	}
	for _, ch := range rep.Plan.Changes {
		if !(ch.Key == gone[0] || ch.Key == gone[1]) {
			t.Errorf("prune touched %s", ch.Flag())
		}
	}
	if rep := c.mustSync(t, w, fsys); len(rep.Plan.Changes)+len(rep.Plan.Unmanaged) != 0 {
		t.Errorf("after pruning: %d changes, %d unmanaged", len(rep.Plan.Changes), len(rep.Plan.Unmanaged))
	}
}

// refused: a change the planner refuses is reported, never sent; the others are
// applied; the run is not converged, and stays so.
func (c *contract) refused(t *testing.T) {
	w := c.h.NewWorld(t)
	fsys := c.h.Repo(n)
	c.mustSync(t, w, fsys)
	c.h.Refuse(t, w, fsys)
	writes := w.Writes()
	rep, err := c.run(t, w, fsys, reconcile.Input{})
	if err != nil {
		t.Fatalf("sync with a refused change: %v", err)
	}
	if len(rep.Refused) == 0 || rep.Converged || rep.Summary.Applied == 0 || rep.Summary.Failed != 0 || w.Writes()-writes != rep.Summary.Applied {
		t.Fatalf("refused: %d refused, converged=%t, summary %+v, %d writes", len(rep.Refused), rep.Converged, rep.Summary, w.Writes()-writes)
	}
	if rep.NotConverged() == "" {
		t.Error("a run with refused changes does not say why it is not converged")
	}
	writes = w.Writes()
	rep, err = c.run(t, w, fsys, reconcile.Input{})
	if err != nil || len(rep.Refused) == 0 || len(rep.Plan.Changes) != 0 || w.Writes() != writes || rep.Converged {
		t.Errorf("the next sync: err=%v refused=%d changes=%d writes=%d; want the refusal again and nothing sent", err, len(rep.Refused), len(rep.Plan.Changes), w.Writes()-writes)
	}
}

// budget: every call is charged to the client's budget, and a sync of an unchanged
// repository costs what the harness says (reads only).
func (c *contract) budget(t *testing.T) {
	w := c.h.NewWorld(t)
	fsys := c.h.Repo(n)
	c.mustSync(t, w, fsys)
	before := w.Calls()
	rep := c.mustSync(t, w, fsys)
	if rep.APICalls != w.Calls()-before {
		t.Errorf("the report counts %d calls, the client made %d", rep.APICalls, w.Calls()-before)
	}
	if c.h.SteadyCalls != nil {
		if want := c.h.SteadyCalls(n); rep.APICalls != want {
			t.Errorf("a sync with nothing to change made %d calls, want %d", rep.APICalls, want)
		}
	}
	used := 0
	for _, win := range w.Budget.Remaining() {
		used = max(used, win.Used)
	}
	charged := w.Calls()
	if w.Uncharged != nil {
		charged -= w.Uncharged()
	}
	if int64(used) != charged {
		t.Errorf("the budget counted %d calls, the client made %d it charges: a call was not charged", used, charged)
	}
}

// File is a flag file of the repository, at its path below Dir.
func File(name, body string) (string, *fstest.MapFile) {
	return path.Join(Dir, name), &fstest.MapFile{Data: []byte(body)}
}
