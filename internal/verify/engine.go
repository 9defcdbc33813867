// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package verify

// The emulator side of verify, built only with cgo (the Unicorn binding
// needs it): engines, and the pool that runs sites on them. The watchdog
// that stops a run going on too long is the runner's, in C (uc.Runner.Watch).
// nocgo.go stands in for it when cgo is off.

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/verify/uc"
)

// Register slots of a run (uc.Run, uc.Result): X0..X30, then SP, NZCV
// (written and read), then PC (read only).
const (
	rSP   = uc.BatchSP
	rNZCV = uc.BatchNZCV
	rPC   = uc.BatchPC
	nIn   = uc.BatchIn
	nOut  = uc.BatchOut
)

// batchSites is how many sites an engine runs per call into C: Check's
// chunk of sites, in one call. Each return from a call into C that took a
// while costs the Go scheduler a handoff (sysmon retakes the worker's P
// after 20 µs in C).
const batchSites = 512

// slice is the CPU time a run may take on the fast path (no instruction
// count) before the watchdog stops it and it runs again on the budget
// path; a site's run takes microseconds. The watchdog ticks at half of it
// (uc.Runner.Watch); a looping site costs at most two slices (retry)
// before the budget engine, maxSliced of them on each engine.
const slice = 10 * time.Millisecond

// maxSliced is how many runs of an engine may be stopped at slice before
// it sends every later site straight to its budget engine: a file full of
// looping sites then costs what it cost when every run counted
// instructions, not a slice each.
const maxSliced = 8

// engine is one worker's CPU with the image mapped once.
//
// Sites run in batches, many per call into C (uc.Runner), with no
// instruction count: counting instructions costs a hook call on each. A
// run that does not end at its stop address, fails in the emulator, or
// uses more CPU than slice (the watchdog stops it) runs again on the
// budget engine, which counts instructions (opts.MaxInsns) as every run
// once did, so what such a run reports is what it always reported.
type engine struct {
	mu     uc.Unicorn
	runner *uc.Runner
	img    *Image
	count  uint64      // instruction limit of each run: 0 on the fast path
	runs   []uc.Run    // a batch's runs and results: made by the first batch,
	res    []uc.Result // handed on by recycle
	before [nIn]uint64
	after  [nOut]uint64

	calls    int
	callArgs [4]uint64
	// Entries into direct trampolines during the current run (direct.go;
	// runSites runs one site at a time when the image has any).
	directHits          int
	directAt            uint64
	directX9, directX30 uint64

	ran     int        // sites run (see recycleSites)
	ss      []*site    // runRange's, reused
	fs      []*Failure // runRange's, reused
	dirty   bool       // a run failed: translations may be stale (see run)
	goJudge bool       // tests: every run judged in Go, none in C (setRun)
	sliced  int        // runs stopped at slice (see maxSliced)

	// priv are the engine's own copies of some regions (newEngineCOW),
	// which it may overwrite; every other region is the image's, shared.
	priv  []privRegion
	owned bool // priv is this engine's to unmap (a budget engine shares its parent's)

	opts    Options
	budget  atomic.Pointer[engine] // made on first need (budgetEngine)
	overlay *interJob              // the job runOverlay is running, if any
}

// privRegion is an engine's private copy of a region's bytes.
type privRegion struct {
	addr uint64
	mem  []byte
}

func newEngine(img *Image, opts Options) (e *engine, err error) {
	return newEngineCOW(img, opts, nil)
}

// newEngineCOW is newEngine with the regions for which cow returns true
// mapped from a private copy of the image's bytes, made now: the engine may
// overwrite them (see engine.overlay) without any other engine, or the
// image, seeing it. cow nil copies nothing.
func newEngineCOW(img *Image, opts Options, cow func(*region) bool) (e *engine, err error) {
	return newEngineOver(img, opts, 0, func(r *region) ([]byte, error) {
		if cow == nil || !cow(r) {
			return r.mem, nil
		}
		m, err := syscall.Mmap(-1, 0, int(r.size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			return nil, fmt.Errorf("copying %s: %w", r.name, err)
		}
		copy(m, r.mem)
		e.priv = append(e.priv, privRegion{r.addr, m})
		return m, nil
	}, &e)
}

// newEngineOver makes an engine whose runs count instructions up to count
// (0: none), mapping each region from the bytes mem returns; *ep is the
// engine while mem runs.
func newEngineOver(img *Image, opts Options, count uint64, mem func(*region) ([]byte, error), ep **engine) (e *engine, err error) {
	mu, err := uc.NewUnicorn(uc.ARCH_ARM64, uc.MODE_ARM)
	if err != nil {
		return nil, fmt.Errorf("unicorn: %w", err)
	}
	e = &engine{mu: mu, img: img, opts: opts, count: count, owned: true, goJudge: opts.goJudge}
	*ep = e
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	// The stack first: see stackSize.
	if err := mu.MemMapProt(img.stackBase, stackSize, uc.PROT_READ|uc.PROT_WRITE); err != nil {
		return nil, fmt.Errorf("mapping the stack: %w", err)
	}
	for _, r := range img.regions {
		m, err := mem(r)
		if err != nil {
			return nil, err
		}
		if err := mu.MemMapPtr(r.addr, r.size, r.prot, unsafe.Pointer(&m[0])); err != nil {
			return nil, fmt.Errorf("mapping %s at %#x: %w", r.name, r.addr, err)
		}
	}
	// Intercept op->func: the runner's hook in C, on each function's first
	// word (or their span, when many).
	funcs := make([]uint64, 0, len(img.funcs))
	for f := range img.funcs {
		funcs = append(funcs, f)
	}
	slices.Sort(funcs)
	if e.runner, err = uc.NewRunner(mu, funcs, count == 0); err != nil {
		return nil, fmt.Errorf("op->func hooks: %w", err)
	}
	e.runner.SetJudge(opts.Seed, img.sentinel)
	if count == 0 {
		e.runner.Watch(opts.Timeout, slice)
	} else {
		e.runner.Watch(opts.Timeout, 0) // its instruction count ends a loop
	}
	if st := img.stops; st != nil && count == 0 {
		if err := e.runner.SetReturnTraps(st.retTraps, 9); err != nil {
			return nil, err
		}
	}
	for d := range img.directs {
		if _, err := mu.HookAdd(uc.HOOK_CODE, e.onDirect, d, d); err != nil {
			return nil, fmt.Errorf("hook at %#x: %w", d, err)
		}
	}
	return e, nil
}

// budgetEngine returns the engine that runs e's sites again counting
// instructions, made on first use: it maps what e maps (e's private copies
// included, so it sees e's overlays), except the BRKs of chained runs.
func (e *engine) budgetEngine() (*engine, error) {
	if b := e.budget.Load(); b != nil {
		return b, nil
	}
	var b *engine
	_, err := newEngineOver(e.img, e.opts, e.opts.MaxInsns, func(r *region) ([]byte, error) {
		if p := e.private(r.addr, r.size); p != nil {
			return p, nil
		}
		if st := e.img.stops; st != nil {
			return st.pristine(r) // without the BRKs of chained runs
		}
		return r.mem, nil
	}, &b)
	if err != nil {
		return nil, err
	}
	b.priv, b.owned = e.priv, false
	b.dirty = true // it runs only sites that went wrong: drop what they translated
	e.budget.Store(b)
	return b, nil
}

// close closes e and its budget engine; neither may be running a batch.
func (e *engine) close() {
	if b := e.budget.Load(); b != nil {
		b.close()
	}
	if e.mu != nil {
		e.mu.Close()
	}
	e.runner.Free() // after Close: the engine's hooks point at it
	if e.owned {
		for _, p := range e.priv { // after Close: Unicorn maps them until then
			syscall.Munmap(p.mem)
		}
	}
	e.priv = nil
}

// private returns the n bytes at addr in the engine's own copy of a region,
// or nil when they are not all in one.
func (e *engine) private(addr, n uint64) []byte {
	for _, p := range e.priv {
		if addr >= p.addr && addr+n >= addr && addr+n <= p.addr+uint64(len(p.mem)) {
			return p.mem[addr-p.addr : addr-p.addr+n]
		}
	}
	return nil
}

// setRun makes r the run of s: from its entry to its stop address, its
// registers drawn in C from (seed, site index) (X30 the parent, SP on the
// engine's stack), and, but for sites with direct trampolines (whose hook
// counts in Go), judged in C by what s's state requires: a run the C side
// passes needs nothing more from Go (check.h is the one copy of the rule,
// failure the words for a run it fails).
func (e *engine) setRun(s *site, r *uc.Run) {
	r.Begin, r.Until, r.CallSite, r.Op = s.entry(), s.callSite()+4, s.callSite(), s.op
	r.Index, r.Seed, r.Judge = uint64(s.index), 1, uc.JudgeNone
	r.Regs[30] = e.img.sentinel
	r.Regs[rSP] = e.img.stackBase + stackSize/2
	if e.img.directs != nil || e.goJudge {
		return
	}
	switch s.State {
	case elfscan.StateNop:
		r.Judge = uc.JudgeNop
	case elfscan.StateInit:
		r.Judge = uc.JudgeInit
	case elfscan.StateEnabled:
		if s.direct == 0 {
			r.Judge = uc.JudgeEnabled
		}
	}
}

var regName = func() [nOut]string {
	var n [nOut]string
	for i := 0; i <= 30; i++ {
		n[i] = fmt.Sprintf("X%d", i)
	}
	n[rSP], n[rNZCV], n[rPC] = "SP", "NZCV", "PC"
	return n
}()

// runRange runs the sites of img.sites[lo:hi] that run (not skipped, no
// static failure) and returns their failures in site order.
func (e *engine) runRange(lo, hi int) []siteFailure {
	e.ss, e.fs = e.ss[:0], e.fs[:0]
	for i := lo; i < hi; i++ {
		if s := &e.img.sites[i]; !s.skip && s.static == nil {
			e.ss = append(e.ss, s)
			e.fs = append(e.fs, nil)
		}
	}
	e.runSites(e.ss, e.fs)
	var out []siteFailure
	for k, f := range e.fs {
		if f != nil {
			out = append(out, siteFailure{int(e.ss[k].index), f})
		}
	}
	return out
}

// forgetHookCounts clears what the Go hooks count during a run (the
// direct-trampoline hook counts per engine, not per run), before a run
// that is judged by them: a direct site's own, or its retry (retry).
func (e *engine) forgetHookCounts() { e.directHits = 0 }

// run executes one site and returns its failure, if any.
func (e *engine) run(s *site) *Failure {
	var f [1]*Failure
	e.runSites([]*site{s}, f[:])
	return f[0]
}

// runSites runs ss, batchSites per call into C, and sets fails[i] to the
// failure of ss[i] (nil when it behaved). Unicorn bakes a run's stop
// address into the blocks it translates, and a failing run may have
// executed (translated) code outside its site; so once an engine has seen
// a failure, each later site's range is dropped from the translation cache
// before it runs (cheap; a full flush costs ~50 ms), and the sites of the
// batch after the failure run again that way (unchained: a flushed batch
// runs with stop addresses). A site's blocks are never reused anyway: each
// site runs once per engine. Chained runs (chained) bake no stop address,
// so their failures flush nothing.
func (e *engine) runSites(ss []*site, fails []*Failure) {
	if e.sliced >= maxSliced {
		e.runOnBudget(ss, fails)
		return
	}
	if e.img.directs != nil {
		// The direct-trampoline hook counts per engine, not per run: one
		// site per batch, counters cleared before it.
		if len(ss) > 1 {
			for i := range ss {
				e.runSites(ss[i:i+1], fails[i:i+1])
			}
			return
		}
		e.forgetHookCounts()
	}
	for i := 0; i < len(ss); {
		done := e.runBatch(ss[i:], fails[i:])
		if done == 0 { // cannot happen: the runner runs at least one
			for k := i; k < len(ss); k++ {
				fails[k] = &Failure{Expected: "a run", Observed: "the emulator ran nothing", bug: errors.New("verify: runner ran no site")}
			}
			return
		}
		i += done
	}
}

// runOnBudget runs ss on the budget engine, once too many runs of e were
// sliced.
func (e *engine) runOnBudget(ss []*site, fails []*Failure) {
	b, err := e.budgetEngine()
	if err != nil {
		for i := range fails {
			fails[i] = &Failure{Expected: "a run counting instructions", Observed: err.Error(), bug: err}
		}
		return
	}
	b.runSites(ss, fails)
}

// runBatch runs the first sites of ss as one batch: sites that all run
// chained (their stop addresses hold a BRK: see stopSet), or all not. It
// returns how many sites it settled in fails.
func (e *engine) runBatch(ss []*site, fails []*Failure) int {
	if e.runs == nil {
		e.runs, e.res = make([]uc.Run, batchSites), make([]uc.Result, batchSites)
	}
	chain := e.chained(ss[0])
	n := 1
	for max := min(len(ss), len(e.runs)); n < max && e.chained(ss[n]) == chain; n++ {
	}
	for k := range n {
		e.setRun(ss[k], &e.runs[k])
	}
	dirty := e.dirty
	got, err := e.runner.Run(e.runs[:n], e.res[:n], e.count, dirty, chain)
	return e.settle(ss, fails, got, err, chain, dirty)
}

// settle judges the got runs of a batch (err: the last one's), and
// returns how many of them stand: after the first that leaves the
// translation cache dirty (dirty: it was clean before the batch), the rest
// ran before the cache was cleaned and run again.
func (e *engine) settle(ss []*site, fails []*Failure, got int, err error, chain, dirty bool) int {
	for k := range got {
		if e.res[k].Passed != 0 && (k < got-1 || err == nil) {
			fails[k] = nil
			continue
		}
		var f *Failure
		if k == got-1 && err != nil {
			f = e.failure(ss[k], &e.runs[k], &e.res[k], err)
		} else {
			f = e.judge(ss[k], &e.runs[k], &e.res[k])
		}
		fails[k] = f
		res := &e.res[k]
		if res.Stopped == uc.StopSlice {
			e.sliced++
		}
		// A chained run bakes no stop address into what it
		// translates (it stops at a BRK, there in memory for
		// the whole pool): its failure leaves nothing stale.
		if !chain && (f != nil || res.Err != 0 || res.Stopped != 0 || res.Regs[rPC] != e.runs[k].Until) {
			e.dirty = true
		}
		if e.dirty && !dirty {
			return k + 1 // the rest ran before the cache was cleaned
		}
	}
	return got
}

// chained reports whether s runs chained on e: its stop address holds a
// BRK (Check's stopSet), and e is a fast engine mapping the image's bytes
// (an engine with private copies runs overlays, which have no BRKs).
func (e *engine) chained(s *site) bool {
	st := e.img.stops
	i := int(s.index)
	return st != nil && e.count == 0 && e.priv == nil && i >= 0 && i < len(st.chained) &&
		st.chained[i] && &e.img.sites[i] == s
}

// judge is the failure of the run of s, or nil. A run that did not end
// normally runs again on the budget engine, which reports it.
func (e *engine) judge(s *site, run *uc.Run, res *uc.Result) *Failure {
	if e.count == 0 && res.Stopped == uc.StopSlice {
		e.retry(s, run, res)
	}
	if e.count == 0 && (res.Err != 0 || res.Stopped != 0 || res.Regs[rPC] != run.Until) {
		b, err := e.budgetEngine()
		if err != nil {
			return &Failure{Expected: "a run counting instructions", Observed: err.Error(), bug: err}
		}
		if e.overlay != nil {
			b.mu.TBRemoveCache(e.overlay.lo, e.overlay.hi)
		}
		return b.run(s)
	}
	return e.failure(s, run, res, nil)
}

// retry runs s once more on the fast path after its run was stopped at
// its slice, and puts the new run's result in res: a run of a few
// microseconds goes over a 2 ms slice when the machine is loaded, or when
// the emulator does its own occasional work on the way (growing its
// hash table of translated blocks takes milliseconds), and such a site
// need not cost the budget engine (a second engine and a copy of the
// image's regions). A run stopped at its slice again counts towards
// maxSliced as before. What the Go hooks counted during the stopped run is
// forgotten first: a direct site's stopped run may have entered its direct
// trampoline already, and counted with the retry's entry it failed as two
// (seen on the cloud 6.12 vmlinux with every site through ftrace_caller's
// direct path, one site in a few runs in a slow hour).
func (e *engine) retry(s *site, run *uc.Run, res *uc.Result) {
	e.forgetHookCounts()
	var again [1]uc.Result
	got, err := e.runner.Run(unsafe.Slice(run, 1), again[:], 0, e.dirty, e.chained(s))
	if got == 1 && err == nil {
		*res = again[0]
	}
}

// failure judges a run: its error (hookErr: a Go hook panicked), how it
// stopped, then the site's state's expectations.
func (e *engine) failure(s *site, run *uc.Run, res *uc.Result, hookErr error) *Failure {
	e.before = run.Regs
	e.after = res.Regs
	e.calls = int(res.Calls)
	e.callArgs = res.Args
	err := hookErr
	if err == nil {
		err = res.Error()
	}
	until := run.Until
	expect := func() string { return fmt.Sprintf("stop at %#x", until) }
	var bug *uc.HookPanicError
	switch {
	case errors.As(err, &bug):
		return &Failure{Expected: expect(), Observed: fmt.Sprintf("verify's own hook failed at pc %#x", e.after[rPC]), bug: err}
	case err != nil:
		return &Failure{Expected: expect(), Observed: fmt.Sprintf("emulation error at pc %#x: %v", e.after[rPC], err)}
	case res.Stopped != 0:
		return &Failure{Expected: expect(), Observed: fmt.Sprintf("timed out at pc %#x", e.after[rPC])}
	case e.after[rPC] != until:
		return &Failure{Expected: expect(), Observed: fmt.Sprintf("still running at pc %#x after the %d-instruction limit", e.after[rPC], e.count)}
	}
	if s.direct == 0 && e.directHits != 0 {
		return &Failure{Expected: "no direct trampoline (the op's direct_call is 0)", Observed: fmt.Sprintf("entered direct trampoline at %#x", e.directAt)}
	}
	switch s.State {
	case elfscan.StateNop:
		return e.check(s, "no call; every register unchanged", 0, allRegs)
	case elfscan.StateInit:
		if e.after[9] != e.img.sentinel {
			return &Failure{Expected: fmt.Sprintf("X9 = parent %#x", e.img.sentinel), Observed: fmt.Sprintf("X9 = %#x", e.after[9])}
		}
		return e.check(s, "no call; X9 = parent; every other register unchanged", 0, allRegs&^(1<<9))
	case elfscan.StateEnabled:
		if s.direct != 0 {
			return e.checkDirectRun(s)
		}
		return e.check(s, "one call of op->func; X0-X8, X19-X29, SP, X30 unchanged", 1, callerKept)
	}
	return &Failure{Expected: "a known state", Observed: s.State.String()}
}

// regMask is a set of register slots: bit r is slot r of uc.Run.Regs.
type regMask uint64

const (
	// allRegs is every slot a run sets: X0-X30, SP, NZCV.
	allRegs regMask = 1<<rPC - 1
	// callerKept is what a call through a trampoline gives back as it
	// was: X0-X8, X19-X30 and SP.
	callerKept regMask = 1<<9 - 1 | (1<<31-1)&^(1<<19-1) | 1<<rSP
)

// check compares calls and the registers in kept, which must be unchanged.
func (e *engine) check(s *site, expected string, calls int, kept regMask) *Failure {
	if e.calls != calls {
		return &Failure{Expected: expected, Observed: fmt.Sprintf("%d calls of op->func", e.calls)}
	}
	if calls == 1 {
		want := [3]uint64{s.callSite(), e.img.sentinel, s.op}
		names := [3]string{"ip", "parent_ip", "op"}
		for i, w := range want {
			if e.callArgs[i] != w {
				return &Failure{
					Expected: fmt.Sprintf("op->func(ip=%#x, parent_ip=%#x, op=%#x)", want[0], want[1], want[2]),
					Observed: fmt.Sprintf("op->func(ip=%#x, parent_ip=%#x, op=%#x): wrong %s", e.callArgs[0], e.callArgs[1], e.callArgs[2], names[i]),
				}
			}
		}
	}
	var diffs []string
	for r := 0; r < rPC; r++ {
		if kept&(1<<r) != 0 && e.after[r] != e.before[r] {
			diffs = append(diffs, fmt.Sprintf("%s = %#x (was %#x)", regName[r], e.after[r], e.before[r]))
		}
	}
	if len(diffs) > 0 {
		return &Failure{Expected: expected, Observed: strings.Join(diffs, ", ")}
	}
	return nil
}

// EmulatorBuilt reports whether this build has the emulator: it has.
func EmulatorBuilt() error { return nil }

// Preload loads the emulator's library on a goroutine of its own, for a
// caller about to load an image: Check's first engine then finds it loaded
// instead of loading it on the way to the first run.
func Preload() { go uc.Preload() }

// runPool runs do(e, lo, hi) for the jobs [lo, hi) of [0, n) on a pool
// of engines over img, one goroutine each, handing out chunk indices at a
// time; each engine's watchdog stops a run exceeding opts.Timeout (and, on
// the fast path, slice). Workers: opts.Jobs (default runtime.NumCPU()), no
// more than one per 256 jobs, and at most limit when limit > 0. cow selects
// the regions each engine copies (newEngineCOW). Check and
// RunIntermediates both run on it; do must not render failures
// (disassembly is done after the pool returns) and must not call t.Fatal.
func runPool(img *Image, opts Options, limit int, cow func(*region) bool, n, chunk int, do func(e *engine, lo, hi int)) error {
	workers := max(1, min(opts.Jobs, (n+255)/256)) // opts.withDefaults: Jobs > 0
	if limit > 0 {
		workers = min(workers, limit)
	}
	chunk = max(chunk, 1)
	engines := make([]*engine, workers) // each worker's, closed at the end
	var next atomic.Int64
	var failed atomic.Pointer[error] // an engine could not be made: every worker stops
	var wg sync.WaitGroup
	for w := range engines {
		wg.Go(func() {
			// Each worker makes its engine (the engines are made at once)
			// on a thread of its own: Unicorn's allocations stay in one
			// malloc arena, where a recycled engine finds the memory its
			// predecessor freed, already faulted in.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			e, err := newEngineCOW(img, opts, cow)
			if err != nil {
				failed.CompareAndSwap(nil, &err)
				return
			}
			engines[w] = e
			for failed.Load() == nil {
				lo := int(next.Add(int64(chunk))) - chunk
				if lo >= n {
					return
				}
				hi := min(lo+chunk, n)
				do(e, lo, hi)
				yieldUnlocked()
				if opts.Progress != nil {
					opts.Progress(hi - lo)
				}
				if e.ran += hi - lo; cow == nil && e.ran >= opts.recycleAfter() && hi < n {
					if e, err = e.recycle(img, opts); err != nil {
						failed.CompareAndSwap(nil, &err)
					}
					engines[w] = e
				}
			}
		})
	}
	wg.Wait()
	for _, e := range engines {
		if e != nil {
			e.close()
		}
	}
	if err := failed.Load(); err != nil {
		return *err
	}
	return nil
}

// yieldUnlocked lets the scheduler run between a worker's chunks.
//
// A chunk is one long call into C, and a goroutine that never reschedules
// looks to the runtime's monitor (sysmon) like one running for over 10 ms:
// it takes the worker's P during the call and keeps waking every 20 µs,
// preempting the engines on a busy machine. Yielding between chunks lets it
// back off: verify of a 6.12 cloud vmlinux made ~650 context switches
// instead of ~1,170 and ~220 sysmon sleeps instead of ~560 (medians of 13);
// its cpu, 0.96x (nop) and 0.99x (enabled), medians of 31 and 21 interleaved
// pairs on a noisy host.
//
// It yields unlocked: a locked goroutine's yield hands its P to another
// thread, wakes it, and sleeps until that thread hands the P back
// (stoplockedm, startlockedm: futex calls on both sides). Unlocked, the same
// thread runs it again at once, and relocks; Unicorn keeps no state in its
// threads (libunicorn 2.0.1's only TLS is a random seed), so an engine that
// moved would still run. verify --json of the 53k-site nop bench image:
// 1,073 -> 260 context switches, 565 -> 140 futex calls; perf, 12 runs at 10
// kHz: the scheduler's samples 463 -> 175, sysmon's 237 -> 178. Its cpu is
// within the host's noise (0.966x, 0.990x on the cloud vmlinux, 1.011x: 21,
// 41 and 41 interleaved pairs).
func yieldUnlocked() {
	runtime.UnlockOSThread()
	runtime.Gosched()
	runtime.LockOSThread()
}

// recycleSites is how many sites an engine runs before runPool replaces it
// with a new one (an engine with private copies of regions, running
// overlays, is kept). Unicorn never frees what it translated: each site
// leaves a block in the code buffer and in the hash table of blocks, which
// grows by doubling (qht_grow_maybe: new buckets, every block rehashed, a
// few milliseconds inside one run, and fresh pages). A new engine every
// 8,192 sites keeps both small: the floor, which recycles alike, used 9%
// less cpu, 28% fewer page faults and 39 instead of 21 MiB on the 53k-site
// nop bench image (-j1, 5 interleaved runs).
const recycleSites = 8192

func (o Options) recycleAfter() int {
	if o.recycle > 0 {
		return o.recycle
	}
	return recycleSites
}

// recycle closes e and returns the new engine that replaces it, made once
// e is closed: it then gets the memory its predecessor freed, already in
// the hypervisor's hands (Unicorn's tables, the translation buffer's huge
// pages), as the floor's engines do. Made first, each new engine faulted in
// memory of its own: verify --json of the 53k-site nop bench image cost
// 7% more cpu with -j 2 (316 against 293 ms) and 3% more with -j 1 (21
// interleaved pairs). It returns nil when no new engine can be made: the
// worker stops.
func (e *engine) recycle(img *Image, opts Options) (*engine, error) {
	e.close()
	if opts.recycleErr != nil {
		return nil, opts.recycleErr
	}
	ne, err := newEngineCOW(img, opts, nil)
	if err != nil {
		return nil, err
	}
	ne.sliced = e.sliced
	// The batch arrays go to the new engine (~330 KiB, fresh memory for
	// each new engine otherwise).
	ne.runs, ne.res, ne.ss, ne.fs = e.runs, e.res, e.ss, e.fs
	return ne, nil
}

// runOverlay runs j's site with its overlay written in the engine's own
// copy, then restores the image's bytes. The site's range leaves the
// translation cache both before the run (blocks translated from the image's
// words) and after the restore (blocks translated from the overlay), on the
// budget engine too when the site went there.
func (e *engine) runOverlay(j *interJob) *Failure {
	for _, w := range j.ov {
		b := e.private(w.addr, uint64(len(w.b)))
		if b == nil {
			return &Failure{Expected: "site words in a private copy", Observed: fmt.Sprintf("%#x not copied", w.addr)}
		}
		copy(b, w.b)
	}
	e.mu.TBRemoveCache(j.lo, j.hi)
	e.overlay = j
	f := e.run(&j.s)
	e.overlay = nil
	for _, w := range j.ov {
		copy(e.private(w.addr, uint64(len(w.b))), e.img.bytes(w.addr, uint64(len(w.b))))
	}
	e.mu.TBRemoveCache(j.lo, j.hi)
	if b := e.budget.Load(); b != nil {
		b.mu.TBRemoveCache(j.lo, j.hi)
	}
	return f
}
