package cli

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
)

// tuneGC: no pacing while the heap is small; once a collection finds more
// than half of gcFloor live, the default pacing (GOGC=100) takes over.
func TestTuneGC(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetMemoryLimit(math.MaxInt64)
	defer debug.SetGCPercent(100)
	tuneGC()
	gcPercent := func() int { p := debug.SetGCPercent(-2); debug.SetGCPercent(p); return p }
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != -1 || l != gcFloor {
		t.Fatalf("after tuneGC: GOGC %d, limit %d; want off and %d", p, l, gcFloor)
	}
	// Little live: collections keep the floor.
	for range 3 {
		runtime.GC()
		runtime.Gosched()
	}
	if p := gcPercent(); p != -1 {
		t.Fatalf("GOGC %d after collections with little live, want still off", p)
	}
	// More than half the floor live: pacing takes over after a collection
	// (the watcher runs as a finalizer, on its own goroutine).
	live := make([]byte, gcFloor)
	for i := range live {
		live[i] = byte(i)
	}
	for i := 0; i < 100 && gcPercent() == -1; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	runtime.KeepAlive(live)
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != 100 || l != math.MaxInt64 {
		t.Errorf("with %d MiB live: GOGC %d, limit %d; want 100 and no limit", gcFloor>>20, p, l)
	}
}
