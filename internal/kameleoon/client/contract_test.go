package kclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
)

// The contract suite is one list of API behaviours flagsync relies on, written once and
// run against the sandbox always and against Kameleoon's real API when credentials are
// given. What the suite asserts is what the vendor pages show (testdata/tutorial-*) and
// what the client and planner assume.

// contractTarget is an API to run the suite against.
type contractTarget struct {
	baseURL, clientID, clientSecret string
	siteCode                        string
	segmentID, goalID               int64 // ids in the account, for the tutorial's rule
}

// tutorialSite is the tutorial's site code, used by the sandbox runs.
const tutorialSite = "pzllysfw2f"

// TestContractSandbox runs the suite against the sandbox in each reading of what the
// docs leave open (sandbox.Readings): the default, each strict variant, all of them.
func TestContractSandbox(t *testing.T) {
	for _, r := range ksandbox.Readings() {
		t.Run(r.Name, func(t *testing.T) {
			_, ts := ksandboxtest.NewTestServer(t, ksandbox.Options{Sites: []string{tutorialSite}, Strict: r.Strict})
			runContract(t, contractTarget{
				baseURL: ts.URL, clientID: ksandbox.DefaultClientID, clientSecret: ksandbox.DefaultClientSecret,
				siteCode: tutorialSite, segmentID: 403694, goalID: 400899,
			})
		})
	}
}

// TestContractKameleoon runs the suite against the real API. It creates flags with
// unique keys and archives them when it ends (the API has no documented delete).
func TestContractKameleoon(t *testing.T) {
	id, secret, site := os.Getenv(EnvClientID), os.Getenv(EnvClientSecret), os.Getenv("KAMELEOON_TEST_SITE_CODE")
	if id == "" || secret == "" || site == "" {
		t.Skip("set KAMELEOON_CLIENT_ID, KAMELEOON_CLIENT_SECRET and KAMELEOON_TEST_SITE_CODE to run the contract suite " +
			"against the real API (optional: KAMELEOON_API_URL; KAMELEOON_TEST_SEGMENT_ID and KAMELEOON_TEST_GOAL_ID for the rule steps)")
	}
	target := contractTarget{baseURL: os.Getenv(EnvAPIURL), clientID: id, clientSecret: secret, siteCode: site}
	for name, dst := range map[string]*int64{"KAMELEOON_TEST_SEGMENT_ID": &target.segmentID, "KAMELEOON_TEST_GOAL_ID": &target.goalID} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s=%q: not an id", name, v)
			}
			*dst = n
		}
	}
	runContract(t, target)
}

// uniqueKey returns a feature key no earlier run used.
func uniqueKey(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + "_" + strconv.FormatInt(time.Now().Unix(), 36) + "_" + hex.EncodeToString(b)
}

// object is a decoded JSON object; helpers below read it without panicking.
type object = map[string]any

func decodeObject(t *testing.T, raw []byte) object {
	t.Helper()
	var o object
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, raw)
	}
	return o
}

// environmentOf returns the environment with the given key from a flag in read shape.
func environmentOf(t *testing.T, f object, key string) object {
	t.Helper()
	envs, _ := f["environmentConfigurations"].([]any)
	for _, e := range envs {
		if o, ok := e.(object); ok && o["environmentKey"] == key {
			return o
		}
	}
	t.Fatalf("flag has no environment %q: %v", key, f["environmentConfigurations"])
	return nil
}

func rulesOf(env object) []object {
	rules, _ := env["rolloutRules"].([]any)
	out := make([]object, 0, len(rules))
	for _, r := range rules {
		if o, ok := r.(object); ok {
			out = append(out, o)
		}
	}
	return out
}

// positiveID reads a server-assigned id: a JSON number above zero.
func positiveID(t *testing.T, what string, v any) int64 {
	t.Helper()
	n, ok := v.(float64)
	if !ok || n <= 0 || n != float64(int64(n)) {
		t.Fatalf("%s = %v (%T), want a positive integer id", what, v, v)
	}
	return int64(n)
}

// tutorialBody reads a tutorial request body and lets the test adjust it.
func tutorialBody(t *testing.T, name string, adjust func(o object)) []byte {
	t.Helper()
	o := decodeObject(t, readTestdata(t, name))
	adjust(o)
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func runContract(t *testing.T, target contractTarget) {
	var calls atomic.Int64
	c, err := New(Config{
		BaseURL: target.baseURL, ClientID: target.clientID, ClientSecret: target.clientSecret,
		BackoffBase: 200 * time.Millisecond, MaxAttempts: 3,
		Observer: func(api.CallInfo) { calls.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	site := target.siteCode
	key := uniqueKey(t, "flagsync_contract")
	t.Cleanup(func() {
		// Leave nothing live behind on a real account: archive (the API keeps archived flags).
		actx, acancel := context.WithTimeout(context.Background(), time.Minute)
		defer acancel()
		if _, err := c.Archive(actx, site, key); err != nil && !api.IsNotFound(err) {
			t.Logf("archive %s/%s after the suite: %v", site, key, err)
		}
		t.Logf("contract suite: %d API calls", calls.Load())
	})

	var created object
	createBody := tutorialBody(t, "tutorial-1-create-request.json", func(o object) {
		o["featureKey"], o["name"], o["siteCode"] = key, key, site
		o["tags"] = []string{"flagsync-contract"}
	})
	ok := t.Run("tutorial 1: create without environments gets the three default environments", func(t *testing.T) {
		raw, err := c.Do(ctx, api.Request{Method: "POST", Path: "/feature-flags", Body: createBody})
		if err != nil {
			t.Fatal(err)
		}
		created = decodeObject(t, raw)
		positiveID(t, "id", created["id"])
		if created["featureKey"] != key || created["siteCode"] != site || created["archived"] != false {
			t.Errorf("created flag: featureKey %v, siteCode %v, archived %v", created["featureKey"], created["siteCode"], created["archived"])
		}
		var keys []string
		for _, e := range created["environmentConfigurations"].([]any) {
			keys = append(keys, e.(object)["environmentKey"].(string))
		}
		sort.Strings(keys)
		if !reflect.DeepEqual(keys, []string{"development", "production", "staging"}) {
			t.Fatalf("environments = %v, want development, staging and production", keys)
		}
		for _, env := range []string{"development", "staging", "production"} {
			e := environmentOf(t, created, env)
			if rules, ok := e["rolloutRules"].([]any); !ok || len(rules) != 0 {
				t.Errorf("%s: rolloutRules = %v, want []", env, e["rolloutRules"])
			}
			if !reflect.DeepEqual(e["integrations"], any(object{"deliveryRules": []any{}, "experimentRules": []any{}})) {
				t.Errorf("%s: integrations = %v, want both arrays empty", env, e["integrations"])
			}
		}
		// The tutorial's response: development on, serving "on"; the others off, serving "off".
		for env, want := range map[string][2]any{"development": {true, "on"}, "staging": {false, "off"}, "production": {false, "off"}} {
			e := environmentOf(t, created, env)
			if e["featureEnabled"] != want[0] || e["defaultVariationKey"] != want[1] {
				t.Errorf("%s: featureEnabled %v, defaultVariationKey %v; want %v, %v", env, e["featureEnabled"], e["defaultVariationKey"], want[0], want[1])
			}
		}
		f, err := DecodeFlag(raw)
		if err != nil {
			t.Fatal(err)
		}
		if f.ID == 0 || len(f.Environments) != 3 || len(f.Variations) != 2 || f.AttributionWindow != 604800000 ||
			!reflect.DeepEqual(f.Tags, []string{"flagsync-contract"}) {
			t.Errorf("decoded created flag: %+v", f)
		}
	})
	if !ok {
		return
	}

	t.Run("list returns the flag with its optional fields", func(t *testing.T) {
		flags, err := c.ListFlags(ctx, site)
		if err != nil {
			t.Fatal(err)
		}
		var found []kmodel.Flag
		for _, f := range flags {
			if f.FeatureKey == key {
				found = append(found, f)
			}
			if f.SiteCode != site {
				t.Errorf("listed flag %s of another site", f.Ref())
			}
		}
		if len(found) != 1 {
			t.Fatalf("flag listed %d times, want once", len(found))
		}
		if f := found[0]; !reflect.DeepEqual(f.Tags, []string{"flagsync-contract"}) || len(f.Variables) != 1 || len(f.Variations) != 2 || len(f.Environments) != 3 {
			t.Errorf("listed flag lacks optional fields: %+v", f)
		}
	})

	t.Run("404 for an unknown flag", func(t *testing.T) {
		unknown := uniqueKey(t, "flagsync_contract_missing")
		if _, err := c.GetFlag(ctx, site, unknown); !api.IsNotFound(err) {
			t.Errorf("GetFlag of an unknown flag: err = %v, want 404", err)
		}
		_, err := c.PatchEnvironment(ctx, site, unknown, unknown, "development", kmodel.Environment{FeatureEnabled: true}, []string{"featureEnabled"})
		if !api.IsNotFound(err) {
			t.Errorf("patch of an unknown flag: err = %v, want 404", err)
		}
	})

	t.Run("409 for a duplicate create", func(t *testing.T) {
		_, err := c.Do(ctx, api.Request{Method: "POST", Path: "/feature-flags", Body: createBody})
		if !api.IsConflict(err) {
			t.Fatalf("second create: err = %v, want 409", err)
		}
		var apiErr *api.Error
		if errors.As(err, &apiErr) && apiErr.Retryable {
			t.Error("a 409 is marked retryable")
		}
		if got, err := c.GetFlag(ctx, site, key); err != nil || got.ID != int64(created["id"].(float64)) {
			t.Errorf("after the duplicate create the flag is %+v, %v; want the first one", got, err)
		}
	})

	t.Run("400 for an invalid create creates nothing", func(t *testing.T) {
		bad := "Not A Valid Key!"
		_, err := c.CreateFlag(ctx, &kmodel.Flag{SiteCode: site, FeatureKey: bad, Name: "bad", Variations: []kmodel.Variation{{Key: "off", Name: "Off"}, {Key: "on", Name: "On"}}}, nil)
		if !api.HasStatus(err, 400) {
			t.Fatalf("create with an invalid key: err = %v, want 400", err)
		}
		if _, err := c.GetFlag(ctx, site, bad); !api.IsNotFound(err) {
			t.Errorf("after a refused create: GetFlag err = %v, want 404", err)
		}
	})

	if target.goalID == 0 || target.segmentID == 0 {
		t.Log("rule steps skipped: set KAMELEOON_TEST_SEGMENT_ID and KAMELEOON_TEST_GOAL_ID to ids of your account")
		return
	}

	// The tutorial's release window lies in the past; use one in the future so that a
	// real account accepts it.
	day := time.Now().UTC().Truncate(time.Second).AddDate(0, 0, 1)
	release := object{"releaseFrom": day.Format("2006-01-02T15:04:05"), "releaseTo": day.AddDate(0, 0, 2).Format("2006-01-02T15:04:05"), "timeZone": "Europe/Paris"}
	var ruleID, experimentID, conditionID int64
	ok = t.Run("tutorial 2: add a targeted rule to development with the flag-level patch", func(t *testing.T) {
		body := tutorialBody(t, "tutorial-2-patch-request.json", func(o object) {
			env := o["environmentConfigurations"].([]any)[0].(object)
			rule := env["rolloutRules"].([]any)[0].(object)
			rule["segmentId"] = target.segmentID
			rule["release"] = release
			rule["rollbackConditions"].([]any)[0].(object)["goalId"] = target.goalID
		})
		raw, err := c.Do(ctx, api.Request{Method: "PATCH", Path: FlagPath(site, key), Body: body})
		if err != nil {
			t.Fatal(err)
		}
		f := decodeObject(t, raw)
		dev := environmentOf(t, f, "development")
		rules := rulesOf(dev)
		if len(rules) != 1 {
			t.Fatalf("development has %d rules, want 1", len(rules))
		}
		r := rules[0]
		ruleID = positiveID(t, "rule id", r["id"])
		experimentID = positiveID(t, "rule experimentId", r["experimentId"])
		if s, _ := r["status"].(string); s != "ACTIVE" && s != "PAUSED" {
			t.Errorf("rule status = %v, want ACTIVE or PAUSED read back as `status`", r["status"])
		}
		conds, _ := r["rollbackConditions"].([]any)
		if len(conds) != 1 {
			t.Fatalf("rollbackConditions = %v, want one", r["rollbackConditions"])
		}
		cond := conds[0].(object)
		conditionID = positiveID(t, "rollback condition id", cond["id"])
		if cond["matchValue"] != 20.0 || r["name"] != "test rollout rule" || r["type"] != "TARGETED_DELIVERY" || r["exposition"] != 59.0 {
			t.Errorf("rule read back as %v", r)
		}
		// The release window reads back as the instants written, with or without a zone.
		got, _ := r["release"].(object)
		if got["timeZone"] != release["timeZone"] {
			t.Errorf("release timeZone read back as %v, want %v", got["timeZone"], release["timeZone"])
		}
		for _, k := range []string{"releaseFrom", "releaseTo"} {
			s, _ := got[k].(string)
			if !sameInstant(t, s, release[k].(string), "Europe/Paris") {
				t.Errorf("release %s read back as %q, not the instant written (%s in Europe/Paris)", k, s, release[k])
			}
		}
		// The flag-level patch named development only: the others stay as they were.
		for _, env := range []string{"staging", "production"} {
			if got, want := environmentOf(t, f, env), environmentOf(t, created, env); len(rulesOf(got)) != 0 || got["featureEnabled"] != want["featureEnabled"] || got["defaultVariationKey"] != want["defaultVariationKey"] {
				t.Errorf("%s changed by a patch of development: %v", env, got)
			}
		}
		model, err := DecodeFlag(raw)
		if err != nil {
			t.Fatal(err)
		}
		mr := model.Environments["development"].RolloutRules[0]
		if mr.ID != ruleID || mr.ExperimentID != experimentID || mr.WrittenState() != kmodel.StateActive ||
			len(mr.TrafficAllocations) != 1 || mr.TrafficAllocations[0] != (kmodel.TrafficAllocation{VariationKey: "on", Exposition: 59}) {
			t.Errorf("decoded rule %+v", mr)
		}
	})
	if !ok {
		return
	}

	t.Run("tutorial 3: update the rollback condition with the rule endpoint", func(t *testing.T) {
		body := tutorialBody(t, "tutorial-3-rule-request.json", func(o object) {
			cond := o["rollbackConditions"].([]any)[0].(object)
			cond["id"], cond["goalId"] = conditionID, target.goalID
		})
		got, err := c.UpdateRule(ctx, ruleID, json.RawMessage(body))
		if err != nil {
			t.Fatal(err)
		}
		rules := got.Environments["development"].RolloutRules
		if len(rules) != 1 {
			t.Fatalf("development has %d rules after the rule update, want 1", len(rules))
		}
		r := rules[0]
		if r.ID != ruleID || r.ExperimentID != experimentID {
			t.Errorf("rule ids %d/%d after the update, want %d/%d", r.ID, r.ExperimentID, ruleID, experimentID)
		}
		if len(r.RollbackConditions) != 1 || r.RollbackConditions[0].ID != conditionID || r.RollbackConditions[0].MatchValue != 25 {
			t.Errorf("rollback conditions %+v, want id %d with matchValue 25", r.RollbackConditions, conditionID)
		}
		if r.Name != "test rollout rule" || r.Exposition == nil || *r.Exposition != 59 {
			t.Errorf("rule fields not named in the patch changed: %+v", r)
		}
	})

	t.Run("a rule re-sent with its id keeps its id and experiment", func(t *testing.T) {
		live, err := c.GetFlag(ctx, site, key)
		if err != nil {
			t.Fatal(err)
		}
		dev := live.Environments["development"]
		dev.RolloutRules[0].Exposition = ptr(40.0)
		dev.RolloutRules[0].TrafficAllocations = []kmodel.TrafficAllocation{{VariationKey: "on", Exposition: 40}}
		got, err := c.PatchEnvironment(ctx, site, key, key, "development", dev, []string{"rolloutRules"})
		if err != nil {
			t.Fatal(err)
		}
		r := got.Environments["development"].RolloutRules
		if len(r) != 1 || r[0].ID != ruleID || r[0].ExperimentID != experimentID || *r[0].Exposition != 40 ||
			len(r[0].RollbackConditions) != 1 || r[0].RollbackConditions[0].ID != conditionID {
			t.Errorf("rules after re-sending with ids: %+v; want id %d, experiment %d, condition %d, exposition 40", r, ruleID, experimentID, conditionID)
		}
	})

	t.Run("an environment patch replaces arrays whole", func(t *testing.T) {
		live, err := c.GetFlag(ctx, site, key)
		if err != nil {
			t.Fatal(err)
		}
		dev := live.Environments["development"]
		second := kmodel.Rule{Name: "second rule", Type: kmodel.RuleTargetedDelivery, State: kmodel.StatePaused, SegmentID: target.segmentID, Exposition: ptr(10.0), VariationKey: "off"}
		dev.RolloutRules = append(dev.RolloutRules, second)
		got, err := c.PatchEnvironment(ctx, site, key, key, "development", dev, []string{"rolloutRules"})
		if err != nil {
			t.Fatal(err)
		}
		rules := got.Environments["development"].RolloutRules
		if len(rules) != 2 || rules[0].ID != ruleID || rules[1].Name != "second rule" || rules[1].ID == 0 || rules[1].ID == ruleID {
			t.Fatalf("rules after adding one: %+v", rules)
		}
		secondID := rules[1].ID

		// A reorder (sent with orderIndex = position) reads back in the new order, with
		// the rules' ids kept.
		dev.RolloutRules = []kmodel.Rule{rules[1], rules[0]}
		if _, err := c.PatchEnvironment(ctx, site, key, key, "development", dev, []string{"rolloutRules"}); err != nil {
			t.Fatal(err)
		}
		if again, err := c.GetFlag(ctx, site, key); err != nil {
			t.Fatal(err)
		} else if r := again.Environments["development"].RolloutRules; len(r) != 2 || r[0].ID != secondID || r[1].ID != ruleID {
			t.Fatalf("rules after a reorder: %+v, want %d then %d", r, secondID, ruleID)
		}

		// Send only the second rule: the first is gone, not merged back.
		dev.RolloutRules = []kmodel.Rule{rules[1]}
		got, err = c.PatchEnvironment(ctx, site, key, key, "development", dev, []string{"rolloutRules"})
		if err != nil {
			t.Fatal(err)
		}
		rules = got.Environments["development"].RolloutRules
		if len(rules) != 1 || rules[0].ID != secondID || rules[0].Name != "second rule" {
			t.Errorf("rules after sending one of two: %+v, want only %d", rules, secondID)
		}
		if !got.Environments["development"].FeatureEnabled {
			t.Error("featureEnabled changed by a patch that did not name it")
		}
		if len(got.Environments["production"].RolloutRules) != 0 || got.Environments["production"].FeatureEnabled {
			t.Errorf("production changed by a patch of development: %+v", got.Environments["production"])
		}
	})

	t.Run("400 for an invalid patch leaves the flag unchanged", func(t *testing.T) {
		before, ok := rawFlag(ctx, t, c, site, key)
		if !ok {
			return
		}
		live, err := DecodeFlag(before)
		if err != nil {
			t.Fatal(err)
		}
		dev := live.Environments["development"]
		dev.FeatureEnabled = !dev.FeatureEnabled
		dev.RolloutRules = append(dev.RolloutRules, kmodel.Rule{Name: "too wide", Type: kmodel.RuleTargetedDelivery, State: kmodel.StateActive, SegmentID: target.segmentID, Exposition: ptr(150.0)})
		_, err = c.PatchEnvironment(ctx, site, key, key, "development", dev, []string{"featureEnabled", "rolloutRules"})
		var apiErr *api.Error
		if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Retryable {
			t.Fatalf("patch with exposition 150: err = %v, want a final 400", err)
		}
		after, ok := rawFlag(ctx, t, c, site, key)
		if ok && !reflect.DeepEqual(decodeObject(t, before), decodeObject(t, after)) {
			t.Errorf("a refused patch changed the flag:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// sameInstant reports whether a release window bound read back (with a zone, or a local
// time in zone) names the same instant as want, a local time in zone.
func sameInstant(t *testing.T, got, want, zone string) bool {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	w, err := time.ParseInLocation("2006-01-02T15:04:05", want, loc)
	if err != nil {
		t.Fatal(err)
	}
	if g, err := time.Parse(time.RFC3339, got); err == nil {
		return g.Equal(w)
	}
	g, err := time.ParseInLocation("2006-01-02T15:04:05", got, loc)
	return err == nil && g.Equal(w)
}

// rawFlag reads a flag as the API sends it, with the optional fields the client asks for.
func rawFlag(ctx context.Context, t *testing.T, c *Client, site, key string) ([]byte, bool) {
	t.Helper()
	raw, err := c.Do(ctx, api.Request{Method: "GET", Path: FlagPath(site, key) + "?" + fieldsQuery(c.OptionalFieldsInUse()).Encode()})
	if err != nil {
		t.Error(err)
		return nil, false
	}
	return raw, true
}
