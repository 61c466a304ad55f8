package policy

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// testShape is the Kameleoon flag file's shape from the repository's schema, plus the
// lifecycle fields of issue 19 (owner, expires, permanent), which the schema gains with them.
func testShape(t testing.TB) *Shape {
	t.Helper()
	b, err := os.ReadFile("../../schema/flag.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ShapeFromJSONSchema(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"owner", "expires", "permanent"} {
		s.Field(f).kind = kindScalar
	}
	return s
}

func TestCompileProblems(t *testing.T) {
	cases := []struct {
		name  string
		spec  Spec
		field string
		want  string
	}{
		{"misspelt change field", Spec{Expr: `change.feild == "x"`}, FieldExpr, "undefined field 'feild'"},
		{"misspelt field of a field change", Spec{Expr: `change.fields.exists(f, f.pathx == "x")`}, FieldExpr, "undefined field 'pathx'"},
		{"misspelt field by index", Spec{Expr: `change.fields[0].pathx == "x"`}, FieldExpr, "undefined field 'pathx'"},
		{"unknown variable", Spec{Expr: `flg.owner == "x"`}, FieldExpr, "undeclared reference to 'flg'"},
		{"unknown function", Spec{Expr: `change.fields.exits(f, true)`}, FieldExpr, "undeclared reference to 'exits'"},
		{"syntax", Spec{Expr: `change.action == `}, FieldExpr, "Syntax error"},
		{"not a bool", Spec{Expr: `change.action`}, FieldExpr, "must be of type bool, is string"},
		{"dyn is not bool", Spec{Expr: `flag.archived`}, FieldExpr, "wrap it in bool"},
		{"wrong argument type", Spec{Expr: `change.action.startsWith(1)`}, FieldExpr, "found no matching overload for 'startsWith'"},
		{"messageExpr not a string", Spec{Expr: `true`, MessageExpr: `1 + 1`}, FieldMessageExpr, "must be of type string, is int"},
		{"messageExpr does not compile", Spec{Expr: `true`, MessageExpr: `change.nope`}, FieldMessageExpr, "undefined field 'nope'"},
		{"unknown level", Spec{Expr: `true`, Level: "error"}, FieldLevel, `must be deny or warn, not "error"`},
		{"no expr", Spec{}, FieldExpr, "required"},
		{"unknown flag field", Spec{Expr: `has(flag.ownr)`}, FieldExpr, `the flag file has no field "ownr" (did you mean owner?)`},
		{"unknown rule field in a comprehension", Spec{Expr: `flag.environments.production.rolloutRules.all(r, r.expositon < 50)`}, FieldExpr,
			`environments.<key>.rolloutRules[] of the flag file has no field "expositon" (did you mean exposition?)`},
		{"unknown field through optionals", Spec{Expr: `flag.?environments.?production.?rolloutRule.orValue([]).size() == 0`}, FieldExpr,
			`has no field "rolloutRule" (did you mean rolloutRules?)`},
		{"unknown field through cel.bind", Spec{Expr: `cel.bind(p, flag.environments.production, p.featureEnable == true)`}, FieldExpr,
			`has no field "featureEnable"`},
		{"unknown live field", Spec{Expr: `live == null || live.primaryGoal == 1`}, FieldExpr, `no field "primaryGoal" (did you mean primaryGoalId?)`},
		{"a field of a list", Spec{Expr: `flag.tags.name == "x"`}, FieldExpr, "is a list"},
		{"a field inside a filter then map", Spec{Expr: `flag.environments.production.rolloutRules.filter(r, r.type == "X").map(r, r.nme).size() == 0`}, FieldExpr, `no field "nme"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.spec.Name = "p"
			if c.spec.Message == "" {
				c.spec.Message = "m"
			}
			set, probs := Compile([]Spec{{Name: "ok", Message: "m", Expr: "true"}, c.spec}, WithShape(testShape(t)))
			if len(probs) == 0 {
				t.Fatalf("no problem; want %q", c.want)
			}
			p := probs[0]
			if p.Index != 1 || p.Field != c.field || !strings.Contains(p.Message, c.want) {
				t.Errorf("problem %+v; want index 1, field %s, message containing %q", p, c.field, c.want)
			}
			if set.Len() != 1 {
				t.Errorf("set has %d policies, want the one that compiled", set.Len())
			}
		})
	}
}

func TestShapeAllowsWhatTheSchemaAllows(t *testing.T) {
	exprs := []string{
		`has(flag.owner) && flag.featureKey != ""`,
		`flag.environments.anything_you_name.featureEnabled == true`,
		`flag.environments.all(k, v, v.?rolloutRules.orValue([]).all(r, r.?release.?timeZone.orValue("UTC") != ""))`,
		`flag.environments.production.rolloutRules[0].trafficAllocations.all(a, a.exposition <= 100)`,
		`flag.environments.production.integrations.deliveryRules.all(d, d.anything == 1)`,
		`flag.variations.exists(v, v.variables.exists(x, x.key == "k" && x.value == "v"))`,
		`flag.bucketingKey.customDataId > 0`,
		`flag[change.key] == 1`,
	}
	for _, e := range exprs {
		_, probs := Compile([]Spec{{Name: "p", Message: "m", Expr: e}}, WithShape(testShape(t)))
		if len(probs) > 0 {
			t.Errorf("%s: %v", e, probs)
		}
	}
}

func TestLiveShape(t *testing.T) {
	flag := testShape(t)
	live := testShape(t)
	live.Field("health")
	spec := []Spec{{Name: "p", Message: "m", Expr: `live == null || live.?health.orValue("") != "STALE"`}}
	if _, probs := Compile(spec, WithShape(flag), WithLiveShape(live)); len(probs) > 0 {
		t.Errorf("live.health with a live shape that has it: %v", probs)
	}
	if _, probs := Compile(spec, WithShape(flag)); len(probs) == 0 || !strings.Contains(probs[0].Message, `no field "health"`) {
		t.Errorf("live.health against the flag shape: %v", probs)
	}
	spec[0].Expr = `live == null || live.?helth.orValue("") != "STALE"`
	if _, probs := Compile(spec, WithShape(flag), WithLiveShape(live)); len(probs) == 0 || !strings.Contains(probs[0].Message, "did you mean health?") {
		t.Errorf("live.helth: %v", probs)
	}
	spec[0].Expr = `has(flag.health)`
	if _, probs := Compile(spec, WithShape(flag), WithLiveShape(live)); len(probs) == 0 {
		t.Error("flag.health passes against the flag shape")
	}
}

func TestMergeShapes(t *testing.T) {
	k := testShape(t)
	split, err := ShapeFromJSONSchema([]byte(`{"type": "object", "additionalProperties": false,
		"properties": {"name": {"type": "string"}, "environments": {"type": "object",
		"additionalProperties": {"type": "object", "additionalProperties": false, "properties": {"killed": {"type": "boolean"}}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	m := Merge(k, split)
	for expr, ok := range map[string]bool{
		`flag.environments.Production.killed == true`:         true,
		`flag.environments.production.featureEnabled == true`: true,
		`flag.featureKey == "a" || flag.name == "b"`:          true,
		`flag.environments.production.kiled == true`:          false,
	} {
		_, probs := Compile([]Spec{{Name: "p", Message: "m", Expr: expr}}, WithShape(m))
		if (len(probs) == 0) != ok {
			t.Errorf("%s: problems %v, want ok=%v", expr, probs, ok)
		}
	}
}

func TestParseYAMLPositions(t *testing.T) {
	src := `# flagsync.yaml
siteCode: pzllysfw2f
policies:
  - name: exposure
    level: deny
    message: too much
    expr: |
      change.environmentKey == "production" &&
        change.fields.exists(f, f.pathx == "x")
  - name: one-line
    level: warn
    message: m
    expr: change.feild == "x"
  - name: quoted
    message: m
    expr: 'change.nope'
  - name: bad level
    level: error
    message: m
    expr: "true"
  - name: exposure
    message: m
    expr: "true"
  - {name: flow, message: m, expr: true, colour: red}
`
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	specs, probs := ParseYAML("flags/flagsync.yaml", []byte(src), n.Content[0].Content[3])
	set, cprobs := Compile(specs)
	got := []string{}
	for _, p := range append(probs, cprobs...) {
		got = append(got, p.Error())
	}
	want := []string{
		`flags/flagsync.yaml:18:12: policies[3].level (bad level): must be deny or warn, not "error"`,
		`flags/flagsync.yaml:21:11: policies[4].name (exposure): duplicate policy name (policies[0] has it too)`,
		`flags/flagsync.yaml:24:42: policies[5].colour: unknown key (a policy has name, level, message, messageExpr and expr)`,
		`flags/flagsync.yaml:9:34: policies[0].expr (exposure): undefined field 'pathx'`,
		`flags/flagsync.yaml:13:17: policies[1].expr (one-line): undefined field 'feild'`,
		`flags/flagsync.yaml:16:18: policies[2].expr (quoted): undefined field 'nope'`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if set.Len() != 0 {
		t.Errorf("set has %d policies", set.Len())
	}
	// The columns are those of the selecting dot: line 9 is `        change.fields.exists(f, f.pathx == "x")`.
	if line9 := strings.Split(src, "\n")[8]; line9[33:39] != ".pathx" {
		t.Errorf("column 34 of line 9 is %q", line9[33:])
	}
}

// TestIndexesAreTheFiles: an entry with a shape problem does not shift the indexes of
// the entries after it, in problems and in results.
func TestIndexesAreTheFiles(t *testing.T) {
	src := `policies:
  - {name: a, level: loud, message: m, expr: "true"}
  - just a string
  - {name: b, message: m, expr: change.nope}
  - {name: c, message: m, expr: "false"}
  - {name: c, message: m, expr: "true"}
`
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	specs, probs := ParseYAML("f.yaml", []byte(src), n.Content[0].Content[1])
	set, cprobs := Compile(specs)
	var got []string
	for _, p := range append(probs, cprobs...) {
		got = append(got, p.Path())
	}
	if want := []string{"policies[0].level", "policies[1]", "policies[4].name", "policies[2].expr"}; !reflect.DeepEqual(got, want) {
		t.Errorf("problems at %v, want %v", got, want)
	}
	rs := set.Evaluate(Input{})
	if len(rs) != 1 || rs[0].Index != 3 || rs[0].Name != "c" || rs[0].Allowed {
		t.Errorf("results %+v, want policies[3] (c) refusing", rs)
	}
}

func TestParseYAMLShape(t *testing.T) {
	for src, want := range map[string]string{
		`policies: {name: x}`:                                      "policies: must be a list",
		`policies: [x]`:                                            "policies[0]: must be a mapping",
		`policies: [{name: x, expr: [a]}]`:                         "policies[0].expr: must be a string",
		`policies: [{name: x, expr: "true"}]`:                      "policies[0].message (x): required",
		`policies: [{expr: "true", message: m}]`:                   "policies[0].name: required",
		`policies: [{name: x, name: y, expr: "true", message: m}]`: "policies[0].name: duplicate key",
	} {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(src), &n); err != nil {
			t.Fatal(err)
		}
		_, probs := ParseYAML("", nil, n.Content[0].Content[1])
		if len(probs) == 0 || !strings.Contains(probs[0].Error(), want) {
			t.Errorf("%s: problems %v, want %q", src, probs, want)
		}
	}
}

func TestEvaluationErrorRefusesWhateverTheLevel(t *testing.T) {
	set, probs := Compile([]Spec{
		{Name: "unguarded", Level: "warn", Message: "m", Expr: `flag.owner != ""`},
		{Name: "division", Level: "warn", Message: "m", Expr: `1 / size(change.fields) > 0`},
	})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	rs := set.Evaluate(Input{Change: Change{Action: "update"}, Flag: map[string]any{"featureKey": "x"}})
	for _, r := range rs {
		var ee *EvalError
		if r.Allowed || r.Level != Deny || !errors.As(r.Err, &ee) || ee.Policy != r.Name {
			t.Errorf("%+v: want a refusal at level deny with an *EvalError", r)
		}
		if !strings.Contains(r.Message, "could not evaluate the policy") {
			t.Errorf("message %q", r.Message)
		}
	}
	if !strings.Contains(rs[0].Message, "no such key: owner") || !strings.Contains(rs[1].Message, "division by zero") {
		t.Errorf("messages %q, %q", rs[0].Message, rs[1].Message)
	}
	if !Denied(rs) {
		t.Error("Denied is false")
	}
}

func TestChangeFields(t *testing.T) {
	c := Change{Service: "split", Action: "update", Scope: "ws-1", Key: "new_checkout", Environment: "Production",
		Fields: []FieldChange{
			{Path: "environments.Production.trafficAllocation", Before: int64(10), After: int64(50)},
			{Path: "environments.Production.killed", After: false},
		}}
	exprs := []string{
		`change.service == "split" && change.action == "update"`,
		`change.scope == "ws-1" && change.siteCode == "ws-1"`,
		`change.key == "new_checkout" && change.featureKey == change.key`,
		`change.environment == "Production" && change.environmentKey == "Production"`,
		`has(change.environmentKey) && has(change.fields)`,
		`size(change.fields) == 2 && change.fields[0].after - change.fields[0].before == 40`,
		`has(change.fields[0].before) && !has(change.fields[1].before)`,
		`change.fields[1].before == null && change.fields[1].after == false`,
		`change.fields.map(f, f.path.split(".")[2]) == ["trafficAllocation", "killed"]`,
		`change.fields[0] == change.fields[0] && change.fields[0] != change.fields[1]`,
		`type(change) == flagsync.Change`,
		`now == timestamp("2026-01-02T03:04:05Z")`,
		`live == null && flag == {}`,
	}
	var specs []Spec
	for i, e := range exprs {
		specs = append(specs, Spec{Name: string(rune('a' + i)), Message: "m", Expr: e})
	}
	set, probs := Compile(specs)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	for i, r := range set.Evaluate(Input{Change: c, Now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}) {
		if !r.Allowed {
			t.Errorf("%s: %+v", exprs[i], r)
		}
	}
	flagLevel := Change{Action: "create"}
	set, _ = Compile([]Spec{{Name: "x", Message: "m", Expr: `!has(change.environmentKey) && change.environmentKey == "" && size(change.fields) == 0`}})
	if r := set.Evaluate(Input{Change: flagLevel}); !r[0].Allowed {
		t.Errorf("flag-level change: %+v", r[0])
	}
}

func TestMessageExpr(t *testing.T) {
	set, probs := Compile([]Spec{
		{Name: "computed", Message: "fallback", MessageExpr: `"flag %s in %s".format([change.key, change.environment])`, Expr: "false"},
		{Name: "failing", Message: "fallback", MessageExpr: `"owner " + string(flag.owner)`, Expr: "false"},
	})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	rs := set.Evaluate(Input{Change: Change{Key: "dark_mode", Environment: "staging"}, Flag: map[string]any{}})
	if rs[0].Message != "flag dark_mode in staging" || rs[1].Message != "fallback" {
		t.Errorf("messages %q, %q", rs[0].Message, rs[1].Message)
	}
}

func TestPlainAndFromYAML(t *testing.T) {
	type rule struct {
		Name       string   `json:"name"`
		Exposition *float64 `json:"exposition,omitempty"`
		Segment    int      `json:"segmentId"`
	}
	half := 12.5
	got, err := Plain(map[string]any{"rules": []rule{{Name: "a", Exposition: &half, Segment: 7}, {Name: "b"}}, "n": 3})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"n": int64(3), "rules": []any{
		map[string]any{"name": "a", "exposition": 12.5, "segmentId": int64(7)},
		map[string]any{"name": "b", "segmentId": int64(0)},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Plain = %#v", got)
	}
	var n yaml.Node
	src := "a: 2026-06-30\nb: 2025-12-11T11:58:01\nc: 59\nd: 12.5\ne: off\nf: true\ng: ~\nh: [1, x]\ni: 0x10\n"
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	v, err := FromYAML(&n)
	if err != nil {
		t.Fatal(err)
	}
	want2 := map[string]any{"a": "2026-06-30", "b": "2025-12-11T11:58:01", "c": int64(59), "d": 12.5, "e": "off",
		"f": true, "g": nil, "h": []any{int64(1), "x"}, "i": int64(16)}
	if !reflect.DeepEqual(v, want2) {
		t.Errorf("FromYAML = %#v", v)
	}
	if err := yaml.Unmarshal([]byte("a: &x 1\nb: *x\n"), &n); err != nil {
		t.Fatal(err)
	}
	if _, err := FromYAML(&n); err == nil || !strings.Contains(err.Error(), "aliases") {
		t.Errorf("alias: %v", err)
	}
}

// TestDocumentedFunctions compiles and runs a use of every function docs/policies.md
// lists, and the number rules it states.
func TestDocumentedFunctions(t *testing.T) {
	exprs := []string{
		`size(flag.tags) == 2 && has(flag.tags) && flag.tags.all(x, x != "") && flag.tags.exists(x, x == "ui")`,
		`flag.tags.exists_one(x, x == "ui") && flag.tags.map(x, x + "!") == ["ui!", "theme!"] && flag.tags.filter(x, x == "ui") == ["ui"]`,
		`"ui" in flag.tags && flag.name.startsWith("Dark") && flag.name.endsWith("mode") && flag.name.contains("rk m") && flag.name.matches("^D.*e$")`,
		`int("3") == 3 && double(3) == 3.0 && string(3) == "3" && timestamp("2026-01-01T00:00:00Z") < now + duration("8760h")`,
		`flag.?owner.orValue("x") == "x" && !flag.?owner.hasValue()`,
		`flag.name.lowerAscii() == "dark mode" && flag.name.split(" ") == ["Dark", "mode"] && ["a", "b"].join("-") == "a-b"`,
		`"%s-%d".format(["a", 1]) == "a-1" && "a-b".replace("-", "+") == "a+b" && " a ".trim() == "a"`,
		`[[1], [2]].flatten() == [1, 2] && [1, 1, 2].distinct() == [1, 2] && [2, 1].sort() == [1, 2] && [1, 2, 3].slice(1, 2) == [2]`,
		`[1, 2].first().value() == 1 && [1, 2].last().value() == 2`,
		`sets.contains([1, 2], [1]) && sets.intersects([1], [1, 3]) && sets.equivalent([1, 2], [2, 1])`,
		`math.greatest([1, 5]) == 5 && math.least([1, 5]) == 1 && math.abs(-2) == 2`,
		`cel.bind(x, 2, x * x == 4) && {"a": 1}.transformMap(k, v, v + 1) == {"a": 2} && [1].transformList(i, v, v * 2) == [2]`,
		`{"a": 1}.all(k, v, v == 1) && {"a": 1}.exists(k, v, k == "a")`,
		`{"a": 1, "b": 2}.pick(["a", "c"]) == {"a": 1} && {"a": 1, "b": 2}.omit(["a"]) == {"b": 2}`,
		`[{"a": 1, "b": 2}, 3].pick(["a"]) == [{"a": 1}, 3] && [{"a": 1, "b": 2}].omit(["a"]) == [{"b": 2}]`,
		`[{"n": "x", "v": 1}, {"v": 2}, {"n": "x", "v": 3}].indexBy("n") == {"x": {"n": "x", "v": 3}}`,
		`date("2026-06-30") == timestamp("2026-06-30T00:00:00Z") && date("2026-06-30T12:00:00+02:00") == timestamp("2026-06-30T10:00:00Z")`,
		`change.touches("production") && !change.touches("prod") && !change.touches("staging")`,
		// Numbers: comparisons mix int and double, arithmetic needs double().
		`flag.half <= 25 && flag.half < flag.fifty && double(flag.fifty) - flag.half == 37.5`,
	}
	in := Input{
		Change: Change{Action: "create", Fields: []FieldChange{{Path: "environments.production[0]"}}},
		Flag:   map[string]any{"tags": []any{"ui", "theme"}, "name": "Dark mode", "half": 12.5, "fifty": int64(50)},
		Now:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for _, e := range exprs {
		set, probs := Compile([]Spec{{Name: "p", Message: "m", Expr: e}})
		if len(probs) > 0 {
			t.Errorf("%s: %v", e, probs)
			continue
		}
		if r := set.Evaluate(in)[0]; !r.Allowed {
			t.Errorf("%s: %+v", e, r)
		}
	}
	set, _ := Compile([]Spec{{Name: "p", Message: "m", Expr: `flag.fifty - flag.half > 0.0`}})
	if r := set.Evaluate(in)[0]; r.Err == nil || !strings.Contains(r.Message, "no such overload") {
		t.Errorf("int minus double: %+v", r)
	}
	set, _ = Compile([]Spec{{Name: "p", Message: "m", Expr: `date("30/06/2026") > now`}})
	if r := set.Evaluate(in)[0]; r.Err == nil || !strings.Contains(r.Message, "neither a date") {
		t.Errorf("bad date: %+v", r)
	}
}

// TestConcurrentEvaluate evaluates the same inputs from several goroutines (run with -race)
// and expects the results of a sequential run.
func TestConcurrentEvaluate(t *testing.T) {
	set := benchSet(t)
	ins := benchInputs(t)[:300]
	want := make([][]Result, len(ins))
	for i := range ins {
		want[i] = set.Evaluate(ins[i])
	}
	errs := make(chan string, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range ins {
				if got := set.Evaluate(ins[i]); !reflect.DeepEqual(got, want[i]) {
					errs <- fmt.Sprintf("input %d: %+v, want %+v", i, got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
