package main

import (
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// heapSampler polls the live heap every millisecond and keeps the largest value seen.
// runtime/metrics, unlike runtime.ReadMemStats, does not stop the world, so sampling does
// not slow the measured work down.
type heapSampler struct {
	stop chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.wg.Go(func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			h.peak = max(h.peak, s[0].Value.Uint64())
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	})
	return h
}

// done stops sampling and returns the peak.
func (h *heapSampler) done() uint64 {
	close(h.stop)
	h.wg.Wait()
	return h.peak
}

// cpuFigures are repeated runs of one piece of work: times, and what one run allocates
// and holds.
type cpuFigures struct {
	runs        int
	median, min time.Duration
	cpu         time.Duration // CPU time of one run, user and system, all threads (median); 0 when not measured
	cpuOK       bool          // cpu was measured (getrusage)
	allocBytes  uint64        // bytes allocated by one run (mean)
	allocs      uint64        // heap objects allocated by one run (mean)
	inputHeap   uint64        // live heap before the runs: the inputs
	peakHeap    uint64        // largest live heap seen during the runs, inputs included
}

// measureCPU runs work runs times after a garbage collection and measures it.
func measureCPU(runs int, work func() error) (cpuFigures, error) {
	return measureRuns(runs, nil, work)
}

// measureRuns is measureCPU with setup run before each run, untimed (allocations and
// the heap are measured across both).
func measureRuns(runs int, setup, work func() error) (cpuFigures, error) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	h := sampleHeap()
	times := make([]time.Duration, 0, runs)
	cpus := make([]time.Duration, 0, runs)
	cpuOK := true
	for range runs {
		if setup != nil {
			if err := setup(); err != nil {
				h.done()
				return cpuFigures{}, err
			}
		}
		cpu0, ok0 := processCPU()
		start := time.Now()
		if err := work(); err != nil {
			h.done()
			return cpuFigures{}, err
		}
		times = append(times, time.Since(start))
		cpu1, ok1 := processCPU()
		cpus = append(cpus, cpu1-cpu0)
		cpuOK = cpuOK && ok0 && ok1
	}
	peak := h.done()
	runtime.ReadMemStats(&after)
	slices.Sort(times)
	slices.Sort(cpus)
	f := cpuFigures{
		runs:       runs,
		median:     times[len(times)/2],
		min:        times[0],
		allocBytes: (after.TotalAlloc - before.TotalAlloc) / uint64(runs),
		allocs:     (after.Mallocs - before.Mallocs) / uint64(runs),
		inputHeap:  before.HeapAlloc,
		peakHeap:   peak,
	}
	if cpuOK {
		f.cpu, f.cpuOK = cpus[len(cpus)/2], true
	}
	return f, nil
}

// cpuSeconds renders a CPU time in seconds, "n/a" when not measured.
func cpuSeconds(d time.Duration, ok bool) string {
	if !ok {
		return "n/a"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + " s"
}

// mib renders bytes in MiB with one decimal.
func mib(b uint64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB" }

// ms renders a duration in milliseconds, with one decimal below 100 ms.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	if v < 100 {
		return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + " ms"
}

// count renders n with thousands separators.
func count[T ~int | ~int64 | ~uint64](n T) string {
	s := strconv.FormatInt(int64(n), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// sizes is a flag value: a comma-separated list of flag counts.
type sizes []int

func (s *sizes) String() string {
	parts := make([]string, len(*s))
	for i, n := range *s {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func (s *sizes) Set(v string) error {
	var out sizes
	for _, p := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return usageError("want a comma-separated list of counts >= 1, got " + strconv.Quote(v))
		}
		out = append(out, n)
	}
	*s = out
	return nil
}
