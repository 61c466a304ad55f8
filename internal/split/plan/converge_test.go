package splitplan_test

import (
	"reflect"
	"testing"

	"github.com/flagsync/flagsync/internal/jsonpatch"
	"github.com/flagsync/flagsync/internal/plan"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
	splitplan "github.com/flagsync/flagsync/internal/split/plan"
)

// checkPatchConverges applies a planned definition patch to the live definition's wire
// form and checks that the result needs no further patch.
func checkPatchConverges(t *testing.T, desired *splitmodel.Desired, live []splitmodel.Flag, c plan.Change) {
	t.Helper()
	var ld splitmodel.Definition
	found := false
	for _, l := range live {
		if splitplan.AddressOf(l.Ref(), "") == c.Flag() {
			ld, found = l.Environments[c.Environment]
		}
	}
	var want splitmodel.Definition
	for _, d := range desired.Flags {
		if splitplan.AddressOf(d.Ref(), "") == c.Flag() {
			want = d.Environments[c.Environment]
		}
	}
	if !found {
		t.Fatalf("change %d patches a definition that is not live", c.Order)
	}
	out, err := jsonpatch.Apply(ld.Wire, c.Request.Body)
	if err != nil {
		t.Fatalf("change %d does not apply: %v", c.Order, err)
	}
	_, got, err := splitclient.DecodeDefinition(out)
	if err != nil {
		t.Fatal(err)
	}
	if again := splitplan.DefinitionPatch(got, want); len(again) > 0 {
		t.Errorf("change %d leaves %s", c.Order, again.JSON())
	}
	if !reflect.DeepEqual(splitmodel.Validate(&got), []splitmodel.Problem(nil)) {
		t.Errorf("change %d gives an invalid definition: %v", c.Order, splitmodel.Validate(&got))
	}
}
