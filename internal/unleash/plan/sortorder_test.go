package unleashplan

import (
	"slices"
	"testing"

	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
)

func TestPlanSortOrder(t *testing.T) {
	live := func(orders ...int) []unleashmodel.Strategy {
		out := make([]unleashmodel.Strategy, len(orders))
		for i, o := range orders {
			out[i].SortOrder = o
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		match    []int
		live     []unleashmodel.Strategy
		want     []int
		renumber bool
	}{
		{"in order", []int{0, 1}, live(0, 1), []int{0, 1}, false},
		{"gaps kept", []int{0, 1}, live(3, 9), []int{3, 9}, false},
		{"appended", []int{0, 1, -1, -1}, live(0, 4), []int{0, 4, 5, 6}, false},
		{"before the first, with room", []int{-1, 0}, live(2), []int{1, 2}, false},
		{"between, with room", []int{0, -1, 1}, live(0, 5), []int{0, 1, 5}, false},
		{"between, no room", []int{0, -1, 1}, live(0, 1), []int{0, 1, 2}, true},
		{"before the first, no room", []int{-1, -1, 0}, live(1), []int{0, 1, 2}, true},
		{"swapped", []int{1, 0}, live(0, 1), []int{0, 1}, true},
		{"tie", []int{0, 1}, live(0, 0), []int{0, 1}, true},
		{"all new", []int{-1, -1}, nil, []int{0, 1}, false},
	} {
		got, renumber := planSortOrder(tc.match, tc.live)
		if !slices.Equal(got, tc.want) || renumber != tc.renumber {
			t.Errorf("%s: sort orders %v, renumber %t; want %v, %t", tc.name, got, renumber, tc.want, tc.renumber)
		}
	}
}
