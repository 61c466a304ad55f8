package kdoctor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
)

// TestEveryReading runs doctor against the sandbox in the default reading and in each
// of sandbox.Readings(): every behaviour flagsync relies on holds in each (flagsync
// tolerates them all), and each reading row names the variant the sandbox follows.
func TestEveryReading(t *testing.T) {
	for _, rd := range ksandbox.Readings() {
		t.Run(rd.Name, func(t *testing.T) {
			h := newHarness(t, ksandbox.Options{Strict: rd.Strict}, nil)
			h.seed()
			rep := h.run(context.Background(), h.options())
			if !rep.OK {
				t.Fatalf("not OK in reading %s:\n%s", rd.Name, describe(rep))
			}
			rows := rowsByID(rep)
			for _, r := range rep.Rows {
				if r.Kind == Relied && (r.Holds == nil || !*r.Holds) {
					t.Errorf("relied-upon row %s does not hold: %s", r.ID, r.Observed)
				}
				if r.Kind == Reading && (r.Holds != nil || r.Reading == "") {
					t.Errorf("reading row %s: holds %v, reading %q; want null and a reading", r.ID, r.Holds, r.Reading)
				}
			}

			want := map[string]string{
				RowEnvPatchMinimal:  "accepted",
				RowRuleOrder:        "position",
				RowOptionalFields:   "accepted",
				RowReleaseShape:     "local",
				RowTokenOld:         "valid",
				RowRulePatchPath:    "feature-flags-rules",
				RowSearchSort:       "supported",
				RowListPageCount:    "present",
				RowRateLimitHeaders: "none",
				RowTokenCounted:     "unknown",
			}
			if rd.Has(ksandbox.EnvPatchRequired) {
				want[RowEnvPatchMinimal] = "refused"
			}
			if rd.Has(ksandbox.OrderIndex) {
				want[RowRuleOrder] = "order-index"
			}
			switch {
			case rd.Has(ksandbox.OptionalFieldsRefused):
				want[RowOptionalFields] = "refused"
			case rd.Has(ksandbox.OptionalFieldsIgnored):
				want[RowOptionalFields] = "ignored"
			}
			if rd.Has(ksandbox.ZonedDates) {
				want[RowReleaseShape] = "zoned"
			}
			for id, reading := range want {
				if got := rows[id].Reading; got != reading {
					t.Errorf("row %s: reading %q (%s), want %q", id, got, rows[id].Observed, reading)
				}
			}
			if rd.Has(ksandbox.OptionalFieldsRefused) && !strings.HasSuffix(rows[RowOptionalFields].Observed, "one by one: refused variables, variations, secondaryGoalIds, environmentConfigurations, accepted none") {
				t.Errorf("optional-fields observed %q, want the names refused one by one", rows[RowOptionalFields].Observed)
			}
			if rd.Has(ksandbox.EnvPatchRequired) && !strings.HasPrefix(rows[RowEnvPatchMinimal].Observed, "refused (400") {
				t.Errorf("env-patch-minimal observed %q, want it to start with \"refused (400\"", rows[RowEnvPatchMinimal].Observed)
			}
			complete := rows[RowCompleteRead].Observed
			if listed := !rd.Has(ksandbox.OptionalFieldsRefused) && !rd.Has(ksandbox.OptionalFieldsIgnored); listed != (complete == "the list returns them") {
				t.Errorf("complete-read observed %q in reading %s", complete, rd.Name)
			}

			h.assertArchived(rep)
			h.assertCalls(rep)
			var out bytes.Buffer
			if err := rep.WriteText(&out); err != nil {
				t.Fatal(err)
			}
			if line := fmt.Sprintf("API calls used: %d of at most %d", len(h.sb.Calls()), MaxCalls); !strings.Contains(out.String(), line) {
				t.Errorf("text report lacks %q:\n%s", line, out.String())
			}
		})
	}
}

// TestBrokenReliedBehaviours breaks, in front of the sandbox, one behaviour flagsync
// relies on at a time: the matching row fails with a clear consequence, the report is not
// OK (exit 1), and the scratch flag is archived all the same.
func TestBrokenReliedBehaviours(t *testing.T) {
	cases := []struct {
		name        string
		strict      []ksandbox.Variant
		mw          middleware
		row         string
		observed    string // the failing row's observed text contains it
		consequence string // and its consequence
		others      bool   // other relied rows may fail too
	}{
		{
			name: "rule ids dropped on patch",
			mw: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if isEnvPatch(r) {
						rewriteBody(r, func(b []byte) []byte {
							return editRules(b, func(rule map[string]any) {
								delete(rule, "id")
								conds, _ := rule["rollbackConditions"].([]any)
								for _, c := range conds {
									delete(c.(map[string]any), "id")
								}
							})
						})
					}
					next.ServeHTTP(w, r)
				})
			},
			row: RowRuleIDsKept, observed: "came back with id", consequence: "re-create the rules",
		},
		{
			name: "create with environments refused",
			mw: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodPost && r.URL.Path == "/feature-flags" {
						var body bytes.Buffer
						rewriteBody(r, func(b []byte) []byte { body.Write(b); return b })
						if strings.Contains(body.String(), "environmentConfigurations") {
							answer(w, http.StatusBadRequest, `{"message":"environmentConfigurations: not accepted on create","status":400}`)
							return
						}
					}
					next.ServeHTTP(w, r)
				})
			},
			row: RowCreate, observed: "refused (400: environmentConfigurations: not accepted on create)", consequence: "every new flag of the repository would fail",
		},
		{
			name: "environment patch with the required members refused",
			mw: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if isEnvPatch(r) {
						var body bytes.Buffer
						rewriteBody(r, func(b []byte) []byte { body.Write(b); return b })
						if strings.Contains(body.String(), `"featureKey"`) {
							answer(w, http.StatusBadRequest, `{"message":"featureKey: unknown member","status":400}`)
							return
						}
					}
					next.ServeHTTP(w, r)
				})
			},
			row: RowEnvPatchRequired, observed: "refused (400: featureKey: unknown member)", consequence: "the first sync never converges",
			others: true, // no patch that carries rules gets through: ids and reorder cannot be probed
		},
		{
			name:   "orderIndex lost on the way to an API that orders by it",
			strict: []ksandbox.Variant{ksandbox.OrderIndex},
			mw: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if isEnvPatch(r) {
						rewriteBody(r, func(b []byte) []byte {
							return editRules(b, func(rule map[string]any) { delete(rule, "orderIndex") })
						})
					}
					next.ServeHTTP(w, r)
				})
			},
			row: RowReorder, observed: "read back as", consequence: "never takes effect",
		},
		{
			name: "archive refused",
			mw: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodPatch && strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 2 && !strings.Contains(r.URL.Path, "/rules/") {
						answer(w, http.StatusForbidden, `{"message":"archiving is not allowed","status":403}`)
						return
					}
					next.ServeHTTP(w, r)
				})
			},
			row: RowArchive, observed: "403 Forbidden: archiving is not allowed", consequence: "could not archive flags removed from Git",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, ksandbox.Options{Strict: tc.strict}, tc.mw)
			h.seed()
			rep := h.run(context.Background(), h.options())
			if rep.OK {
				t.Fatalf("report OK although %s:\n%s", tc.name, describe(rep))
			}
			row := rep.Row(tc.row)
			if row.Holds == nil || *row.Holds {
				t.Fatalf("row %s: holds %v (%s), want false\n%s", tc.row, row.Holds, row.Observed, describe(rep))
			}
			if !strings.Contains(row.Observed, tc.observed) || !strings.Contains(row.Consequence, tc.consequence) || row.Advice == "" {
				t.Errorf("row %s: observed %q, consequence %q, advice %q; want %q, %q and advice",
					tc.row, row.Observed, row.Consequence, row.Advice, tc.observed, tc.consequence)
			}
			var failed []string
			for _, r := range rep.Failures() {
				failed = append(failed, r.ID)
			}
			if !tc.others && !slices.Equal(failed, []string{tc.row}) {
				t.Errorf("failing rows %v, want only %s:\n%s", failed, tc.row, describe(rep))
			}
			if tc.row == RowArchive {
				if rep.Archived {
					t.Error("the report says archived although the archive was refused")
				}
				if !strings.Contains(row.Advice, "archive "+rep.ScratchFlag+" in Kameleoon by hand") {
					t.Errorf("archive advice %q does not name the scratch flag", row.Advice)
				}
				if f := h.scratch(rep.ScratchFlag); f["archived"] != false {
					t.Errorf("archived = %v, though every archive was refused", f["archived"])
				}
			} else {
				h.assertArchived(rep)
			}
			h.assertCalls(rep)
			var out bytes.Buffer
			_ = rep.WriteText(&out)
			if !strings.Contains(out.String(), "FAIL") || !strings.Contains(out.String(), "To do: ") || !strings.Contains(out.String(), tc.row) {
				t.Errorf("text report does not show the failure:\n%s", out.String())
			}
		})
	}
}

// TestCancelledRunArchives cancels the run at two points: while the create's answer is
// on its way (the create took effect, the client never hears it) and after the list.
// The scratch flag is archived either way, and the rest is reported not probed.
func TestCancelledRunArchives(t *testing.T) {
	for _, at := range []string{"during the create", "after the list"} {
		t.Run(at, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var lists atomic.Int64
			h := newHarness(t, ksandbox.Options{}, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					next.ServeHTTP(w, r)
					switch {
					case at == "during the create" && r.Method == http.MethodPost && r.URL.Path == "/feature-flags":
						cancel()
					case at == "after the list" && r.Method == http.MethodGet && r.URL.Path == "/feature-flags" && lists.Add(1) == 2:
						cancel()
					}
				})
			})
			h.seed()
			rep := h.run(ctx, h.options())
			if rep.OK {
				t.Fatalf("a cancelled run reports OK:\n%s", describe(rep))
			}
			h.assertArchived(rep)
			h.assertCalls(rep)
			if r := rep.Row(RowReorder); r.Holds != nil || !strings.Contains(r.Observed, "cancelled") {
				t.Errorf("reorder row after the cancel: holds %v, observed %q", r.Holds, r.Observed)
			}
			if r := rep.Row(RowArchive); r.Holds == nil || !*r.Holds {
				t.Errorf("archive row: %+v", r)
			}
		})
	}
}

// TestBudget gives doctor a smaller budget than its probes need: the probes that do not
// fit are reported not probed, the scratch flag is still archived, and no more calls
// than the budget reach the server.
func TestBudget(t *testing.T) {
	h := newHarness(t, ksandbox.Options{}, nil)
	h.seed()
	opts := h.options()
	opts.MaxCalls = 12
	rep := h.run(context.Background(), opts)
	if rep.OK || rep.CallsBudget != 12 {
		t.Fatalf("OK %t, budget %d; want not OK, 12", rep.OK, rep.CallsBudget)
	}
	if n := int(h.requests.Load()); n > 12 || n != rep.CallsUsed {
		t.Errorf("%d calls reached the server, report says %d; budget 12", n, rep.CallsUsed)
	}
	if r := rep.Row(RowSearchSort); !strings.HasPrefix(r.Observed, "not probed: budget") {
		t.Errorf("search row: %q, want not probed: budget", r.Observed)
	}
	h.assertArchived(rep)
	if _, err := New(Options{SiteCode: testSite, MaxCalls: 26}); err == nil {
		t.Error("a budget above 25 was accepted")
	}
}

// TestOneFlagSite: in a site whose only flag is the scratch flag, paging cannot be
// probed; that is said, and does not fail the run.
func TestOneFlagSite(t *testing.T) {
	h := newHarness(t, ksandbox.Options{}, nil)
	rep := h.run(context.Background(), h.options())
	if !rep.OK {
		t.Fatalf("not OK:\n%s", describe(rep))
	}
	r := rep.Row(RowListPaging)
	if r.Holds != nil || r.Mark() != "--" || !strings.Contains(r.Observed, "one flag") || !strings.Contains(r.Advice, "at least one other flag") {
		t.Errorf("paging row in a one-flag site: %+v", r)
	}
	if s := rep.summary(); !strings.Contains(s, "that could be probed holds (9 of 10; not probable on this site: list-paging;") {
		t.Errorf("summary: %q", s)
	}
	h.assertArchived(rep)
	h.assertCalls(rep)
}

// TestTokenRevokedByRenewal: an API that keeps one token per client (a new one revokes
// the old) is a reading: flagsync renews once on the 401, the run holds.
func TestTokenRevokedByRenewal(t *testing.T) {
	var h *harness
	h = newHarness(t, ksandbox.Options{}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/oauth/token" {
				h.sb.RevokeTokens()
			}
			next.ServeHTTP(w, r)
		})
	})
	h.seed()
	rep := h.run(context.Background(), h.options())
	if !rep.OK {
		t.Fatalf("not OK:\n%s", describe(rep))
	}
	if r := rep.Row(RowTokenOld); r.Reading != "revoked" || !strings.Contains(r.Observed, "401") {
		t.Errorf("token-old row: %q %q, want revoked", r.Reading, r.Observed)
	}
	h.assertArchived(rep)
	h.assertCalls(rep)
}

// TestRateLimitHeaders: an API that says how many calls are left shows whether the token
// request counted.
func TestRateLimitHeaders(t *testing.T) {
	for _, countsTokens := range []bool{true, false} {
		t.Run(fmt.Sprintf("tokens counted %t", countsTokens), func(t *testing.T) {
			var used atomic.Int64
			h := newHarness(t, ksandbox.Options{}, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path != "/oauth/token" || countsTokens {
						used.Add(1)
					}
					w.Header().Set("X-RateLimit-Limit", "50")
					w.Header().Set("X-RateLimit-Remaining", fmt.Sprint(50-used.Load()))
					next.ServeHTTP(w, r)
				})
			})
			h.seed()
			rep := h.run(context.Background(), h.options())
			if !rep.OK {
				t.Fatalf("not OK:\n%s", describe(rep))
			}
			want := "not-counted"
			if countsTokens {
				want = "counted"
			}
			if r := rep.Row(RowTokenCounted); r.Reading != want {
				t.Errorf("token-rate-counted: %q (%s), want %q", r.Reading, r.Observed, want)
			}
			// Where token requests count, the advice is to charge them (KAMELEOON_TOKEN_COUNTS);
			// where they do not, flagsync's default already holds: nothing to do.
			if r := rep.Row(RowTokenCounted); countsTokens != strings.Contains(r.Advice, "KAMELEOON_TOKEN_COUNTS=yes") {
				t.Errorf("token-rate-counted advice %q (tokens counted %t)", r.Advice, countsTokens)
			}
			if r := rep.Row(RowRateLimitHeaders); r.Reading != "present" || !strings.Contains(r.Observed, "X-Ratelimit-Remaining") {
				t.Errorf("rate-limit-headers: %q (%s)", r.Reading, r.Observed)
			}
			h.assertCalls(rep)
		})
	}
}

// TestRulePatchPath: an API without the documented rule path is probed on the tutorial's
// curl path, within the budget; one without either says so.
func TestRulePatchPath(t *testing.T) {
	for _, tc := range []struct {
		refuse  []string
		reading string
	}{
		{[]string{"/feature-flags/rules/"}, "rules"},
		{[]string{"/feature-flags/rules/", "/rules/"}, "none"},
	} {
		t.Run(tc.reading, func(t *testing.T) {
			h := newHarness(t, ksandbox.Options{}, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					for _, p := range tc.refuse {
						if strings.HasPrefix(r.URL.Path, p) {
							answer(w, http.StatusNotFound, `{"message":"no such endpoint","status":404}`)
							return
						}
					}
					next.ServeHTTP(w, r)
				})
			})
			h.seed()
			rep := h.run(context.Background(), h.options())
			if !rep.OK {
				t.Fatalf("not OK:\n%s", describe(rep))
			}
			r := rep.Row(RowRulePatchPath)
			if r.Reading != tc.reading || !strings.Contains(r.Observed, "PATCH /feature-flags/rules/{id}: 404") {
				t.Errorf("rule-patch-path: %q (%s), want %q after a 404", r.Reading, r.Observed, tc.reading)
			}
			h.assertArchived(rep)
			h.assertCalls(rep)
		})
	}
}

// TestSearchSortRefused uses the sandbox's own fault injection: a search refused with a
// 400 is a reading, not a failure.
func TestSearchSortRefused(t *testing.T) {
	h := newHarness(t, ksandbox.Options{}, nil)
	h.seed()
	h.sb.InjectFault(ksandbox.Fault{Method: http.MethodPost, PathPrefix: "/feature-flags/search", Status: http.StatusBadRequest,
		Body: `{"message":"sort: unknown member","status":400}`})
	rep := h.run(context.Background(), h.options())
	if !rep.OK {
		t.Fatalf("not OK:\n%s", describe(rep))
	}
	if r := rep.Row(RowSearchSort); r.Reading != "refused" || !strings.Contains(r.Observed, "sort: unknown member") {
		t.Errorf("search-sort: %q (%s)", r.Reading, r.Observed)
	}
	h.assertArchived(rep)
	h.assertCalls(rep)
}

// TestJSONReport checks the JSON shape the docs promise.
func TestJSONReport(t *testing.T) {
	h := newHarness(t, ksandbox.Options{}, nil)
	h.seed()
	rep := h.run(context.Background(), h.options())
	var out bytes.Buffer
	if err := rep.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"format_version", "site", "calls_budget", "calls_used", "scratch_flag", "archived", "ok", "rows"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON report lacks %q", k)
		}
	}
	if m["format_version"] != 1.0 || m["site"] != testSite || m["calls_budget"] != 25.0 || m["archived"] != true {
		t.Errorf("JSON report header: %v", m)
	}
	rows := m["rows"].([]any)
	if len(rows) != len(definitions) {
		t.Fatalf("%d rows, want %d", len(rows), len(definitions))
	}
	for _, r := range rows {
		row := r.(map[string]any)
		for _, k := range []string{"id", "kind", "behaviour", "expected", "observed", "holds", "consequence", "advice"} {
			if _, ok := row[k]; !ok {
				t.Errorf("row %v lacks %q", row["id"], k)
			}
		}
		if row["kind"] == "reading" && row["holds"] != nil {
			t.Errorf("reading row %v: holds %v, want null", row["id"], row["holds"])
		}
		if row["kind"] == "relied" && row["holds"] != true {
			t.Errorf("relied row %v: holds %v, want true", row["id"], row["holds"])
		}
	}
}

func TestWrap(t *testing.T) {
	for _, tc := range []struct {
		in    string
		width int
		want  []string
	}{
		{"", 5, []string{""}},
		{"a bb ccc", 4, []string{"a bb", "ccc"}},
		{"abcdefgh ij", 3, []string{"abc", "def", "gh", "ij"}},
		{"one\ntwo three", 9, []string{"one", "two three"}},
	} {
		if got := wrap(tc.in, tc.width); !slices.Equal(got, tc.want) {
			t.Errorf("wrap(%q, %d) = %q, want %q", tc.in, tc.width, got, tc.want)
		}
	}
}

// TestOptionalFieldsOneByOne: an account that refuses one undocumented name (and
// ignores the others, its single-flag GET returning whole flags) gets the fallback, and
// the row names the refused one after asking for each alone.
func TestOptionalFieldsOneByOne(t *testing.T) {
	h := newHarness(t, ksandbox.Options{Strict: []ksandbox.Variant{ksandbox.OptionalFieldsIgnored}}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Query().Get("optionalFields"), "secondaryGoalIds") {
				answer(w, http.StatusBadRequest, `{"message":"optionalFields: secondaryGoalIds is not supported","status":400}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	h.seed()
	rep := h.run(context.Background(), h.options())
	if !rep.OK {
		t.Fatalf("not OK:\n%s", describe(rep))
	}
	r := rep.Row(RowOptionalFields)
	if r.Reading != "refused" || !strings.HasSuffix(r.Observed, "one by one: refused secondaryGoalIds, accepted variables, variations, environmentConfigurations") {
		t.Errorf("optional-fields: %q %q", r.Reading, r.Observed)
	}
	h.assertArchived(rep)
	h.assertCalls(rep)
}
