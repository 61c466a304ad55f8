package kload

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"
)

// benchFlag is a realistic flag file of about 45 lines: two variables, two variations,
// three environments, four rules of all three types.
const benchFlag = `# yaml-language-server: $schema=../../schema/flag.schema.json
siteCode: %s
featureKey: flag_%05d
name: Flag %d
description: Generated flag number %d for the load benchmark.
tags: [bench, team_%02d]
variables:
  - {key: color, type: STRING, value: blue}
  - {key: limit, type: NUMBER, value: 10}
variations:
  - key: off
    name: Off
  - key: on
    name: On
    variables:
      - {key: color, value: green}
      - {key: limit, value: 20}
environments:
  development:
    featureEnabled: true
    defaultVariationKey: on
  staging:
    featureEnabled: true
    defaultVariationKey: off
    rolloutRules:
      - name: ramp up
        type: PROGRESSIVE_DELIVERY
        exposition: 50
        variationKey: on
        state: ACTIVE
        release: {releaseFrom: 2025-12-11T11:58:01, releaseTo: 2025-12-13T11:58:01, timeZone: Europe/Paris}
  production:
    featureEnabled: true
    defaultVariationKey: off
    rolloutRules:
      - name: beta testers
        type: TARGETED_DELIVERY
        segmentId: 403694
        variationKey: on
        state: ACTIVE
        rollbackConditions:
          - {target: RULE, criteria: CONVERSION_RATE, comparisonOperator: GREATER_THAN, matchValue: 20, goalId: 400899, visitors: 2}
      - name: experiment
        type: EXPERIMENTATION
        controlVariationKey: off
        trafficAllocations:
          - {variationKey: off, exposition: 50}
          - {variationKey: on, exposition: 50}
`

// benchRepo returns a repository of n generated flag files in 100 folders, across two
// sites.
func benchRepo(n int) fstest.MapFS {
	fsys := fstest.MapFS{"flags/flagsync.yaml": {Data: []byte(standardSettings)}}
	for i := range n {
		site := "pzllysfw2f"
		if i%2 == 1 {
			site = "a1b2c3d4e5"
		}
		name := fmt.Sprintf("flags/team_%02d/flag_%05d.yaml", i%100, i)
		fsys[name] = &fstest.MapFile{Data: fmt.Appendf(nil, benchFlag, site, i, i, i, i%100)}
	}
	return fsys
}

// BenchmarkLoad10000 loads and validates 10,000 flag files and reports files/s and the
// peak heap seen while loading (sampled every millisecond).
func BenchmarkLoad10000(b *testing.B) {
	const n = 10000
	fsys := benchRepo(n)
	if d, err := Load(fsys, "flags"); err != nil || len(d.Flags) != n {
		b.Fatalf("generated repository does not load: %v", err)
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	// runtime/metrics, unlike runtime.ReadMemStats, does not stop the world, so sampling
	// every millisecond does not slow the load down.
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				metrics.Read(sample)
				if v := sample[0].Value.Uint64(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	})

	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d, err := Load(fsys, "flags")
		if err != nil || len(d.Flags) != n {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(base.HeapAlloc)/(1<<20), "input-heap-MB")
}
