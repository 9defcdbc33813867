// SPDX-License-Identifier: Apache-2.0

package input

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// withCap sets the cap (and so the budget) for one test.
func withCap(t *testing.T, n int64) {
	old := MaxDecompressed()
	SetMaxDecompressed(n)
	t.Cleanup(func() { SetMaxDecompressed(old) })
}

// waits returns a channel that receives each claim that is about to wait
// for the budget.
func waits(t *testing.T) <-chan *claim {
	ch := make(chan *claim, 16)
	testBudgetWait = func(c *claim) { ch <- c }
	t.Cleanup(func() { testBudgetWait = nil })
	return ch
}

// The budget's rules, step by step, with the waits observed through the
// test hook (no sleeps): a claim holding nothing waits for room; a younger
// claim holding bytes yields instead of waiting; the oldest claim waits
// while holding, and younger ones yield to it; a claim alone always gets
// what it asks for.
func TestBudgetRules(t *testing.T) {
	const capacity = 100 << 20
	withCap(t, capacity)
	room := int64(capacity + budgetSlack)
	b := newBudget()
	waiting := waits(t)

	// Alone: more than the budget, granted (readChunks checks the cap).
	a := b.start()
	if err := a.reserve(2 * room); err != nil {
		t.Fatalf("a claim alone: %v", err)
	}
	a.release()
	b.peak = 0

	// A younger claim holding nothing waits until the older one ends.
	if err := a.reserve(room * 6 / 10); err != nil {
		t.Fatal(err)
	}
	y := b.start()
	got := make(chan error, 1)
	go func() { got <- y.reserve(room * 6 / 10) }()
	if c := <-waiting; c != y {
		t.Fatalf("claim %d waits, want the younger %d", c.n, y.n)
	}
	a.end()
	if err := <-got; err != nil {
		t.Fatalf("the younger claim after the older ended: %v", err)
	}

	// The younger, now oldest, holds 60%; a new claim takes 30% and asks
	// for 30% more: it yields. The oldest asks for 30% more: it waits, and
	// the new claim's next ask yields to it; its release lets it through.
	n := b.start()
	if err := n.reserve(room * 3 / 10); err != nil {
		t.Fatal(err)
	}
	if err := n.reserve(room * 3 / 10); !errors.Is(err, errYield) {
		t.Fatalf("a younger claim holding bytes, short of room: %v, want errYield", err)
	}
	go func() { got <- y.reserve(room * 3 / 10) }()
	if c := <-waiting; c != y {
		t.Fatalf("claim %d waits, want the oldest %d", c.n, y.n)
	}
	if err := n.reserve(1); !errors.Is(err, errYield) {
		t.Fatalf("a younger claim while the oldest waits: %v, want errYield", err)
	}
	n.release()
	if err := <-got; err != nil {
		t.Fatalf("the oldest after the younger yielded: %v", err)
	}
	// Having yielded, the younger claim waits to be the oldest, though
	// there is room: it would otherwise decode its stream again and again
	// while the oldest grows.
	go func() { got <- n.reserve(1) }()
	if c := <-waiting; c != n {
		t.Fatalf("claim %d waits, want the one that yielded, %d", c.n, n.n)
	}
	y.end()
	if err := <-got; err != nil {
		t.Fatalf("the claim that yielded, once the oldest: %v", err)
	}
	n.end()
	if b.used != 0 || len(b.active) != 0 {
		t.Errorf("after every claim ended: used %d, %d active", b.used, len(b.active))
	}
	if b.peak > room {
		t.Errorf("peak %d bytes, more than the budget %d (outside the alone case)", b.peak, room)
	}
}

// Issue 22.11: bombs opened by several workers at once share one budget:
// the output buffers held at once stay within the cap (and one chunk), not
// the cap per worker. Before, each worker could hold the cap.
func TestBombsShareOneBudget(t *testing.T) {
	const capacity = 32 << 20
	withCap(t, capacity)
	dir := t.TempDir()
	var paths []string
	for _, c := range compressions {
		p := filepath.Join(dir, "bomb."+c)
		if err := os.WriteFile(p, bomb(t, c), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p, p) // six workers
	}
	peakOutput.Store(liveOutput.Load())
	base := liveOutput.Load()
	var wg sync.WaitGroup
	errs := make([]error, len(paths))
	for i, p := range paths {
		wg.Go(func() {
			f, err := Open(p)
			if f != nil {
				f.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v, want ErrTooLarge", paths[i], err)
		}
	}
	if peak := peakOutput.Load() - base; peak > capacity+budgetSlack {
		t.Errorf("%d workers held %d MiB of output at once, want at most the cap %d MiB + %d MiB", len(paths), peak>>20, capacity>>20, budgetSlack>>20)
	}
}
