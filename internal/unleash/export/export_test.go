package unleashexport_test

import (
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/export"
	unleashexport "github.com/flagsync/flagsync/internal/unleash/export"
	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
)

func live() *unleashmodel.Live {
	strat := unleashmodel.Strategy{ID: "01A", Name: "flexibleRollout", Title: "half",
		Parameters:  map[string]string{"rollout": "50", "stickiness": "default", "groupId": "checkout"},
		Constraints: []unleashmodel.Constraint{{ContextName: "appVersion", Operator: "SEMVER_GTE", Value: "1.2.3"}},
		Segments:    []string{"beta"},
		Variants: []unleashmodel.Variant{{Name: "b", Weight: 700, WeightType: "variable", Stickiness: "default"},
			{Name: "a", Weight: 300, WeightType: "fix", Stickiness: "userId", Payload: &unleashmodel.Payload{Type: "json", Value: `{"x": 1}`}}}}
	return &unleashmodel.Live{
		SegmentIDs: map[string]int{"beta": 1},
		Projects: []unleashmodel.Project{
			{Name: "web", Environments: []string{"production", "development"}, Flags: []unleashmodel.Flag{
				{Name: "checkout", Type: "experiment", Description: "yes", Tags: []string{"simple:managed-by-flagsync", "simple:2024-01-01"},
					LegacyVariants: map[string]int{"production": 2},
					Environments: map[string]unleashmodel.Environment{
						"development": {Enabled: true, Strategies: []unleashmodel.Strategy{strat}},
						"production":  {},
					}},
				{Name: ".hidden", Environments: map[string]unleashmodel.Environment{"development": {}, "production": {}}},
			}},
			{Name: "mobile", Environments: []string{"development", "production"}, Flags: []unleashmodel.Flag{
				{Name: "checkout", Environments: map[string]unleashmodel.Environment{"development": {Enabled: false}, "production": {}}},
			}},
		},
	}
}

func TestBuildSeveralProjects(t *testing.T) {
	e, err := unleashexport.Build(live(), export.Options{Schema: "schema"})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range e.Files {
		paths = append(paths, f.Path)
	}
	if got := strings.Join(paths, " "); got != "flagsync.yaml web/_.hidden.yaml web/checkout.yaml mobile/checkout.yaml" {
		t.Errorf("files = %s", got)
	}
	want := `# yaml-language-server: $schema=../schema/unleash-flag.schema.json
# Exported from Unleash project web by flagsync export.
project: web
name: checkout
type: experiment
description: "yes"
tags: ['simple:2024-01-01']
environments:
  development:
    enabled: true
    strategies:
      - name: flexibleRollout
        title: half
        parameters: {rollout: 50}
        constraints:
          - {contextName: appVersion, operator: SEMVER_GTE, value: 1.2.3}
        segments: [beta]
        variants:
          - name: a
            weightType: fix
            weight: 300
            stickiness: userId
            payload: {type: json, value: '{"x": 1}'}
          - name: b
  production:
    enabled: false
`
	if got := string(e.Files[2].Data); got != want {
		t.Errorf("web/checkout.yaml:\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(string(e.Files[0].Data), "environments: [development, production]") || strings.Contains(string(e.Files[0].Data), "project:") {
		t.Errorf("flagsync.yaml:\n%s", e.Files[0].Data)
	}
	if len(e.Notes) != 1 || !strings.Contains(e.Notes[0], "web/checkout: 2 feature variants in production left out") {
		t.Errorf("notes = %v", e.Notes)
	}
	check, err := unleashexport.Verify(e, live())
	if err != nil || !check.OK() {
		t.Errorf("verify: %v %+v", err, check)
	}
}
