package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	kload "github.com/flagsync/flagsync/internal/kameleoon/load"
)

// applyQuick sets the flags of a -quick run that the command line did not set.
func applyQuick(fset *flag.FlagSet, quick bool, values map[string]string) error {
	if !quick {
		return nil
	}
	given := map[string]bool{}
	fset.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, v := range values {
		if !given[name] {
			if err := fset.Set(name, v); err != nil {
				return usageError(err.Error())
			}
		}
	}
	return nil
}

// setupLoad loads and validates generated repositories (kload.Load: YAML, schema,
// semantic checks) and measures time, allocation and peak heap.
func setupLoad(fset *flag.FlagSet) measure {
	ns := sizes{1000, 10000}
	fset.Var(&ns, "n", "comma-separated numbers of flag files")
	runs := fset.Int("runs", 3, "loads measured per size (after one warm-up load)")
	quick := fset.Bool("quick", false, "CI variant: -n 1000")
	return func(ctx context.Context, progress io.Writer) (*section, error) {
		if err := applyQuick(fset, *quick, map[string]string{"n": "1000"}); err != nil {
			return nil, err
		}
		if *runs < 1 {
			return nil, usageError("want -runs >= 1")
		}
		return measureLoad(ctx, ns, *runs, progress)
	}
}

func measureLoad(ctx context.Context, ns []int, runs int, progress io.Writer) (*section, error) {
	sec := &section{
		title: "Load and validate",
		intro: []string{fmt.Sprintf("kload.Load on generated repositories held in memory (fstest.MapFS, as a Git snapshot is): "+
			"every file parsed, checked against the JSON Schema and the semantic rules. Each flag file has %s, in about 45 lines. "+
			"One warm-up load, then %d measured loads per size.", flagShape, runs)},
	}
	t := &table{header: []string{"files", "median", "fastest", "files/s", "allocated per load", "objects per load", "peak heap", "heap before (inputs)"}}
	for _, n := range ns {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "load: %d files\n", n)
		fsys := genRepo(n, nil)
		d, err := kload.Load(fsys, ".")
		if err != nil {
			return nil, fmt.Errorf("load %d generated files: %w", n, err)
		}
		sec.check(len(d.Flags) == n, "%d files loaded as %d flags", n, len(d.Flags))
		f, err := measureCPU(runs, func() error {
			_, err := kload.Load(fsys, ".")
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("load %d generated files: %w", n, err)
		}
		t.add(count(n), ms(f.median), ms(f.min), count(int(float64(n)/f.median.Seconds())),
			mib(f.allocBytes), count(f.allocs), mib(f.peakHeap), mib(f.inputHeap))
		sec.headline(fmt.Sprintf("load + validate %s flag files", count(n)),
			fmt.Sprintf("%s (median), %s allocated, peak heap %s", human(f.median), mib(f.allocBytes), mib(f.peakHeap)))
	}
	sec.tables = []*table{t}
	sec.notes = []string{"median and fastest are wall-clock times of one whole load. peak heap is the largest live heap " +
		"sampled every millisecond during the loads (runtime/metrics), the generated files in memory included; " +
		"heap before is that baseline, so peak − before is what loading holds at most. allocated is the total " +
		"allocated by one load (most of it short-lived garbage), from runtime.MemStats. Default GOGC."}
	return sec, nil
}
