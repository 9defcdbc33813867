package cli

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// gcFloor is the heap size under which the collector does not run; see
// tuneGC.
const gcFloor = 32 << 20

// tuneGC sets the garbage collector for a short-lived process that may also
// walk a folder of thousands of files, unless the user set GOGC or
// GOMEMLIMIT:
//   - below gcFloor of heap, no pacing: the collector runs only when the
//     heap reaches gcFloor (a memory limit with GOGC off). A single file's
//     scan stays live until its output is written, and the default pacer
//     would collect it over and over for nothing (about a third of
//     `scan --json` of a small kernel image);
//   - a folder walk keeps little live (the files in flight), so each
//     collection at gcFloor frees almost everything: peak memory stays near
//     gcFloor whatever the number of files, instead of growing with all
//     ever allocated;
//   - once a collection finds more than half of gcFloor still live (a large
//     kernel image, a patch plan of 200k sites), a floor that low would
//     collect continuously: the default pacing (GOGC=100) takes over for
//     the rest of the run.
func tuneGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(gcFloor)
	watchGC()
}

// gcSentinel is allocated for its finalizer, which runs after each
// collection that found it unreachable.
type gcSentinel struct{ _ [16]byte }

// watchGC runs pacingAfterGC after the next collection, and again after
// each until pacing is switched on.
func watchGC() {
	runtime.SetFinalizer(new(gcSentinel), func(*gcSentinel) {
		if !pacingAfterGC() {
			watchGC()
		}
	})
}

var liveSample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}

// pacingAfterGC switches to the default pacing when the last collection
// left more than half of gcFloor live, and reports whether it did.
func pacingAfterGC() bool {
	metrics.Read(liveSample)
	if v := liveSample[0].Value; v.Kind() != metrics.KindUint64 || v.Uint64() <= gcFloor/2 {
		return false
	}
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)
	return true
}
