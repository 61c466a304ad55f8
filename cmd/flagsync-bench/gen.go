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

// genRepo returns a flag repository of n flags, each with three environments, two rules
// in production and one in staging. Flags whose index is in edited have a different
// production exposition: one environment write each.
func genRepo(n int, edited map[int]bool) fstest.MapFS {
	fsys := fstest.MapFS{
		"flagsync.yaml": {Data: []byte("siteCode: " + benchSite + "\nenvironments: [" + strings.Join(benchEnvironments, ", ") + "]\n")},
	}
	for i := range n {
		exposition := 10 + i%80
		if edited[i] {
			exposition += 5
		}
		fsys[fmt.Sprintf("flags/flag_%05d.yaml", i)] = &fstest.MapFile{Data: fmt.Appendf(nil, `featureKey: flag_%05d
name: Generated flag %d
description: Generated for the benchmark.
tags: [bench]
variables:
  - {key: color, type: STRING, value: blue}
variations:
  - {key: "off", name: Off}
  - key: "on"
    name: On
    variables: [{key: color, value: green}]
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
      - {name: beta testers, type: TARGETED_DELIVERY, segmentId: 403695, exposition: %d, variationKey: "on", state: ACTIVE}
      - {name: gradual, type: PROGRESSIVE_DELIVERY, exposition: 5, variationKey: "on", state: PAUSED}
`, i, i, i%3 != 0, exposition)}
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
