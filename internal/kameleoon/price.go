package kameleoon

import (
	"github.com/flagsync/flagsync/internal/api"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// Quote is Kameleoon's price rule (reconcile.Pricer): the token requests and reads the
// run's read made (counted by the client, as the API's log would count them); one call
// per change (a create is one POST with every environment, an update one merge patch,
// an archive one PATCH); no confirming read, since every create and patch answers with
// the whole flag — unless this client has seen an answer that could not vouch for its
// flag, or cannot tell, and then the reads Confirm would make (a get per changed flag,
// or a list per site when fewer). The calls are charged to the client's budget
// (Kameleoon's 50 per 10 s and 1,000 per hour); token requests are not, by default
// (kclient.TokenCounting).
func (s *run) Quote(p plan.Plan) reconcile.Quote {
	q := reconcile.Quote{Token: int(s.spent.Token), Reads: int(s.spent.Read + s.spent.Write)}
	if b, ok := s.client.(interface{ Budget() *api.Budget }); ok {
		q.Budget = b.Budget()
	}
	if c, ok := s.client.(interface{ WritesConfirmThemselves() bool }); ok && c.WritesConfirmThemselves() {
		return q
	}
	touched := map[kmodel.Ref]bool{}
	for _, c := range p.Changes {
		touched[refOf(c.Address)] = true
	}
	if len(touched) == 0 {
		return q
	}
	sites := map[string]int{}
	for r := range touched {
		sites[r.SiteCode] = 0
	}
	for _, f := range s.live {
		if _, ok := sites[f.SiteCode]; ok {
			sites[f.SiteCode]++
		}
	}
	pages := 0
	for _, n := range sites {
		pages += max(1, (n+len(touched)+kclient.DefaultPerPage-1)/kclient.DefaultPerPage)
	}
	q.ConfirmReads = len(touched)
	if !s.partial && pages <= len(touched) {
		q.ConfirmReads = pages
	}
	return q
}
