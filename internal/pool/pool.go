// SPDX-License-Identifier: Apache-2.0

// Package pool runs independent items on a bounded number of goroutines and
// hands their results back in input order. It is the one worker pool of the
// command-line paths: files in parallel, chunks of a large file's sites,
// chunks of its JSON. (verify's pool of emulator engines is separate: an
// engine is state a worker owns, not an item.)
//
// Invariants of Ordered, which Each builds on:
//   - work(i) runs at most once for each i, on at most `workers` goroutines,
//     and items are taken in increasing order;
//   - emit(i, …) runs on the caller's goroutine, for i = 0, 1, … in order,
//     each as soon as it and every earlier item are done;
//   - at most 2×workers items are taken and not yet emitted, so a slow early
//     item stalls the workers instead of letting results pile up;
//   - when Ordered returns, no goroutine it started is still running.
package pool

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// Workers is the default parallelism: GOMAXPROCS, at most n, at least 1.
func Workers(n int) int { return max(1, min(runtime.GOMAXPROCS(0), n)) }

// Ordered runs work(ctx, i) for i in [0, n) on up to workers goroutines
// (GOMAXPROCS when workers <= 0) and calls emit(i, result, err) on the
// calling goroutine in input order, err
// being what work returned for that item (a per-item error does not stop
// the others: emit decides).
//
// Ordered stops taking new items when emit returns an error or ctx is done;
// items already running finish (work should watch ctx when it is long) and
// are dropped. It returns emit's error, else ctx's, else nil. A panic in
// work is raised again on the calling goroutine, after the workers stopped.
func Ordered[T any](ctx context.Context, n, workers int,
	work func(ctx context.Context, i int) (T, error),
	emit func(i int, r T, err error) error) error {
	if n <= 0 {
		return ctx.Err()
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, n))
	if workers == 1 {
		return inOrder(ctx, n, work, emit)
	}
	o := newOrdered(ctx, n, workers, work)
	for range workers {
		o.wg.Go(o.worker)
	}
	err := o.emitAll(emit)
	o.finish()
	if o.panicked {
		panic(o.panicValue)
	}
	return err
}

// inOrder is Ordered on the calling goroutine alone: each item is worked
// and emitted before the next is taken.
func inOrder[T any](ctx context.Context, n int,
	work func(ctx context.Context, i int) (T, error),
	emit func(i int, r T, err error) error) error {
	for i := range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := work(ctx, i)
		if err := emit(i, r, err); err != nil {
			return err
		}
	}
	return nil
}

// ordered is one parallel run of Ordered.
//
// Item i lives in slot i%len(slots) from when a worker takes it until it
// is emitted. A worker takes a token before taking an item and the
// emitter returns it after emitting, so at most len(slots) items are in
// flight and their slots are distinct. The smallest unemitted item has
// always been taken (items are taken in order), so the emitter never
// waits on an item no worker holds.
type ordered[T any] struct {
	ctx    context.Context
	n      int
	work   func(ctx context.Context, i int) (T, error)
	slots  []slot[T]
	tokens chan struct{} // one per item taken and not yet emitted
	stop   chan struct{} // closed when the emitter stops: take nothing more
	next   atomic.Int64  // the next item to take
	wg     sync.WaitGroup

	// A panic in work, raised again by Ordered once the workers stopped.
	panicValue any
	panicked   bool
}

// slot holds one item's result from its work until its emit.
type slot[T any] struct {
	r        T
	err      error
	panic    any
	panicked bool
	ready    chan struct{}
}

// newOrdered prepares a run on workers goroutines: a window of twice as
// many slots.
func newOrdered[T any](ctx context.Context, n, workers int, work func(ctx context.Context, i int) (T, error)) *ordered[T] {
	window := 2 * workers
	o := &ordered[T]{ctx: ctx, n: n, work: work, slots: make([]slot[T], window),
		tokens: make(chan struct{}, window), stop: make(chan struct{})}
	for i := range o.slots {
		o.slots[i].ready = make(chan struct{}, 1)
	}
	return o
}

// worker takes items in order and works them until there is none left,
// ctx is done or the emitter stopped.
func (o *ordered[T]) worker() {
	for {
		select {
		case o.tokens <- struct{}{}:
		case <-o.stop:
			return
		}
		i := int(o.next.Add(1) - 1)
		if i >= o.n || o.ctx.Err() != nil {
			return // its token is never returned: nothing more is taken
		}
		select {
		case <-o.stop:
			return
		default:
		}
		o.run(&o.slots[i%len(o.slots)], i)
	}
}

// run works item i into s, a panic included, and marks s ready.
func (o *ordered[T]) run(s *slot[T], i int) {
	defer func() {
		if p := recover(); p != nil {
			s.panic, s.panicked = p, true
		}
		s.ready <- struct{}{}
	}()
	s.r, s.err = o.work(o.ctx, i)
}

// emitAll emits the items in order as they become ready, and returns
// emit's error, else ctx's. It stops at a panicked item, leaving it in
// o.panicValue.
func (o *ordered[T]) emitAll(emit func(i int, r T, err error) error) error {
	var zero T
	for i := range o.n {
		s := &o.slots[i%len(o.slots)]
		select {
		case <-s.ready:
		case <-o.ctx.Done():
			// Item i may never be taken (workers stop at ctx done);
			// finish waits only for those that were.
			return o.ctx.Err()
		}
		r, err, p, panicked := s.r, s.err, s.panic, s.panicked
		s.r, s.err, s.panic, s.panicked = zero, nil, nil, false
		if panicked {
			o.panicValue, o.panicked = p, true
			return nil
		}
		if err := o.ctx.Err(); err != nil {
			return err
		}
		if err := emit(i, r, err); err != nil {
			return err
		}
		<-o.tokens
	}
	return nil
}

// finish stops the workers and waits for them.
func (o *ordered[T]) finish() {
	close(o.stop)
	o.wg.Wait()
}

// Each runs work(ctx, i) for i in [0, n) on up to workers goroutines and
// returns the error of the lowest-numbered item that failed, as if run in
// order; after it, no new item starts.
func Each(ctx context.Context, n, workers int, work func(ctx context.Context, i int) error) error {
	return Ordered(ctx, n, workers,
		func(ctx context.Context, i int) (struct{}, error) { return struct{}{}, work(ctx, i) },
		func(_ int, _ struct{}, err error) error { return err })
}
