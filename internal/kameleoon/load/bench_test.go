package kload

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
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

// BenchmarkEntryDecode decodes the cache entries of 10,000 flag files, one entry per
// file as the cache keeps them, with loadcache's codec and with the standard library's
// encodings the cache could have used (docs/cache.md quotes the figures).
func BenchmarkEntryDecode(b *testing.B) {
	const n = 10000
	fsys := benchRepo(n)
	entries := make([]fileEntry, 0, n)
	for name, f := range fsys {
		if strings.HasSuffix(name, "flagsync.yaml") {
			continue
		}
		e, ok := analyseFast(f.Data)
		if !ok {
			b.Fatalf("%s is not valid", name)
		}
		entries = append(entries, e)
	}
	codec, err := entryCodec()
	if err != nil {
		b.Fatal(err)
	}
	encode := map[string]func(*fileEntry) []byte{
		"loadcache": func(e *fileEntry) []byte { v, _ := codec.Encode(e); return v },
		"json":      func(e *fileEntry) []byte { v, _ := json.Marshal(e); return v },
		"gob": func(e *fileEntry) []byte {
			var buf bytes.Buffer
			_ = gob.NewEncoder(&buf).Encode(e)
			return buf.Bytes()
		},
	}
	decode := map[string]func([]byte, *fileEntry) error{
		"loadcache": codec.Decode,
		"json":      func(v []byte, e *fileEntry) error { return json.Unmarshal(v, e) },
		"gob":       func(v []byte, e *fileEntry) error { return gob.NewDecoder(bytes.NewReader(v)).Decode(e) },
	}
	for _, name := range []string{"loadcache", "json", "gob"} {
		encoded := make([][]byte, len(entries))
		size := 0
		for i := range entries {
			encoded[i] = encode[name](&entries[i])
			size += len(encoded[i])
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				for _, v := range encoded {
					var e fileEntry
					if err := decode[name](v, &e); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(size)/(1<<20), "MiB")
		})
	}
	// One gob stream for every entry: cheaper per entry, but it cannot be read entry by
	// entry, which a cache keyed by each file's content needs.
	var stream bytes.Buffer
	if err := gob.NewEncoder(&stream).Encode(entries); err != nil {
		b.Fatal(err)
	}
	b.Run("gob-one-stream", func(b *testing.B) {
		for b.Loop() {
			var all []fileEntry
			if err := gob.NewDecoder(bytes.NewReader(stream.Bytes())).Decode(&all); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(stream.Len())/(1<<20), "MiB")
	})
}
