package loadcache

import (
	"os"
	"runtime/debug"
	"sync"
)

// LoadGCPercent is the garbage collector's target during a load (GOGC=300). Parsing YAML
// makes a great deal of short-lived garbage: on the benchmark's 10,000 flag files,
// collecting at 300 instead of the default 100 takes a fifth less CPU, and the peak
// heap grows from about 110 to 220 MiB (BENCHMARKS.md). 400 saved little more and came
// close to the 300 MiB bound.
const LoadGCPercent = 300

var gc struct {
	sync.Mutex
	loads int // loads running
	saved int // the setting before the first of them
	tuned bool
}

// TuneGC sets the garbage collector's target to LoadGCPercent for a load, and returns
// the function that restores it. Loads may overlap: the setting is restored when the
// last one ends. It changes nothing when GOGC is set in the environment (the operator
// chose) or the current target is already higher (or off).
func TuneGC() (restore func()) {
	gc.Lock()
	defer gc.Unlock()
	gc.loads++
	if gc.loads == 1 {
		gc.tuned = false
		if os.Getenv("GOGC") == "" {
			prev := debug.SetGCPercent(LoadGCPercent)
			if prev < 0 || prev >= LoadGCPercent {
				debug.SetGCPercent(prev)
			} else {
				gc.saved, gc.tuned = prev, true
			}
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			gc.Lock()
			defer gc.Unlock()
			gc.loads--
			if gc.loads == 0 && gc.tuned {
				debug.SetGCPercent(gc.saved)
				gc.tuned = false
			}
		})
	}
}
