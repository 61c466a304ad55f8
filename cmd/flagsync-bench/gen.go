package main

import (
	"fmt"
	"strings"
	"testing/fstest"
)

// benchSite is the site code of generated flags.
const benchSite = "benchsite1"

// benchEnvironments are the generated flags' environments, in apply order.
var benchEnvironments = []string{"development", "staging", "production"}

// flagShape says what each generated flag holds, for the reports.
const flagShape = "3 environments; 4 rules: targeted with a rollback condition, progressive, experiment with traffic allocations; 2 variables; 2 variations"

// genRepo returns a flag repository of n flags, each with three environments, three
// rules in production (one of each type) and one in staging, two variables and two
// variations. Flags whose index is in edited have a different production exposition:
// one environment write each. The same arguments give the same files.
func genRepo(n int, edited map[int]bool) fstest.MapFS {
	fsys := fstest.MapFS{
		"flagsync.yaml": {Data: []byte("siteCode: " + benchSite + "\nenvironments: [" + strings.Join(benchEnvironments, ", ") + "]\n")},
	}
	for i := range n {
		exposition := 10 + i%80
		if edited[i] {
			exposition += 5
		}
		fsys[fmt.Sprintf("flags/team_%02d/flag_%05d.yaml", i%20, i)] = &fstest.MapFile{Data: fmt.Appendf(nil, `featureKey: flag_%05d
name: Generated flag %d
description: Generated for the benchmark.
tags: [bench, team_%02d]
variables:
  - {key: color, type: STRING, value: blue}
  - {key: limit, type: NUMBER, value: "10"}
variations:
  - {key: "off", name: Off}
  - key: "on"
    name: On
    variables: [{key: color, value: green}, {key: limit, value: "20"}]
environments:
  development:
    featureEnabled: true
    defaultVariationKey: "on"
  staging:
    featureEnabled: true
    defaultVariationKey: "off"
    rolloutRules:
      - {name: internal, type: TARGETED_DELIVERY, segmentId: 403694, exposition: 100, variationKey: "on", state: ACTIVE}
  production:
    featureEnabled: %t
    defaultVariationKey: "off"
    rolloutRules:
      - name: beta testers
        type: TARGETED_DELIVERY
        segmentId: 403695
        exposition: %d
        variationKey: "on"
        state: ACTIVE
        rollbackConditions:
          - {target: RULE, criteria: CONVERSION_RATE, comparisonOperator: GREATER_THAN, matchValue: 20, goalId: 400899, visitors: 2}
      - {name: gradual, type: PROGRESSIVE_DELIVERY, exposition: 5, variationKey: "on", state: PAUSED}
      - name: experiment
        type: EXPERIMENTATION
        controlVariationKey: "off"
        trafficAllocations:
          - {variationKey: "off", exposition: 50}
          - {variationKey: "on", exposition: 50}
`, i, i, i%20, i%3 != 0, exposition)}
	}
	return fsys
}

// editEvery returns the indexes of about pct percent of n flags, spread evenly (at least one).
func editEvery(n int, pct float64) map[int]bool {
	k := int(float64(n)*pct/100 + 0.5)
	k = max(k, 1)
	out := make(map[int]bool, k)
	for j := range k {
		out[j*n/k] = true
	}
	return out
}
