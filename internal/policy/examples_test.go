package policy

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// docExamples reads every `policies:` YAML block of docs/policies.md, so that the
// examples users copy are the ones tested.
func docExamples(t testing.TB) map[string]Spec {
	t.Helper()
	src, err := os.ReadFile("../../docs/policies.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(src), -1)
	out := map[string]Spec{}
	for _, b := range blocks {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(b[1]), &doc); err != nil {
			t.Fatalf("docs/policies.md: a yaml block does not parse: %v\n%s", err, b[1])
		}
		root := doc.Content[0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value != "policies" {
				continue
			}
			specs, probs := ParseYAML("docs/policies.md", []byte(b[1]), root.Content[i+1])
			for _, p := range probs {
				t.Errorf("docs/policies.md: %v", p)
			}
			for _, s := range specs {
				out[s.Name] = s
			}
		}
	}
	return out
}

// compileOne compiles one documented example at the given level.
func compileOne(t *testing.T, ex map[string]Spec, name string, level Level) *Set {
	t.Helper()
	s, ok := ex[name]
	if !ok {
		t.Fatalf("docs/policies.md has no policy %q", name)
	}
	s.Level = string(level)
	set, probs := Compile([]Spec{s}, WithShape(testShape(t)))
	for _, p := range probs {
		t.Fatalf("%s: %v", name, p)
	}
	if set.Len() != 1 {
		t.Fatalf("%s: compiled %d policies", name, set.Len())
	}
	return set
}

// doc parses YAML text into plain data, as the loader hands a flag file to the policies.
func doc(t testing.TB, src string) map[string]any {
	t.Helper()
	if src == "" {
		return nil
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatalf("test YAML: %v\n%s", err, src)
	}
	v, err := FromYAML(&n)
	if err != nil {
		t.Fatal(err)
	}
	return v.(map[string]any)
}

func envChange(action, env string, paths ...string) Change {
	c := Change{Service: "kameleoon", Action: action, Scope: "pzllysfw2f", Key: "new_checkout", Environment: env}
	for _, p := range paths {
		c.Fields = append(c.Fields, FieldChange{Path: p, Before: int64(1), After: int64(2)})
	}
	return c
}

// exampleCase is one change shown to one documented policy.
type exampleCase struct {
	name    string
	change  Change
	flag    string
	live    string
	now     time.Time
	allowed bool
	message string // a substring of the message, when refused
}

func runExample(t *testing.T, policy string, cases []exampleCase) {
	ex := docExamples(t)
	for _, level := range []Level{Deny, Warn} {
		set := compileOne(t, ex, policy, level)
		for _, c := range cases {
			t.Run(string(level)+"/"+c.name, func(t *testing.T) {
				rs := set.Evaluate(Input{Change: c.change, Flag: doc(t, c.flag), Live: doc(t, c.live), Now: c.now})
				if len(rs) != 1 {
					t.Fatalf("got %d results", len(rs))
				}
				r := rs[0]
				if r.Err != nil {
					t.Fatalf("evaluation error: %v", r.Err)
				}
				if r.Allowed != c.allowed {
					t.Fatalf("allowed = %v, want %v (message %q)", r.Allowed, c.allowed, r.Message)
				}
				if r.Level != level || r.Name != policy {
					t.Errorf("result %+v, want level %s and name %s", r, level, policy)
				}
				if c.allowed && r.Message != "" {
					t.Errorf("an allowed change has a message: %q", r.Message)
				}
				if !c.allowed && !strings.Contains(r.Message, c.message) {
					t.Errorf("message %q does not contain %q", r.Message, c.message)
				}
				if Denied(rs) != (!c.allowed && level == Deny) {
					t.Errorf("Denied = %v for level %s, allowed %v", Denied(rs), level, c.allowed)
				}
			})
		}
	}
}

// newCheckout is examples/flags/checkout/new_checkout.yaml with the production exposition
// as given.
func newCheckout(prodEnabled bool, exposition string) string {
	enabled := "false"
	if prodEnabled {
		enabled = "true"
	}
	return `
featureKey: new_checkout
name: New checkout
tags: [checkout]
variables:
  - {key: button_color, type: STRING, value: blue}
variations:
  - {key: off, name: Off}
  - key: on
    name: On
    variables: [{key: button_color, value: green}]
environments:
  development:
    featureEnabled: true
    defaultVariationKey: on
  production:
    featureEnabled: ` + enabled + `
    defaultVariationKey: off
    rolloutRules:
      - name: beta testers
        type: TARGETED_DELIVERY
        segmentId: 403694
` + exposition + `
        variationKey: on
        state: ACTIVE
        rollbackConditions:
          - {target: RULE, criteria: CONVERSION_RATE, comparisonOperator: GREATER_THAN,
             matchValue: 20, goalId: 400899, visitors: 2}
`
}

const exp = "        exposition: "

func TestExampleProductionExposureStep(t *testing.T) {
	prod := envChange("update", "production", "environments.production.rolloutRules[name=beta testers].exposition")
	runExample(t, "production-exposure-step", []exampleCase{
		{name: "40 to 59 is 19 points", change: prod,
			flag: newCheckout(true, exp+"59"), live: newCheckout(true, exp+"40"), allowed: true},
		{name: "34 to 59 is exactly 25 points", change: prod,
			flag: newCheckout(true, exp+"59"), live: newCheckout(true, exp+"34"), allowed: true},
		{name: "30 to 59 is 29 points", change: prod,
			flag: newCheckout(true, exp+"59"), live: newCheckout(true, exp+"30"),
			message: "now: beta testers at 59%"},
		{name: "a double exposition 12.5 to 40", change: prod,
			flag: newCheckout(true, exp+"40"), live: newCheckout(true, exp+"12.5"), message: "at most 25 points"},
		{name: "lowering is allowed", change: prod,
			flag: newCheckout(true, exp+"10"), live: newCheckout(true, exp+"90"), allowed: true},
		{name: "enabling production with 59 percent is 59 points",
			change: envChange("update", "production", "environments.production.featureEnabled"),
			flag:   newCheckout(true, exp+"59"), live: newCheckout(false, exp+"59"), message: "at most 25"},
		{name: "disabling production is allowed",
			change: envChange("update", "production", "environments.production.featureEnabled"),
			flag:   newCheckout(false, exp+"100"), live: newCheckout(true, exp+"10"), allowed: true},
		{name: "exposition left out is 100 percent", change: prod,
			flag: newCheckout(true, ""), live: newCheckout(true, exp+"80"), allowed: true},
		{name: "exposition left out after 50 is 50 points", change: prod,
			flag: newCheckout(true, ""), live: newCheckout(true, exp+"50"), message: "beta testers at 100%"},
		{name: "a new flag starts from 0: 20 is allowed",
			change: envChange("create", "", "featureKey", "environments.production.rolloutRules[name=beta testers]"),
			flag:   newCheckout(true, exp+"20"), allowed: true},
		{name: "a new flag starts from 0: 59 is refused",
			change: envChange("create", "", "featureKey", "environments.production.rolloutRules[name=beta testers]"),
			flag:   newCheckout(true, exp+"59"), message: "at most 25"},
		{name: "a development change is not production's",
			change: envChange("update", "development", "environments.development.defaultVariationKey"),
			flag:   newCheckout(true, exp+"100"), live: newCheckout(true, exp+"0"), allowed: true},
	})
}

// stagingLive is a live flag whose staging serves variation on to a staging segment.
func stagingLive(stagingEnabled bool, variation string, extraRule bool) string {
	enabled := "false"
	if stagingEnabled {
		enabled = "true"
	}
	extra := ""
	if extraRule {
		extra = `
      - {name: everyone else, type: PROGRESSIVE_DELIVERY, exposition: 5, variationKey: on}`
	}
	return `
featureKey: new_checkout
name: New checkout
variations: [{key: off}, {key: on}]
environments:
  staging:
    featureEnabled: ` + enabled + `
    defaultVariationKey: off
    rolloutRules:
      - name: beta testers
        type: TARGETED_DELIVERY
        segmentId: 403690
        exposition: 100
        variationKey: ` + variation + `
        state: ACTIVE` + extra + `
  production:
    featureEnabled: true
    defaultVariationKey: off
    rolloutRules:
      - {name: beta testers, type: TARGETED_DELIVERY, segmentId: 403694, exposition: 30, variationKey: on}
`
}

func TestExampleStagingBeforeProduction(t *testing.T) {
	prod := envChange("update", "production", "environments.production.rolloutRules[name=beta testers].exposition")
	runExample(t, "staging-before-production", []exampleCase{
		{name: "same rules, other segment and exposure", change: prod,
			flag: newCheckout(true, exp+"59"), live: stagingLive(true, "on", false), allowed: true},
		{name: "staging serves another variation", change: prod,
			flag: newCheckout(true, exp+"59"), live: stagingLive(true, "off", false),
			message: "live in staging"},
		{name: "staging is disabled", change: prod,
			flag: newCheckout(true, exp+"59"), live: stagingLive(false, "on", false), message: "live in staging"},
		{name: "staging has one more rule", change: prod,
			flag: newCheckout(true, exp+"59"), live: stagingLive(true, "on", true), message: "live in staging"},
		{name: "a new flag has never been live",
			change: envChange("create", "", "featureKey", "environments.production.featureEnabled"),
			flag:   newCheckout(true, exp+"59"), message: "live in staging"},
		{name: "turning production off is always allowed",
			change: envChange("update", "production", "environments.production.featureEnabled"),
			flag:   newCheckout(false, exp+"59"), live: stagingLive(false, "off", true), allowed: true},
		{name: "a development change does not need staging",
			change: envChange("update", "development", "environments.development.featureEnabled"),
			flag:   newCheckout(true, exp+"59"), live: stagingLive(false, "off", false), allowed: true},
	})
}

func lifecycleFlag(meta string) string {
	return meta + `
featureKey: dark_mode
name: Dark mode
variations: [{key: off}, {key: on}]
environments:
  production: {featureEnabled: false, defaultVariationKey: off}
`
}

func TestExampleOwnerAndExpiry(t *testing.T) {
	upd := envChange("update", "production", "environments.production.featureEnabled")
	runExample(t, "owner-and-expiry", []exampleCase{
		{name: "owner and expires", change: upd, flag: lifecycleFlag("owner: team-web\nexpires: 2026-06-30"), allowed: true},
		{name: "owner and permanent", change: upd, flag: lifecycleFlag("owner: team-web\npermanent: true"), allowed: true},
		{name: "no owner", change: upd, flag: lifecycleFlag("expires: 2026-06-30"), message: "names an owner"},
		{name: "empty owner", change: upd, flag: lifecycleFlag("owner: ''\nexpires: 2026-06-30"), message: "names an owner"},
		{name: "owner, permanent false and no expiry", change: upd,
			flag: lifecycleFlag("owner: team-web\npermanent: false"), message: "expiry date"},
		{name: "a new flag without metadata", change: envChange("create", "", "featureKey"),
			flag: lifecycleFlag(""), message: "names an owner"},
		{name: "archiving is allowed", change: envChange("archive", "", "archived"), flag: lifecycleFlag(""), allowed: true},
	})
}

func TestExampleNotExpired(t *testing.T) {
	upd := envChange("update", "production", "environments.production.featureEnabled")
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d.Add(12 * time.Hour) }
	runExample(t, "not-expired", []exampleCase{
		{name: "before the date", change: upd, flag: lifecycleFlag("expires: 2026-06-30"), now: day("2026-06-29"), allowed: true},
		{name: "after the date", change: upd, flag: lifecycleFlag("expires: 2026-06-30"), now: day("2026-07-01"),
			message: "expired on 2026-06-30: remove the flag"},
		{name: "a quoted date", change: upd, flag: lifecycleFlag("expires: '2026-06-30'"), now: day("2026-07-01"),
			message: "expired on 2026-06-30"},
		{name: "no date", change: upd, flag: lifecycleFlag("permanent: true"), now: day("2030-01-01"), allowed: true},
	})
}

// pushPrompt is examples/flags/mobile/push_prompt.yaml, with the primary goal as given and
// its experiment in the given environment.
func pushPrompt(goal, env string) string {
	return `
siteCode: a1b2c3d4e5
featureKey: push_prompt
name: Push permission prompt timing
` + goal + `
variations:
  - {key: first_launch, name: On first launch}
  - {key: after_order, name: After the first order}
environments:
  staging:
    featureEnabled: false
    defaultVariationKey: first_launch
  ` + env + `:
    featureEnabled: true
    defaultVariationKey: first_launch
    rolloutRules:
      - name: prompt timing test
        type: EXPERIMENTATION
        segmentId: 403801
        controlVariationKey: first_launch
        trafficAllocationMethod: MULTI_ARMED_BANDIT
        trafficAllocations:
          - {variationKey: first_launch, exposition: 50}
          - {variationKey: after_order, exposition: 50}
        state: ACTIVE
`
}

func TestExampleExperimentNeedsPrimaryGoal(t *testing.T) {
	prod := envChange("update", "production", "environments.production.rolloutRules[name=prompt timing test]")
	runExample(t, "experiment-needs-primary-goal", []exampleCase{
		{name: "experiment with a goal", change: prod, flag: pushPrompt("primaryGoalId: 400899", "production"), allowed: true},
		{name: "experiment without a goal", change: prod, flag: pushPrompt("", "production"), message: "needs the flag's primaryGoalId"},
		{name: "a flag-level change of such a flag", change: envChange("update", "", "tags"),
			flag: pushPrompt("", "production"), message: "primaryGoalId"},
		{name: "an experiment in development only", change: envChange("update", "development", "environments.development.featureEnabled"),
			flag: pushPrompt("", "development"), allowed: true},
		{name: "a staging change cannot break the rule", change: envChange("update", "staging", "environments.staging.featureEnabled"),
			flag: pushPrompt("", "production"), allowed: true},
		{name: "a new flag with an experiment", change: envChange("create", "", "featureKey", "environments.production.featureEnabled"),
			flag: pushPrompt("", "production"), message: "primaryGoalId"},
		{name: "archiving is allowed", change: envChange("archive", "", "archived"), flag: pushPrompt("", "production"), allowed: true},
	})
}

// TestExamplesTogether compiles every documented example into one set, as a flagsync.yaml
// holding them all would, and checks each result lands on its own policy.
func TestExamplesTogether(t *testing.T) {
	ex := docExamples(t)
	names := []string{"production-exposure-step", "staging-before-production", "owner-and-expiry", "not-expired", "experiment-needs-primary-goal"}
	var specs []Spec
	for _, n := range names {
		specs = append(specs, ex[n])
	}
	if len(ex) != len(names) {
		t.Errorf("docs/policies.md has %d policies, this test knows %d: add the new one to a test", len(ex), len(names))
	}
	set, probs := Compile(specs, WithShape(testShape(t)))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	rs := set.Evaluate(Input{
		Change: envChange("update", "production", "environments.production.rolloutRules[name=beta testers].exposition"),
		Flag:   doc(t, newCheckout(true, exp+"59")),
		Live:   doc(t, newCheckout(true, exp+"30")),
		Now:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	got := map[string]bool{}
	for i, r := range rs {
		if r.Index != i || r.Name != names[i] {
			t.Errorf("result %d is %d %s", i, r.Index, r.Name)
		}
		if r.Err != nil {
			t.Errorf("%s: %v", r.Name, r.Err)
		}
		got[r.Name] = r.Allowed
	}
	want := map[string]bool{
		"production-exposure-step":      false, // 30 to 59
		"staging-before-production":     false, // live has no staging
		"owner-and-expiry":              false, // new_checkout has no owner (warn)
		"not-expired":                   true,  // no expiry date
		"experiment-needs-primary-goal": true,  // no experiment
	}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("%s allowed = %v, want %v", n, got[n], w)
		}
	}
	if !Denied(rs) || len(Refusals(rs)) != 3 {
		t.Errorf("Denied %v, refusals %d", Denied(rs), len(Refusals(rs)))
	}
}
