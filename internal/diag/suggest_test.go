package diag

import "testing"

func TestSuggest(t *testing.T) {
	for _, tc := range []struct {
		s          string
		candidates []string
		want       string
	}{
		{"exposure", []string{"name", "exposition", "state"}, "exposition"},
		{"FeatureKey", []string{"featureKey", "name"}, "featureKey"},
		{"nmae", []string{"name", "tags"}, "name"},
		{"vame", []string{"name"}, "name"},
		{"TARGETED", []string{"TARGETED_DELIVERY", "EXPERIMENTATION"}, "TARGETED_DELIVERY"},
		{"base", []string{"name"}, ""},
		{"id", []string{"key", "name"}, ""},
		{"color", []string{"", "name"}, ""},
		{"", []string{"", "a"}, ""},
		{"x", nil, ""},
	} {
		if got := suggest(tc.s, tc.candidates); got != tc.want {
			t.Errorf("suggest(%q, %q) = %q, want %q", tc.s, tc.candidates, got, tc.want)
		}
	}
}
