package kclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/api"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	"github.com/flagsync/flagsync/internal/logtest"
)

// richSeed is a flag with every optional field set, so that a read that lost any of
// them shows.
const richSeed = `{"featureKey":"%s","name":"Rich","description":"d","tags":["t"],"secondaryGoalIds":[5],
  "variables":[{"key":"v","type":"STRING","value":"x"}],
  "variations":[{"key":"off","name":"Off"},{"key":"on","name":"On","variables":[{"key":"v","value":"y"}]}],
  "environmentConfigurations":[{"environmentKey":"production","featureEnabled":true,"defaultVariationKey":"on",
    "rolloutRules":[{"name":"r","type":"TARGETED_DELIVERY","variationKey":"on","state":"ACTIVE"}]}]}`

func seedRich(t *testing.T, srv *ksandbox.Server, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := srv.SetFlagJSON(tutorialSite, []byte(strings.Replace(richSeed, "%s", k, 1))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestListFlagsOptionalFieldReadings reads the same flags from a sandbox in each reading
// of optionalFields and checks that the client plans against the same, complete flags,
// at the calls each reading needs.
func TestListFlagsOptionalFieldReadings(t *testing.T) {
	var reference []kmodel.Flag
	for _, tc := range []struct {
		name    string
		strict  []ksandbox.Variant
		calls   []string // after the token
		refused bool     // a warning names the refused fields
	}{
		{"default", nil, []string{"GET /feature-flags 200"}, false},
		{"refused", []ksandbox.Variant{ksandbox.OptionalFieldsRefused}, []string{
			"GET /feature-flags 400", "GET /feature-flags 200",
			"GET /feature-flags/pzllysfw2f/a 200", "GET /feature-flags/pzllysfw2f/b 200",
		}, true},
		{"ignored", []ksandbox.Variant{ksandbox.OptionalFieldsIgnored}, []string{
			"GET /feature-flags 200",
			"GET /feature-flags/pzllysfw2f/a 200", "GET /feature-flags/pzllysfw2f/b 200",
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logtest.Buffer{}
			srv, c := sandboxClient(t, ksandbox.Options{Strict: tc.strict}, func(cfg *Config) { cfg.Logger = testConfig("", logs).Logger })
			seedRich(t, srv, "a", "b")
			flags, err := c.ListFlags(context.Background(), tutorialSite)
			if err != nil {
				t.Fatal(err)
			}
			if got := callLines(srv.Calls())[1:]; !reflect.DeepEqual(got, tc.calls) {
				t.Errorf("calls = %q, want %q", got, tc.calls)
			}
			if len(flags) != 2 || len(flags[0].Variations) != 2 || len(flags[0].Variables) != 1 || len(flags[0].SecondaryGoalIDs) != 1 ||
				len(flags[0].Environments["production"].RolloutRules) != 1 || flags[0].Description != "d" {
				t.Fatalf("flags read incomplete: %+v", flags)
			}
			if reference == nil {
				reference = flags
			} else if !reflect.DeepEqual(flags, reference) {
				t.Errorf("flags differ from the default reading's:\n got %+v\nwant %+v", flags, reference)
			}
			warned := strings.Count(logs.String(), "refused flagsync's optionalFields")
			if tc.refused != (warned == 1) {
				t.Errorf("%d warnings about refused optionalFields, want refused=%v:\n%s", warned, tc.refused, logs)
			}
			if tc.refused && !strings.Contains(logs.String(), "refused=variables,variations,secondaryGoalIds,environmentConfigurations") {
				t.Errorf("the warning does not name the refused fields:\n%s", logs)
			}

			// The fallback lasts for the client's lifetime: no second 400, no second warning.
			srv.ResetCalls()
			if _, err := c.ListFlags(context.Background(), tutorialSite); err != nil {
				t.Fatal(err)
			}
			for _, call := range srv.Calls() {
				if call.Status == 400 {
					t.Errorf("second listing was refused again: %s", callLine(call))
				}
			}
			if got := strings.Count(logs.String(), "refused flagsync's optionalFields"); got != warned {
				t.Errorf("the fallback was logged again (%d times)", got)
			}
			want := OptionalFields
			if tc.refused {
				want = DocumentedOptionalFields
			}
			if got := c.OptionalFieldsInUse(); !slices.Equal(got, want) {
				t.Errorf("OptionalFieldsInUse = %v, want %v", got, want)
			}
		})
	}
}

func TestGetFlagFallsBackToo(t *testing.T) {
	srv, c := sandboxClient(t, ksandbox.Options{Strict: []ksandbox.Variant{ksandbox.OptionalFieldsRefused}}, nil)
	seedRich(t, srv, "a")
	f, err := c.GetFlag(context.Background(), tutorialSite, "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Variations) != 2 || len(f.Environments) != 3 {
		t.Errorf("flag %+v", f)
	}
	if got := callLines(srv.Calls())[1:]; !reflect.DeepEqual(got, []string{"GET /feature-flags/pzllysfw2f/a 400", "GET /feature-flags/pzllysfw2f/a 200"}) {
		t.Errorf("calls = %q", got)
	}
}

// incompleteAPI lists flags without their environments and variations, and the
// single-flag GET answers the same: a server that never sends those fields.
func incompleteAPI(t *testing.T, get string) *fakeAPI {
	return newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/feature-flags":
			io.WriteString(w, `[{"id":1,"siteCode":"s","featureKey":"k","name":"K","tags":[],"description":""}]`)
		case "/feature-flags/s/k":
			io.WriteString(w, get)
		default:
			w.WriteHeader(404)
		}
	})
}

func TestIncompleteReadFails(t *testing.T) {
	for _, tc := range []struct {
		name, get string
		missing   []string
	}{
		{"absent", `{"id":1,"siteCode":"s","featureKey":"k","name":"K"}`, []string{"environmentConfigurations", "variations"}},
		{"empty", `{"id":1,"siteCode":"s","featureKey":"k","name":"K","variations":[],"environmentConfigurations":[]}`, []string{"environmentConfigurations", "variations"}},
		{"null environments", `{"id":1,"siteCode":"s","featureKey":"k","name":"K","variations":[{"key":"off"}],"environmentConfigurations":null}`, []string{"environmentConfigurations"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := incompleteAPI(t, tc.get)
			c := newTestClient(t, testConfig(f.srv.URL, nil))
			_, err := c.ListFlags(context.Background(), "s")
			var ie *IncompleteReadError
			if !errors.As(err, &ie) || !IsIncompleteRead(err) {
				t.Fatalf("err = %v, want an *IncompleteReadError", err)
			}
			if ie.SiteCode != "s" || ie.FeatureKey != "k" || !slices.Equal(ie.Missing, tc.missing) || !slices.Equal(ie.OptionalFields, OptionalFields) || !ie.Listed {
				t.Errorf("error = %+v, want flag s/k missing %v, listed", ie, tc.missing)
			}
			if !strings.Contains(err.Error(), "read flag s/k: incomplete: "+strings.Join(tc.missing, ", ")+" missing from the list and from the single-flag GET") ||
				!strings.Contains(err.Error(), "does not plan against an incomplete read") {
				t.Errorf("message %q", err)
			}
			if n := f.count("GET", "/feature-flags/s/k"); n != 1 {
				t.Errorf("%d GETs of the incomplete flag, want 1", n)
			}
			_, err = c.GetFlag(context.Background(), "s", "k")
			if !errors.As(err, &ie) || ie.Listed || !strings.Contains(err.Error(), "missing from the single-flag GET (asked") {
				t.Errorf("GetFlag: err = %v, want an incomplete read of the GET alone", err)
			}
		})
	}
}

// TestRefusalNotAboutOptionalFields: a 400 that the documented names get too is returned
// as it is, and the client keeps asking for every field.
func TestRefusalNotAboutOptionalFields(t *testing.T) {
	logs := &logtest.Buffer{}
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.WriteHeader(400)
		io.WriteString(w, `{"message":"siteCode: unknown site"}`)
	})
	c := newTestClient(t, testConfig(f.srv.URL, logs))
	_, err := c.ListFlags(context.Background(), "s")
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Message != "siteCode: unknown site" {
		t.Fatalf("err = %v, want the server's 400", err)
	}
	if f.count("GET", "/feature-flags") != 2 {
		t.Errorf("list calls: %v, want the first and one with the documented names", f.log())
	}
	if got := c.OptionalFieldsInUse(); !slices.Equal(got, OptionalFields) {
		t.Errorf("OptionalFieldsInUse = %v after an unrelated 400", got)
	}
	if strings.Contains(logs.String(), "refused flagsync's optionalFields") {
		t.Errorf("an unrelated 400 was logged as a refusal of optionalFields:\n%s", logs)
	}
}

func TestMissingFields(t *testing.T) {
	for _, tc := range []struct {
		raw      string
		notAsked bool
		want     []string
	}{
		{`{"variations":[{}],"environmentConfigurations":[{}]}`, false, nil},
		{`{"variations":[{}],"environmentConfigurations":[{}]}`, true, []string{"variables", "secondaryGoalIds"}},
		{`{"variations":[{}],"environmentConfigurations":[{}],"variables":[],"secondaryGoalIds":null}`, true, []string{"secondaryGoalIds"}},
		{`{"variations":[],"environmentConfigurations":[{}],"variables":[],"secondaryGoalIds":[]}`, true, []string{"variations"}},
		{`{}`, false, []string{"environmentConfigurations", "variations"}},
	} {
		got, err := missingFields([]byte(tc.raw), tc.notAsked)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("missingFields(%s, %v) = %v, %v; want %v", tc.raw, tc.notAsked, got, err, tc.want)
		}
	}
	if _, err := missingFields([]byte(`[`), false); err == nil {
		t.Error("no error for invalid JSON")
	}
}

// TestRuleOrderConflict: rules listed in an order their orderIndex contradicts are read by
// orderIndex, and the client warns.
func TestRuleOrderConflict(t *testing.T) {
	const listed = `[{"id":1,"siteCode":"s","featureKey":"k","name":"K","variations":[{"key":"off"}],"environmentConfigurations":[
	  {"environmentKey":"production","rolloutRules":[{"id":8,"name":"b","orderIndex":1},{"id":7,"name":"a","orderIndex":0}]},
	  {"environmentKey":"staging","rolloutRules":[{"id":5,"name":"x","orderIndex":0},{"id":6,"name":"y","orderIndex":0}]},
	  {"environmentKey":"development","rolloutRules":[{"id":3,"name":"p","orderIndex":4},{"id":4,"name":"q"}]}]}]`
	logs := &logtest.Buffer{}
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { io.WriteString(w, listed) })
	c := newTestClient(t, testConfig(f.srv.URL, logs))
	flags, err := c.ListFlags(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	names := func(env string) string {
		var out []string
		for _, r := range flags[0].Environments[env].RolloutRules {
			out = append(out, r.Name)
		}
		return strings.Join(out, ",")
	}
	// production: by orderIndex; staging: equal indices keep the array order;
	// development: not every rule has an index, so the array order.
	for env, want := range map[string]string{"production": "a,b", "staging": "x,y", "development": "p,q"} {
		if got := names(env); got != want {
			t.Errorf("%s rules %s, want %s", env, got, want)
		}
	}
	if n := strings.Count(logs.String(), "order their orderIndex contradicts"); n != 1 || !strings.Contains(logs.String(), "env=production") {
		t.Errorf("want one warning, for production:\n%s", logs)
	}
}
