// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package uc

import (
	"testing"
	"time"
)

// runnerCode: a caller at codeBase that calls fn (intercepted) between two
// adds, a loop at codeBase+0x20, and fn at codeBase+0x40, whose body must
// never run when it is called.
var runnerCode = func() []byte {
	code := make([]uint32, 0x50/4)
	for i := range code {
		code[i] = nop
	}
	code[0] = 0x91000400      // add x0, x0, #1
	code[1] = 0x9400000f      // bl codeBase+0x40
	code[2] = 0x91000421      // add x1, x1, #1
	code[0x20/4] = bSelf      // b .
	code[0x40/4] = 0xd28000e0 // mov x0, #7
	code[0x44/4] = ret
	return words(code...)
}()

const (
	runnerFn   = codeBase + 0x40
	runnerLoop = codeBase + 0x20
)

func newRunner(t *testing.T) (Unicorn, *Runner) {
	t.Helper()
	mu := newARM64(t, runnerCode)
	if err := mu.MemMapProt(0x80000, 0x1000, PROT_READ|PROT_WRITE); err != nil {
		t.Fatal(err)
	}
	r, err := NewRunner(mu, []uint64{runnerFn}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mu.Close(); r.Free() })
	return mu, r
}

// Each run of a batch starts from its own registers; an intercepted call is
// recorded with its arguments and returns at once; a run starting at an
// intercepted address runs it (that is not a call), once the blocks
// translated when it was called (with another stop address baked in) are
// dropped.
func TestRunnerBatch(t *testing.T) {
	_, r := newRunner(t)
	runs := make([]Run, 2, 3)
	for i := range 2 {
		runs[i] = Run{Begin: codeBase, Until: codeBase + 12}
		for k := range runs[i].Regs {
			runs[i].Regs[k] = uint64(1000*i + k)
		}
		runs[i].Regs[BatchSP] = 0x80800
		runs[i].Regs[BatchNZCV] = 0
	}
	out := make([]Result, 3)
	n, err := r.Run(runs, out, 0, false, false)
	if err != nil || n != 2 {
		t.Fatalf("ran %d, %v; want 2, nil", n, err)
	}
	runs = append(runs, Run{Begin: runnerFn, Until: runnerFn + 4})
	if n, err := r.Run(runs[2:], out[2:], 0, true, false); err != nil || n != 1 {
		t.Fatalf("ran %d, %v; want 1, nil", n, err)
	}
	for i := range 2 {
		o, in := out[i], runs[i].Regs
		if o.Err != 0 || o.Stopped != 0 || o.Regs[BatchPC] != codeBase+12 {
			t.Fatalf("run %d: err %d, stopped %d, pc %#x", i, o.Err, o.Stopped, o.Regs[BatchPC])
		}
		if o.Calls != 1 || o.Args != [4]uint64{in[0] + 1, in[1], in[2], in[3]} {
			t.Errorf("run %d: %d calls, args %v", i, o.Calls, o.Args)
		}
		if o.Regs[0] != in[0]+1 || o.Regs[1] != in[1]+1 || o.Regs[30] != codeBase+8 || o.Regs[5] != in[5] || o.Regs[BatchSP] != in[BatchSP] {
			t.Errorf("run %d: x0 %d x1 %d x30 %#x x5 %d sp %#x (fn's body ran, or registers not set)", i, o.Regs[0], o.Regs[1], o.Regs[30], o.Regs[5], o.Regs[BatchSP])
		}
	}
	if o := out[2]; o.Err != 0 || o.Calls != 0 || o.Regs[0] != 7 || o.Regs[BatchPC] != runnerFn+4 {
		t.Errorf("run from fn: %d calls, x0 %d, pc %#x; want 0 calls, x0 7", o.Calls, o.Regs[0], o.Regs[BatchPC])
	}
}

// Stop ends the run it names, the batch stops after it, and its Result
// says why; a count ends a loop without the watchdog.
func TestRunnerStop(t *testing.T) {
	_, r := newRunner(t)
	runs := []Run{{Begin: runnerLoop, Until: runnerLoop + 4}, {Begin: codeBase, Until: codeBase + 12}}
	out := make([]Result, 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			seq, running, cpu := r.Poll()
			if running {
				if cpu < 0 {
					t.Errorf("no CPU time for the running thread")
				}
				r.Stop(seq-1, StopTimeout) // not the current run: nothing happens
				time.Sleep(5 * time.Millisecond)
				r.Stop(seq, StopSlice)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	n, err := r.Run(runs, out, 0, false, false)
	<-done
	if err != nil || n != 1 || out[0].Stopped != StopSlice || out[0].Regs[BatchPC] != runnerLoop {
		t.Fatalf("ran %d, %v, stopped %d at %#x; want 1 run stopped (slice) at the loop", n, err, out[0].Stopped, out[0].Regs[BatchPC])
	}
	n, err = r.Run(runs[:1], out, 1000, true, false)
	if err != nil || n != 1 || out[0].Stopped != 0 || out[0].Err != 0 || out[0].Regs[BatchPC] != runnerLoop {
		t.Fatalf("counted run: %d, %v, stopped %d, err %d, pc %#x", n, err, out[0].Stopped, out[0].Err, out[0].Regs[BatchPC])
	}
}

// The watchdog (Watch) stops a looping run at its CPU slice, or, with no
// slice, at its timeout, and the run after it in the batch does not run;
// the next batch's runs are its own again. A runner with no limits is not
// watched: TestRunnerStop's loop runs until its caller stops it.
func TestRunnerWatch(t *testing.T) {
	for _, tc := range []struct {
		name           string
		timeout, slice time.Duration
		want           uint32
	}{
		{"slice", time.Hour, 20 * time.Millisecond, StopSlice},
		{"timeout", 50 * time.Millisecond, 0, StopTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, r := newRunner(t)
			r.Watch(tc.timeout, tc.slice)
			runs := []Run{{Begin: runnerLoop, Until: runnerLoop + 4}, {Begin: codeBase, Until: codeBase + 12}}
			out := make([]Result, 2)
			n, err := r.Run(runs, out, 0, false, false)
			if err != nil || n != 1 || out[0].Stopped != tc.want || out[0].Regs[BatchPC] != runnerLoop {
				t.Fatalf("ran %d, %v, stopped %d at %#x; want 1 run stopped (%d) at the loop", n, err, out[0].Stopped, out[0].Regs[BatchPC], tc.want)
			}
			n, err = r.Run(runs[1:], out[1:], 0, true, false)
			if err != nil || n != 1 || out[1].Stopped != 0 || out[1].Err != 0 {
				t.Fatalf("the next batch: ran %d, %v, stopped %d, err %d", n, err, out[1].Stopped, out[1].Err)
			}
		})
	}
}

// chainCode: runs that end at a BRK each, with the ways a run can go wrong
// between them (an SVC, a BRK not its own, an unmapped load).
var chainCode = func() []byte {
	const (
		brk     = 0xd4200000 // brk #0 (encode.BRK; package uc does not import encode)
		svc     = 0xd4000001 // svc #0
		ldrX0X1 = 0xf9400020 // ldr x0, [x1]
	)
	code := make([]uint32, 0x50/4)
	for i := range code {
		code[i] = nop
	}
	code[0] = 0x91000400 // add x0, x0, #1
	code[0x04/4] = brk
	code[0x08/4] = 0x9400000e // bl codeBase+0x40
	code[0x0c/4] = brk
	code[0x10/4] = svc
	code[0x14/4] = brk
	code[0x18/4] = 0x17fffffb // b codeBase+0x04 (another run's BRK)
	code[0x1c/4] = brk
	code[0x20/4] = ldrX0X1
	code[0x24/4] = brk
	code[0x28/4] = 0x91000421 // add x1, x1, #1
	code[0x2c/4] = brk
	code[0x30/4] = 0x91000442 // add x2, x2, #1
	code[0x34/4] = brk        // a return trap: planted over a RET X9
	code[0x40/4] = 0xd28000e0 // mov x0, #7
	code[0x44/4] = ret
	return words(code...)
}()

// A chained batch: each run starts from its own registers and ends at its
// BRK with PC there (so Unicorn numbers BRK as FTP_EXCP_BKPT and leaves PC
// at it); an intercepted call is recorded; a run that traps at another
// exception, or at a BRK not its own, ends there and the next run goes on;
// an emulation error ends the uc_emu_start and the next run starts a new
// one. A run that traps at a return trap with X9 = its Until ends there
// (as the RET would have), with X9 elsewhere at the trap. A second batch on
// the same runner, unchained, stops at Until.
func TestRunnerChain(t *testing.T) {
	mu := newARM64(t, chainCode)
	if err := mu.MemMapProt(0x80000, 0x1000, PROT_READ|PROT_WRITE); err != nil {
		t.Fatal(err)
	}
	r, err := NewRunner(mu, []uint64{codeBase + 0x40}, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mu.Close(); r.Free() })
	if err := r.SetReturnTraps([]uint64{codeBase + 0x34}, 9); err != nil {
		t.Fatal(err)
	}
	begins := []uint64{0x00, 0x08, 0x10, 0x18, 0x20, 0x28, 0x30, 0x30}
	runs := make([]Run, len(begins))
	for i, b := range begins {
		runs[i] = Run{Begin: codeBase + b, Until: codeBase + b + 4}
		if b == 0x30 {
			runs[i].Until = codeBase + 0x48
		}
		for k := range runs[i].Regs {
			runs[i].Regs[k] = uint64(1000*i + k)
		}
		runs[i].Regs[BatchSP] = 0x80800
		runs[i].Regs[BatchNZCV] = 0
	}
	runs[4].Regs[1] = 0x7000000 // unmapped
	runs[6].Regs[9] = runs[6].Until
	out := make([]Result, len(runs))
	n, err := r.Run(runs, out, 0, false, true)
	if err != nil || n != len(runs) {
		t.Fatalf("ran %d, %v; want %d, nil", n, err, len(runs))
	}
	type want struct {
		err   error
		pc    uint64
		calls uint32
		x0    uint64
	}
	wants := []want{
		{nil, codeBase + 0x04, 0, runs[0].Regs[0] + 1},
		{nil, codeBase + 0x0c, 1, runs[1].Regs[0]},
		{ERR_EXCEPTION, codeBase + 0x14, 0, runs[2].Regs[0]},
		{nil, codeBase + 0x04, 0, runs[3].Regs[0]},
		{ERR_READ_UNMAPPED, codeBase + 0x20, 0, runs[4].Regs[0]},
		{nil, codeBase + 0x2c, 0, runs[5].Regs[0]},
		{nil, codeBase + 0x48, 0, runs[6].Regs[0]},
		{nil, codeBase + 0x34, 0, runs[7].Regs[0]},
	}
	for i, w := range wants {
		o := out[i]
		if o.Error() != w.err || o.Regs[BatchPC] != w.pc || o.Calls != w.calls || o.Regs[0] != w.x0 || o.Stopped != 0 {
			t.Errorf("run %d: err %v pc %#x calls %d x0 %d stopped %d; want err %v pc %#x calls %d x0 %d",
				i, o.Error(), o.Regs[BatchPC], o.Calls, o.Regs[0], o.Stopped, w.err, w.pc, w.calls, w.x0)
		}
		if o.Regs[BatchSP] != runs[i].Regs[BatchSP] || o.Regs[5] != runs[i].Regs[5] {
			t.Errorf("run %d: sp %#x x5 %d: registers not the run's own", i, o.Regs[BatchSP], o.Regs[5])
		}
	}
	if o := out[1]; o.Args != [4]uint64{runs[1].Regs[0], runs[1].Regs[1], runs[1].Regs[2], runs[1].Regs[3]} {
		t.Errorf("run 1: call args %v", o.Args)
	}
	for _, i := range []int{6, 7} {
		if o := out[i]; o.Regs[2] != runs[i].Regs[2]+1 || o.Regs[9] != runs[i].Regs[9] {
			t.Errorf("run %d (return trap): x2 %d x9 %#x", i, o.Regs[2], o.Regs[9])
		}
	}
	if o := out[5]; o.Regs[1] != runs[5].Regs[1]+1 {
		t.Errorf("run 5 (after an emulation error): x1 %d, want %d", o.Regs[1], runs[5].Regs[1]+1)
	}
	// Unchained on the same runner (flushed: the blocks translated so far
	// run on to the BRKs): the SVC is an error as without the hook, and a
	// run stops at Until, before its BRK.
	n, err = r.Run(runs[:3], out, 0, true, false)
	if err != nil || n != 3 {
		t.Fatalf("unchained: ran %d, %v", n, err)
	}
	if out[0].Err != 0 || out[0].Regs[BatchPC] != codeBase+0x04 || out[2].Error() != ERR_EXCEPTION {
		t.Errorf("unchained: run 0 err %v pc %#x, run 2 err %v", out[0].Error(), out[0].Regs[BatchPC], out[2].Error())
	}
}

// A seeded run's X0-X29 are distinct, each with bit 63 set, NZCV only
// flags, and the same for the same (seed, index): whatever runs before.
func TestSeeds(t *testing.T) {
	for seed := range uint64(4) {
		for index := range uint64(2000) {
			r := Seeds(seed, index)
			seen := map[uint64]bool{}
			for k := range 30 {
				if r[k]>>63 != 1 || seen[r[k]] {
					t.Fatalf("seed %d index %d: X%d = %#x (bit 63 clear, or a repeat)", seed, index, k, r[k])
				}
				seen[r[k]] = true
			}
			if r[BatchNZCV]&^(0xf<<28) != 0 {
				t.Fatalf("seed %d index %d: NZCV %#x", seed, index, r[BatchNZCV])
			}
			if r != Seeds(seed, index) {
				t.Fatalf("seed %d index %d: two draws differ", seed, index)
			}
		}
	}
	if Seeds(1, 7) == Seeds(2, 7) || Seeds(1, 7) == Seeds(1, 8) {
		t.Error("the values do not follow the seed and the index")
	}
}
