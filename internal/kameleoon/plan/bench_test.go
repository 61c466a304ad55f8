package kplan

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	"github.com/flagsync/flagsync/internal/plan"
)

// benchInputs builds n flags with three environments each, and their live form: half
// unchanged, the other half changed in a flag-level field, a rule, a variation or an
// environment switch, and a few flags only in Git or only in Kameleoon.
func benchInputs(n int) (*kmodel.Desired, []kmodel.Flag) {
	desired := &kmodel.Desired{Revision: "0123456789abcdef0123456789abcdef01234567"}
	live := make([]kmodel.Flag, 0, n)
	for i := range n {
		d := baseFlag()
		d.SiteCode = []string{"pzllysfw2f", "abcdefghij"}[i%2]
		d.FeatureKey = fmt.Sprintf("flag_%05d", i)
		d.Variables = append(d.Variables,
			kmodel.Variable{Key: "config", Type: kmodel.TypeJSON, Value: `{"limit": 10, "modes": ["a", "b"]}`},
			kmodel.Variable{Key: "ratio", Type: kmodel.TypeNumber, Value: "0.5"})
		prod := d.Environments["production"]
		prod.RolloutRules = append(prod.RolloutRules, kmodel.Rule{
			Name: "experiment", Type: kmodel.RuleExperimentation, ControlVariationKey: "off",
			TrafficAllocations: []kmodel.TrafficAllocation{{VariationKey: "off", Exposition: 50}, {VariationKey: "on", Exposition: 50}},
		})
		d.Environments = map[string]kmodel.Environment{
			"development": {FeatureEnabled: true, DefaultVariationKey: "on"},
			"staging": {FeatureEnabled: true, DefaultVariationKey: "off", RolloutRules: []kmodel.Rule{
				{Name: "staff", Type: kmodel.RuleTargetedDelivery, SegmentID: 42, VariationKey: "on"},
			}},
			"production": prod,
		}
		l := liveOf(d)
		switch {
		case i%2 == 0: // unchanged
		case i%10 == 1:
			d.Name = "Renamed"
			d.Tags = append(d.Tags, "new")
		case i%10 == 3:
			d.Environments["production"].RolloutRules[0].Exposition = ptr(75.0)
		case i%10 == 5:
			d.Variations = append(d.Variations, kmodel.Variation{Key: "v3", Name: "V3"})
			st := d.Environments["staging"]
			st.DefaultVariationKey = "v3"
			d.Environments["staging"] = st
		case i%10 == 7:
			dev := d.Environments["development"]
			dev.FeatureEnabled = false
			d.Environments["development"] = dev
		case i%100 == 9:
			l.FeatureKey += "_old" // new in Git; live's is unmanaged
		default:
			d.Environments["production"].RolloutRules[0].RollbackConditions[0].MatchValue = 30
		}
		desired.Flags = append(desired.Flags, d)
		live = append(live, l)
	}
	return desired, live
}

// BenchmarkCompute10000 plans 10,000 flags × 3 environments. Besides ns/op and B/op it
// reports peak-heap-MB, the largest heap seen while planning (sampled every millisecond,
// inputs included), and input-heap-MB, the heap the inputs alone hold.
func BenchmarkCompute10000(b *testing.B) {
	desired, live := benchInputs(10000)
	benchCompute(b, desired, live)
}

// BenchmarkCompute10000Ignore is BenchmarkCompute10000 with flagsync.yaml ignoring every
// rule's exposition and the tags: every flag is planned with its ignore rules, and the
// flags that differ there (a fifth) are planned twice, for their notes.
func BenchmarkCompute10000Ignore(b *testing.B) {
	desired, live := benchInputs(10000)
	desired.Settings.Ignore = []string{"environments.*.rolloutRules[*].exposition", "tags"}
	benchCompute(b, desired, live)
}

func benchCompute(b *testing.B, desired *kmodel.Desired, live []kmodel.Flag) {
	opts := Options{EnvironmentOrder: DefaultEnvironmentOrder}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	stop, peak := samplePeakHeap()
	b.ReportAllocs()
	b.ResetTimer()
	var p plan.Plan
	for b.Loop() {
		var err error
		p, err = Compute(desired, live, opts)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	stop()
	b.ReportMetric(float64(*peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "input-heap-MB")
	b.ReportMetric(float64(len(p.Changes)), "changes")
	if len(p.Notes) > 0 {
		b.ReportMetric(float64(len(p.Notes)), "notes")
	}
}

// samplePeakHeap polls the heap size until stop is called; peak holds the largest.
func samplePeakHeap() (stop func(), peak *uint64) {
	peak = new(uint64)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			*peak = max(*peak, s[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }, peak
}
