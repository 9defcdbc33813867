// SPDX-License-Identifier: Apache-2.0

package pool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"testing/quick"
)

// tracker records what the workers did, for assertions after Ordered.
type tracker struct {
	calls    []atomic.Int32 // work calls per item
	running  atomic.Int64   // work calls in progress
	peak     atomic.Int64   // most work calls in progress at once
	emitted  atomic.Int64   // items emitted so far
	maxAhead atomic.Int64   // largest i - emitted when work(i) started
}

func newTracker(n int) *tracker { return &tracker{calls: make([]atomic.Int32, n)} }

func raise(v *atomic.Int64, x int64) {
	for {
		p := v.Load()
		if x <= p || v.CompareAndSwap(p, x) {
			return
		}
	}
}

func (tr *tracker) start(i int) {
	tr.calls[i].Add(1)
	raise(&tr.peak, tr.running.Add(1))
	raise(&tr.maxAhead, int64(i)-tr.emitted.Load())
}

func (tr *tracker) done() { tr.running.Add(-1) }

// spin yields k times: work of uneven length without a clock.
func spin(k int) {
	for range k {
		runtime.Gosched()
	}
}

func TestOrdered(t *testing.T) {
	for _, tc := range []struct{ n, workers int }{
		{0, 4}, {1, 4}, {5, 1}, {5, 0}, {7, 3}, {100, 2}, {1000, 8}, {3, 64},
	} {
		t.Run(fmt.Sprintf("n=%d/workers=%d", tc.n, tc.workers), func(t *testing.T) {
			tr := newTracker(tc.n)
			var order []int
			err := Ordered(context.Background(), tc.n, tc.workers,
				func(_ context.Context, i int) (int, error) {
					tr.start(i)
					defer tr.done()
					if i%7 == 0 {
						spin(50) // early items finish late
					}
					return i * i, nil
				},
				func(i, r int, err error) error {
					if r != i*i || err != nil {
						t.Errorf("emit(%d, %d, %v)", i, r, err)
					}
					order = append(order, i)
					tr.emitted.Add(1)
					return nil
				})
			if err != nil {
				t.Fatalf("Ordered = %v", err)
			}
			if len(order) != tc.n || !slices.IsSorted(order) {
				t.Errorf("emitted %d items, sorted %v", len(order), slices.IsSorted(order))
			}
			for i := range tr.calls {
				if c := tr.calls[i].Load(); c != 1 {
					t.Errorf("work(%d) called %d times", i, c)
				}
			}
			w := int64(tc.workers)
			if w <= 0 {
				w = int64(runtime.GOMAXPROCS(0))
			}
			if tr.peak.Load() > w {
				t.Errorf("peak concurrency %d over %d workers", tr.peak.Load(), w)
			}
		})
	}
}

// TestOrderedProperty: for any n, workers and per-item work lengths,
// results come back in input order, each item runs once, at most workers
// run at once and no item starts 2×workers ahead of the last emitted.
func TestOrderedProperty(t *testing.T) {
	prop := func(n16 uint16, w8 uint8, seed uint64) bool {
		n, workers := int(n16%600), int(w8%17)
		cost := rand.New(rand.NewPCG(seed, 1))
		costs := make([]int, n)
		for i := range costs {
			costs[i] = cost.IntN(20)
		}
		tr := newTracker(n)
		var got []int
		err := Ordered(context.Background(), n, workers,
			func(_ context.Context, i int) (int, error) {
				tr.start(i)
				defer tr.done()
				spin(costs[i])
				return -i, nil
			},
			func(i, r int, _ error) error {
				if r != -i {
					return fmt.Errorf("item %d got %d", i, r)
				}
				got = append(got, i)
				tr.emitted.Add(1)
				return nil
			})
		w := int64(workers)
		if w <= 0 {
			w = int64(runtime.GOMAXPROCS(0))
		}
		w = max(1, min(w, int64(n)))
		ok := err == nil && len(got) == n && slices.IsSorted(got) &&
			tr.peak.Load() <= w && tr.running.Load() == 0 && (n == 0 || tr.maxAhead.Load() < 2*w)
		for i := range tr.calls {
			ok = ok && tr.calls[i].Load() == 1
		}
		if !ok {
			t.Logf("n=%d workers=%d: err=%v emitted=%d peak=%d ahead=%d", n, workers, err, len(got), tr.peak.Load(), tr.maxAhead.Load())
		}
		return ok
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 200}); err != nil {
		t.Error(err)
	}
}

// TestOrderedWindow: while item 0 is stuck, the others run ahead only as
// far as the window; none past it starts before item 0 is emitted.
func TestOrderedWindow(t *testing.T) {
	const n, workers, window = 100, 4, 2 * 4
	var finished atomic.Int64 // items 1..window-1 done
	var started [n]atomic.Bool
	release := make(chan struct{})
	var beyond []int
	err := Ordered(context.Background(), n, workers,
		func(_ context.Context, i int) (int, error) {
			started[i].Store(true)
			if i == 0 {
				<-release
				for j := window; j < n; j++ {
					if started[j].Load() {
						beyond = append(beyond, j)
					}
				}
				return 0, nil
			}
			if i < window && finished.Add(1) == window-1 {
				spin(200) // let any worker that could run ahead do so
				close(release)
			}
			return i, nil
		},
		func(i, r int, err error) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(beyond) > 0 {
		t.Errorf("items %v started while item 0 was running; window is %d", beyond, window)
	}
}

// TestOrderedParallel: with 4 workers, 4 items run at once (each waits for
// the others to start; a serial pool would never get past the first).
func TestOrderedParallel(t *testing.T) {
	const workers = 4
	var started atomic.Int64
	all := make(chan struct{})
	err := Each(context.Background(), workers, workers, func(_ context.Context, i int) error {
		if started.Add(1) == workers {
			close(all)
		}
		<-all
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOrderedPerItemErrors(t *testing.T) {
	errOdd := errors.New("odd")
	var got []error
	err := Ordered(context.Background(), 10, 3,
		func(_ context.Context, i int) (int, error) {
			if i%2 == 1 {
				return 0, fmt.Errorf("item %d: %w", i, errOdd)
			}
			return i, nil
		},
		func(i, r int, err error) error {
			got = append(got, err)
			return nil
		})
	if err != nil {
		t.Fatalf("Ordered = %v, want nil: per-item errors go to emit", err)
	}
	for i, e := range got {
		if (i%2 == 1) != errors.Is(e, errOdd) {
			t.Errorf("item %d: err = %v", i, e)
		}
		if e != nil && e.Error() != fmt.Sprintf("item %d: odd", i) {
			t.Errorf("item %d: err = %q, another item's", i, e)
		}
	}
	if len(got) != 10 {
		t.Errorf("emitted %d, want 10", len(got))
	}
}

// TestOrderedStop: an error from emit stops the pool: nothing after it is
// emitted, nothing past the window is started, no worker outlives Ordered.
func TestOrderedStop(t *testing.T) {
	errStop := errors.New("stop")
	for _, workers := range []int{1, 3} {
		const n, at = 1000, 10
		tr := newTracker(n)
		last := -1
		err := Ordered(context.Background(), n, workers,
			func(_ context.Context, i int) (int, error) {
				tr.start(i)
				defer tr.done()
				return i, nil
			},
			func(i, r int, err error) error {
				last = i
				tr.emitted.Add(1)
				if i == at {
					return errStop
				}
				return nil
			})
		if !errors.Is(err, errStop) {
			t.Errorf("workers=%d: Ordered = %v, want errStop", workers, err)
		}
		if last != at {
			t.Errorf("workers=%d: last emitted %d, want %d", workers, last, at)
		}
		if tr.running.Load() != 0 {
			t.Errorf("workers=%d: %d work calls still running after Ordered returned", workers, tr.running.Load())
		}
		for i := at + 2*workers + 1; i < n; i++ {
			if tr.calls[i].Load() != 0 {
				t.Errorf("workers=%d: item %d ran after the stop at %d", workers, i, at)
				break
			}
		}
	}
}

func TestOrderedCancel(t *testing.T) {
	for _, workers := range []int{1, 4} {
		ctx, cancel := context.WithCancel(context.Background())
		const n, at = 1000, 20
		var ran atomic.Int64
		emitted := 0
		err := Ordered(ctx, n, workers,
			func(ctx context.Context, i int) (int, error) {
				ran.Add(1)
				if i == at {
					cancel()
				}
				return i, nil
			},
			func(i, r int, err error) error { emitted++; return nil })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("workers=%d: Ordered = %v, want context.Canceled", workers, err)
		}
		if emitted > at+1 {
			t.Errorf("workers=%d: %d items emitted after cancel at item %d", workers, emitted, at)
		}
		if r := ran.Load(); r > at+1+int64(2*workers) {
			t.Errorf("workers=%d: %d items ran, want at most %d", workers, r, at+1+2*workers)
		}
		cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Each(ctx, 5, 2, func(context.Context, int) error { t.Error("work ran on a done context"); return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Each on a done context = %v, want context.Canceled", err)
	}
}

func TestEachFirstErrorInOrder(t *testing.T) {
	// Items 3 and 7 fail; 7 fails first in time (3 spins), 3 is reported.
	err := Each(context.Background(), 10, 4, func(_ context.Context, i int) error {
		switch i {
		case 3:
			spin(100)
			return errors.New("item 3")
		case 7:
			return errors.New("item 7")
		}
		return nil
	})
	if err == nil || err.Error() != "item 3" {
		t.Errorf("Each = %v, want item 3's error", err)
	}
}

func TestOrderedPanic(t *testing.T) {
	var running atomic.Int64
	defer func() {
		if p := recover(); p != "boom 5" {
			t.Errorf("recovered %v, want the worker's panic", p)
		}
		if r := running.Load(); r != 0 {
			t.Errorf("%d workers still running after the panic", r)
		}
	}()
	Each(context.Background(), 50, 4, func(_ context.Context, i int) error {
		running.Add(1)
		defer running.Add(-1)
		if i == 5 {
			panic(fmt.Sprint("boom ", i))
		}
		return nil
	})
	t.Error("Each returned after a worker panicked")
}
