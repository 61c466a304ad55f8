package kplan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
	"github.com/flagsync/flagsync/internal/plan"
)

// propertyIterations is how many random flags the sandbox round trips try.
const propertyIterations = 300

// TestSandboxRoundTrip checks the planner against the Kameleoon-compatible sandbox:
//
//  1. a random valid flag, created with the plan's own create request and read back in
//     the API's read shape, plans to zero changes (the normalisation hides every
//     server-filled default and read-shape difference);
//  2. a random edit of that flag, planned against the read-back, applied change by
//     change in plan order and read back again, plans to zero changes (the patches
//     converge), and every rule that kept its name kept its id.
func TestSandboxRoundTrip(t *testing.T) {
	_, ts := ksandboxtest.NewTestServer(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1})
	c := &sandboxClient{t: t, base: ts.URL, http: ts.Client()}
	c.token = c.fetchToken()
	rng := rand.New(rand.NewSource(20251217))
	var created, applied, keptIDs int
	defer func() {
		t.Logf("%d flags created, %d edit changes applied and converged, %d rule ids checked", created, applied, keptIDs)
	}()

	for i := range propertyIterations {
		g := &flagGen{rng: rng}
		f := g.flag(fmt.Sprintf("prop_%04d", i))

		// 1. Create, read back, plan: nothing to do.
		p := mustCompute(t, desiredOf(f), nil, Options{})
		c.apply(p)
		created++
		live := c.get(f.SiteCode, f.FeatureKey)
		if p2 := mustCompute(t, desiredOf(f), []kmodel.Flag{live}, Options{}); len(p2.Changes) > 0 {
			t.Fatalf("iteration %d: a freshly created flag plans changes:\n%s\nflag: %s", i, describePlan(p2), mustJSON(f))
		}

		// 2. Edit, plan, apply, read back, plan: nothing to do.
		edited := g.edit(f, &live)
		p3 := mustCompute(t, desiredOf(edited), []kmodel.Flag{live}, Options{})
		c.apply(p3)
		applied += len(p3.Changes)
		after := c.get(f.SiteCode, f.FeatureKey)
		if p4 := mustCompute(t, desiredOf(edited), []kmodel.Flag{after}, Options{}); len(p4.Changes) > 0 {
			t.Fatalf("iteration %d: applying the plan did not converge; the next plan is:\n%s\napplied plan:\n%s\nbefore: %s\nafter: %s",
				i, describePlan(p4), describePlan(p3), mustJSON(f), mustJSON(edited))
		}
		if !edited.Archived || !live.Archived {
			for env, e := range edited.Environments {
				for _, r := range e.RolloutRules {
					before, ok1 := ruleID(live, env, r.Name)
					now, ok2 := ruleID(after, env, r.Name)
					if ok1 && ok2 && before != now {
						t.Fatalf("iteration %d: rule %q in %s changed id %d → %d", i, r.Name, env, before, now)
					}
					if ok1 && ok2 {
						keptIDs++
					}
				}
			}
		}
	}
}

func ruleID(f kmodel.Flag, env, name string) (int64, bool) {
	for _, r := range f.Environments[env].RolloutRules {
		if r.Name == name {
			return r.ID, true
		}
	}
	return 0, false
}

func describePlan(p plan.Plan) string {
	var b bytes.Buffer
	if err := plan.RenderText(&b, p, plan.TextOptions{}); err != nil {
		return err.Error()
	}
	return b.String()
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// --- a minimal client: the planner's requests, sent as they are ----------------------

type sandboxClient struct {
	t     *testing.T
	base  string
	http  *http.Client
	token string
}

func (c *sandboxClient) fetchToken() string {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {ksandbox.DefaultClientID}, "client_secret": {ksandbox.DefaultClientSecret}}
	resp, err := c.http.Post(c.base+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK {
		c.t.Fatalf("token: status %d, %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

func (c *sandboxClient) do(method, path string, body []byte) []byte {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode >= 300 {
		c.t.Fatalf("%s %s: %d %s\nbody: %s", method, path, resp.StatusCode, out, body)
	}
	return out
}

// apply sends every change of p, in order.
func (c *sandboxClient) apply(p plan.Plan) {
	c.t.Helper()
	for _, ch := range p.Changes {
		c.do(ch.Request.Method, ch.Request.Path, ch.Request.Body)
	}
}

func (c *sandboxClient) get(site, key string) kmodel.Flag {
	c.t.Helper()
	b := c.do("GET", kclient.FlagPath(site, key)+"?optionalFields="+strings.Join(kclient.OptionalFields, ","), nil)
	f, err := kclient.DecodeFlag(b)
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

// --- random valid flags -------------------------------------------------------------

// flagGen makes random flags that pass the flag schema, the loader's checks and the
// sandbox's validation: every rule type, every variable type, rollback conditions,
// release windows, integrations, custom bucketing and goals.
type flagGen struct{ rng *rand.Rand }

var projectEnvs = []string{"development", "staging", "production"}

func (g *flagGen) chance(p float64) bool  { return g.rng.Float64() < p }
func (g *flagGen) n(k int) int            { return g.rng.Intn(k) }
func (g *flagGen) pick(s []string) string { return s[g.n(len(s))] }

func (g *flagGen) word() string {
	words := []string{"alpha", "beta", "gamma", "delta", "checkout", "search", "cart", "promo", "dark mode", "mobile", "eu", "staff"}
	return g.pick(words)
}

func (g *flagGen) flag(key string) kmodel.Flag {
	f := kmodel.Flag{SiteCode: "pzllysfw2f", FeatureKey: key, Name: "Flag " + g.word()}
	if g.chance(0.5) {
		f.Description = "About " + g.word()
	}
	f.Tags = g.tags()
	if g.chance(0.4) {
		f.AttributionWindow = int64(1+g.n(14)) * 86400000
	}
	switch g.n(3) {
	case 1:
		f.BucketingKey = &kmodel.BucketingKey{BucketingKeyType: "VISITOR_CODE"}
	case 2:
		f.BucketingKey = &kmodel.BucketingKey{BucketingKeyType: "CUSTOM_DATA", CustomDataID: int64(1 + g.n(50))}
	}
	if g.chance(0.4) {
		f.PrimaryGoalID = int64(400000 + g.n(1000))
	}
	for range g.n(3) {
		id := int64(400000 + g.n(1000))
		if !slices.Contains(f.SecondaryGoalIDs, id) {
			f.SecondaryGoalIDs = append(f.SecondaryGoalIDs, id)
		}
	}
	for i := range g.n(4) {
		f.Variables = append(f.Variables, g.variable(fmt.Sprintf("var_%d", i)))
	}
	nv := 1 + g.n(4)
	for i := range nv {
		f.Variations = append(f.Variations, g.variation([]string{"off", "on", "v2", "v3"}[i], f.Variables))
	}
	f.Environments = map[string]kmodel.Environment{}
	for _, env := range projectEnvs {
		if g.chance(0.7) {
			f.Environments[env] = g.environment(f.Variations)
		}
	}
	f.Archived = g.chance(0.05)
	return f
}

func (g *flagGen) tags() []string {
	var tags []string
	for range g.n(4) {
		t := strings.ReplaceAll(g.word(), " ", "-")
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	return tags
}

var genVariableTypes = []string{kmodel.TypeBoolean, kmodel.TypeNumber, kmodel.TypeString, kmodel.TypeJSON, kmodel.TypeJS, kmodel.TypeCSS, kmodel.TypeEnum}

func (g *flagGen) variable(key string) kmodel.Variable {
	v := kmodel.Variable{Key: key, Type: g.pick(genVariableTypes)}
	if v.Type == kmodel.TypeEnum {
		v.AllowedValues = []string{"small", "medium", "large"}[:1+g.n(3)]
	}
	v.Value = g.value(v)
	return v
}

// value is a random value of v's type, written the way a person might (spaces in JSON,
// integers as decimals).
func (g *flagGen) value(v kmodel.Variable) string {
	switch v.Type {
	case kmodel.TypeBoolean:
		return strconv.FormatBool(g.chance(0.5))
	case kmodel.TypeNumber:
		return []string{"0", "42", "59.0", "-3.25", "1e3"}[g.n(5)]
	case kmodel.TypeJSON:
		return []string{`{"a": 1, "b": [true, null]}`, `[1, 2, 3]`, `{"nested": {"x": "y"}}`, `"text"`, `12`}[g.n(5)]
	case kmodel.TypeJS:
		return "console.log('" + g.word() + "')"
	case kmodel.TypeCSS:
		return ".banner { color: " + g.pick([]string{"red", "blue"}) + "; }"
	case kmodel.TypeEnum:
		return g.pick(v.AllowedValues)
	}
	return g.word()
}

func (g *flagGen) variation(key string, vars []kmodel.Variable) kmodel.Variation {
	v := kmodel.Variation{Key: key}
	if g.chance(0.7) {
		v.Name = strings.ToUpper(key[:1]) + key[1:]
	}
	for _, x := range vars {
		if g.chance(0.5) {
			v.Variables = append(v.Variables, kmodel.VariationVariable{Key: x.Key, Value: g.value(x)})
		}
	}
	return v
}

func variationKeys(vs []kmodel.Variation) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Key
	}
	return out
}

func (g *flagGen) environment(vs []kmodel.Variation) kmodel.Environment {
	keys := variationKeys(vs)
	e := kmodel.Environment{FeatureEnabled: g.chance(0.5), DefaultVariationKey: g.pick(keys)}
	for i := range g.n(4) {
		e.RolloutRules = append(e.RolloutRules, g.rule(fmt.Sprintf("rule %d %s", i, g.word()), keys))
	}
	if g.chance(0.2) {
		e.Integrations = &kmodel.Integrations{DeliveryRules: []any{map[string]any{"provider": "ga4", "id": 3}}}
	}
	return e
}

func (g *flagGen) rule(name string, keys []string) kmodel.Rule {
	r := kmodel.Rule{Name: name, Type: g.pick([]string{kmodel.RuleTargetedDelivery, kmodel.RuleProgressiveDelivery, kmodel.RuleExperimentation})}
	if g.chance(0.5) {
		r.State = g.pick([]string{kmodel.StateActive, kmodel.StatePaused})
	}
	if g.chance(0.6) {
		r.SegmentID = int64(403000 + g.n(1000))
	}
	switch r.Type {
	case kmodel.RuleTargetedDelivery, kmodel.RuleProgressiveDelivery:
		r.VariationKey = g.pick(keys)
		if r.Type == kmodel.RuleProgressiveDelivery || g.chance(0.5) {
			r.Exposition = ptr(float64(g.n(101)))
		}
	case kmodel.RuleExperimentation:
		share := 100 / float64(len(keys))
		for _, k := range keys {
			r.TrafficAllocations = append(r.TrafficAllocations, kmodel.TrafficAllocation{VariationKey: k, Exposition: float64(int(share))})
		}
		g.rng.Shuffle(len(r.TrafficAllocations), func(i, j int) {
			r.TrafficAllocations[i], r.TrafficAllocations[j] = r.TrafficAllocations[j], r.TrafficAllocations[i]
		})
		if g.chance(0.5) {
			r.ControlVariationKey = keys[0]
		}
		if g.chance(0.5) {
			r.TrafficAllocationMethod = g.pick([]string{"MANUAL", "MULTI_ARMED_BANDIT", "CONTEXTUAL_BANDIT"})
		}
		r.Reallocation = g.chance(0.3)
		if g.chance(0.3) {
			r.Exposition = ptr(float64(10 * g.n(11)))
		}
	}
	if g.chance(0.3) {
		r.Release = &kmodel.Release{ReleaseFrom: "2025-12-11T11:58:01", ReleaseTo: "2025-12-13T11:58:01", TimeZone: "Europe/Paris"}
	}
	for range g.n(3) {
		c := kmodel.RollbackCondition{
			Target:             g.pick([]string{"RULE", "ENVIRONMENT"}),
			Criteria:           g.pick([]string{"UPLIFT", "DOWNLIFT", "CONVERSION_RATE"}),
			ComparisonOperator: g.pick([]string{"GREATER_THAN", "LESS_THAN"}),
			MatchValue:         float64(g.n(100)) + []float64{0, 0.5}[g.n(2)],
		}
		if g.chance(0.7) {
			c.GoalID = int64(400000 + g.n(1000))
		}
		if g.chance(0.5) {
			c.Visitors = int64(g.n(5000))
		}
		if g.chance(0.3) {
			c.Recipients = []string{"qa@example.com", "ops@example.com"}[:1+g.n(2)]
		}
		r.RollbackConditions = append(r.RollbackConditions, c)
	}
	return r
}

// edit returns a random change of f, valid on its own. live is f as read back: a
// variation an environment that the edit leaves unmanaged still serves is kept.
func (g *flagGen) edit(f kmodel.Flag, live *kmodel.Flag) kmodel.Flag {
	e := deepCopy(f)
	if g.chance(0.3) {
		e.Name = "Renamed " + g.word()
	}
	if g.chance(0.3) {
		e.Description = []string{"", "New text"}[g.n(2)]
	}
	if g.chance(0.3) {
		e.Tags = g.tags()
	}
	if g.chance(0.2) {
		e.AttributionWindow = int64(g.n(3)) * 86400000
	}
	if g.chance(0.2) {
		e.BucketingKey = nil
	}
	if g.chance(0.2) {
		e.PrimaryGoalID, e.SecondaryGoalIDs = 0, []int64{400001, 400002}
	}
	// Variables: change values, drop some, add one. Types stay.
	var vars []kmodel.Variable
	for _, v := range e.Variables {
		switch {
		case g.chance(0.2): // dropped
		case g.chance(0.3):
			v.Value = g.value(v)
			vars = append(vars, v)
		default:
			vars = append(vars, v)
		}
	}
	if g.chance(0.3) {
		vars = append(vars, g.variable("new_var"))
	}
	e.Variables = vars
	// Variations: drop some (never one an unmanaged environment serves), rename, add one,
	// and redo the overrides against the new variables.
	protected := map[string]bool{}
	for env, le := range live.Environments {
		if _, managed := f.Environments[env]; !managed {
			protected[le.DefaultVariationKey] = true
			for _, r := range le.RolloutRules {
				protected[r.VariationKey], protected[r.ControlVariationKey] = true, true
				for _, a := range r.TrafficAllocations {
					protected[a.VariationKey] = true
				}
			}
		}
	}
	var variations []kmodel.Variation
	for _, v := range e.Variations {
		if !protected[v.Key] && g.chance(0.2) {
			continue
		}
		if g.chance(0.2) {
			v.Name = "Renamed"
		}
		v.Variables = slices.DeleteFunc(v.Variables, func(x kmodel.VariationVariable) bool {
			return !slices.ContainsFunc(vars, func(y kmodel.Variable) bool { return y.Key == x.Key })
		})
		if len(vars) > 0 && g.chance(0.3) {
			x := vars[g.n(len(vars))]
			v.Variables = slices.DeleteFunc(v.Variables, func(o kmodel.VariationVariable) bool { return o.Key == x.Key })
			v.Variables = append(v.Variables, kmodel.VariationVariable{Key: x.Key, Value: g.value(x)})
		}
		variations = append(variations, v)
	}
	if len(variations) == 0 || g.chance(0.3) {
		variations = append(variations, g.variation("added", vars))
	}
	e.Variations = variations
	keys := variationKeys(variations)
	// Environments: managed ones stay managed (dropping one is not an edit Git can
	// express), some are added; rules are edited, reordered, renamed, added, dropped.
	for _, env := range projectEnvs {
		old, ok := e.Environments[env]
		if !ok {
			if g.chance(0.3) {
				e.Environments[env] = g.environment(variations)
			}
			continue
		}
		if g.chance(0.3) {
			old.FeatureEnabled = !old.FeatureEnabled
		}
		if !slices.Contains(keys, old.DefaultVariationKey) || g.chance(0.3) {
			old.DefaultVariationKey = g.pick(keys)
		}
		var rules []kmodel.Rule
		for _, r := range old.RolloutRules {
			if g.chance(0.15) {
				continue
			}
			if g.chance(0.1) {
				r.Name += " renamed"
			}
			if g.chance(0.3) || !ruleUsesOnly(r, keys) {
				fresh := g.rule(r.Name, keys)
				// Keep some rollback conditions in place so their ids are carried.
				if len(r.RollbackConditions) > 0 && len(fresh.RollbackConditions) > 0 {
					fresh.RollbackConditions[0] = r.RollbackConditions[0]
				}
				r = fresh
			}
			rules = append(rules, r)
		}
		if g.chance(0.3) {
			rules = append(rules, g.rule("added rule", keys))
		}
		if len(rules) > 1 && g.chance(0.3) {
			g.rng.Shuffle(len(rules), func(i, j int) { rules[i], rules[j] = rules[j], rules[i] })
		}
		old.RolloutRules = rules
		if g.chance(0.1) {
			old.Integrations = nil
		}
		e.Environments[env] = old
	}
	if g.chance(0.1) {
		e.Archived = !e.Archived
	}
	return e
}

func ruleUsesOnly(r kmodel.Rule, keys []string) bool {
	ok := func(k string) bool { return k == "" || slices.Contains(keys, k) }
	if !ok(r.VariationKey) || !ok(r.ControlVariationKey) {
		return false
	}
	for _, a := range r.TrafficAllocations {
		if !ok(a.VariationKey) {
			return false
		}
	}
	// An experiment must keep covering every variation it allocates to: regenerate it
	// when the variation set changed.
	return r.Type != kmodel.RuleExperimentation || len(r.TrafficAllocations) == len(keys)
}

// deepCopy copies a flag through JSON, so edits never reach the original.
func deepCopy(f kmodel.Flag) kmodel.Flag {
	b, err := json.Marshal(f)
	if err != nil {
		panic(err)
	}
	var out kmodel.Flag
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	if out.Environments == nil {
		out.Environments = map[string]kmodel.Environment{}
	}
	return out
}
