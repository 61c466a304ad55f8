package kdoctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	// Release windows are local times in a named zone; embedded zone data keeps the
	// comparison working in images without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/flagsync/flagsync/internal/api"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// The scratch flag's rules, and the zone of their release window.
const (
	ruleA       = "doctor rule a"
	ruleB       = "doctor rule b"
	releaseZone = "Europe/Paris"
	localLayout = "2006-01-02T15:04:05"
)

// reportAdvice is the advice of a relied-upon behaviour that fails on the API's side.
const reportAdvice = "report this to flagsync (attach `flagsync doctor --format json`): this account does not behave as flagsync relies on"

// state is what the probes learnt so far.
type state struct {
	stop string // why the remaining rows are not probed

	created   bool   // the create may have taken effect: archive at the end
	needRules bool   // the flag was created without environments: the next patch adds the rules
	name      string // the scratch flag's name
	release   kmodel.Release

	live    kmodel.Flag        // the flag as the latest answer showed it
	desired kmodel.Environment // the first environment as the probes want it

	listNames    []string // the optionalFields names the list accepted
	listComplete *bool    // the flags the list returned carry environmentConfigurations and variations
	getComplete  *bool    // the single-flag GET returns them
	getNames     []string // the optionalFields names that GET asked for
	tokenMark    int      // index of the recorder's exchanges where client b's calls start; -1 unset

	idsSent    int    // patches that sent rules with ids
	idsProblem string // the first id not kept
	idsSeen    []string

	reordered []string // the rule order the reorder with orderIndex sent and read back

	archived bool
}

// probe runs the probes in order; each checks the context and the budget first.
func (d *Doctor) probe(ctx context.Context) {
	d.st.tokenMark = -1
	if !d.create(ctx) {
		return
	}
	d.list(ctx)
	d.patchMinimal(ctx)
	d.patchRequired(ctx)
	d.reorders(ctx)
	d.rulePatch(ctx)
	d.search(ctx)
	d.optionalFieldsEach(ctx)
}

// --- the scratch flag --------------------------------------------------------------

func ptr(f float64) *float64 { return &f }

// scratchFlag is the flag the doctor creates: two environments whose values differ
// from Kameleoon's defaults, the first with two rules, each with a rollback condition
// and a release window. Both environments stay disabled.
func (d *Doctor) scratchFlag(withEnvironments bool) kmodel.Flag {
	f := kmodel.Flag{
		SiteCode:    d.site,
		FeatureKey:  d.key,
		Name:        d.key,
		Description: "Scratch flag of `flagsync doctor`, which probes the Automation API; archived when the run ends.",
		Tags:        []string{ownershipTag},
		Variations:  []kmodel.Variation{{Key: "off", Name: "Off"}, {Key: "on", Name: "On"}},
	}
	if withEnvironments {
		f.Environments = map[string]kmodel.Environment{
			d.envs[0]: {FeatureEnabled: false, DefaultVariationKey: "off", RolloutRules: d.rules()},
			d.envs[1]: {FeatureEnabled: false, DefaultVariationKey: "on"},
		}
	}
	return f
}

func (d *Doctor) rules() []kmodel.Rule {
	rel := d.st.release
	mk := func(name, state string, exposition float64, variation string) kmodel.Rule {
		r := rel
		return kmodel.Rule{
			Name: name, Type: kmodel.RuleTargetedDelivery, State: state, SegmentID: d.opts.SegmentID,
			Exposition: ptr(exposition), VariationKey: variation,
			TrafficAllocations: []kmodel.TrafficAllocation{{VariationKey: variation, Exposition: exposition}},
			Release:            &r,
			RollbackConditions: []kmodel.RollbackCondition{{
				Target: "RULE", Criteria: "CONVERSION_RATE", ComparisonOperator: "GREATER_THAN",
				MatchValue: 20, GoalID: d.opts.GoalID, Visitors: 2,
			}},
		}
	}
	return []kmodel.Rule{mk(ruleA, kmodel.StateActive, 50, "on"), mk(ruleB, kmodel.StatePaused, 10, "off")}
}

// releaseWindow is tomorrow to three days from now, as local times in releaseZone: a
// window in the future, which a real account accepts.
func (d *Doctor) releaseWindow() kmodel.Release {
	loc, err := time.LoadLocation(releaseZone)
	if err != nil {
		loc = time.UTC // unreachable: the zone data is embedded
	}
	from := d.now().In(loc).Add(24 * time.Hour).Truncate(time.Second)
	return kmodel.Release{ReleaseFrom: from.Format(localLayout), ReleaseTo: from.Add(48 * time.Hour).Format(localLayout), TimeZone: releaseZone}
}

// --- token and create ---------------------------------------------------------------

// create creates the scratch flag with its environments (or, if the API refuses that,
// without them) and records the token, create and release rows. It reports whether
// there is a scratch flag to probe with.
func (d *Doctor) create(ctx context.Context) bool {
	rest := []string{RowToken, RowTokenSecond, RowTokenOld, RowCreate, RowReleaseInstant, RowReleaseShape}
	if !d.can(ctx, 3, rest...) {
		return false
	}
	d.st.release = d.releaseWindow()
	f := d.scratchFlag(true)
	d.st.name = f.Name
	d.st.desired = f.Environments[d.envs[0]]
	raw, err := d.a.Do(ctx, kclient.CreateFlagRequest(&f, d.envs[:]))
	if !d.tokenRow(err) {
		d.st.stop = "no token"
		return false
	}
	if err != nil {
		var apiErr *api.Error
		if ctx.Err() != nil || !errors.As(err, &apiErr) || apiErr.Retryable {
			// The create may have taken effect (the client checks a lost response with
			// a read, which failed too), or the API asked to come back later: try to
			// archive it at the end.
			d.st.created = true
			d.holds(RowCreate, false, "failed: "+err.Error(),
				"unknown: the create did not complete", "run doctor again; if it fails the same way, "+reportAdvice)
			d.st.stop = "the scratch flag could not be created"
			if ctx.Err() != nil {
				d.st.stop = "the run was cancelled"
			}
			return false
		}
		d.holds(RowCreate, false, "refused ("+statusText(apiErr)+")",
			"flagsync creates a flag with its environments and rules in one POST: every new flag of the repository would fail to be created",
			d.createAdvice(apiErr))
		d.skip("the create with environments was refused", RowReleaseInstant, RowReleaseShape)
		// Go on with a flag without environments: the environment patches add the rules.
		if !d.can(ctx, 1) {
			return false
		}
		plain := d.scratchFlag(false)
		raw, err = d.a.Do(ctx, kclient.CreateFlagRequest(&plain, nil))
		if err != nil {
			if !errors.As(err, &apiErr) || apiErr.Retryable {
				d.st.created = true
			}
			d.st.stop = "the scratch flag could not be created: " + err.Error()
			return false
		}
		d.st.created, d.st.needRules = true, true
		live, derr := kclient.DecodeFlag(raw)
		if derr != nil {
			d.st.stop = "the create's answer is not a flag: " + derr.Error()
			return false
		}
		d.st.live = live
		return true
	}
	d.st.created = true
	live, err := kclient.DecodeFlag(raw)
	if err != nil {
		d.holds(RowCreate, false, "created, but the answer is not a flag: "+err.Error(),
			"flagsync reads the created flag from the create's answer", reportAdvice)
		d.st.stop = "the create's answer could not be read"
		return false
	}
	d.st.live = live
	d.checkCreated(live)
	d.releaseRows(live)
	return true
}

func (d *Doctor) createAdvice(e *api.Error) string {
	msg := strings.ToLower(e.Message)
	switch {
	case e.Status == http.StatusNotFound || strings.Contains(msg, "site"):
		return fmt.Sprintf("check the site code %s (Admin > Projects) and that the API client may write to it", d.site)
	case (strings.Contains(msg, "goal") && d.opts.GoalID == 0) || (strings.Contains(msg, "segment") && d.opts.SegmentID == 0):
		return "set --goal-id and --segment-id to a goal and a segment of the site: the account wants ids of its own in rules and rollback conditions"
	case strings.Contains(msg, "environment"):
		return fmt.Sprintf("check that the project has the environments %s and %s (--environments)", d.envs[0], d.envs[1])
	}
	return reportAdvice
}

// tokenRow records the first token's row from client a's calls and the create's error,
// and reports whether the client had a token the API accepted.
func (d *Doctor) tokenRow(err error) bool {
	calls, _ := d.calls.since(0)
	var tok *call
	for i := range calls {
		if calls[i].client == "a" && calls[i].Endpoint == tokenEndpoint {
			tok = &calls[i]
			break
		}
	}
	var apiErr *api.Error
	switch {
	case tok == nil:
		obs := "no token request was made"
		if err != nil {
			obs += ": " + err.Error()
		}
		d.holds(RowToken, false, obs, "flagsync cannot call the API", "check "+kclient.EnvAPIURL+" (or --api-url) and the network")
		return false
	case tok.Status < 200 || tok.Status > 299:
		obs := "refused"
		if err != nil {
			obs = "refused: " + err.Error()
		}
		d.holds(RowToken, false, obs, "flagsync cannot call the API",
			"check "+kclient.EnvClientID+" and "+kclient.EnvClientSecret+": the id and secret of an API client of the account (and "+kclient.EnvAPIURL+")")
		return false
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized && apiErr.Path != tokenEndpoint:
		d.holds(RowToken, false, "issued, but the API refused it (401), also after a renewal: "+err.Error(),
			"flagsync cannot call the API", "check that the API client may use the Automation API for this site; otherwise "+reportAdvice)
		return false
	}
	d.holds(RowToken, true, fmt.Sprintf("issued (%d); the API accepts it", tok.Status),
		"flagsync keeps one token per process and renews it 60 s before it expires, and once after a 401", "")
	return true
}

// checkCreated compares the created flag with what was sent.
func (d *Doctor) checkCreated(live kmodel.Flag) {
	var problems []string
	e1, ok1 := live.Environments[d.envs[0]]
	e2, ok2 := live.Environments[d.envs[1]]
	if !ok1 || !ok2 {
		problems = append(problems, fmt.Sprintf("environments read back: %s (sent %s, %s)", strings.Join(live.EnvironmentKeys(), ", "), d.envs[0], d.envs[1]))
	}
	if ok1 && (e1.FeatureEnabled || e1.DefaultVariationKey != "off") {
		problems = append(problems, fmt.Sprintf("%s: featureEnabled %t, defaultVariationKey %q (sent false, \"off\")", d.envs[0], e1.FeatureEnabled, e1.DefaultVariationKey))
	}
	if ok2 && (e2.FeatureEnabled || e2.DefaultVariationKey != "on") {
		problems = append(problems, fmt.Sprintf("%s: featureEnabled %t, defaultVariationKey %q (sent false, \"on\")", d.envs[1], e2.FeatureEnabled, e2.DefaultVariationKey))
	}
	var ids []string
	if ok1 {
		if names := ruleNames(e1.RolloutRules); !slices.Equal(names, []string{ruleA, ruleB}) {
			problems = append(problems, fmt.Sprintf("%s: rules %q (sent %q, %q)", d.envs[0], names, ruleA, ruleB))
		}
		for _, r := range e1.RolloutRules {
			ids = append(ids, strconv.FormatInt(r.ID, 10))
			if r.ID <= 0 {
				problems = append(problems, fmt.Sprintf("rule %q has no id", r.Name))
			}
			if len(r.RollbackConditions) != 1 || r.RollbackConditions[0].ID <= 0 {
				problems = append(problems, fmt.Sprintf("rule %q: %d rollback conditions read back (sent 1), or without an id", r.Name, len(r.RollbackConditions)))
			}
			if r.Release == nil {
				problems = append(problems, fmt.Sprintf("rule %q: no release window read back", r.Name))
			}
		}
	}
	if !slices.Contains(live.Tags, ownershipTag) {
		problems = append(problems, fmt.Sprintf("tags %q (sent %s)", live.Tags, ownershipTag))
	}
	if len(problems) > 0 {
		d.holds(RowCreate, false, "created, but: "+strings.Join(problems, "; "),
			"a flag flagsync creates is not what Git says: the next plan shows changes again, and flags may lose flagsync's ownership tag", reportAdvice)
		return
	}
	d.holds(RowCreate, true, fmt.Sprintf("created with both environments, the 2 rules (ids %s) with their rollback conditions and release windows, and the tag", strings.Join(ids, ", ")),
		"flagsync creates each new flag in one call", "")
}

// releaseRows compares the release windows read back with the one written.
func (d *Doctor) releaseRows(live kmodel.Flag) {
	r := findRule(live.Environments[d.envs[0]].RolloutRules, ruleA)
	if r == nil || r.Release == nil {
		d.holds(RowReleaseInstant, false, "no release window read back",
			"flagsync would plan the release window again on every sync", reportAdvice)
		d.reading(RowReleaseShape, "absent", "no release window read back", "see the row above")
		return
	}
	want := d.st.release
	got := *r.Release
	zone := got.TimeZone
	if zone == "" {
		zone = want.TimeZone
	}
	sameFrom, zonedFrom := sameInstant(got.ReleaseFrom, want.ReleaseFrom, zone, want.TimeZone)
	sameTo, zonedTo := sameInstant(got.ReleaseTo, want.ReleaseTo, zone, want.TimeZone)
	shown := fmt.Sprintf("%s to %s %s", got.ReleaseFrom, got.ReleaseTo, got.TimeZone)
	if got == want {
		shown += " (as written)"
	} else {
		shown += fmt.Sprintf(" (written %s to %s %s)", want.ReleaseFrom, want.ReleaseTo, want.TimeZone)
	}
	if sameFrom && sameTo && got.TimeZone == want.TimeZone {
		d.holds(RowReleaseInstant, true, "the same instants: "+shown,
			"flagsync compares instants: a release window is not drift whatever its spelling", "")
	} else {
		d.holds(RowReleaseInstant, false, "other instants: "+shown,
			"flagsync would plan the release window again on every sync", reportAdvice)
	}
	if zonedFrom || zonedTo {
		d.reading(RowReleaseShape, "zoned", "an instant with a zone: "+got.ReleaseFrom,
			"flagsync reads it as that instant and compares it with Git's local time in timeZone: no false drift")
		return
	}
	d.reading(RowReleaseShape, "local", "the local time as written: "+got.ReleaseFrom,
		"flagsync reads it as a local time in timeZone, as Git writes it")
}

// sameInstant reports whether a bound read back names the instant want (a local time in
// wantZone), and whether it carried a zone itself.
func sameInstant(got, want, gotZone, wantZone string) (same, zoned bool) {
	wl, err1 := time.LoadLocation(wantZone)
	gl, err2 := time.LoadLocation(gotZone)
	if err1 != nil || err2 != nil {
		return got == want, false
	}
	w, err := time.ParseInLocation(localLayout, want, wl)
	if err != nil {
		return got == want, false
	}
	if g, err := time.Parse(time.RFC3339, got); err == nil {
		return g.Equal(w), true
	}
	g, err := time.ParseInLocation(localLayout, got, gl)
	return err == nil && g.Equal(w), false
}

// --- list -----------------------------------------------------------------------------

// listItem is what the doctor reads of a listed flag.
type listItem struct {
	id, featureKey, dateModified string
	fields                       map[string]json.RawMessage
}

func parseItems(raw []byte) ([]listItem, error) {
	var arr []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &arr); err != nil {
		return nil, fmt.Errorf("not a JSON array of flags: %w", err)
	}
	out := make([]listItem, len(arr))
	for i, m := range arr {
		out[i] = listItem{id: strings.TrimSpace(string(m["id"])), fields: m}
		_ = json.Unmarshal(m["featureKey"], &out[i].featureKey)
		_ = json.Unmarshal(m["dateModified"], &out[i].dateModified)
	}
	return out, nil
}

// undocumentedFields are the optionalFields names flagsync asks for that the docs do not name.
func undocumentedFields() []string {
	var out []string
	for _, n := range kclient.OptionalFields {
		if !slices.Contains(kclient.DocumentedOptionalFields, n) {
			out = append(out, n)
		}
	}
	return out
}

// completeness says which undocumented fields a listed flag lacks (absent) or has empty
// where Kameleoon always has at least one (environmentConfigurations, variations).
func (it listItem) completeness() (absent, empty []string) {
	for _, k := range undocumentedFields() {
		v := strings.TrimSpace(string(it.fields[k]))
		switch {
		case v == "" || v == "null":
			absent = append(absent, k)
		case (k == "environmentConfigurations" || k == "variations") && v == "[]":
			empty = append(empty, k)
		}
	}
	return absent, empty
}

func listRequest(site string, page int, names []string) api.Request {
	q := url.Values{
		"siteCode":       {site},
		"page":           {strconv.Itoa(page)},
		"perPage":        {"1"},
		"optionalFields": {strings.Join(names, ",")},
	}
	return api.Request{Method: http.MethodGet, Path: "/feature-flags?" + q.Encode()}
}

// list reads page 1 (client a) and page 2 (client b, with a second token) of the site's
// flags, one flag a page, asking for every optional field flagsync plans with.
func (d *Doctor) list(ctx context.Context) {
	rows := []string{RowOptionalFields, RowListPaging, RowListPageCount, RowTokenSecond, RowTokenOld}
	if !d.can(ctx, 2, rows...) {
		return
	}
	names := kclient.OptionalFields
	raw, err := d.a.Do(ctx, listRequest(d.site, 1, names))
	var apiErr *api.Error
	refused := errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest
	if refused {
		d.reading(RowOptionalFields, "refused", "refused ("+statusText(apiErr)+")",
			"flagsync falls back to tags,description for the rest of the process (one warning names the refused names) and reads each flag again with one GET: a read costs one call per flag more; mind the 1,000 calls per hour")
		names = kclient.DocumentedOptionalFields
		raw, err = d.a.Do(ctx, listRequest(d.site, 1, names))
		if err != nil {
			d.reading(RowOptionalFields, "unknown", "unknown: the list answered "+statusText(apiErr)+" with and without the undocumented names",
				"unknown: the 400 is not about optionalFields")
		}
	}
	if err != nil {
		d.holds(RowListPaging, false, "the list failed: "+err.Error(),
			"flagsync reads live flags with the list: no plan is possible", reportAdvice)
		d.skip("the list failed", RowOptionalFields, RowListPageCount)
		return
	}
	d.st.listNames = names
	ex1, _ := d.rec.last()
	page1, err := parseItems(raw)
	if err != nil {
		d.holds(RowListPaging, false, "the list answered, but "+err.Error(),
			"flagsync reads live flags with the list: no plan is possible", reportAdvice)
		d.skip("the list's answer could not be read", RowOptionalFields, RowListPageCount)
		return
	}
	if !refused {
		d.optionalFieldsRow(page1)
	}
	d.noteComplete(page1)
	d.pageCountRow(ex1)

	// Page 2 with a second client: its own token, while the first is still valid.
	if !d.can(ctx, 4, RowListPaging, RowTokenSecond, RowTokenOld) {
		return
	}
	d.st.tokenMark = len(d.rec.all())
	mark := d.calls.len()
	raw2, err2 := d.b.Do(ctx, listRequest(d.site, 2, names))
	if !d.tokenSecondRow(mark, err2) {
		if !d.can(ctx, 1, RowListPaging) {
			return
		}
		raw2, err2 = d.a.Do(ctx, listRequest(d.site, 2, names))
	}
	if err2 != nil {
		d.holds(RowListPaging, false, "page 2 failed: "+err2.Error(),
			"flagsync could not read accounts of more than 100 flags", reportAdvice)
		return
	}
	page2, err := parseItems(raw2)
	if err != nil {
		d.holds(RowListPaging, false, "page 2 answered, but "+err.Error(), "flagsync could not read accounts of more than 100 flags", reportAdvice)
		return
	}
	d.noteComplete(page2)
	d.pagingRow(page1, page2, ex1)
}

// optionalFieldsEach, when the list refused the undocumented optionalFields together,
// asks for each alone (one call each, last, when the budget allows), so that the row
// says which names the account refuses.
func (d *Doctor) optionalFieldsEach(ctx context.Context) {
	r := d.rows[RowOptionalFields]
	if r.Reading != "refused" {
		return
	}
	names := undocumentedFields()
	if ctx.Err() != nil || len(names) > d.max-cleanupReserve-d.used() {
		r.Observed += "; which of them: not probed (budget)"
		return
	}
	var accepted, refused []string
	for _, n := range names {
		_, err := d.a.Do(ctx, listRequest(d.site, 1, append(slices.Clone(kclient.DocumentedOptionalFields), n)))
		var apiErr *api.Error
		switch {
		case err == nil:
			accepted = append(accepted, n)
		case errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest:
			refused = append(refused, n)
		default:
			r.Observed += "; which of them: unknown (" + err.Error() + ")"
			return
		}
	}
	r.Observed += "; one by one: refused " + orNone(refused) + ", accepted " + orNone(accepted)
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// noteComplete records whether listed flags carry the fields flagsync plans with.
func (d *Doctor) noteComplete(items []listItem) {
	for _, it := range items {
		absent, empty := it.completeness()
		complete := len(absent) == 0 && len(empty) == 0
		if d.st.listComplete == nil || !complete {
			d.st.listComplete = boolPtr(complete)
		}
	}
}

func (d *Doctor) optionalFieldsRow(items []listItem) {
	if len(items) == 0 {
		d.reading(RowOptionalFields, "unknown", "accepted (200), but the list returned no flag to look at", "unknown")
		return
	}
	absent, empty := items[0].completeness()
	switch {
	case len(absent) == 0 && len(empty) == 0:
		d.reading(RowOptionalFields, "accepted", "accepted: the list returns all of them",
			"flagsync reads every flag with the list: one call per 100 flags")
	case len(absent) > 0:
		d.reading(RowOptionalFields, "ignored", "ignored silently: the list leaves out "+strings.Join(absent, ", "),
			"flagsync notices the missing fields and reads each such flag again with one GET: a read costs one call per flag more; mind the 1,000 calls per hour")
	default:
		d.reading(RowOptionalFields, "ignored", "ignored silently: the list returns "+strings.Join(empty, ", ")+" empty",
			"flagsync notices the missing fields and reads each such flag again with one GET: a read costs one call per flag more; mind the 1,000 calls per hour")
	}
}

func (d *Doctor) pageCountRow(ex exchange) {
	count := ex.paging.Get("X-Pagination-Page-Count")
	if count == "" {
		d.reading(RowListPageCount, "absent", "no X-Pagination-Page-Count header",
			"flagsync follows pages until one is shorter than the page size it asked for (100)")
		return
	}
	obs := "X-Pagination-Page-Count: " + count
	if total := ex.paging.Get("X-Pagination-Total-Count"); total != "" {
		obs += ", X-Pagination-Total-Count: " + total
	}
	d.reading(RowListPageCount, "present", obs, "flagsync stops at the last page the header names")
}

func (d *Doctor) pagingRow(page1, page2 []listItem, ex1 exchange) {
	total, _ := strconv.Atoi(ex1.paging.Get("X-Pagination-Total-Count"))
	switch {
	case len(page1) == 0:
		d.holds(RowListPaging, false, "page 1 is empty, though the site has the scratch flag",
			"flagsync would not see the site's flags: it would try to create existing ones", reportAdvice)
	case len(page1) > 1:
		d.inconclusive(RowListPaging, fmt.Sprintf("perPage=1 not honoured: page 1 held %d flags", len(page1)),
			"flagsync asks for pages of 100 and stops at a short page: it reads every flag as long as the API returns them all", "")
	case len(page2) > 0 && page2[0].id == page1[0].id:
		d.holds(RowListPaging, false, "page 2 repeats page 1 (flag id "+page1[0].id+"): the API ignores page",
			"flagsync stops the read with an error (page 2 repeats page 1) in a site of more than 100 flags", reportAdvice)
	case len(page2) > 0:
		d.holds(RowListPaging, true, fmt.Sprintf("page 1 and page 2 hold different flags (ids %s, %s)", page1[0].id, page2[0].id),
			"flagsync reads sites of any size, 100 flags a call", "")
	case total > 1:
		d.holds(RowListPaging, false, fmt.Sprintf("page 2 is empty, though X-Pagination-Total-Count says %d", total),
			"flagsync would miss flags past the first page", reportAdvice)
	default:
		d.inconclusive(RowListPaging, "page 2 is empty: the site has one flag (the scratch flag), so paging across flags could not be probed",
			"unknown for sites of more than 100 flags", "run doctor in a site with at least one other flag to probe paging")
	}
}

// tokenSecondRow records whether client b got a second token and the API accepted it,
// from b's calls since mark; it reports whether b's call went through.
func (d *Doctor) tokenSecondRow(mark int, err error) bool {
	calls, _ := d.calls.since(mark)
	var tok, use *call
	for i := range calls {
		c := &calls[i]
		if c.client != "b" {
			continue
		}
		if c.Endpoint == tokenEndpoint && tok == nil {
			tok = c
		} else if c.Endpoint != tokenEndpoint && use == nil {
			use = c
		}
	}
	switch {
	case tok == nil || tok.Status < 200 || tok.Status > 299:
		obs := "no second token"
		if err != nil {
			obs += ": " + err.Error()
		}
		d.holds(RowTokenSecond, false, obs,
			"flagsync asks for a new token every 2 hours (and in every new process): it would stop working", reportAdvice)
		d.skip("no second token", RowTokenOld)
		return false
	case err != nil && use != nil && use.Status == http.StatusUnauthorized:
		d.holds(RowTokenSecond, false, "issued, but the API refused it (401): "+err.Error(),
			"flagsync asks for a new token every 2 hours (and in every new process): it would stop working", reportAdvice)
		d.skip("the second token was refused", RowTokenOld)
		return false
	case err != nil:
		d.holds(RowTokenSecond, true, fmt.Sprintf("issued (%d)", tok.Status), "flagsync renews its token before it expires", "")
		return false
	}
	d.holds(RowTokenSecond, true, fmt.Sprintf("issued (%d) and accepted while the first was still valid", tok.Status),
		"flagsync renews its token before it expires", "")
	return true
}

// tokenOldRow records whether client a's token still worked after client b got one,
// from a's calls since mark.
func (d *Doctor) tokenOldRow(mark int) {
	if d.rows[RowTokenOld].probed || d.rows[RowTokenOld].Observed != "" || d.st.tokenMark < 0 {
		return
	}
	calls, _ := d.calls.since(mark)
	for _, c := range calls {
		if c.client != "a" || c.Endpoint == tokenEndpoint || c.Status == 0 {
			continue
		}
		if c.Status == http.StatusUnauthorized {
			d.reading(RowTokenOld, "revoked", "refused (401) once a second token was issued; flagsync renewed it and resent the call",
				"flagsync works, but two processes sharing one API client (a daemon and CI jobs) would revoke each other's tokens: one extra call each time; give each its own API client")
			return
		}
		d.reading(RowTokenOld, "valid", "still accepted after a second token was issued",
			"flagsync works; several processes may share one API client")
		return
	}
}

// --- environment patches --------------------------------------------------------------

// withLiveIDs returns env with the ids of the live rules (and their rollback conditions)
// of the same name, as the planner sends rules that persist.
func (d *Doctor) withLiveIDs(env kmodel.Environment) kmodel.Environment {
	live := d.st.live.Environments[d.envs[0]].RolloutRules
	out := env
	out.RolloutRules = make([]kmodel.Rule, len(env.RolloutRules))
	for i, r := range env.RolloutRules {
		r.RollbackConditions = slices.Clone(r.RollbackConditions)
		if lr := findRule(live, r.Name); lr != nil {
			r.ID, r.ExperimentID = lr.ID, lr.ExperimentID
			for j := range r.RollbackConditions {
				if j < len(lr.RollbackConditions) {
					r.RollbackConditions[j].ID = lr.RollbackConditions[j].ID
				}
			}
		}
		out.RolloutRules[i] = r
	}
	return out
}

// checkIDs records whether the rules sent with ids came back with them.
func (d *Doctor) checkIDs(sent kmodel.Environment, got kmodel.Flag) {
	rules := got.Environments[d.envs[0]].RolloutRules
	withIDs := false
	for _, s := range sent.RolloutRules {
		if s.ID == 0 {
			continue
		}
		withIDs = true
		g := findRule(rules, s.Name)
		switch {
		case g == nil:
			d.idProblem(fmt.Sprintf("rule %q (id %d) is missing after a patch that sent it", s.Name, s.ID))
		case g.ID != s.ID:
			d.idProblem(fmt.Sprintf("rule %q came back with id %d (sent %d)", s.Name, g.ID, s.ID))
		case s.ExperimentID != 0 && g.ExperimentID != s.ExperimentID:
			d.idProblem(fmt.Sprintf("rule %q came back with experiment %d (was %d)", s.Name, g.ExperimentID, s.ExperimentID))
		case len(s.RollbackConditions) > 0 && (len(g.RollbackConditions) != len(s.RollbackConditions) || g.RollbackConditions[0].ID != s.RollbackConditions[0].ID):
			d.idProblem(fmt.Sprintf("rule %q: its rollback condition came back with another id (sent %d)", s.Name, s.RollbackConditions[0].ID))
		default:
			id := fmt.Sprintf("%d", g.ID)
			if !slices.Contains(d.st.idsSeen, id) {
				d.st.idsSeen = append(d.st.idsSeen, id)
			}
		}
	}
	if withIDs {
		d.st.idsSent++
	}
}

func (d *Doctor) idProblem(p string) {
	if d.st.idsProblem == "" {
		d.st.idsProblem = p
	}
}

// patchEnv sends an environment patch of the first environment and, on success, takes
// the answer as the live flag and checks the ids.
func (d *Doctor) patchEnv(ctx context.Context, req api.Request, sent kmodel.Environment) (kmodel.Flag, []byte, error) {
	raw, err := d.a.Do(ctx, req)
	if err != nil {
		return kmodel.Flag{}, nil, err
	}
	got, err := kclient.DecodeFlag(raw)
	if err != nil {
		return kmodel.Flag{}, nil, fmt.Errorf("the answer is not a flag: %w", err)
	}
	d.st.live = got
	d.checkIDs(sent, got)
	return got, raw, nil
}

// patchMinimal sends the old-style environment patch: featureEnabled alone.
func (d *Doctor) patchMinimal(ctx context.Context) {
	if !d.can(ctx, 3, RowEnvPatchMinimal, RowTokenOld) {
		return
	}
	mark := d.calls.len()
	before := d.st.live.Environments[d.envs[0]].RolloutRules
	req := api.Request{Method: http.MethodPatch, Path: kclient.EnvironmentPath(d.site, d.key, d.envs[0]), Body: json.RawMessage(`{"featureEnabled":true}`)}
	raw, err := d.a.Do(ctx, req)
	d.tokenOldRow(mark)
	var apiErr *api.Error
	switch {
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest:
		d.reading(RowEnvPatchMinimal, "refused", "refused ("+statusText(apiErr)+")",
			"none: flagsync sends featureKey, name, integrations and rolloutRules in every environment patch (next row)")
		return
	case err != nil:
		d.reading(RowEnvPatchMinimal, "failed", "failed: "+err.Error(), "none: flagsync never sends this body")
		return
	}
	got, err := kclient.DecodeFlag(raw)
	if err != nil {
		d.reading(RowEnvPatchMinimal, "accepted", "accepted (200); the answer is not a flag: "+err.Error(), "none: flagsync never sends this body")
		return
	}
	d.st.live = got
	env := got.Environments[d.envs[0]]
	obs := "accepted (200): featureEnabled applied, the rules kept"
	switch {
	case !env.FeatureEnabled:
		obs = "accepted (200), but featureEnabled was not applied"
	case len(env.RolloutRules) != len(before):
		obs = fmt.Sprintf("accepted (200), but the environment's rules went from %d to %d", len(before), len(env.RolloutRules))
	}
	d.reading(RowEnvPatchMinimal, "accepted", obs,
		"none: flagsync sends the required members anyway, which this reading accepts too")
}

// patchRequired sends the environment patch flagsync sends: featureKey, name,
// integrations and rolloutRules (with ids), plus what changed.
func (d *Doctor) patchRequired(ctx context.Context) {
	if !d.can(ctx, 3, RowEnvPatchRequired) {
		return
	}
	want := d.st.desired
	want.FeatureEnabled = false
	want.RolloutRules = slices.Clone(want.RolloutRules)
	for i, r := range want.RolloutRules {
		if r.Name == ruleA {
			r.Exposition = ptr(40)
			r.TrafficAllocations = []kmodel.TrafficAllocation{{VariationKey: r.VariationKey, Exposition: 40}}
			want.RolloutRules[i] = r
		}
	}
	d.st.desired = want
	sent := d.withLiveIDs(want)
	req := kclient.PatchEnvironmentRequest(d.site, d.key, d.st.name, d.envs[0], sent, []string{"featureEnabled"})
	got, _, err := d.patchEnv(ctx, req, sent)
	var apiErr *api.Error
	switch {
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest:
		d.holds(RowEnvPatchRequired, false, "refused ("+statusText(apiErr)+")",
			"every environment patch flagsync sends is refused: the first sync never converges, and every later sync repeats it", reportAdvice)
		return
	case err != nil:
		d.holds(RowEnvPatchRequired, false, "failed: "+err.Error(),
			"flagsync could not change environments", "run doctor again; if it fails the same way, "+reportAdvice)
		return
	}
	env := got.Environments[d.envs[0]]
	a := findRule(env.RolloutRules, ruleA)
	switch {
	case env.FeatureEnabled:
		d.holds(RowEnvPatchRequired, false, "accepted (200), but featureEnabled was not applied",
			"flagsync's environment patches would not take effect: it plans them again on every sync", reportAdvice)
	case a == nil || a.Exposition == nil || *a.Exposition != 40:
		d.holds(RowEnvPatchRequired, false, "accepted (200), but the rule change (exposition 40) was not applied",
			"flagsync's rule changes would not take effect: it plans them again on every sync", reportAdvice)
	default:
		d.holds(RowEnvPatchRequired, true, "accepted (200): featureEnabled and the rule's new exposition applied",
			"flagsync's environment patches are accepted and applied", "")
	}
	if d.st.needRules {
		d.st.needRules = false
		d.releaseRows(got)
	}
}

// reorders sends a reorder without orderIndex (a reading: which order does the API
// follow?) and one with orderIndex = position (relied upon: it must converge).
func (d *Doctor) reorders(ctx context.Context) {
	if !d.can(ctx, 1, RowRuleOrder, RowReorder) {
		return
	}
	cur := ruleNames(d.st.live.Environments[d.envs[0]].RolloutRules)
	if len(cur) < 2 {
		d.skip(fmt.Sprintf("the environment has %d rules", len(cur)), RowRuleOrder, RowReorder)
		return
	}
	rev := reversed(cur)
	sent := d.withLiveIDs(d.ordered(rev))
	req := kclient.PatchEnvironmentRequest(d.site, d.key, d.st.name, d.envs[0], sent, []string{"featureEnabled"})
	req.Body = withoutOrderIndex(req.Body)
	got, raw, err := d.patchEnv(ctx, req, sent)
	if err != nil {
		d.reading(RowRuleOrder, "failed", "failed: "+err.Error(), "unknown; flagsync always sends orderIndex (next row)")
	} else {
		order := ruleNames(got.Environments[d.envs[0]].RolloutRules)
		detail := orderIndexDetail(raw, d.envs[0])
		switch {
		case slices.Equal(order, rev):
			d.reading(RowRuleOrder, "position", "took effect: the rules read back in the order sent ("+detail+"); the array position orders rules",
				"flagsync sends orderIndex = position anyway, which this reading ignores")
		case slices.Equal(order, cur):
			d.reading(RowRuleOrder, "order-index", "did not take effect: the rules kept their old order ("+detail+"); orderIndex orders rules",
				"flagsync sends orderIndex = position in every patch, so its reorders converge (next row)")
		default:
			d.reading(RowRuleOrder, "other", fmt.Sprintf("read back as %q (sent %q; %s)", order, rev, detail), "see the next row")
		}
	}

	if !d.can(ctx, 1, RowReorder) {
		return
	}
	cur = ruleNames(d.st.live.Environments[d.envs[0]].RolloutRules)
	rev = reversed(cur)
	sent = d.withLiveIDs(d.ordered(rev))
	req = kclient.PatchEnvironmentRequest(d.site, d.key, d.st.name, d.envs[0], sent, []string{"featureEnabled"})
	got, _, err = d.patchEnv(ctx, req, sent)
	if err != nil {
		d.holds(RowReorder, false, "failed: "+err.Error(), "a reorder in Git would never be applied", reportAdvice)
		return
	}
	order := ruleNames(got.Environments[d.envs[0]].RolloutRules)
	if !slices.Equal(order, rev) {
		d.holds(RowReorder, false, fmt.Sprintf("read back as %q (sent %q with orderIndex 0, 1)", order, rev),
			"a reorder in Git never takes effect: flagsync plans it again on every sync", reportAdvice)
		return
	}
	d.st.reordered = order
	d.holds(RowReorder, true, fmt.Sprintf("read back in the new order (%s)", strings.Join(order, ", ")),
		"a reorder in Git converges in one patch", "")
}

// ordered is the desired first environment with its rules in the order of names.
func (d *Doctor) ordered(names []string) kmodel.Environment {
	env := d.st.desired
	env.RolloutRules = nil
	for _, n := range names {
		if r := findRule(d.st.desired.RolloutRules, n); r != nil {
			env.RolloutRules = append(env.RolloutRules, *r)
		}
	}
	d.st.desired = env
	return env
}

// withoutOrderIndex drops orderIndex from the rules of an environment patch body.
func withoutOrderIndex(body json.RawMessage) json.RawMessage {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return body
	}
	rules, _ := m["rolloutRules"].([]any)
	for _, r := range rules {
		if o, ok := r.(map[string]any); ok {
			delete(o, "orderIndex")
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}

// orderIndexDetail says whether the rules of env, read back, carry orderIndex.
func orderIndexDetail(raw []byte, env string) string {
	var f struct {
		EnvironmentConfigurations []struct {
			EnvironmentKey string `json:"environmentKey"`
			RolloutRules   []struct {
				OrderIndex *json.Number `json:"orderIndex"`
			} `json:"rolloutRules"`
		} `json:"environmentConfigurations"`
	}
	if json.Unmarshal(raw, &f) != nil {
		return "orderIndex unknown"
	}
	for _, e := range f.EnvironmentConfigurations {
		if e.EnvironmentKey != env {
			continue
		}
		var idx []string
		for _, r := range e.RolloutRules {
			if r.OrderIndex == nil {
				return "read back without orderIndex"
			}
			idx = append(idx, r.OrderIndex.String())
		}
		return "read back with orderIndex " + strings.Join(idx, ", ")
	}
	return "orderIndex unknown"
}

// --- rule patch, search -------------------------------------------------------------

// rulePatch sends the vendor tutorial's step 3: the rule's rollback condition's
// matchValue to 25, by rule id, on the documented path first.
func (d *Doctor) rulePatch(ctx context.Context) {
	if !d.can(ctx, 2, RowRulePatchPath) {
		return
	}
	r := findRule(d.st.live.Environments[d.envs[0]].RolloutRules, ruleA)
	if r == nil || r.ID == 0 || len(r.RollbackConditions) == 0 {
		d.skip("the rule and its rollback condition were not read back", RowRulePatchPath)
		return
	}
	cond := map[string]any{
		"id": r.RollbackConditions[0].ID, "target": "RULE", "criteria": "CONVERSION_RATE", "comparisonOperator": "GREATER_THAN",
		"matchValue": 25.0, "visitors": 2, "recipients": []string{},
	}
	if d.opts.GoalID != 0 {
		cond["goalId"] = d.opts.GoalID
	}
	body, _ := json.Marshal(map[string]any{"rollbackConditions": []any{cond}})
	paths := []struct{ path, reading string }{
		{kclient.RulePath(r.ID), "feature-flags-rules"},
		{"/rules/" + strconv.FormatInt(r.ID, 10), "rules"},
	}
	var tried []string
	for _, p := range paths {
		raw, err := d.a.Do(ctx, api.Request{Method: http.MethodPatch, Path: p.path, Body: body})
		var apiErr *api.Error
		if err != nil {
			tmpl := strings.Replace(p.path, strconv.FormatInt(r.ID, 10), "{id}", 1)
			if errors.As(err, &apiErr) && apiErr.Status >= 400 && apiErr.Status < 500 && ctx.Err() == nil {
				tried = append(tried, fmt.Sprintf("PATCH %s: %s", tmpl, statusText(apiErr)))
				continue
			}
			tried = append(tried, fmt.Sprintf("PATCH %s: %v", tmpl, err))
			break
		}
		obs := "PATCH " + strings.Replace(p.path, strconv.FormatInt(r.ID, 10), "{id}", 1) + " works"
		if len(tried) > 0 {
			obs += " (after " + strings.Join(tried, "; ") + ")"
		}
		got, derr := kclient.DecodeFlag(raw)
		g := findRuleByID(got.Environments[d.envs[0]].RolloutRules, r.ID)
		switch {
		case derr != nil || g == nil:
			obs += ": 200, but the answer is not the flag the tutorial shows"
		case len(g.RollbackConditions) == 1 && g.RollbackConditions[0].MatchValue == 25 && g.RollbackConditions[0].ID == r.RollbackConditions[0].ID:
			d.st.live = got
			obs += ": matchValue 25 read back, rule and condition ids kept"
		default:
			d.st.live = got
			obs += ": 200, but the rollback condition read back as " + fmt.Sprint(g.RollbackConditions)
		}
		d.reading(RowRulePatchPath, p.reading, obs,
			"none today: flagsync patches whole environments; scripts following the tutorial should use this path")
		return
	}
	d.reading(RowRulePatchPath, "none", "neither path works: "+strings.Join(tried, "; "),
		"none today: flagsync patches whole environments and never uses the rule endpoint")
}

// search asks for the site's flags, newest dateModified first: what a one-call drift
// check would send.
func (d *Doctor) search(ctx context.Context) {
	if !d.can(ctx, 1, RowSearchSort) {
		return
	}
	body, _ := json.Marshal(map[string]any{
		"filter":  []any{map[string]any{"field": "siteCode", "operator": "EQUAL", "parameters": []string{d.site}}},
		"page":    1,
		"perPage": 2,
		"sort":    []any{map[string]any{"field": "dateModified", "direction": "DESC"}},
	})
	raw, err := d.a.Do(ctx, api.Request{Method: http.MethodPost, Path: "/feature-flags/search", Body: body})
	var apiErr *api.Error
	const fallback = "the daemon's drift check reads the whole list on this account: flagsync finds this itself at its first search and falls back for the rest of the process"
	switch {
	case errors.As(err, &apiErr) && apiErr.Status >= 400 && apiErr.Status < 500:
		d.reading(RowSearchSort, "refused", "refused ("+statusText(apiErr)+")", fallback)
		return
	case err != nil:
		d.reading(RowSearchSort, "failed", "failed: "+err.Error(), fallback)
		return
	}
	items, err := parseItems(raw)
	if err != nil {
		d.reading(RowSearchSort, "unknown", "answered 200, but "+err.Error(), fallback)
		return
	}
	switch {
	case len(items) == 0:
		d.reading(RowSearchSort, "unknown", "answered 200 with no flag, though the site has the scratch flag", fallback)
	case len(items) == 1:
		d.reading(RowSearchSort, "accepted", "accepted: one flag back ("+items[0].featureKey+"); the order could not be checked",
			"the daemon's drift check uses it and checks the order of every answer itself (falling back to the whole list if it is wrong); doctor cannot confirm the order with one flag")
	case !descending(items):
		d.reading(RowSearchSort, "ignored", fmt.Sprintf("accepted, but not in dateModified DESC order (%s, then %s)", items[0].dateModified, items[1].dateModified), fallback)
	default:
		obs := fmt.Sprintf("supported: %d flags back, newest dateModified first (%s)", len(items), items[0].dateModified)
		if containsNewest(items, d.key) {
			obs += ", the scratch flag (changed last) among the newest"
		}
		d.reading(RowSearchSort, "supported", obs, "the daemon's drift check reads what changed since its last read in one call while fewer than 100 flags changed (the whole list every 6th check, and whenever the total count says a flag was deleted)")
	}
}

// descending reports whether the items' dateModified never increase.
func descending(items []listItem) bool {
	for i := 1; i < len(items); i++ {
		a, errA := parseDate(items[i-1].dateModified)
		b, errB := parseDate(items[i].dateModified)
		if errA != nil || errB != nil {
			if items[i-1].dateModified < items[i].dateModified {
				return false
			}
			continue
		}
		if a.Before(b) {
			return false
		}
	}
	return true
}

// containsNewest reports whether key is among the items with the newest dateModified.
func containsNewest(items []listItem, key string) bool {
	for _, it := range items {
		if it.dateModified != items[0].dateModified {
			return false
		}
		if it.featureKey == key {
			return true
		}
	}
	return false
}

func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Parse(localLayout, s)
}

// --- archive and the final rows -------------------------------------------------------

// archive archives the scratch flag and reads it back; ctx is the cleanup's own.
func (d *Doctor) archive(ctx context.Context) {
	if !d.st.created {
		d.skip("the scratch flag was not created", RowArchive, RowCompleteRead)
		return
	}
	raw, err := d.a.Do(ctx, kclient.ArchiveFlagRequest(d.site, d.key, true))
	archivedAnswer := false
	switch {
	case api.IsNotFound(err):
		d.skip("the scratch flag does not exist (its create did not take effect)", RowArchive)
		return
	case err != nil:
		d.holds(RowArchive, false, "failed: "+err.Error(),
			"flagsync could not archive flags removed from Git (prune)",
			fmt.Sprintf("archive %s in Kameleoon by hand; if this repeats, %s", d.key, reportAdvice))
	default:
		if f, derr := kclient.DecodeFlag(raw); derr == nil {
			archivedAnswer = f.Archived
		}
	}

	// Read it back: confirms the archive and tells whether the single-flag GET returns
	// the fields flagsync plans with.
	names := d.st.listNames
	if names == nil {
		names = kclient.OptionalFields
	}
	got, getRaw, gerr := d.get(ctx, names)
	var apiErr *api.Error
	if errors.As(gerr, &apiErr) && apiErr.Status == http.StatusBadRequest && len(names) > len(kclient.DocumentedOptionalFields) {
		names = kclient.DocumentedOptionalFields
		got, getRaw, gerr = d.get(ctx, names)
	}
	d.st.getNames = names
	if gerr == nil {
		it := listItem{}
		_ = json.Unmarshal(getRaw, &it.fields)
		_, empty := it.completeness()
		missing := false
		for _, k := range []string{"environmentConfigurations", "variations"} {
			if v := strings.TrimSpace(string(it.fields[k])); v == "" || v == "null" || slices.Contains(empty, k) {
				missing = true
			}
		}
		d.st.getComplete = boolPtr(!missing)
		if d.st.reordered != nil && !missing {
			if order := ruleNames(got.Environments[d.envs[0]].RolloutRules); !slices.Equal(order, d.st.reordered) {
				d.holds(RowReorder, false, fmt.Sprintf("the reorder's answer showed %q, but a later read shows %q", d.st.reordered, order),
					"a reorder in Git never takes effect: flagsync plans it again on every sync", reportAdvice)
			} else {
				d.rows[RowReorder].Observed += "; a later read confirms it"
			}
		}
	}
	if err != nil {
		return
	}
	switch {
	case gerr == nil && got.Archived:
		d.st.archived = true
		d.holds(RowArchive, true, "archived (200); a read shows it archived", "flagsync's prune can archive flags removed from Git", "")
	case gerr == nil:
		d.holds(RowArchive, false, "answered 200, but a read shows the flag live",
			"flagsync's prune would not archive flags removed from Git",
			fmt.Sprintf("archive %s in Kameleoon by hand, and %s", d.key, reportAdvice))
	case archivedAnswer:
		d.st.archived = true
		d.holds(RowArchive, true, "archived (200, the answer shows it); the read to confirm failed: "+gerr.Error(),
			"flagsync's prune can archive flags removed from Git", "")
	default:
		d.holds(RowArchive, false, "answered 200, but neither the answer nor a read ("+gerr.Error()+") shows it archived",
			"unknown: flagsync's prune may not archive flags", fmt.Sprintf("check %s in Kameleoon and archive it by hand if it is live", d.key))
	}
}

// get reads the scratch flag with the single-flag GET.
func (d *Doctor) get(ctx context.Context, names []string) (kmodel.Flag, []byte, error) {
	q := url.Values{"optionalFields": {strings.Join(names, ",")}}
	raw, err := d.a.Do(ctx, api.Request{Method: http.MethodGet, Path: kclient.FlagPath(d.site, d.key) + "?" + q.Encode()})
	if err != nil {
		return kmodel.Flag{}, nil, err
	}
	f, err := kclient.DecodeFlag(raw)
	return f, raw, err
}

// finish fills the rows that sum up several probes.
func (d *Doctor) finish(ctx context.Context) {
	d.idsRow()
	d.completeRow()
	d.rateRows()
	if ctx.Err() != nil && d.st.stop == "" {
		d.st.stop = "the run was cancelled"
	}
}

func (d *Doctor) idsRow() {
	switch {
	case d.st.idsProblem != "":
		d.holds(RowRuleIDsKept, false, d.st.idsProblem,
			"every environment patch would re-create the rules it sends: new ids and experiments, results restarted, and plans that never settle", reportAdvice)
	case d.st.idsSent > 0:
		d.holds(RowRuleIDsKept, true, fmt.Sprintf("kept across %d patches (rule ids %s), with their experiments and rollback conditions", d.st.idsSent, strings.Join(d.st.idsSeen, ", ")),
			"rules keep their ids, experiments and results when flagsync patches their environment", "")
	}
}

func (d *Doctor) completeRow() {
	get := "GET /feature-flags/{site}/{key}?optionalFields=" + strings.Join(d.st.getNames, ",")
	switch {
	case d.st.listComplete != nil && *d.st.listComplete:
		d.holds(RowCompleteRead, true, "the list returns them",
			"flagsync plans from the list alone: one call per 100 flags", "")
	case d.st.getComplete != nil && *d.st.getComplete:
		d.holds(RowCompleteRead, true, "the list leaves them out; "+get+" returns them",
			"flagsync reads each flag the list leaves incomplete with one GET: a read costs one call per flag more (mind the 1,000 calls per hour, and a daemon's schedule)", "")
	case d.st.getComplete != nil:
		d.holds(RowCompleteRead, false, "neither the list nor "+get+" returns environmentConfigurations and variations",
			"flagsync stops every sync before planning (it never plans against an incomplete read)", reportAdvice)
	}
}

// rateRows records the rate-limit headers seen and, when the API says how many calls are
// left, whether the second token request counted.
func (d *Doctor) rateRows() {
	exs := d.rec.all()
	seen := map[string]string{}
	var names []string
	answers := 0
	for _, ex := range exs {
		if len(ex.rate) > 0 {
			answers++
		}
		for k, v := range ex.rate {
			if _, ok := seen[k]; !ok {
				names = append(names, k)
			}
			seen[k] = strings.Join(v, ", ")
		}
	}
	slices.Sort(names)
	if len(exs) == 0 {
		return
	}
	if len(names) == 0 {
		d.reading(RowRateLimitHeaders, "none", fmt.Sprintf("none on %d answers", len(exs)),
			"flagsync's own budget (50 per 10 s, 1,000 per hour) keeps it under the limit; after a 429 it backs off from 10 s, doubling")
	} else {
		var parts []string
		for _, n := range names {
			parts = append(parts, n+": "+seen[n])
		}
		d.reading(RowRateLimitHeaders, "present", fmt.Sprintf("on %d of %d answers (last values): %s", answers, len(exs), strings.Join(parts, ", ")),
			"flagsync honours Retry-After on a 429; its own budget (--rate-10s, --rate-hour) keeps it under the limit, and the other headers are informational")
	}
	d.tokenCountedRow(exs)
}

// remaining reads how many calls an answer says are left, if it says.
func remaining(ex exchange) (int, bool) {
	for k, v := range ex.rate {
		lk := strings.ToLower(k)
		if strings.HasSuffix(lk, "-remaining") && len(v) > 0 {
			if n, err := strconv.Atoi(strings.TrimSpace(strings.Split(v[0], ",")[0])); err == nil {
				return n, true
			}
		}
	}
	return 0, false
}

func (d *Doctor) tokenCountedRow(exs []exchange) {
	const (
		unknown      = "flagsync does not charge token requests to its budget by default (" + kclient.EnvTokenCounts + "=no): a daemon starting on 5,000 flags needs the token and 50 list pages, which then fit one 10-second window"
		unknownToDo  = "if flagsync ever meets a 429 it did not cause itself, set " + kclient.EnvTokenCounts + "=auto (token requests are charged from the first 429 on) or yes"
		counted      = "token requests count against the account's limits, and flagsync does not charge them to its budget unless told: a sync that fetches a token could meet a 429 at the limit"
		countedToDo  = "set " + kclient.EnvTokenCounts + "=yes for every flagsync using this account (or auto: charged from the first 429 on)"
		notCountedOK = "as flagsync assumes by default (" + kclient.EnvTokenCounts + "=no): its budget charges resource calls only"
	)
	m := d.st.tokenMark
	if m < 1 || m+1 >= len(exs) || exs[m].path != tokenEndpoint || exs[m-1].path == tokenEndpoint || exs[m+1].path == tokenEndpoint {
		d.reading(RowTokenCounted, "unknown", "unknown: not probed around a second token request", unknown)
		d.rows[RowTokenCounted].Advice = unknownToDo
		return
	}
	before, ok1 := remaining(exs[m-1])
	after, ok2 := remaining(exs[m+1])
	if !ok1 || !ok2 {
		d.reading(RowTokenCounted, "unknown", "unknown: the API says nothing of the calls left, and telling it from 429s would take more than the 25 calls of the budget", unknown)
		d.rows[RowTokenCounted].Advice = unknownToDo
		return
	}
	switch before - after {
	case 2:
		d.reading(RowTokenCounted, "counted", fmt.Sprintf("counted: the calls left went from %d to %d across a token request and one call", before, after), counted)
		d.rows[RowTokenCounted].Advice = countedToDo
	case 1:
		d.reading(RowTokenCounted, "not-counted", fmt.Sprintf("not counted: the calls left went from %d to %d across a token request and one call", before, after), notCountedOK)
	default:
		d.reading(RowTokenCounted, "unknown", fmt.Sprintf("unknown: the calls left went from %d to %d across a token request and one call (other traffic on the account?)", before, after), unknown)
		d.rows[RowTokenCounted].Advice = unknownToDo
	}
}

// --- helpers --------------------------------------------------------------------------

// statusText is "400: message" for an API error.
func statusText(e *api.Error) string {
	if e.Message == "" {
		return strconv.Itoa(e.Status)
	}
	return strconv.Itoa(e.Status) + ": " + e.Message
}

func ruleNames(rules []kmodel.Rule) []string {
	out := make([]string, 0, len(rules))
	for _, r := range rules {
		out = append(out, r.Name)
	}
	return out
}

func findRule(rules []kmodel.Rule, name string) *kmodel.Rule {
	for i := range rules {
		if rules[i].Name == name {
			return &rules[i]
		}
	}
	return nil
}

func findRuleByID(rules []kmodel.Rule, id int64) *kmodel.Rule {
	for i := range rules {
		if rules[i].ID == id {
			return &rules[i]
		}
	}
	return nil
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}
