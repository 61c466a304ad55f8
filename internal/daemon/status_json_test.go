package daemon

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
	"time"
)

// TestStatusTimesHaveOnePrecision: every time /status writes is RFC 3339 in UTC with
// exactly three decimals, whatever the time's own precision and zone; and a time field
// added to a /status type without a line in status_json.go fails here.
func TestStatusTimesHaveOnePrecision(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	at := time.Date(2025, 1, 2, 4, 4, 5, 60_000_000, paris) // .060, in another zone
	whole := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)    // no fraction at all
	fine := time.Date(2025, 1, 2, 3, 4, 5, 123_456_789, time.UTC)
	s := Status{
		NextRun: &at, NextDriftCheck: &whole, LastFullRead: &fine,
		Suspension:            &Suspension{Since: at, By: "api"},
		Running:               &Running{ID: 1, Started: whole},
		LastCheck:             &Check{At: fine},
		LastValidationFailure: &ValidationFailure{At: at},
		Syncs:                 []Record{{Started: whole}},
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	times := regexp.MustCompile(`"(\d{4}-[^"]*)"`).FindAllStringSubmatch(string(b), -1)
	layout := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	if len(times) != 8 {
		t.Fatalf("%d times in %s", len(times), b)
	}
	for _, m := range times {
		if !layout.MatchString(m[1]) {
			t.Errorf("time %q is not RFC 3339 UTC with milliseconds", m[1])
		}
	}
	for _, want := range []string{`"nextRun":"2025-01-02T03:04:05.060Z"`, `"nextDriftCheck":"2025-01-02T03:04:05.000Z"`, `"lastFullRead":"2025-01-02T03:04:05.123Z"`} {
		if !regexp.MustCompile(regexp.QuoteMeta(want)).Match(b) {
			t.Errorf("lacks %s: %s", want, b)
		}
	}
	// Every time.Time field of the /status types is one the methods rewrite: the count
	// of time fields here must match the eight written above.
	n := 0
	for _, v := range []any{Status{}, Suspension{}, Running{}, Check{}, ValidationFailure{}, Record{}} {
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			ft := rt.Field(i).Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft == reflect.TypeOf(time.Time{}) {
				n++
			}
		}
	}
	if n != 8 {
		t.Errorf("the /status types have %d time fields; status_json.go writes 8: give the new one a line there", n)
	}
}
