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
	// Item i lives in slot i%window from when a worker takes it until it is
	// emitted. A worker takes a token before taking an item and the emitter
	// returns it after emitting, so at most window items are in flight and
	// their slots are distinct. The smallest unemitted item has always been
	// taken (items are taken in order), so the emitter never waits on an
	// item no worker holds.
	window := 2 * workers
	type slot struct {
		r       T
		err     error
		panic   any
		paniced bool
		ready   chan struct{}
	}
	slots := make([]slot, window)
	for i := range slots {
		slots[i].ready = make(chan struct{}, 1)
	}
	tokens := make(chan struct{}, window)
	stop := make(chan struct{})
	var next atomic.Int64
	var wg sync.WaitGroup
	run := func(s *slot, i int) {
		defer func() {
			if p := recover(); p != nil {
				s.panic, s.paniced = p, true
			}
			s.ready <- struct{}{}
		}()
		s.r, s.err = work(ctx, i)
	}
	for range workers {
		wg.Go(func() {
			for {
				select {
				case tokens <- struct{}{}:
				case <-stop:
					return
				}
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return // its token is never returned: nothing more is taken
				}
				select {
				case <-stop:
					return
				default:
				}
				run(&slots[i%window], i)
			}
		})
	}
	finish := func() {
		close(stop)
		wg.Wait()
	}
	var zero T
	for i := range n {
		s := &slots[i%window]
		select {
		case <-s.ready:
		case <-ctx.Done():
			// Item i may never be taken (workers stop at ctx done); wait
			// only for those that were.
			finish()
			return ctx.Err()
		}
		r, err, p, paniced := s.r, s.err, s.panic, s.paniced
		s.r, s.err, s.panic, s.paniced = zero, nil, nil, false
		if paniced {
			finish()
			panic(p)
		}
		if err := ctx.Err(); err != nil {
			finish()
			return err
		}
		if err := emit(i, r, err); err != nil {
			finish()
			return err
		}
		<-tokens
	}
	finish()
	return nil
}

// Each runs work(ctx, i) for i in [0, n) on up to workers goroutines and
// returns the error of the lowest-numbered item that failed, as if run in
// order; after it, no new item starts.
func Each(ctx context.Context, n, workers int, work func(ctx context.Context, i int) error) error {
	return Ordered(ctx, n, workers,
		func(ctx context.Context, i int) (struct{}, error) { return struct{}{}, work(ctx, i) },
		func(_ int, _ struct{}, err error) error { return err })
}
