package kclient

import (
	"reflect"
	"testing"

	"github.com/flagsync/flagsync/internal/api"
)

func TestBudgetDefaults(t *testing.T) {
	got := NewBudget(0, -1).Remaining()
	want := []api.WindowStatus{{Name: "10s", Limit: 50, Used: 0, Remaining: 50}, {Name: "1h", Limit: 1000, Used: 0, Remaining: 1000}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Remaining() = %+v, want %+v", got, want)
	}
}
