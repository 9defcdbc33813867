// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// gcFloor is the heap size below which the collector does not run; see
// tuneGC. oneFileFloor replaces it in a command that reads one file (see
// gcOneFile).
const (
	gcFloor           = 24 << 20
	oneFileFloor      = 64 << 20
	emulatorWalkFloor = 12 << 20
)

// floor is the floor in force: gcFloor, or oneFileFloor after gcOneFile.
var floor atomic.Int64

// tuneGC sets the garbage collector for a short-lived process that may also
// walk a folder of thousands of files, unless the user set GOGC or
// GOMEMLIMIT. The collector runs when the heap reaches a goal, set again
// after each collection to twice what it left live, and never below
// gcFloor:
//   - a folder walk keeps little live (the files in flight), so each
//     collection at gcFloor frees almost everything: peak memory stays near
//     gcFloor whatever the number of files, instead of growing with all
//     ever allocated;
//   - one file's scan stays live until its output is written; the default
//     pacer, starting at a 4 MiB heap, collected it over and over for
//     nothing (about a third of `scan --json` of a small kernel image).
//     Below gcFloor nothing is collected; above it, as with GOGC=100, the
//     heap may grow to twice what is live (a kernel's patch plan).
//
// The goal is set through GOGC (see gcPercent), not a memory limit: a limit
// counts all the runtime's memory, not the heap, so a patch command whose
// heap was all live at 19 MiB reached a 24 MiB limit, was collected twice
// for nothing (the second time before the watcher could raise the limit)
// and had pages returned to the kernel and faulted in again, ~40% of
// `init` of a 53k-site image.
func tuneGC() {
	floor.Store(gcFloor)
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(gcPercent(liveHeap()))
	watchGC()
}

// gcOneFile raises the floor to oneFileFloor, for a command that reads a
// single file (the patch commands, scan of one file): what it reads stays
// live until its output is written, so a collection below that frees
// little. A patch command of the 53k-site bench image, whose heap ends near
// 24 MiB with 21 MiB live, spent ~15 ms of cpu per run (idle-core mark
// workers included) in the one collection the gcFloor made, for a peak
// 0.5 MiB higher than with no collection at all. Above the floor the goal
// is twice what is live, as before. Unless the user set GOGC or GOMEMLIMIT.
// The returned function puts gcFloor back, for a caller that goes on (tests
// run many commands in one process).
func gcOneFile() (restore func()) { return withFloor(oneFileFloor) }

// gcEmulatorWalk lowers the floor to emulatorWalkFloor for a folder walk
// that runs files on the emulator (verify): each worker's Unicorn engine
// holds native memory the Go heap does not count (~10 MiB with the binary's
// own pages), so the heap's share of the 64 MiB a folder may take is
// smaller than a scan's. Unless the user set GOGC or GOMEMLIMIT.
func gcEmulatorWalk() (restore func()) { return withFloor(emulatorWalkFloor) }

// withFloor sets the floor to f until restore puts gcFloor back, unless
// the user set GOGC or GOMEMLIMIT.
func withFloor(f int64) (restore func()) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	setFloor(f)
	return func() { setFloor(gcFloor) }
}

func setFloor(f int64) {
	floor.Store(f)
	debug.SetGCPercent(gcPercent(liveHeap()))
}

// gcSentinel is allocated for its finalizer, which runs after each
// collection (the one that finds it unreachable).
type gcSentinel struct{ _ [32]byte }

// watchGC sets the goal after the next collection, and after each one.
func watchGC() {
	runtime.SetFinalizer(new(gcSentinel), func(*gcSentinel) {
		debug.SetGCPercent(gcPercent(liveHeap()))
		watchGC()
	})
}

// gcLimit is the heap goal for a heap with live bytes live.
func gcLimit(live int64) int64 { return max(floor.Load(), 2*live) }

// heapMinimum is the runtime's smallest heap goal at GOGC=100; it scales
// with GOGC (runtime/mgcpacer.go, defaultHeapMinimum).
const heapMinimum = 4 << 20

// gcPercent is the GOGC that makes the runtime's heap goal gcLimit(live)
// after a collection that left live bytes. The runtime's goal is the
// larger of live*(1+GOGC/100) and heapMinimum*GOGC/100: the smaller of the
// two GOGC values below makes the larger of those equal gcLimit(live).
func gcPercent(live int64) int {
	goal := gcLimit(live)
	p := goal * 100 / heapMinimum
	if live > 0 {
		p = min(p, (goal-live)*100/live)
	}
	return int(max(p, 1))
}

// releaseFloor is the heap (objects, live or not) above which
// releaseBeforeRun collects before verify's engines start.
const releaseFloor = 40 << 20

// releaseBeforeRun collects the heap and returns its free pages to the
// system (debug.FreeOSMemory) when it holds more than releaseFloor: after
// verify has scanned and bound a large image, about half of what it
// allocated is the scan's garbage (the symbol tables, the records and
// their sort buffer), still resident when the engines then take ~20 MiB of
// their own. verify --json of the 199k-site bench image peaked at ~105 MiB,
// ~90 MiB with this, for one collection (~2% of its cpu). A kernel of ~50k
// sites stays below the floor and pays nothing.
func releaseBeforeRun() {
	if heapObjects() > releaseFloor {
		debug.FreeOSMemory()
	}
}

var objectsSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

// heapObjects is the memory held by heap objects, live or not yet swept.
func heapObjects() uint64 {
	metrics.Read(objectsSample)
	if v := objectsSample[0].Value; v.Kind() == metrics.KindUint64 {
		return v.Uint64()
	}
	return 0
}

var liveSample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}

// liveHeap is what the last collection left live (0 before the first).
func liveHeap() int64 {
	metrics.Read(liveSample)
	if v := liveSample[0].Value; v.Kind() == metrics.KindUint64 {
		return int64(v.Uint64())
	}
	return 0
}
