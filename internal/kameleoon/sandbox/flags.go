package ksandbox

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/flagsync/flagsync/internal/fakeapi"
)

// Paging of the list and search endpoints. The maximum page size is not documented: a
// larger perPage is clamped to maxPerPage (the header X-Pagination-Per-Page says what was
// used), as Spring and Yii based APIs do.
const (
	defaultPerPage = 20
	maxPerPage     = 100
)

// OptionalFields are the fields the list, search and get endpoints return empty ([] or
// "") unless named in the optionalFields query parameter. Create and patch responses
// always carry every field.
var OptionalFields = []string{"tags", "description", "variables", "variations", "secondaryGoalIds", "environmentConfigurations"}

// dateLayout is how dates read back: UTC, seconds, no zone (the vendor tutorial).
const dateLayout = "2006-01-02T15:04:05"

// --- rendering --------------------------------------------------------------------

type fieldSet map[string]bool

func allFields() fieldSet {
	fs := fieldSet{}
	for _, f := range OptionalFields {
		fs[f] = true
	}
	return fs
}

// parseOptionalFields reads the optionalFields query parameter (a comma list, which may
// repeat). By default every name of OptionalFields may be asked for and any other is a
// 400; the optional-fields variants accept only DocumentedOptionalFields, refusing the
// others with a 400 or ignoring them.
func (s *Server) parseOptionalFields(q url.Values) (fieldSet, error) {
	mode := s.optionalFieldsMode()
	known := OptionalFields
	if mode != optionalFieldsKnown {
		known = DocumentedOptionalFields
	}
	fs := fieldSet{}
	for _, v := range q["optionalFields"] {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			if !slices.Contains(known, name) {
				if mode == optionalFieldsIgnoredMode {
					continue
				}
				return nil, fmt.Errorf("optionalFields: unknown field %q (known: %s)", name, strings.Join(known, ","))
			}
			fs[name] = true
		}
	}
	return fs, nil
}

// render is f as the API returns it, with the optional fields not in fs emptied.
func render(f *flagDoc, fs fieldSet) flagDoc {
	out := *f
	if !fs["tags"] {
		out.Tags = []string{}
	}
	if !fs["description"] {
		out.Description = ""
	}
	if !fs["variables"] {
		out.Variables = []variable{}
	}
	if !fs["variations"] {
		out.Variations = []variation{}
	}
	if !fs["secondaryGoalIds"] {
		out.SecondaryGoalIDs = []int64{}
	}
	if !fs["environmentConfigurations"] {
		out.EnvironmentConfigurations = []environment{}
	}
	return out
}

// listed is f as the list and search endpoints return it. By default and with
// optional-fields-refused, that is render's; with optional-fields-ignored alone, the
// optional fields that are not documented are left out of the object entirely.
func (s *Server) listed(f *flagDoc, fs fieldSet) any {
	out := render(f, fs)
	if s.optionalFieldsMode() != optionalFieldsIgnoredMode {
		return out
	}
	m := toGeneric(out)
	for _, name := range OptionalFields {
		if !slices.Contains(DocumentedOptionalFields, name) {
			delete(m, name)
		}
	}
	return m
}

// fetched is f as the single-flag GET returns it: render's by default; with either
// optional-fields variant the whole flag, whatever was asked for.
func (s *Server) fetched(f *flagDoc, fs fieldSet) flagDoc {
	if s.optionalFieldsMode() != optionalFieldsKnown {
		return render(f, allFields())
	}
	return render(f, fs)
}

func flagResponse(status int, f *flagDoc) response {
	return fakeapi.JSON(status, render(f, allFields()))
}

func flagNotFound(ref flagRef) response {
	return errorResponse(http.StatusNotFound, "feature flag %s/%s not found", ref.siteCode, ref.featureKey)
}

// --- reads ------------------------------------------------------------------------

type paging struct{ page, perPage int }

func parsePaging(q url.Values) (paging, error) {
	pg := paging{page: 1, perPage: defaultPerPage}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"page", &pg.page}, {"perPage", &pg.perPage}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return pg, fmt.Errorf("%s: must be a positive integer, got %q", p.name, v)
			}
			*p.dst = n
		}
	}
	return pg, nil
}

// pageResponse answers one page of flags (a bare JSON array) with the paging headers.
// A page past the last one is an empty array.
func (s *Server) pageResponse(flags []*flagDoc, pg paging, fs fieldSet) response {
	per := min(pg.perPage, maxPerPage)
	total := len(flags)
	start := min((pg.page-1)*per, total)
	end := min(start+per, total)
	out := make([]any, 0, end-start)
	for _, f := range flags[start:end] {
		out = append(out, s.listed(f, fs))
	}
	resp := fakeapi.JSON(http.StatusOK, out)
	resp.Header.Set("X-Pagination-Total-Count", strconv.Itoa(total))
	resp.Header.Set("X-Pagination-Page-Count", strconv.Itoa((total+per-1)/per))
	resp.Header.Set("X-Pagination-Current-Page", strconv.Itoa(pg.page))
	resp.Header.Set("X-Pagination-Per-Page", strconv.Itoa(per))
	return resp
}

// sortedFlags returns the stored flags (of one site if siteCode is set) by id.
func (s *Server) sortedFlags(siteCode string) []*flagDoc {
	out := make([]*flagDoc, 0, len(s.flags))
	for _, f := range s.flags {
		if siteCode == "" || f.SiteCode == siteCode {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b *flagDoc) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// listFlags answers GET /feature-flags: archived flags included, ordered by id,
// optionally of one site (query siteCode).
func (s *Server) listFlags(r *http.Request) response {
	q := r.URL.Query()
	pg, err := parsePaging(q)
	if err != nil {
		return errorResponse(http.StatusBadRequest, "%v", err)
	}
	fs, err := s.parseOptionalFields(q)
	if err != nil {
		return errorResponse(http.StatusBadRequest, "%v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pageResponse(s.sortedFlags(q.Get("siteCode")), pg, fs)
}

func (s *Server) getFlag(r *http.Request, ref flagRef) response {
	fs, err := s.parseOptionalFields(r.URL.Query())
	if err != nil {
		return errorResponse(http.StatusBadRequest, "%v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.flags[ref]
	if !ok {
		return flagNotFound(ref)
	}
	return fakeapi.JSON(http.StatusOK, s.fetched(f, fs))
}

// --- search -----------------------------------------------------------------------

type searchBody struct {
	Filter  json.RawMessage `json:"filter"`
	Page    *int            `json:"page"`
	PerPage *int            `json:"perPage"`
	Sort    json.RawMessage `json:"sort"`
}

type searchFilter struct {
	Field      string            `json:"field"`
	Operator   string            `json:"operator"`
	Parameters []json.RawMessage `json:"parameters"`
}

type searchSort struct {
	Field     string `json:"field"`
	Direction string `json:"direction"`
}

var (
	searchFields    = []string{"id", "siteCode", "featureKey", "name", "archived", "tags"}
	searchOperators = []string{"EQUAL", "NOT_EQUAL", "IN", "NOT_IN", "LIKE"}
	sortFields      = []string{"id", "siteCode", "featureKey", "name", "dateCreated", "dateModified"}
)

// objectOrArray decodes a JSON value that may be one object or an array of them.
func objectOrArray[T any](raw json.RawMessage, name string) ([]T, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '[' {
		var out []T
		if err := decodeStrict(raw, &out); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		return out, nil
	}
	var one T
	if err := decodeStrict(raw, &one); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return []T{one}, nil
}

// parseSearch reads a search body: its paging (over pg), its filters as predicates and
// its sorts; bad is the answer to a body that does not parse or check.
func parseSearch(r *http.Request, body []byte, pg *paging) (preds []func(*flagDoc) bool, sorts []searchSort, bad *response) {
	fail := func(format string, args ...any) ([]func(*flagDoc) bool, []searchSort, *response) {
		resp := errorResponse(http.StatusBadRequest, format, args...)
		return nil, nil, &resp
	}
	var sb searchBody
	if len(bytes.TrimSpace(body)) > 0 {
		if resp, ok := requireJSON(r, false); !ok {
			return nil, nil, &resp
		}
		if err := decodeStrict(body, &sb); err != nil {
			return fail("%v", err)
		}
	}
	if (sb.Page != nil && *sb.Page < 1) || (sb.PerPage != nil && *sb.PerPage < 1) {
		return fail("page and perPage: must be positive integers")
	}
	if sb.Page != nil {
		pg.page = *sb.Page
	}
	if sb.PerPage != nil {
		pg.perPage = *sb.PerPage
	}
	filters, err := objectOrArray[searchFilter](sb.Filter, "filter")
	if err != nil {
		return fail("%v", err)
	}
	for i, f := range filters {
		p, err := f.predicate()
		if err != nil {
			return fail("filter[%d]: %v", i, err)
		}
		preds = append(preds, p)
	}
	if sorts, err = objectOrArray[searchSort](sb.Sort, "sort"); err != nil {
		return fail("%v", err)
	}
	for i, so := range sorts {
		if !slices.Contains(sortFields, so.Field) {
			return fail("sort[%d].field: %q is not one of %s", i, so.Field, strings.Join(sortFields, ", "))
		}
		if d := strings.ToUpper(so.Direction); d != "" && d != "ASC" && d != "DESC" {
			return fail("sort[%d].direction: %q is not ASC or DESC", i, so.Direction)
		}
	}
	return preds, sorts, nil
}

// searchFlags answers POST /feature-flags/search. filter is one {field, operator,
// parameters} object or an array of them (all must match); sort is one {field, direction}
// or an array. page and perPage in the body override the query.
func (s *Server) searchFlags(r *http.Request, body []byte) response {
	q := r.URL.Query()
	pg, err := parsePaging(q)
	if err != nil {
		return errorResponse(http.StatusBadRequest, "%v", err)
	}
	fs, err := s.parseOptionalFields(q)
	if err != nil {
		return errorResponse(http.StatusBadRequest, "%v", err)
	}
	preds, sorts, bad := parseSearch(r, body, &pg)
	if bad != nil {
		return *bad
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*flagDoc
	for _, f := range s.sortedFlags(q.Get("siteCode")) {
		if !slices.ContainsFunc(preds, func(p func(*flagDoc) bool) bool { return !p(f) }) {
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b *flagDoc) int {
		for _, so := range sorts {
			c := strings.Compare(sortKey(a, so.Field), sortKey(b, so.Field))
			if so.Field == "id" {
				c = cmp.Compare(a.ID, b.ID)
			}
			if strings.EqualFold(so.Direction, "DESC") {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
	return s.pageResponse(out, pg, fs)
}

func sortKey(f *flagDoc, field string) string {
	switch field {
	case "siteCode":
		return f.SiteCode
	case "featureKey":
		return f.FeatureKey
	case "name":
		return f.Name
	case "dateCreated":
		return f.DateCreated
	case "dateModified":
		return f.DateModified
	}
	return ""
}

// fieldValues are the values of a flag's field a filter compares with.
func fieldValues(f *flagDoc, field string) []string {
	switch field {
	case "id":
		return []string{strconv.FormatInt(f.ID, 10)}
	case "archived":
		return []string{strconv.FormatBool(f.Archived)}
	case "tags":
		return f.Tags
	}
	return []string{sortKey(f, field)}
}

// predicate compiles the filter. Parameters may be strings, numbers or booleans and are
// compared as text; LIKE is case-insensitive, with % and _ as SQL wildcards when the
// pattern has any, else a substring match.
func (sf searchFilter) predicate() (func(*flagDoc) bool, error) {
	if !slices.Contains(searchFields, sf.Field) {
		return nil, fmt.Errorf("field %q is not one of %s", sf.Field, strings.Join(searchFields, ", "))
	}
	op := strings.ToUpper(sf.Operator)
	if !slices.Contains(searchOperators, op) {
		return nil, fmt.Errorf("operator %q is not one of %s", sf.Operator, strings.Join(searchOperators, ", "))
	}
	params := make([]string, 0, len(sf.Parameters))
	for _, raw := range sf.Parameters {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("parameters: %v", err)
		}
		switch x := v.(type) {
		case string:
			params = append(params, x)
		case bool:
			params = append(params, strconv.FormatBool(x))
		case float64:
			params = append(params, string(bytes.TrimSpace(raw)))
		default:
			return nil, fmt.Errorf("parameters: must be strings, numbers or booleans")
		}
	}
	switch {
	case (op == "IN" || op == "NOT_IN") && len(params) == 0:
		return nil, fmt.Errorf("operator %s needs at least one parameter", op)
	case op != "IN" && op != "NOT_IN" && len(params) != 1:
		return nil, fmt.Errorf("operator %s needs exactly one parameter, got %d", op, len(params))
	}
	anyValue := func(f *flagDoc, ok func(v string) bool) bool {
		return slices.ContainsFunc(fieldValues(f, sf.Field), ok)
	}
	switch op {
	case "EQUAL", "IN":
		return func(f *flagDoc) bool { return anyValue(f, func(v string) bool { return slices.Contains(params, v) }) }, nil
	case "NOT_EQUAL", "NOT_IN":
		return func(f *flagDoc) bool { return !anyValue(f, func(v string) bool { return slices.Contains(params, v) }) }, nil
	}
	re := likePattern(params[0])
	return func(f *flagDoc) bool { return anyValue(f, re.MatchString) }, nil
}

func likePattern(p string) *regexp.Regexp {
	if !strings.ContainsAny(p, "%_") {
		return regexp.MustCompile("(?is)" + regexp.QuoteMeta(p))
	}
	var b strings.Builder
	b.WriteString("(?is)^")
	for _, r := range p {
		switch r {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// --- writes -----------------------------------------------------------------------

// requireJSON checks a write's Content-Type: application/json, or for a patch also
// application/merge-patch+json.
func requireJSON(r *http.Request, mergePatch bool) (response, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && (mt == "application/json" || (mergePatch && mt == "application/merge-patch+json")) {
		return response{}, true
	}
	want := "application/json"
	if mergePatch {
		want += " or application/merge-patch+json"
	}
	return errorResponse(http.StatusUnsupportedMediaType, "Content-Type must be %s, got %q", want, r.Header.Get("Content-Type")), false
}

func (s *Server) builder(ids *idCounters) *builder {
	return &builder{envs: s.envs, ids: ids, orderIndex: s.strict[OrderIndex], zonedDates: s.strict[ZonedDates]}
}

func (s *Server) stampNow() string { return s.now().UTC().Format(dateLayout) }

// createFlag answers POST /feature-flags.
func (s *Server) createFlag(r *http.Request, body []byte) response {
	if resp, ok := requireJSON(r, false); !ok {
		return resp
	}
	var w wFlag
	if err := decodeStrict(body, &w); err != nil {
		return errorResponse(http.StatusBadRequest, "%v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.ids
	b := s.builder(&ids)
	f := b.flag(&w, nil)
	s.validate(f, &b.probs)
	if len(b.probs) > 0 {
		return errorResponse(http.StatusBadRequest, "%s", b.probs.message())
	}
	ref := flagRef{f.SiteCode, f.FeatureKey}
	if _, exists := s.flags[ref]; exists {
		return errorResponse(http.StatusConflict, "feature flag %s/%s already exists", ref.siteCode, ref.featureKey)
	}
	stamp(f, nil, s.stampNow())
	if err := s.commit(ref, f, ids); err != nil {
		return errorResponse(http.StatusInternalServerError, "%v", err)
	}
	resp := flagResponse(http.StatusCreated, f)
	resp.Header.Set("Location", "/feature-flags/"+url.PathEscape(f.SiteCode)+"/"+url.PathEscape(f.FeatureKey))
	return resp
}

// patchFlag answers PATCH /feature-flags/{siteCode}/{featureKey}: a JSON merge patch of
// the flag, where environmentConfigurations is merged by environmentKey.
func (s *Server) patchFlag(r *http.Request, ref flagRef, body []byte) response {
	if resp, ok := requireJSON(r, true); !ok {
		return resp
	}
	patch, err := decodeObject(body)
	if err != nil {
		return errorResponse(http.StatusBadRequest, "%v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, ok := s.flags[ref]
	if !ok {
		return flagNotFound(ref)
	}
	return s.update(prev, func(doc map[string]any, p *problems) { mergeFlagPatch(doc, patch, p) })
}

// patchEnvironment answers PATCH /feature-flags/{siteCode}/{featureKey}/{environmentKey}:
// the environment's fields merge into that environment, every other field into the flag.
func (s *Server) patchEnvironment(r *http.Request, ref flagRef, envKey string, body []byte) response {
	if resp, ok := requireJSON(r, true); !ok {
		return resp
	}
	patch, err := decodeObject(body)
	if err != nil {
		return errorResponse(http.StatusBadRequest, "%v", err)
	}
	if _, ok := patch["environmentConfigurations"]; ok {
		return errorResponse(http.StatusBadRequest, "environmentConfigurations: not accepted in an environment patch; patch the flag (PATCH /feature-flags/{siteCode}/{featureKey}) or send the environment's fields at top level")
	}
	if s.strict[EnvPatchRequired] {
		if missing := missingRequired(patch); len(missing) > 0 {
			return errorResponse(http.StatusBadRequest, "%s: required in an environment patch (every environment patch must carry %s)",
				strings.Join(missing, ", "), strings.Join(envPatchRequired, ", "))
		}
	}
	if k, ok := patch["environmentKey"]; ok {
		if k != envKey {
			return errorResponse(http.StatusBadRequest, "environmentKey: %v does not match the environment in the path (%q)", k, envKey)
		}
		delete(patch, "environmentKey")
	}
	envPatch := map[string]any{"environmentKey": envKey}
	for _, k := range []string{"featureEnabled", "defaultVariationKey", "rolloutRules", "integrations"} {
		if v, ok := patch[k]; ok {
			envPatch[k] = v
			delete(patch, k)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, ok := s.flags[ref]
	if !ok {
		return flagNotFound(ref)
	}
	if prev.environment(envKey) == nil {
		return errorResponse(http.StatusNotFound, "environment %q not found (the project's environments are %s)", envKey, strings.Join(s.envs, ", "))
	}
	return s.update(prev, func(doc map[string]any, p *problems) {
		mergeFlagPatch(doc, patch, p)
		mergeEnvironmentPatches(doc, []any{envPatch}, p)
	})
}

// patchRule answers PATCH /feature-flags/rules/{ruleId} (and /rules/{ruleId}): a JSON
// merge patch of one rule. The answer is the whole flag, as in the vendor tutorial.
func (s *Server) patchRule(r *http.Request, id int64, body []byte) response {
	if resp, ok := requireJSON(r, true); !ok {
		return resp
	}
	patch, err := decodeObject(body)
	if err != nil {
		return errorResponse(http.StatusBadRequest, "%v", err)
	}
	if v, ok := patch["id"]; ok {
		if n, isNum := v.(json.Number); !isNum || n.String() != strconv.FormatInt(id, 10) {
			return errorResponse(http.StatusBadRequest, "id: %v does not match the rule in the path (%d)", v, id)
		}
		delete(patch, "id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var prev *flagDoc
	envIdx, ruleIdx := -1, -1
	for _, f := range s.flags {
		for i, e := range f.EnvironmentConfigurations {
			for j, ru := range e.RolloutRules {
				if ru.ID == id {
					prev, envIdx, ruleIdx = f, i, j
				}
			}
		}
	}
	if prev == nil {
		return errorResponse(http.StatusNotFound, "rule %d not found", id)
	}
	return s.update(prev, func(doc map[string]any, _ *problems) {
		env := doc["environmentConfigurations"].([]any)[envIdx].(map[string]any)
		rules := env["rolloutRules"].([]any)
		merged := mergePatch(rules[ruleIdx], patch).(map[string]any)
		merged["id"] = json.Number(strconv.FormatInt(id, 10))
		rules[ruleIdx] = merged
	})
}

// mergeFlagPatch merges patch into the flag document doc: every member the RFC 7396 way,
// except environmentConfigurations, whose elements merge into the environment with the
// same environmentKey (the others stay as they are).
func mergeFlagPatch(doc, patch map[string]any, p *problems) {
	for k, v := range patch {
		if k == "environmentConfigurations" {
			continue
		}
		if v == nil {
			delete(doc, k)
			continue
		}
		doc[k] = mergePatch(doc[k], v)
	}
	envs, ok := patch["environmentConfigurations"]
	if !ok {
		return
	}
	list, isList := envs.([]any)
	if !isList {
		p.add("environmentConfigurations", "must be an array of environments, each with its environmentKey (environments cannot be removed)")
		return
	}
	mergeEnvironmentPatches(doc, list, p)
}

func mergeEnvironmentPatches(doc map[string]any, list []any, p *problems) {
	envs, _ := doc["environmentConfigurations"].([]any)
	for i, el := range list {
		path := fmt.Sprintf("environmentConfigurations[%d]", i)
		obj, ok := el.(map[string]any)
		if !ok {
			p.add(path, "must be an object")
			continue
		}
		key, _ := obj["environmentKey"].(string)
		if key == "" {
			p.add(path+".environmentKey", "required, a string")
			continue
		}
		idx := slices.IndexFunc(envs, func(e any) bool { return e.(map[string]any)["environmentKey"] == key })
		if idx < 0 {
			p.add(path+".environmentKey", "unknown environment %q", key)
			continue
		}
		envs[idx] = mergePatch(envs[idx], obj)
	}
}

// update applies a change to the write view of prev and stores the result if the whole
// flag is valid; otherwise nothing changes. It answers 200 with the flag. Callers hold mu.
func (s *Server) update(prev *flagDoc, change func(doc map[string]any, p *problems)) response {
	ids := s.ids
	b := s.builder(&ids)
	doc := toGeneric(writeView(prev))
	change(doc, &b.probs)
	if len(b.probs) > 0 {
		return errorResponse(http.StatusBadRequest, "%s", b.probs.message())
	}
	var w wFlag
	if err := decodeGeneric(doc, &w); err != nil {
		return errorResponse(http.StatusBadRequest, "%v", err)
	}
	next := b.flag(&w, prev)
	if next.SiteCode != prev.SiteCode {
		b.probs.add("siteCode", "cannot be changed (it is %q)", prev.SiteCode)
	}
	if next.FeatureKey != prev.FeatureKey {
		b.probs.add("featureKey", "cannot be changed (it is %q)", prev.FeatureKey)
	}
	s.validate(next, &b.probs)
	if len(b.probs) > 0 {
		return errorResponse(http.StatusBadRequest, "%s", b.probs.message())
	}
	if stamp(next, prev, s.stampNow()) {
		if err := s.commit(flagRef{prev.SiteCode, prev.FeatureKey}, next, ids); err != nil {
			return errorResponse(http.StatusInternalServerError, "%v", err)
		}
		return flagResponse(http.StatusOK, next)
	}
	return flagResponse(http.StatusOK, prev) // nothing changed: dates stay
}

// deleteFlag answers DELETE /feature-flags/{siteCode}/{featureKey}.
func (s *Server) deleteFlag(ref flagRef) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.flags[ref]; !ok {
		return flagNotFound(ref)
	}
	if err := s.commit(ref, nil, s.ids); err != nil {
		return errorResponse(http.StatusInternalServerError, "%v", err)
	}
	return response{Status: http.StatusNoContent}
}

// commit stores next under ref (nil deletes it) and the id counters, writing the state
// file first: when it cannot be written, nothing changes. Callers hold mu.
func (s *Server) commit(ref flagRef, next *flagDoc, ids idCounters) error {
	flags := maps.Clone(s.flags)
	if next == nil {
		delete(flags, ref)
	} else {
		flags[ref] = next
	}
	if s.statePath != "" {
		if err := s.save(flags, ids); err != nil {
			return err
		}
	}
	s.flags, s.ids = flags, ids
	return nil
}

// stamp sets next's dates from prev's and now, and reports whether next differs from
// prev. dateModified moves on any change, dateContentModified on any change but
// archiving, an environment's dateModified when that environment changed.
func stamp(next, prev *flagDoc, now string) bool {
	if prev == nil {
		next.DateCreated, next.DateModified, next.DateContentModified = now, now, now
		for i := range next.EnvironmentConfigurations {
			next.EnvironmentConfigurations[i].DateModified = now
		}
		return true
	}
	for i := range next.EnvironmentConfigurations {
		e := &next.EnvironmentConfigurations[i]
		pe := prev.environment(e.EnvironmentKey)
		e.DateModified = now
		if pe != nil && sameJSON(withoutEnvDate(*e), withoutEnvDate(*pe)) {
			e.DateModified = pe.DateModified
		}
	}
	content := !sameJSON(contentOf(next), contentOf(prev))
	if !content && next.Archived == prev.Archived {
		return false
	}
	next.DateModified = now
	if content {
		next.DateContentModified = now
	}
	return true
}

func withoutEnvDate(e environment) environment {
	e.DateModified = ""
	return e
}

// contentOf is f without dates and the archived mark.
func contentOf(f *flagDoc) flagDoc {
	c := *f
	c.DateCreated, c.DateModified, c.DateContentModified, c.Archived = "", "", "", false
	c.EnvironmentConfigurations = make([]environment, len(f.EnvironmentConfigurations))
	for i, e := range f.EnvironmentConfigurations {
		c.EnvironmentConfigurations[i] = withoutEnvDate(e)
	}
	return c
}

func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// --- seeding ----------------------------------------------------------------------

// SetFlagJSON stores a flag given in the read shape (as the API returns it), replacing
// any flag with the same site code and feature key: for drift and export tests. Ids,
// dates, rule `status` (or `state`) and `archived` are kept as given; missing ids and
// dates are filled in, and environments the flag does not list get the defaults. The
// flag must be valid as a create would require, and its ids must not be used by another
// flag. The body's siteCode, if any, must equal siteCode.
func (s *Server) SetFlagJSON(siteCode string, raw []byte) error {
	var w wFlag
	if err := decodeStrict(raw, &w); err != nil {
		return fmt.Errorf("seed flag: %w", err)
	}
	if w.SiteCode == nil {
		w.SiteCode = &siteCode
	}
	if *w.SiteCode != siteCode {
		return fmt.Errorf("seed flag: siteCode %q in the body does not match %q", *w.SiteCode, siteCode)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.ids
	f, err := s.seed(&w, &ids, s.flags)
	if err != nil {
		return err
	}
	return s.commit(flagRef{f.SiteCode, f.FeatureKey}, f, ids)
}

// seed builds and checks a read-shape flag against the other stored flags. Callers hold mu.
func (s *Server) seed(w *wFlag, ids *idCounters, flags map[flagRef]*flagDoc) (*flagDoc, error) {
	b := &builder{envs: s.envs, ids: ids, seed: true, orderIndex: s.strict[OrderIndex]}
	f := b.flag(w, nil)
	s.validate(f, &b.probs)
	ref := flagRef{f.SiteCode, f.FeatureKey}
	ruleIDs := map[int64]bool{}
	for r, other := range flags {
		if r == ref {
			continue
		}
		if other.ID == f.ID {
			b.probs.add("id", "flag id %d is used by %s/%s", f.ID, r.siteCode, r.featureKey)
		}
		for _, e := range other.EnvironmentConfigurations {
			for _, ru := range e.RolloutRules {
				ruleIDs[ru.ID] = true
			}
		}
	}
	for _, e := range f.EnvironmentConfigurations {
		for _, ru := range e.RolloutRules {
			if ruleIDs[ru.ID] {
				b.probs.add("environmentConfigurations["+e.EnvironmentKey+"]", "rule id %d is used by another flag or rule", ru.ID)
			}
			ruleIDs[ru.ID] = true
		}
	}
	if len(b.probs) > 0 {
		return nil, fmt.Errorf("seed flag %s/%s: %s", f.SiteCode, f.FeatureKey, b.probs.message())
	}
	now := s.stampNow()
	for _, d := range []*string{&f.DateCreated, &f.DateModified, &f.DateContentModified} {
		if *d == "" {
			*d = now
		}
	}
	for i := range f.EnvironmentConfigurations {
		if f.EnvironmentConfigurations[i].DateModified == "" {
			f.EnvironmentConfigurations[i].DateModified = now
		}
	}
	ids.seen(f)
	return f, nil
}

// FlagJSON returns a stored flag in the read shape with every field, and whether it exists.
func (s *Server) FlagJSON(siteCode, featureKey string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.flags[flagRef{siteCode, featureKey}]
	if !ok {
		return nil, false
	}
	b, err := json.Marshal(render(f, allFields()))
	if err != nil {
		return nil, false
	}
	return b, true
}
