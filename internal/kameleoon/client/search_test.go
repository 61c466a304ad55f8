package kclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
)

var searchBase = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// seedDated stores n flags, flag_000 … modified one second apart from searchBase.
func seedDated(t *testing.T, srv *ksandbox.Server, n int) {
	t.Helper()
	for i := range n {
		body := fmt.Sprintf(`{"featureKey":"flag_%03d","name":"Flag %d","dateModified":%q}`, i, i, searchBase.Add(time.Duration(i)*time.Second).Format(dateLayout))
		if err := srv.SetFlagJSON(tutorialSite, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// TestSearchModified: the search reads the site's flags newest first, a page of 100 a
// call, and stops at the first page that reaches a flag older than since; its figures
// come from the server's answer and the sandbox's log counts the calls.
func TestSearchModified(t *testing.T) {
	clientNow := searchBase.Add(time.Hour)
	srv, c := sandboxClient(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1, Now: fixedClock(searchBase.Add(time.Hour))},
		func(cfg *Config) { cfg.Now = fixedClock(clientNow) })
	seedDated(t, srv, 250) // modified at base+0 s … base+249 s
	ctx := context.Background()
	for _, tt := range []struct {
		name         string
		since        time.Duration // after searchBase
		maxPages     int
		pages, flags int
		complete     bool
	}{
		{"a few changed: one call", 245 * time.Second, 5, 1, 100, true},
		{"nothing changed: one call", time.Hour, 5, 1, 100, true},
		{"more than a page changed", 100 * time.Second, 5, 2, 200, true},
		{"more than maxPages changed", 100 * time.Second, 1, 1, 100, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv.ResetCalls()
			r, err := c.SearchModified(ctx, tutorialSite, searchBase.Add(tt.since), tt.maxPages)
			if err != nil {
				t.Fatal(err)
			}
			if got := countCalls(srv.Calls(), "POST", searchPath); got != tt.pages || r.Pages != tt.pages {
				t.Errorf("%d searches logged (Pages %d), want %d: %q", got, r.Pages, tt.pages, callLines(srv.Calls()))
			}
			if len(r.Flags) != tt.flags || r.Complete != tt.complete || r.Total != 250 {
				t.Errorf("%d flags, complete %t, total %d; want %d, %t, 250", len(r.Flags), r.Complete, r.Total, tt.flags, tt.complete)
			}
			if r.Flags[0].FeatureKey != "flag_249" || len(r.Flags[0].Environments) == 0 {
				t.Errorf("first flag %s with %d environments, want flag_249, complete", r.Flags[0].FeatureKey, len(r.Flags[0].Environments))
			}
			// The newest flag was modified at base+249 s and seen at the client's base+1 h.
			if want := 249*time.Second - time.Hour; !r.HasLead || r.Lead != want {
				t.Errorf("Lead = %v (%t), want %v", r.Lead, r.HasLead, want)
			}
		})
	}
}

// TestSearchModifiedEveryReading: under every strict reading the search returns complete
// flags, as the list does (reading flags it returns incomplete one by one).
func TestSearchModifiedEveryReading(t *testing.T) {
	for _, rd := range ksandbox.Readings() {
		t.Run(rd.Name, func(t *testing.T) {
			srv, c := sandboxClient(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1, Strict: rd.Strict}, nil)
			seedDated(t, srv, 3)
			r, err := c.SearchModified(context.Background(), tutorialSite, searchBase.Add(time.Second), 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Flags) != 3 || !r.Complete || r.Total != 3 {
				t.Fatalf("%d flags, complete %t, total %d", len(r.Flags), r.Complete, r.Total)
			}
			for _, f := range r.Flags {
				if len(f.Environments) == 0 || len(f.Variations) == 0 {
					t.Errorf("flag %s read incomplete: %+v", f.FeatureKey, f)
				}
			}
		})
	}
}

// TestSearchUnsupported: a search the account does not serve as the drift check needs is
// a *SearchUnsupportedError, remembered: the next SearchModified makes no call.
func TestSearchUnsupported(t *testing.T) {
	flag := func(key, date string) string {
		return fmt.Sprintf(`{"siteCode":%q,"featureKey":%q,"dateModified":%q}`, tutorialSite, key, date)
	}
	total := http.Header{TotalCountHeader: {"2"}}
	for _, tt := range []struct {
		name  string
		fault ksandbox.Fault
	}{
		{"refused", ksandbox.Fault{Status: http.StatusBadRequest, Body: `{"message":"sort: unknown field dateModified"}`}},
		{"no such endpoint", ksandbox.Fault{Status: http.StatusNotFound}},
		{"not sorted", ksandbox.Fault{Status: http.StatusOK, Header: total,
			Body: "[" + flag("a", "2026-01-01T00:00:00") + "," + flag("b", "2026-01-02T00:00:00") + "]"}},
		{"no total count", ksandbox.Fault{Status: http.StatusOK, Body: "[" + flag("a", "2026-01-01T00:00:00") + "]"}},
		{"no dateModified", ksandbox.Fault{Status: http.StatusOK, Header: total, Body: `[{"siteCode":"` + tutorialSite + `","featureKey":"a"}]`}},
		{"filter ignored", ksandbox.Fault{Status: http.StatusOK, Header: total, Body: `[{"siteCode":"othersite1","featureKey":"a","dateModified":"2026-01-01T00:00:00"}]`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := sandboxClient(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1}, nil)
			seedDated(t, srv, 2)
			f := tt.fault
			f.Method, f.PathPrefix, f.Count = "POST", searchPath, 2 // the client may ask again with the documented optionalFields
			srv.InjectFault(f)
			_, err := c.SearchModified(context.Background(), tutorialSite, searchBase, 3)
			var unsupported *SearchUnsupportedError
			if !errors.As(err, &unsupported) {
				t.Fatalf("err = %v, want a *SearchUnsupportedError", err)
			}
			srv.ResetCalls()
			if _, err := c.SearchModified(context.Background(), tutorialSite, searchBase, 3); !errors.As(err, &unsupported) {
				t.Errorf("second search: err = %v, want the remembered *SearchUnsupportedError", err)
			}
			if calls := srv.Calls(); len(calls) != 0 {
				t.Errorf("the second search made calls: %q", callLines(calls))
			}
		})
	}
}

// TestSearchFailureIsNotARefusal: a 5xx (after retries) fails the search like a list,
// without marking it unsupported.
func TestSearchFailureIsNotARefusal(t *testing.T) {
	srv, c := sandboxClient(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1}, func(cfg *Config) { cfg.MaxAttempts = 2 })
	seedDated(t, srv, 2)
	srv.InjectFault(ksandbox.Fault{Method: "POST", PathPrefix: searchPath, Status: http.StatusServiceUnavailable, Count: 2})
	_, err := c.SearchModified(context.Background(), tutorialSite, searchBase, 3)
	var unsupported *SearchUnsupportedError
	if err == nil || errors.As(err, &unsupported) {
		t.Fatalf("err = %v, want the 503", err)
	}
	if _, err := c.SearchModified(context.Background(), tutorialSite, searchBase, 3); err != nil {
		t.Errorf("the next search: %v", err)
	}
}

// TestConfirmedVouchesForWholeFlags: the tutorial's create and patch answers vouch for
// their flag; an empty, unparsable or partial answer does not, and the client remembers
// that its writes may need a confirming read.
func TestConfirmedVouchesForWholeFlags(t *testing.T) {
	c := newTestClient(t, testConfig("http://127.0.0.1:9", nil))
	for _, name := range []string{"tutorial-1-create-response.json", "tutorial-2-patch-response.json", "tutorial-3-rule-response.json"} {
		raw := readTestdata(t, name)
		f, modified, ok := c.Confirmed(raw)
		if !ok || f.FeatureKey != "test_feature_flag_post" || len(f.Environments) != 3 || modified.IsZero() {
			t.Errorf("%s: Confirmed = %s, %d environments, %v, %t", name, f.FeatureKey, len(f.Environments), modified, ok)
		}
	}
	if !c.WritesConfirmThemselves() {
		t.Fatal("whole answers marked the client's writes as needing a read")
	}
	var partial map[string]any
	if err := json.Unmarshal(readTestdata(t, "tutorial-2-patch-response.json"), &partial); err != nil {
		t.Fatal(err)
	}
	delete(partial, "environmentConfigurations")
	noEnvs, _ := json.Marshal(partial)
	for name, raw := range map[string]string{"empty": "", "not JSON": "<html>", "no environments": string(noEnvs), "an object": "{}"} {
		if _, _, ok := c.Confirmed(json.RawMessage(raw)); ok {
			t.Errorf("%s: vouched for", name)
		}
	}
	if c.WritesConfirmThemselves() {
		t.Error("after a partial answer, the client still says its writes confirm themselves")
	}
}
