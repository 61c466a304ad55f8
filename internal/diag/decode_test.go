package diag

import (
	"strings"
	"testing"
)

// TestDecodeErrorNamesThePath checks that the field path a decoding error names, built
// only when the error happens, is the path of the value of the wrong type.
func TestDecodeErrorNamesThePath(t *testing.T) {
	type rule struct {
		Name string `json:"name"`
		N    int64  `json:"n"`
	}
	type env struct {
		Rules []rule `json:"rules"`
	}
	var into struct {
		Envs map[string]env `json:"envs"`
		Tag  string         `json:"tag"`
	}
	v := map[string]any{
		"envs": map[string]any{"production": map[string]any{"rules": []any{
			map[string]any{"name": "a"},
			map[string]any{"name": "b", "n": "ten"},
		}}},
		"tag": "t",
	}
	err := Decode(v, &into)
	if err == nil || !strings.Contains(err.Error(), "envs.production.rules[1].n: want a number, got string") {
		t.Fatalf("error %v, want the path envs.production.rules[1].n", err)
	}
	if into.Tag != "t" || into.Envs["production"].Rules[1].Name != "b" {
		t.Errorf("decoding stopped at the error: %+v", into)
	}
}
