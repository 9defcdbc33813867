// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

// tuneGC: the collector runs at gcFloor while little is live, at twice what
// is live once that is more, and at gcFloor again when that is freed;
// gcOneFile moves the floor to oneFileFloor, gcEmulatorWalk to
// emulatorWalkFloor. The
// runtime's own heap goal (runtime/metrics) is the oracle, whatever knob
// sets it; the goal also counts goroutine stacks and globals scaled by
// GOGC, hence the slack.
func TestTuneGC(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetMemoryLimit(math.MaxInt64)
	defer debug.SetGCPercent(100)
	goalSample := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	goal := func() int64 { metrics.Read(goalSample); return int64(goalSample[0].Value.Uint64()) }
	near := func(g, want int64) bool { return g >= want-want/16 && g <= want+want/8 }
	// gc collects until ok holds (the watcher runs as a finalizer, on its
	// own goroutine), at most 100 times.
	gc := func(ok func(int64) bool) {
		for i := 0; i < 100 && !ok(goal()); i++ {
			runtime.GC()
			runtime.Gosched()
		}
	}
	runtime.GC()
	tuneGC()
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("after tuneGC: memory limit %d; want none (it counts more than the heap)", l)
	}
	gc(func(g int64) bool { return near(g, gcFloor) })
	if g := goal(); !near(g, gcFloor) {
		t.Fatalf("after tuneGC: heap goal %d MiB; want %d MiB", g>>20, gcFloor>>20)
	}
	live := make([]byte, gcFloor)
	for i := range live {
		live[i] = byte(i)
	}
	gc(func(g int64) bool { return g >= 2*gcFloor })
	if g := goal(); g < 2*gcFloor || g > 3*gcFloor {
		t.Errorf("with %d MiB live: heap goal %d MiB; want twice what is live", len(live)>>20, g>>20)
	}
	runtime.KeepAlive(live)
	live = nil
	gc(func(g int64) bool { return near(g, gcFloor) })
	if g := goal(); !near(g, gcFloor) {
		t.Errorf("after freeing it: heap goal %d MiB, want %d MiB", g>>20, gcFloor>>20)
	}
	for _, tc := range []struct{ live, want int64 }{
		{0, gcFloor}, {gcFloor / 2, gcFloor}, {gcFloor/2 + 1, gcFloor + 2}, {256 << 20, 512 << 20},
	} {
		if got := gcLimit(tc.live); got != tc.want {
			t.Errorf("gcLimit(%d) = %d, want %d", tc.live, got, tc.want)
		}
	}
	// A command reading one file: the floor is oneFileFloor until it ends
	// (restore), or the next tuneGC.
	restore := gcOneFile()
	gc(func(g int64) bool { return near(g, oneFileFloor) })
	if g := goal(); !near(g, oneFileFloor) {
		t.Errorf("after gcOneFile: heap goal %d MiB, want %d MiB", g>>20, oneFileFloor>>20)
	}
	if got := gcLimit(oneFileFloor/2 + 1); got != oneFileFloor+2 {
		t.Errorf("after gcOneFile: gcLimit(%d) = %d, want %d", oneFileFloor/2+1, got, oneFileFloor+2)
	}
	restore()
	if got := gcLimit(0); got != gcFloor {
		t.Errorf("after the command: gcLimit(0) = %d, want %d", got, gcFloor)
	}
	// A folder walk on the emulator: the lower floor until it ends.
	restore = gcEmulatorWalk()
	gc(func(g int64) bool { return near(g, emulatorWalkFloor) })
	if g := goal(); !near(g, emulatorWalkFloor) {
		t.Errorf("after gcEmulatorWalk: heap goal %d MiB, want %d MiB", g>>20, emulatorWalkFloor>>20)
	}
	restore()
	if got := gcLimit(0); got != gcFloor {
		t.Errorf("after the walk: gcLimit(0) = %d, want %d", got, gcFloor)
	}
	gcOneFile()
	tuneGC()
	if got := gcLimit(0); got != gcFloor {
		t.Errorf("after tuneGC again: gcLimit(0) = %d, want %d", got, gcFloor)
	}
	// gcPercent against the runtime's goal formula, max(live*(1+p/100),
	// heapMinimum*p/100), over live heaps from none to far above gcFloor.
	for _, live := range []int64{0, 1 << 10, 1 << 20, 3 << 20, 4 << 20, 5 << 20, 11 << 20, gcFloor / 2, gcFloor, 100 << 20, 3 << 30} {
		p := int64(gcPercent(live))
		got := max(live+live*p/100, heapMinimum*p/100)
		if want := gcLimit(live); got > want || got < want-want/64 {
			t.Errorf("gcPercent(%d) = %d: goal %d, want %d", live, p, got, want)
		}
	}
}

// releaseBeforeRun collects a heap holding more than releaseFloor of
// garbage, and leaves a smaller one alone (no collection).
func TestReleaseBeforeRun(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // no collection but ours
	var garbage [][]byte
	for range (releaseFloor >> 20) + 8 {
		garbage = append(garbage, make([]byte, 1<<20))
	}
	runtime.KeepAlive(garbage) // allocated, and garbage from here on
	before := heapObjects()
	n := gcCount()
	releaseBeforeRun()
	if after := heapObjects(); before <= releaseFloor || after > releaseFloor/2 || gcCount() == n {
		t.Errorf("heap objects %d -> %d bytes, collections %d -> %d; want a collection below %d", before, after, n, gcCount(), releaseFloor/2)
	}
	n = gcCount()
	releaseBeforeRun()
	if gcCount() != n {
		t.Error("a small heap was collected")
	}
}

func gcCount() uint32 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.NumGC
}
