package split

import (
	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
)

// Quote is Split's price rule (reconcile.Pricer): one call per change — a flag create,
// a definition's create or JSON Patch, an archive —, none for a change that waits in an
// open change request (it is not sent again); the reads Confirm makes afterwards (a get
// of the flag and of each of its definitions per touched flag, or the lists of the
// touched workspaces when fewer); the client's budget (10 calls per second and 400 per
// minute). Its reads are not counted by the client: the price step takes the run's calls
// so far as its reads. Not counted either: a definition Split refuses to create killed
// takes a second call (PUT …/kill), and a write that needs approval files a change
// request.
func (r *repo) Quote(p plan.Plan) reconcile.Quote {
	q := reconcile.Quote{ReadsUncounted: true}
	if b, ok := r.client.(interface{ Budget() *api.Budget }); ok {
		q.Budget = b.Budget()
	}
	held := map[plan.Address]bool{}
	for _, b := range p.AwaitingApproval() {
		held[b.Address] = true
	}
	q.Calls = func(c plan.Change) int {
		if held[c.Address] {
			return 0
		}
		return 1
	}
	touched := map[splitmodel.Ref]bool{}
	for _, c := range p.Changes {
		if !held[c.Address] {
			touched[splitmodel.Ref{Workspace: c.Scope, Name: c.Key}] = true
		}
	}
	if len(touched) > 0 {
		_, q.ConfirmReads = r.confirmCalls(touched, r.partial)
	}
	return q
}

// confirmCalls says how Confirm reads the touched flags again: with gets (a get of the
// flag and one per definition, each), or the lists of their workspaces (the flags and
// each environment's definitions, paged) when that takes fewer calls; and how many calls
// it takes.
func (r *repo) confirmCalls(touched map[splitmodel.Ref]bool, partial bool) (gets bool, calls int) {
	wss := map[string]bool{}
	for ref := range touched {
		wss[ref.Workspace] = true
	}
	envs := len(r.desired.EnvironmentNames())
	perWS := map[string]int{}
	for _, f := range r.live {
		if wss[f.Workspace] {
			perWS[f.Workspace]++
		}
	}
	listCalls := 0
	for ws := range wss {
		pages := max(1, (perWS[ws]+len(touched)+splitclient.DefaultPageSize-1)/splitclient.DefaultPageSize)
		listCalls += pages * (1 + envs)
	}
	getCalls := 0
	for ref := range touched {
		for i := range r.desired.Flags {
			if r.desired.Flags[i].Ref() == ref {
				getCalls += 1 + len(r.desired.Flags[i].Environments)
			}
		}
	}
	if partial || getCalls < listCalls {
		return true, getCalls
	}
	return false, listCalls
}
