package split_test

import (
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/promote"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/split"
)

// TestPromoteASplitFlag: Split's flag files keep one block per environment as Kameleoon's
// do, so flagsync promote edits them the same way; segments, a treatment's list of segment
// names, are mapped when promote.segmentKeys names them, and the edited file loads.
func TestPromoteASplitFlag(t *testing.T) {
	src, err := os.ReadFile("../../examples/split/beta_gate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := promote.Promote(src, promote.Options{From: "Production", To: "Staging", Order: []string{"Staging", "Production"},
		Settings: promote.Settings{SegmentKeys: []string{"segments"}, Segments: map[string]map[string]string{"Production": {"beta_testers": "staging_testers"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || len(res.Segments) != 1 || res.Segments[0].To != "staging_testers" {
		t.Fatalf("promote: %+v", res)
	}
	if !strings.HasPrefix(string(res.Out), "# yaml-language-server: $schema=../../schema/split-flag.schema.json\n# A gate other flags depend on") ||
		!strings.Contains(string(res.Out), "        segments: [beta_testers]      # and a segment\n") {
		t.Errorf("the file's comments or Production's block changed:\n%s", res.Out)
	}
	settings, err := os.ReadFile("../../examples/split/flagsync.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{"flags/flagsync.yaml": {Data: settings}, "flags/beta_gate.yaml": {Data: res.Out}}
	repo, err := split.Vendor(nil).Load(reconcile.Source{FS: fsys, Dir: "flags"})
	if err != nil {
		t.Fatalf("the promoted file does not load: %v\n%s", err, res.Out)
	}
	if files := repo.Files(); len(files) != 1 || files[0].Flag.Key != "beta_gate" {
		t.Errorf("loaded %+v", files)
	}
	staging := string(res.Out[strings.Index(string(res.Out), "  Staging:"):strings.Index(string(res.Out), "  Production:")])
	for _, want := range []string{`defaultTreatment: "off"`, "segments: [staging_testers]", "keys: [qa-1, qa-2]"} {
		if !strings.Contains(staging, want) {
			t.Errorf("Staging block lacks %q:\n%s", want, staging)
		}
	}
}
