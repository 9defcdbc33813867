// SPDX-License-Identifier: Apache-2.0

package input

// One decompression budget for the whole run: the bytes every worker is
// decompressing at once stay within the cap (MaxDecompressed, plus one
// chunk), so a folder of bombs costs the cap, not the cap times the
// workers. A decompression claims its output buffers from the budget as it
// allocates them and gives them back when it ends: on failure (a bomb
// refused at the cap) they are freed; on success the bytes belong to the
// File, whose command is working on them.
//
// Waiting for the budget while holding part of it could deadlock (two
// workers each holding half, each waiting for the other). So claims are
// numbered as they start, and only the oldest claim still decompressing
// waits while it holds bytes; a younger one that would have to wait gives
// back what it holds and starts its stream again (errYield), keeping its
// number, once it is the oldest: a claim yields at most once, so no
// stream is decoded again and again while an older one grows. A claim that holds
// nothing waits, and does not take bytes the oldest one is waiting for. A
// claim alone in the budget always gets what it asks for: its own cap is
// checked by readChunks.

import (
	"errors"
	"sync"
)

// budgetSlack is what the budget allows above the cap: readChunks reads one
// byte past the cap to see that a stream is larger, into a buffer of at
// most one chunk.
const budgetSlack = 1 << lastChunkShift

// errYield says that a decompression must give back its bytes and start
// again (see the file comment).
var errYield = errors.New("yield the decompression budget")

// budget is the run's decompression budget.
type budget struct {
	mu          sync.Mutex
	cond        sync.Cond
	used        int64
	next        uint64
	active      map[uint64]bool // claims still decompressing
	oldestWaits bool
	peak        int64 // the most used at once (tests)
}

var runBudget = newBudget()

func newBudget() *budget {
	b := &budget{active: map[uint64]bool{}}
	b.cond.L = &b.mu
	return b
}

// claim is one decompression's share of the budget.
type claim struct {
	b       *budget
	n       uint64 // its number: lower is older
	held    int64
	yielded bool // it gave its bytes back once: it waits to be the oldest
}

// start begins a claim.
func (b *budget) start() *claim {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := &claim{b: b, n: b.next}
	b.next++
	b.active[c.n] = true
	return c
}

// oldest reports whether c is the oldest claim still decompressing.
func (c *claim) oldest() bool {
	for n := range c.b.active {
		if n < c.n {
			return false
		}
	}
	return true
}

// reserve gives c n more bytes, waiting for them if c may (see the file
// comment), or returns errYield.
func (c *claim) reserve(n int64) error {
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		oldest := c.oldest()
		fits := b.used+n <= MaxDecompressed()+budgetSlack
		switch {
		case b.used == c.held || fits && (oldest || !b.oldestWaits && !c.yielded):
			if oldest {
				b.oldestWaits = false
			}
			b.used += n
			c.held += n
			b.peak = max(b.peak, b.used)
			return nil
		case c.held > 0 && !oldest:
			c.yielded = true
			return errYield
		}
		if oldest {
			b.oldestWaits = true
		}
		if testBudgetWait != nil {
			testBudgetWait(c)
		}
		b.cond.Wait()
	}
}

// testBudgetWait, when set by a test, runs (with the budget locked) each
// time a claim is about to wait.
var testBudgetWait func(*claim)

// release gives back everything c holds; the claim goes on (it starts its
// stream again).
func (c *claim) release() {
	b := c.b
	b.mu.Lock()
	b.used -= c.held
	c.held = 0
	b.mu.Unlock()
	b.cond.Broadcast()
}

// end gives back everything c holds and ends the claim.
func (c *claim) end() {
	b := c.b
	b.mu.Lock()
	b.used -= c.held
	c.held = 0
	delete(b.active, c.n)
	if len(b.active) == 0 {
		b.oldestWaits = false
	}
	b.mu.Unlock()
	b.cond.Broadcast()
}
