package splitexport

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/export"
	"github.com/flagsync/flagsync/internal/plan"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
	splitsandbox "github.com/flagsync/flagsync/internal/split/sandbox"
	splitsandboxtest "github.com/flagsync/flagsync/internal/split/sandbox/sandboxtest"
)

func ptr[T any](v T) *T { return &v }

// splitSeeds are live flags that use every part of the file format.
func splitSeeds() []splitmodel.Flag {
	onOff := []splitmodel.Treatment{{Name: "on"}, {Name: "off"}}
	return []splitmodel.Flag{
		{Name: "new_checkout", Description: "Redesigned checkout: 2024-01-02", Tags: []string{"checkout", "managed-by-flagsync", "yes"}, TrafficType: "user",
			Environments: map[string]splitmodel.Definition{
				"Staging": {Treatments: onOff, DefaultTreatment: "on"},
				"Production": {
					Treatments: []splitmodel.Treatment{
						{Name: "on", Description: "multi\nline", Configurations: `{"color": "green", "n": 1.50}`, Keys: []string{"3", "true", "0x1F", "qa-1"}, Segments: []string{"beta testers"}},
						{Name: "off", Configurations: "null", Keys: []string{"007"}},
					},
					DefaultTreatment: "off", BaselineTreatment: "off", TrafficAllocation: ptr(40), Killed: true, ImpressionsDisabled: true,
					Rules: []splitmodel.Rule{
						{Condition: splitmodel.Condition{Matchers: []splitmodel.Matcher{{Type: "IN_SEGMENT", String: "employees"}, {Type: "BOOLEAN", Attribute: "vip", Bool: ptr(false), Negate: true}}},
							Buckets: []splitmodel.Bucket{{Treatment: "on", Size: 100}}},
						{Condition: splitmodel.Condition{Matchers: []splitmodel.Matcher{{Type: "EQUAL_SET", Attribute: "plan", Strings: []string{"gold", "on"}}}},
							Buckets: []splitmodel.Bucket{{Treatment: "on", Size: 33}, {Treatment: "off", Size: 67}}},
						{Condition: splitmodel.Condition{Matchers: []splitmodel.Matcher{{Type: "BETWEEN_NUMBER", Attribute: "age", Between: &splitmodel.Between{From: 18, To: 65.5}}}},
							Buckets: []splitmodel.Bucket{{Treatment: "off", Size: 100}}},
						{Condition: splitmodel.Condition{Matchers: []splitmodel.Matcher{{Type: "ON_OR_AFTER_DATE", Attribute: "signup", Date: ptr(int64(1767225600000))}, {Type: "IN_SPLIT", Depends: &splitmodel.Depends{SplitName: "dark_mode", Treatment: "dark"}}}},
							Buckets: []splitmodel.Bucket{{Treatment: "on", Size: 50}, {Treatment: "off", Size: 50}}},
						{Condition: splitmodel.Condition{Matchers: []splitmodel.Matcher{{Type: "GREATER_THAN_OR_EQUAL_NUMBER", Attribute: "score", Number: ptr(2.5)}, {Type: "MATCHES_STRING", String: "^a.*$"}}},
							Buckets: []splitmodel.Bucket{{Treatment: "on", Size: 100}}},
					},
					DefaultRule: []splitmodel.Bucket{{Treatment: "on", Size: 10}, {Treatment: "off", Size: 90}},
				},
			}},
		{Name: "account_flag", TrafficType: "account", Environments: map[string]splitmodel.Definition{"Production": {Treatments: onOff, DefaultTreatment: "off"}}},
		{Name: "never_configured", TrafficType: "user"},
		{Name: "dark_mode", TrafficType: "user", Environments: map[string]splitmodel.Definition{
			"Production": {Treatments: []splitmodel.Treatment{{Name: "dark"}, {Name: "light"}}, DefaultTreatment: "light", DefaultRule: []splitmodel.Bucket{{Treatment: "light", Size: 100}}}}},
	}
}

func TestSplitExportRoundTrip(t *testing.T) {
	sb, ts := splitsandboxtest.NewTestServer(t, splitsandbox.Options{RatePerSecond: -1, RatePerMinute: -1})
	for _, f := range splitSeeds() {
		f.Workspace = "ws-1"
		if err := sb.Seed(f); err != nil {
			t.Fatal(err)
		}
	}
	c, err := splitclient.New(splitclient.Config{BaseURL: ts.URL, APIKey: splitsandbox.DefaultAPIKey})
	if err != nil {
		t.Fatal(err)
	}
	w, err := Read(context.Background(), c, "ws-1", []string{"Staging", "Production"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(sb.Calls()); n != 3 {
		t.Errorf("read with %d calls, want 3 (flags, Staging, Production)", n)
	}
	e, err := Build(w, export.Options{Schema: "../schema"})
	if err != nil {
		t.Fatal(err)
	}
	check, err := Verify(e, w)
	if err != nil {
		t.Fatal(err)
	}
	if !check.OK() {
		var b strings.Builder
		_ = plan.RenderText(&b, check.Plan, plan.TextOptions{})
		for _, f := range e.Files {
			b.WriteString("\n--- " + f.Path + "\n" + string(f.Data))
		}
		t.Fatalf("export does not round-trip: %v\n%s", check.Diagnostics, b.String())
	}
	if len(e.Files) != 5 || e.Flags != 4 || e.Files[0].Path != "flagsync.yaml" {
		t.Errorf("files %d flags %d", len(e.Files), e.Flags)
	}
	settings := string(e.Files[0].Data)
	for _, want := range []string{"# yaml-language-server: $schema=../schema/split-settings.schema.json", "vendor: split", "workspace: ws-1", "trafficType: user", "environments: [Staging, Production]"} {
		if !strings.Contains(settings, want) {
			t.Errorf("flagsync.yaml lacks %q:\n%s", want, settings)
		}
	}
	var checkout string
	for _, f := range e.Files {
		if f.Path == "new_checkout.yaml" {
			checkout = string(f.Data)
		}
		if f.Path == "account_flag.yaml" && !strings.Contains(string(f.Data), "trafficType: account") {
			t.Errorf("account_flag.yaml lacks its traffic type:\n%s", f.Data)
		}
	}
	if strings.Contains(checkout, "managed-by-flagsync") || !strings.Contains(checkout, "- {type: IN_SEGMENT, string: employees}") || !strings.Contains(checkout, "    impressionsDisabled: true\n") {
		t.Errorf("new_checkout.yaml:\n%s", checkout)
	}
	again, err := Build(w, export.Options{Schema: "../schema"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range e.Files {
		if !bytes.Equal(e.Files[i].Data, again.Files[i].Data) {
			t.Errorf("%s differs between two exports of the same flags", e.Files[i].Path)
		}
	}
}
