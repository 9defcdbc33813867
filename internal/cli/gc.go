package cli

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

const (
	// gcFloor is the heap size at which the collector runs while little
	// stays live; see tuneGC.
	gcFloor = 24 << 20
	// gcBig is where it runs while much stays live (a kernel image's scan or
	// patch plan): at least twice what is live.
	gcBig = 256 << 20
)

// tuneGC sets the garbage collector for a short-lived process that may also
// walk a folder of thousands of files, unless the user set GOGC or
// GOMEMLIMIT. There is no pacing (GOGC off); the collector runs when the
// heap reaches a limit, which is set again after each collection from what
// it left live:
//   - little live (at most half of gcFloor: a folder walk holds only the
//     files in flight): the limit is gcFloor, so peak memory stays near it
//     whatever the number of files, instead of growing with all ever
//     allocated;
//   - more live (one large file, whose scan or plan stays live until its
//     output is written): the limit is gcBig, or twice what is live. The
//     default pacer would collect such a heap over and over for nothing
//     (about a third of `scan --json` of a small kernel image, twice the
//     cpu of `enable --init`).
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
func gcLimit(live int64) int64 {
	if live <= gcFloor/2 {
		return gcFloor
	}
	return max(gcBig, 2*live)
}

var liveSample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}

// liveHeap is what the last collection left live.
func liveHeap() int64 {
	metrics.Read(liveSample)
	if v := liveSample[0].Value; v.Kind() == metrics.KindUint64 {
		return int64(v.Uint64())
	}
	return 0
}
