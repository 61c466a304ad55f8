package policy

import "testing"

func TestScratch(t *testing.T) {
	specs := []Spec{
		{Name: "a", Message: "m", Expr: `change.feild == "x"`},
		{Name: "b", Message: "m", Expr: `change.fields[0].pathx == "x"`},
		{Name: "c", Message: "m", Expr: `change.fields.exists(f, f.path == "x" && f.after == 3)`},
		{Name: "d", Message: "m", Expr: `flag.owner`},
		{Name: "e", Message: "m", Expr: `has(flag.owner) && flag.?environments.?production.?rolloutRules.orValue([]).all(r, double(r.?exposition.orValue(100)) <= 50.0)`},
		{Name: "f", Message: "m", Expr: `live == null || live.environments.staging.transformMap(k, v, k != "segmentId", v) == {"a": 1}`},
		{Name: "g", Message: "m", Expr: `flag.owner == "x"`},
	}
	set, probs := Compile(specs)
	for _, p := range probs {
		t.Log(p.Error())
	}
	in := Input{Change: Change{Action: "update", Environment: "production", Fields: []FieldChange{{Path: "x", After: int64(3)}}},
		Flag: map[string]any{"owner": "me", "environments": map[string]any{"production": map[string]any{"rolloutRules": []any{map[string]any{"exposition": int64(40)}}}}}}
	for _, r := range set.Evaluate(in) {
		t.Logf("%+v", r)
	}
	in.Flag = map[string]any{}
	for _, r := range set.Evaluate(in) {
		t.Logf("%+v", r)
	}
}
