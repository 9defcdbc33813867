//go:build cgo

package verify

// The emulator side of verify, built only with cgo (the Unicorn binding
// needs it): engines, the pool that runs sites on them, the watchdog.
// nocgo.go stands in for it when cgo is off.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/verify/uc"
)

// Register slots in the batches: X0..X30, then SP, NZCV (written and read),
// then PC (read only).
const (
	rSP   = 31
	rNZCV = 32
	rPC   = 33
	nIn   = 33
	nOut  = 34
)

var batchRegs = func() []int {
	r := make([]int, 0, nOut)
	for i := 0; i <= 28; i++ {
		r = append(r, uc.ARM64_REG_X0+i)
	}
	return append(r, uc.ARM64_REG_X29, uc.ARM64_REG_X30, uc.ARM64_REG_SP, uc.ARM64_REG_NZCV, uc.ARM64_REG_PC)
}()

// engine is one worker's CPU with the image mapped once.
type engine struct {
	mu      uc.Unicorn
	img     *Image
	opts    uc.UcOptions
	seed    uint64
	in, out *uc.RegBatch
	args    *uc.RegBatch // X0..X3, X30 at op->func
	before  [nOut]uint64
	after   [nOut]uint64
	argv    [5]uint64

	calls    int
	callArgs [4]uint64
	// Entries into direct trampolines (direct.go).
	directHits          int
	directAt            uint64
	directX9, directX30 uint64
	// runEntry is where the current run starts; atEntry is true until its
	// first instruction: when op->func is itself a traced function, the
	// hook fires there, and that is the run starting, not a call.
	runEntry uint64
	atEntry  bool

	dirty bool // a run failed: translations may be stale (see run)

	// priv are the engine's own copies of some regions (newEngineCOW),
	// which it may overwrite; every other region is the image's, shared.
	priv []privRegion

	guard    sync.Mutex // with the watchdog
	running  bool
	started  time.Time
	timedOut bool
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
	mu, err := uc.NewUnicorn(uc.ARCH_ARM64, uc.MODE_ARM)
	if err != nil {
		return nil, fmt.Errorf("unicorn: %w", err)
	}
	e = &engine{mu: mu, img: img, seed: opts.Seed, opts: uc.UcOptions{Count: opts.MaxInsns}}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	for _, r := range img.regions {
		mem := r.mem
		if cow != nil && cow(r) {
			m, err := syscall.Mmap(-1, 0, int(r.size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
			if err != nil {
				return nil, fmt.Errorf("copying %s: %w", r.name, err)
			}
			copy(m, r.mem)
			e.priv = append(e.priv, privRegion{r.addr, m})
			mem = m
		}
		if err := mu.MemMapPtr(r.addr, r.size, r.prot, unsafe.Pointer(&mem[0])); err != nil {
			return nil, fmt.Errorf("mapping %s at %#x: %w", r.name, r.addr, err)
		}
	}
	if err := mu.MemMapProt(img.stackBase, stackSize, uc.PROT_READ|uc.PROT_WRITE); err != nil {
		return nil, fmt.Errorf("mapping the stack: %w", err)
	}
	if e.in, err = uc.NewRegBatch(batchRegs[:nIn]); err != nil {
		return nil, err
	}
	if e.out, err = uc.NewRegBatch(batchRegs); err != nil {
		return nil, err
	}
	if e.args, err = uc.NewRegBatch([]int{uc.ARM64_REG_X0, uc.ARM64_REG_X1, uc.ARM64_REG_X2, uc.ARM64_REG_X3, uc.ARM64_REG_X30}); err != nil {
		return nil, err
	}
	// Intercept op->func: a hook on each function's first word only; with
	// many distinct functions, one hook over their span.
	funcs := make([]uint64, 0, len(img.funcs))
	for f := range img.funcs {
		funcs = append(funcs, f)
	}
	sort.Slice(funcs, func(i, j int) bool { return funcs[i] < funcs[j] })
	if len(funcs) <= 256 {
		for _, f := range funcs {
			if _, err := mu.HookAdd(uc.HOOK_CODE, e.onFunc, f, f); err != nil {
				return nil, fmt.Errorf("hook at %#x: %w", f, err)
			}
		}
	} else if len(funcs) > 0 {
		if _, err := mu.HookAdd(uc.HOOK_CODE, e.onFunc, funcs[0], funcs[len(funcs)-1]); err != nil {
			return nil, fmt.Errorf("hook over %#x-%#x: %w", funcs[0], funcs[len(funcs)-1], err)
		}
	}
	for d := range img.directs {
		if _, err := mu.HookAdd(uc.HOOK_CODE, e.onDirect, d, d); err != nil {
			return nil, fmt.Errorf("hook at %#x: %w", d, err)
		}
	}
	return e, nil
}

// onFunc records a call of op->func and returns from it at once.
func (e *engine) onFunc(mu uc.Unicorn, addr uint64, _ uint32) {
	if !e.img.funcs[addr] {
		return
	}
	if e.atEntry {
		e.atEntry = false
		if addr == e.runEntry {
			return
		}
	}
	e.calls++
	if err := mu.ReadBatch(e.args, e.argv[:]); err != nil {
		mu.Stop()
		return
	}
	copy(e.callArgs[:], e.argv[:4])
	if err := mu.RegWrite(uc.ARM64_REG_PC, e.argv[4]); err != nil {
		mu.Stop()
	}
}

func (e *engine) close() {
	if e.mu != nil {
		e.mu.Close()
	}
	e.in.Free()
	e.out.Free()
	e.args.Free()
	for _, p := range e.priv { // after Close: Unicorn maps them until then
		syscall.Munmap(p.mem)
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

// seedRegs draws X0..X29 (distinct), NZCV, and sets X30 and SP.
func (e *engine) seedRegs(index int) {
	var p rand.PCG
	p.Seed(e.seed, uint64(index))
	for i := 0; i < 30; i++ {
	draw:
		v := p.Uint64() | 1<<63 // never a small value a stray MOV could produce
		for j := 0; j < i; j++ {
			if e.before[j] == v {
				goto draw
			}
		}
		e.before[i] = v
	}
	e.before[30] = e.img.sentinel
	e.before[rSP] = e.img.stackBase + stackSize/2
	e.before[rNZCV] = (p.Uint64() & 0xf) << 28
}

var regName = func() [nOut]string {
	var n [nOut]string
	for i := 0; i <= 30; i++ {
		n[i] = fmt.Sprintf("X%d", i)
	}
	n[rSP], n[rNZCV], n[rPC] = "SP", "NZCV", "PC"
	return n
}()

// run executes one site and returns its failure, if any. Unicorn bakes a
// run's stop address into the blocks it translates, and a failing run may
// have executed (translated) code outside its site; so once an engine has
// seen a failure, each later site's range is dropped from the translation
// cache before it runs (cheap; a full flush costs ~50 ms). A site's blocks
// are never reused anyway: each site runs once per engine.
func (e *engine) run(s *site) *Failure {
	if e.dirty {
		e.mu.TBRemoveCache(s.entry, s.callSite+8)
	}
	f := e.run1(s)
	if f != nil {
		e.dirty = true
	}
	return f
}

func (e *engine) run1(s *site) *Failure {
	e.seedRegs(s.index)
	if err := e.mu.WriteBatch(e.in, e.before[:]); err != nil {
		return &Failure{Expected: "registers set", Observed: err.Error()}
	}
	e.calls, e.directHits = 0, 0
	e.runEntry, e.atEntry = s.entry, true
	until := s.callSite + 4
	e.guard.Lock()
	e.running, e.started, e.timedOut = true, time.Now(), false
	e.guard.Unlock()
	err := e.mu.StartWithOptions(s.entry, until, &e.opts)
	e.guard.Lock()
	e.running = false
	timedOut := e.timedOut
	e.guard.Unlock()
	if rerr := e.mu.ReadBatch(e.out, e.after[:]); rerr != nil && err == nil {
		err = rerr
	}
	expect := "stop at " + fmt.Sprintf("%#x", until)
	var bug *uc.HookPanicError
	switch {
	case errors.As(err, &bug):
		return &Failure{Expected: expect, Observed: fmt.Sprintf("verify's own hook failed at pc %#x", e.after[rPC]), bug: err}
	case err != nil:
		return &Failure{Expected: expect, Observed: fmt.Sprintf("emulation error at pc %#x: %v", e.after[rPC], err)}
	case timedOut:
		return &Failure{Expected: expect, Observed: fmt.Sprintf("timed out at pc %#x", e.after[rPC])}
	case e.after[rPC] != until:
		return &Failure{Expected: expect, Observed: fmt.Sprintf("still running at pc %#x after the %d-instruction limit", e.after[rPC], e.opts.Count)}
	}
	if s.direct == 0 && e.directHits != 0 {
		return &Failure{Expected: "no direct trampoline (the op's direct_call is 0)", Observed: fmt.Sprintf("entered direct trampoline at %#x", e.directAt)}
	}
	switch s.State {
	case elfscan.StateNop:
		return e.check(s, "no call; every register unchanged", 0, func(r int) bool { return true })
	case elfscan.StateInit:
		if e.after[9] != e.img.sentinel {
			return &Failure{Expected: fmt.Sprintf("X9 = parent %#x", e.img.sentinel), Observed: fmt.Sprintf("X9 = %#x", e.after[9])}
		}
		return e.check(s, "no call; X9 = parent; every other register unchanged", 0, func(r int) bool { return r != 9 })
	case elfscan.StateEnabled:
		if s.direct != 0 {
			return e.checkDirectRun(s)
		}
		return e.check(s, "one call of op->func; X0-X8, X19-X29, SP, X30 unchanged", 1, func(r int) bool {
			return r <= 8 || (r >= 19 && r <= 30) || r == rSP
		})
	}
	return &Failure{Expected: "a known state", Observed: string(s.State)}
}

// check compares calls and the registers kept(r) says must be unchanged.
func (e *engine) check(s *site, expected string, calls int, kept func(r int) bool) *Failure {
	if e.calls != calls {
		return &Failure{Expected: expected, Observed: fmt.Sprintf("%d calls of op->func", e.calls)}
	}
	if calls == 1 {
		want := [3]uint64{s.callSite, e.img.sentinel, s.op}
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
		if kept(r) && e.after[r] != e.before[r] {
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

// runPool runs do(e, k) for k in [0, n) on a pool of engines over img, one
// goroutine each, handing out chunk indices at a time, with a watchdog
// that stops a run exceeding opts.Timeout. Workers: opts.Jobs (default
// runtime.NumCPU()), no more than one per 256 jobs, and at most limit when
// limit > 0. cow selects the regions each engine copies (newEngineCOW).
// Check and RunIntermediates both run on it; do must not render failures
// (disassembly is done after the pool returns) and must not call t.Fatal.
func runPool(img *Image, opts Options, limit int, cow func(*region) bool, n, chunk int, do func(e *engine, k int)) error {
	workers := opts.Jobs
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	workers = max(1, min(workers, (n+255)/256))
	if limit > 0 {
		workers = min(workers, limit)
	}
	chunk = max(chunk, 1)
	engines := make([]*engine, workers)
	for w := range engines {
		e, err := newEngineCOW(img, opts, cow)
		if err != nil {
			for _, e := range engines[:w] {
				e.close()
			}
			return err
		}
		engines[w] = e
	}
	stop := make(chan struct{})
	go watchdog(engines, opts.Timeout, stop)
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo := int(next.Add(int64(chunk))) - chunk
				if lo >= n {
					return
				}
				hi := min(lo+chunk, n)
				for k := lo; k < hi; k++ {
					do(e, k)
				}
				if opts.Progress != nil {
					opts.Progress(hi - lo)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	for _, e := range engines {
		e.close()
	}
	return nil
}

// watchdog stops a run that exceeds timeout. Instruction limits end loops;
// this ends anything else, without the timer thread Unicorn would start
// for every run given a timeout (~100 µs each).
func watchdog(engines []*engine, timeout time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(max(timeout/4, 5*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			for _, e := range engines {
				e.guard.Lock()
				if e.running && now.Sub(e.started) > timeout {
					e.timedOut = true
					e.mu.Stop()
				}
				e.guard.Unlock()
			}
		}
	}
}

// runOverlay runs j's site with its overlay written in the engine's own
// copy, then restores the image's bytes. The site's range leaves the
// translation cache both before the run (blocks translated from the image's
// words) and after the restore (blocks translated from the overlay).
func (e *engine) runOverlay(j *interJob) *Failure {
	for _, w := range j.ov {
		b := e.private(w.addr, uint64(len(w.b)))
		if b == nil {
			return &Failure{Expected: "site words in a private copy", Observed: fmt.Sprintf("%#x not copied", w.addr)}
		}
		copy(b, w.b)
	}
	e.mu.TBRemoveCache(j.lo, j.hi)
	f := e.run(&j.s)
	for _, w := range j.ov {
		copy(e.private(w.addr, uint64(len(w.b))), e.img.bytes(w.addr, uint64(len(w.b))))
	}
	e.mu.TBRemoveCache(j.lo, j.hi)
	return f
}
