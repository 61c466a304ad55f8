package kdoctor

// FormatVersion is the version of the JSON report's shape (Report). It changes only when
// a field is removed or changes meaning; new fields and new rows keep it.
const FormatVersion = 1

// Kind says whether flagsync depends on a row's behaviour or only detects it.
type Kind string

const (
	// Relied rows are behaviours flagsync depends on: each must hold, or doctor exits 1.
	Relied Kind = "relied"
	// Reading rows are readings of what the docs leave open: flagsync detects them and
	// works under each, so they never fail.
	Reading Kind = "reading"
)

// Report is the result of one doctor run; its JSON form is the `--format json` output.
type Report struct {
	FormatVersion int    `json:"format_version"`
	Site          string `json:"site"`
	CallsBudget   int    `json:"calls_budget"` // the most API calls the run may make, token requests included
	CallsUsed     int    `json:"calls_used"`   // the API calls it made, counted by the client's observer
	ScratchFlag   string `json:"scratch_flag"` // the feature key of the scratch flag
	Archived      bool   `json:"archived"`     // the scratch flag was archived, and a read (or the archive's answer) says so
	OK            bool   `json:"ok"`           // every relied-upon row holds: the exit code is 0
	Rows          []Row  `json:"rows"`
}

// Row is one behaviour, what flagsync expects of it and what the account did.
type Row struct {
	ID        string `json:"id"`
	Kind      Kind   `json:"kind"`
	Behaviour string `json:"behaviour"`
	Expected  string `json:"expected"`
	Observed  string `json:"observed"`
	// Holds is true or false for a relied-upon behaviour that was probed; nil for a
	// reading (informational) and for a behaviour that could not be probed.
	Holds *bool `json:"holds"`
	// Reading is a short machine-readable name of what a reading row observed (for
	// example "accepted", "refused", "ignored"); empty when it was not probed.
	Reading     string `json:"reading,omitempty"`
	Consequence string `json:"consequence"`
	Advice      string `json:"advice"`

	// probed is false when the row could not be probed (budget, cancellation, an earlier
	// failure); inconclusive marks a relied row the account gave nothing to probe with.
	probed       bool
	inconclusive bool
}

// Failed reports whether the row is a relied-upon behaviour that does not hold, or
// that could not be probed for a reason other than the account having nothing to
// probe it with.
func (r *Row) Failed() bool {
	if r.Kind != Relied {
		return false
	}
	if r.Holds != nil {
		return !*r.Holds
	}
	return !r.inconclusive
}

// Row returns the row with the given id, or nil.
func (rep *Report) Row(id string) *Row {
	for i := range rep.Rows {
		if rep.Rows[i].ID == id {
			return &rep.Rows[i]
		}
	}
	return nil
}

// Failures returns the relied-upon rows that do not hold or were not probed.
func (rep *Report) Failures() []Row {
	var out []Row
	for _, r := range rep.Rows {
		if r.Failed() {
			out = append(out, r)
		}
	}
	return out
}

// Row ids. They are stable: docs link to them and the JSON report carries them.
const (
	RowToken            = "token"
	RowTokenSecond      = "token-second"
	RowTokenOld         = "token-old"
	RowCreate           = "create-environments"
	RowReleaseInstant   = "release-instant"
	RowReleaseShape     = "release-shape"
	RowOptionalFields   = "optional-fields"
	RowListPaging       = "list-paging"
	RowListPageCount    = "list-page-count"
	RowCompleteRead     = "complete-read"
	RowEnvPatchMinimal  = "env-patch-minimal"
	RowEnvPatchRequired = "env-patch-required"
	RowRuleIDsKept      = "rule-ids-kept"
	RowRuleOrder        = "rule-order"
	RowReorder          = "reorder"
	RowRulePatchPath    = "rule-patch-path"
	RowSearchSort       = "search-sort"
	RowArchive          = "archive"
	RowRateLimitHeaders = "rate-limit-headers"
	RowTokenCounted     = "token-rate-counted"
)

// definition is what a row says before it is probed.
type definition struct {
	id        string
	kind      Kind
	behaviour string
	expected  string
}

// definitions lists every row, in the order of the report.
var definitions = []definition{
	{RowToken, Relied, "token (client-credentials grant)",
		"POST /oauth/token gives a bearer token the API accepts"},
	{RowTokenSecond, Relied, "token renewal: a second token",
		"a new token works while the first is still valid (flagsync renews before expiry and after a 401)"},
	{RowTokenOld, Reading, "the first token, once a second was issued",
		"still works, or answers 401 (flagsync then renews once and resends)"},
	{RowCreate, Relied, "create with environments",
		"POST /feature-flags with 2 environments and 2 rules (rollback condition, release window) creates them as sent, tagged " + ownershipTag},
	{RowReleaseInstant, Relied, "release window read back",
		"the instants written (a local time in timeZone)"},
	{RowReleaseShape, Reading, "release window read shape",
		"the local time as written, or an instant with a zone (flagsync compares instants)"},
	{RowOptionalFields, Reading, "list optionalFields beyond tags,description",
		"variables, variations, secondaryGoalIds, environmentConfigurations accepted; or refused (400) or ignored"},
	{RowListPaging, Relied, "list paging (page, perPage=1)",
		"page 2 holds the next flag, not page 1 again"},
	{RowListPageCount, Reading, "page-count header of the list",
		"X-Pagination-Page-Count, or none (flagsync then stops at a short page)"},
	{RowCompleteRead, Relied, "reading complete flags",
		"environmentConfigurations and variations from the list, else from GET /feature-flags/{site}/{key}"},
	{RowEnvPatchMinimal, Reading, "environment PATCH without featureKey, name, integrations, rolloutRules",
		"accepted (200) or refused (400): flagsync never sends it"},
	{RowEnvPatchRequired, Relied, "environment PATCH with featureKey, name, integrations, rolloutRules",
		"200, and the change applied"},
	{RowRuleIDsKept, Relied, "a rule sent with its id keeps it",
		"the same rule, experiment and rollback-condition ids after every patch"},
	{RowRuleOrder, Reading, "rule order: a reorder sent without orderIndex",
		"takes effect (order is the array position) or not (order is orderIndex)"},
	{RowReorder, Relied, "a reorder sent with orderIndex = position",
		"reads back in the new order"},
	{RowRulePatchPath, Reading, "rule PATCH by id (tutorial step 3)",
		"PATCH /feature-flags/rules/{id} (documented) or /rules/{id} (the tutorial's curl); flagsync does not use it"},
	{RowSearchSort, Reading, "POST /feature-flags/search sorted by dateModified DESC",
		"supported (the daemon's drift check reads what changed in one call), or refused (it reads the whole list)"},
	{RowArchive, Relied, "archive (PATCH isArchived: true)",
		"200, and a read shows the flag archived"},
	{RowRateLimitHeaders, Reading, "rate-limit headers on any answer",
		"none documented (X-RateLimit-*, Retry-After); flagsync keeps its own budget and honours Retry-After"},
	{RowTokenCounted, Reading, "token requests in the 50 per 10 s limit",
		"not documented; flagsync charges them to its budget only with KAMELEOON_TOKEN_COUNTS=yes (or auto, after a 429)"},
}
