// SPDX-License-Identifier: Apache-2.0

package uc

/*
#include <stdlib.h>
#include "batch.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"
)

// Register slots of Run.Regs and Result.Regs: X0..X30, then SP, NZCV (in
// and out), then PC (out only).
const (
	BatchSP   = 31
	BatchNZCV = 32
	BatchPC   = 33
	BatchIn   = C.FTP_NIN
	BatchOut  = C.FTP_NOUT
)

// Run is one arm64 run of a batch: from Begin until Until, with Regs set
// first. With Seed set, the runner draws Regs (all but X30 and SP) from its
// seed and Index first (check.h's ftp_seed_regs; SetJudge sets the seed);
// with Judge set (JudgeNop, JudgeInit, JudgeEnabled), it checks the result
// as that state requires (check.h's ftp_judge; an enabled site's call must
// pass CallSite and Op) and sets Result.Passed.
type Run struct {
	Begin, Until uint64
	Regs         [BatchIn]uint64
	CallSite, Op uint64
	Index        uint64
	Judge        uint32
	Seed         uint32
}

// What a judged run must do (Run.Judge): see check.h.
const (
	JudgeNone    = C.FTP_JUDGE_NONE
	JudgeNop     = C.FTP_JUDGE_NOP
	JudgeInit    = C.FTP_JUDGE_INIT
	JudgeEnabled = C.FTP_JUDGE_ENABLED
)

// Why the watchdog stopped a run (Result.Stopped).
const (
	StopSlice   = C.FTP_STOP_SLICE   // it used more CPU than its slice
	StopTimeout = C.FTP_STOP_TIMEOUT // it ran past its timeout
)

// Result is what a run did.
type Result struct {
	Regs    [BatchOut]uint64
	Args    [4]uint64 // X0..X3 at the last intercepted call
	Calls   uint32    // intercepted calls
	Err     int32     // uc_err of the run (or of the hook's register access)
	Stopped uint32    // StopSlice, StopTimeout, or 0
	aborted uint32    // a Go hook panicked (Runner.Run returns it)
	Passed  uint32    // the run was judged (Run.Judge) and did what it must
	_       uint32
}

// Error is the run's error, or nil.
func (r *Result) Error() error { return errReturn(C.uc_err(r.Err)) }

func init() {
	if unsafe.Sizeof(Run{}) != C.sizeof_struct_ftp_run || unsafe.Sizeof(Result{}) != C.sizeof_struct_ftp_result ||
		unsafe.Offsetof(Result{}.Calls) != C.ftp_off_calls {
		panic("uc: Run or Result does not match batch.h")
	}
}

// Runner runs arm64 code many times per cgo call (Go to C crossings cost
// more than a short run): each run sets X0-X30, SP and NZCV, runs until an
// address, and reads them back with PC. A code hook in C intercepts calls
// of a set of addresses: it records X0-X3 and returns to X30 at once.
// The watchdog (Watch) stops a run that goes on too long; Poll and Stop
// let a caller do the same. Not safe for concurrent use, except Poll and
// Stop.
type Runner struct {
	u *unicorn
	r *C.struct_ftp_runner
}

// NewRunner makes a runner on u (arm64) intercepting calls of funcs. With
// chain, it can run batches chained (Run): it then takes every CPU
// exception (UC_HOOK_INTR), and one no chained run expects ends its run
// with UC_ERR_EXCEPTION as without the hook. Close u before Free.
func NewRunner(mu Unicorn, funcs []uint64, chain bool) (*Runner, error) {
	u, ok := mu.(*unicorn)
	if !ok {
		return nil, fmt.Errorf("uc: runner on a %T", mu)
	}
	h, err := u.h()
	if err != nil {
		return nil, err
	}
	defer runtime.KeepAlive(u)
	var fp *C.uint64_t
	if len(funcs) > 0 {
		fp = (*C.uint64_t)(unsafe.Pointer(&funcs[0]))
	}
	var cerr C.uc_err
	ch := C.int(0)
	if chain {
		ch = 1
	}
	r := C.ftp_runner_new(h, u.eng.abort, fp, C.size_t(len(funcs)), ch, &cerr)
	if r == nil {
		return nil, errors.New("uc: cannot allocate a runner")
	}
	run := &Runner{u: u, r: r}
	if cerr != C.UC_ERR_OK {
		return run, fmt.Errorf("uc: runner hooks: %w", UcError(cerr))
	}
	return run, nil
}

// SetReturnTraps tells a chaining runner that a BRK was planted over a
// `RET X<reg>` at each of addrs (sorted): a chained run that traps there
// with X<reg> = its Until ends as that RET would have, with PC = Until and
// every other register as it is. The caller plants the BRKs, and keeps
// them only while it runs chained batches.
func (r *Runner) SetReturnTraps(addrs []uint64, reg int) error {
	if r == nil || r.r == nil {
		return ErrClosed
	}
	if reg < 0 || reg > 30 {
		return fmt.Errorf("uc: return trap register X%d", reg)
	}
	var p *C.uint64_t
	if len(addrs) > 0 {
		p = (*C.uint64_t)(unsafe.Pointer(&addrs[0]))
	}
	if C.ftp_runner_ret_traps(r.r, p, C.size_t(len(addrs)), C.int(reg)) == 0 {
		return errors.New("uc: cannot allocate return traps")
	}
	return nil
}

// Seeds returns the registers a seeded run of index starts with (X0-X29
// and NZCV; X30 and SP are the caller's): check.h's ftp_seed_regs.
func Seeds(seed, index uint64) (regs [BatchIn]uint64) {
	C.ftp_seed_regs(C.uint64_t(seed), C.uint64_t(index), (*C.uint64_t)(unsafe.Pointer(&regs[0])))
	return regs
}

// SetJudge sets the seed seeded runs draw their registers from, and the
// parent address (X30 on entry) a judged init or enabled run must pass on.
func (r *Runner) SetJudge(seed, sentinel uint64) {
	C.ftp_runner_judge(r.r, C.uint64_t(seed), C.uint64_t(sentinel))
}

// Watch has the watchdog stop a run of r that goes on for more than
// timeout (wall clock; Result.Stopped is StopTimeout) or uses more than
// slice of its thread's CPU (StopSlice); zero means no such limit. The
// watchdog is one thread in C for the process, which looks at the runners
// in a batch every few milliseconds (a quarter of the timeout, at least
// 0.5 ms, at most half the slice) and at nothing between batches: no Go
// timer wakes the Go scheduler while every worker is in C.
func (r *Runner) Watch(timeout, slice time.Duration) {
	if r == nil || r.r == nil {
		return
	}
	C.ftp_runner_watch(r.r, C.int64_t(timeout), C.int64_t(slice))
}

// Free releases the runner; its engine must be closed already.
func (r *Runner) Free() {
	if r == nil || r.r == nil {
		return
	}
	C.ftp_runner_free(r.r)
	r.r = nil
}

// Run runs runs in order into out (len(out) >= len(runs)), each under count
// instructions (0: no limit), dropping the translations of [Begin, Until+4)
// before each when flush is set. It stops after a run the watchdog stopped,
// and returns how many ran. When a Go hook panicked during run n-1, it
// returns n and a *HookPanicError.
//
// With chain (on a runner made with chain; count 0 and no flush, else
// chain is ignored), the word at each run's Until must be a BRK (the
// caller's to write and to restore): a run ends when it traps there, and
// the next starts from the trap, all in one uc_emu_start, which saves
// Unicorn's start and its invalidation of the stop address per run. A run
// that traps elsewhere ends with its PC there (not Until); one that traps
// on another exception ends with UC_ERR_EXCEPTION.
func (r *Runner) Run(runs []Run, out []Result, count uint64, flush, chain bool) (int, error) {
	if r == nil || r.r == nil {
		return 0, ErrClosed
	}
	if _, err := r.u.h(); err != nil {
		return 0, err
	}
	if len(runs) == 0 {
		return 0, nil
	}
	if len(out) < len(runs) {
		return 0, fmt.Errorf("uc: %d runs, room for %d results", len(runs), len(out))
	}
	defer runtime.KeepAlive(r.u)
	*r.u.eng.abort = 0
	r.u.eng.setPanic(nil)
	fl := C.int(0)
	if flush {
		fl = 1
	}
	ch := C.int(0)
	if chain {
		ch = 1
	}
	n := int(C.ftp_runner_batch(r.r, (*C.struct_ftp_run)(unsafe.Pointer(&runs[0])), (*C.struct_ftp_result)(unsafe.Pointer(&out[0])),
		C.int(len(runs)), C.uint64_t(count), fl, ch))
	if p := r.u.eng.takePanic(); p != nil {
		return n, p
	}
	return n, nil
}

// Poll reports how many runs have started, whether one is running, and the
// CPU time the thread running them has used (-1 when unknown).
func (r *Runner) Poll() (seq uint64, running bool, cpuNS int64) {
	var s C.uint64_t
	var on C.int
	var c C.int64_t
	C.ftp_runner_poll(r.r, &s, &on, &c)
	return uint64(s), on != 0, int64(c)
}

// Stop stops run seq (as Poll counts) if it is still running; its Result
// says why. No batch may start on r until Stop has returned.
func (r *Runner) Stop(seq uint64, why uint32) {
	C.ftp_runner_stop(r.r, C.uint64_t(seq), C.uint32_t(why))
}
