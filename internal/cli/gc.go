package cli

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// gcFloor is the heap size below which the collector does not run; see
// tuneGC.
const gcFloor = 24 << 20

// tuneGC sets the garbage collector for a short-lived process that may also
// walk a folder of thousands of files, unless the user set GOGC or
// GOMEMLIMIT. There is no pacing (GOGC off): the collector runs when the
// heap reaches a limit, set again after each collection to twice what it
// left live, and never below gcFloor:
//   - a folder walk keeps little live (the files in flight), so each
//     collection at gcFloor frees almost everything: peak memory stays near
//     gcFloor whatever the number of files, instead of growing with all
//     ever allocated;
//   - one file's scan stays live until its output is written; the default
//     pacer, starting at a 4 MiB heap, collected it over and over for
//     nothing (about a third of `scan --json` of a small kernel image).
//     Below gcFloor nothing is collected; above it, as with GOGC=100, the
//     heap may grow to twice what is live (a kernel's patch plan).
func tuneGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(gcFloor)
	watchGC()
}

// gcSentinel is allocated for its finalizer, which runs after each
// collection (the one that finds it unreachable).
type gcSentinel struct{ _ [32]byte }

// watchGC sets the limit after the next collection, and after each one.
func watchGC() {
	runtime.SetFinalizer(new(gcSentinel), func(*gcSentinel) {
		debug.SetMemoryLimit(gcLimit(liveHeap()))
		watchGC()
	})
}

// gcLimit is the heap limit for a heap with live bytes live.
func gcLimit(live int64) int64 { return max(gcFloor, 2*live) }

var liveSample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}

// liveHeap is what the last collection left live.
func liveHeap() int64 {
	metrics.Read(liveSample)
	if v := liveSample[0].Value; v.Kind() == metrics.KindUint64 {
		return int64(v.Uint64())
	}
	return 0
}
