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
	r, err := NewRunner(mu, []uint64{runnerFn})
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
	n, err := r.Run(runs, out, 0, false)
	if err != nil || n != 2 {
		t.Fatalf("ran %d, %v; want 2, nil", n, err)
	}
	runs = append(runs, Run{Begin: runnerFn, Until: runnerFn + 4})
	if n, err := r.Run(runs[2:], out[2:], 0, true); err != nil || n != 1 {
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
	n, err := r.Run(runs, out, 0, false)
	<-done
	if err != nil || n != 1 || out[0].Stopped != StopSlice || out[0].Regs[BatchPC] != runnerLoop {
		t.Fatalf("ran %d, %v, stopped %d at %#x; want 1 run stopped (slice) at the loop", n, err, out[0].Stopped, out[0].Regs[BatchPC])
	}
	n, err = r.Run(runs[:1], out, 1000, true)
	if err != nil || n != 1 || out[0].Stopped != 0 || out[0].Err != 0 || out[0].Regs[BatchPC] != runnerLoop {
		t.Fatalf("counted run: %d, %v, stopped %d, err %d, pc %#x", n, err, out[0].Stopped, out[0].Err, out[0].Regs[BatchPC])
	}
}
