package cli

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
)

// tuneGC: no pacing; the collector runs at gcFloor while little is live,
// at twice what is live once that is more, and at gcFloor again when that
// is freed.
func TestTuneGC(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetMemoryLimit(math.MaxInt64)
	defer debug.SetGCPercent(100)
	tuneGC()
	gcPercent := func() int { p := debug.SetGCPercent(-2); debug.SetGCPercent(p); return p }
	limit := func() int64 { return debug.SetMemoryLimit(-1) }
	// gc collects until the limit is want (the watcher runs as a
	// finalizer, on its own goroutine), at most 100 times.
	gc := func(want int64) {
		for i := 0; i < 100 && limit() != want; i++ {
			runtime.GC()
			runtime.Gosched()
		}
	}
	if p, l := gcPercent(), limit(); p >= 0 || l != gcFloor {
		t.Fatalf("after tuneGC: GOGC %d, limit %d; want off and %d", p, l, gcFloor)
	}
	live := make([]byte, gcFloor)
	for i := range live {
		live[i] = byte(i)
	}
	for i := 0; i < 100 && limit() == gcFloor; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if p, l := gcPercent(), limit(); p >= 0 || l < 2*gcFloor || l > 3*gcFloor {
		t.Errorf("with %d MiB live: GOGC %d, limit %d MiB; want off and twice what is live", len(live)>>20, p, l>>20)
	}
	runtime.KeepAlive(live)
	live = nil
	gc(gcFloor)
	if l := limit(); l != gcFloor {
		t.Errorf("after freeing it: limit %d MiB, want %d MiB", l>>20, gcFloor>>20)
	}
	for _, tc := range []struct{ live, want int64 }{
		{0, gcFloor}, {gcFloor / 2, gcFloor}, {gcFloor/2 + 1, gcFloor + 2}, {256 << 20, 512 << 20},
	} {
		if got := gcLimit(tc.live); got != tc.want {
			t.Errorf("gcLimit(%d) = %d, want %d", tc.live, got, tc.want)
		}
	}
}
