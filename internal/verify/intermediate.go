package verify

// This file runs the intermediate state of each two-write site change on
// the emulator: `ftpatch verify --against ORIG FILE` shows statically that
// every difference is an allowed write (against.go); here each site whose
// literal and slot2 both change is run as it is between the two writes
// (IntermediateWords) and must behave as the state it stands for — the old
// one for enable (literal first, ftrace_make_call), the new one for disable
// (BL removed first).
//
// The run uses ORIG's image: each intermediate is ORIG's words at the site
// with the first write applied. Sites are overlaid one at a time, each in
// the running engine's own copy of the regions holding sites (newEngineCOW),
// so no other site's run, and no other engine, ever sees the overlay; the
// image's shared bytes are written only before any engine exists, to check
// the overlaid site statically (checkStatic), and restored at once.
// Unicorn does not see writes made through the host pointer of a mapping,
// so the site's range leaves the translation cache before the run and again
// after the restore.

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/input"
)

// cowBudget bounds the bytes of private region copies all intermediate
// engines hold together: fewer workers rather than more memory.
const cowBudget = 1 << 30

// agMaxProblems is Against's default limit of problems kept, which the
// failures of intermediate runs respect too.
const agMaxProblems = 1000

// ovWrite is one write of an overlay: bytes at an emulated address.
type ovWrite struct {
	addr uint64
	b    []byte
}

// interJob is one intermediate state to run.
type interJob struct {
	check  int  // index in AgainstReport.Intermediates
	s      site // ORIG's site, with the state it must behave as
	ov     []ovWrite
	lo, hi uint64   // the site's range, for the translation cache
	disasm []string // the overlaid words, for failures
	fail   *Failure
}

// RunIntermediates runs the intermediate state of every site r lists in
// Intermediates on Unicorn's CPU, as Check runs sites, and records in each
// IntermediateCheck whether it behaved as the old state (enable) or the new
// one (disable). A state that does not is a problem of r naming the
// function, so r.Failed() reports it. opts are those of the verify run
// (trampoline, workers, seed, limits). Errors are for unreadable input.
func RunIntermediates(r *AgainstReport, opts Options) error {
	if len(r.Intermediates) == 0 {
		return nil
	}
	if opts.MaxInsns == 0 {
		opts.MaxInsns = 10000
	}
	if opts.Timeout == 0 {
		opts.Timeout = time.Second
	}
	oin, err := input.Open(r.Orig)
	if err != nil {
		return fmt.Errorf("file %s: %w", r.Orig, err)
	}
	defer oin.Close()
	of, err := elfscan.OpenELF(oin)
	if err != nil {
		return fmt.Errorf("file %s: %w", r.Orig, err)
	}
	osf, err := elfscan.Scan(oin, r.Orig)
	if err != nil {
		return fmt.Errorf("file %s: %w", r.Orig, err)
	}
	pin, err := input.Open(r.File)
	if err != nil {
		return fmt.Errorf("file %s: %w", r.File, err)
	}
	defer pin.Close()
	pf, err := elfscan.OpenELF(pin)
	if err != nil {
		return fmt.Errorf("file %s: %w", r.File, err)
	}
	psf, err := elfscan.Scan(pin, r.File)
	if err != nil {
		return fmt.Errorf("file %s: %w", r.File, err)
	}
	if of.Type != pf.Type {
		return nil // Against reported it; there is nothing to pair
	}

	// Pair the sites as Against does, and find each listed intermediate.
	type key struct {
		sec  string
		addr uint64
	}
	listed := make(map[key]int, len(r.Intermediates))
	for i, ic := range r.Intermediates {
		listed[key{ic.Section, uint64(ic.Address)}] = i
	}
	patched := make(map[agSiteKey]int, len(psf.Sites))
	for i := range psf.Sites {
		patched[agSiteKey{psf.Sites[i].SectionIndex, psf.Sites[i].Record}] = i
	}
	a := &against{of: of, pf: pf, pr: pin, rel: of.Type == elf.ET_REL}
	inters := make(map[int]Intermediate) // ORIG site index -> its intermediate
	checkOf := make(map[int]int)         // -> index in r.Intermediates
	likeState := make(map[int]elfscan.State)
	for i := range osf.Sites {
		o := &osf.Sites[i]
		k, ok := listed[key{o.Section, o.Entry}]
		if !ok {
			continue
		}
		pk, ok := patched[agSiteKey{o.SectionIndex, o.Record}]
		if !ok {
			continue
		}
		pv := a.patchedView(o, &psf.Sites[pk])
		if pv.CallSite != o.CallSite || pv.Layout != o.Layout || psf.Sites[pk].CallSite != o.CallSite || psf.Sites[pk].Layout != o.Layout {
			pv.State = elfscan.StateUnknown
		}
		if in, ok := IntermediateWords(*o, pv); ok {
			inters[i], checkOf[i], likeState[i] = in, k, pv.State
			if in.LikeOld {
				likeState[i] = o.State
			}
		}
	}
	for k := range r.Intermediates {
		r.Intermediates[k].Run = "not run: no site of the patched file pairs with it"
	}
	if len(inters) == 0 {
		return nil
	}

	img, err := LoadELF(of, oin, osf, opts)
	if err != nil {
		return fmt.Errorf("file %s: %w", r.Orig, err)
	}
	defer img.Close()
	classic := false
	for i := range osf.Sites {
		if osf.Sites[i].State == elfscan.StateEnabled {
			classic = osf.Sites[i].Layout == elfscan.LayoutClassic
			break
		}
	}

	// Build each job: overlay, static check, disassembly, all on the
	// image's bytes while no engine exists; then restore them.
	var jobs []*interJob
	cowAt := map[*region]bool{}
	for i := range osf.Sites {
		in, ok := inters[i]
		if !ok {
			continue
		}
		k := checkOf[i]
		base := &img.sites[i]
		st := *base.Site
		st.State = likeState[i]
		j := &interJob{check: k, s: *base}
		j.s.Site, j.s.static, j.s.op = &st, nil, 0
		j.lo, j.hi = j.s.entry, j.s.callSite+8
		if in.Order == OrderLiteralFirst {
			if j.s.literal != 0 {
				v := in.Words.Literal
				if img.rel != nil {
					v = img.relLiteral(in.Words)
				}
				j.ov = append(j.ov, ovWrite{j.s.literal, binary.LittleEndian.AppendUint64(nil, v)})
				j.lo = min(j.lo, j.s.literal)
			}
		} else {
			j.ov = append(j.ov,
				ovWrite{j.s.callSite - 4, binary.LittleEndian.AppendUint32(nil, in.Words.Slot1)},
				ovWrite{j.s.callSite, binary.LittleEndian.AppendUint32(nil, in.Words.Slot2)})
		}
		saved := make([][]byte, len(j.ov))
		for n, w := range j.ov {
			b := img.bytes(w.addr, uint64(len(w.b)))
			if b == nil {
				j.fail = &Failure{Expected: "site words in mapped memory", Observed: fmt.Sprintf("%#x unmapped", w.addr)}
				break
			}
			saved[n] = append([]byte(nil), b...)
			copy(b, w.b)
			cowAt[img.find(w.addr)] = true
		}
		if j.fail == nil {
			img.checkStatic(&j.s, classic, opts)
			j.fail = j.s.static
		}
		j.disasm = img.disasm(&j.s)
		for n, w := range j.ov {
			if saved[n] != nil {
				copy(img.bytes(w.addr, uint64(len(w.b))), saved[n])
			}
		}
		jobs = append(jobs, j)
	}

	var toRun []*interJob
	var cowBytes uint64
	for rg := range cowAt {
		cowBytes += rg.size
	}
	for _, j := range jobs {
		if j.fail == nil {
			toRun = append(toRun, j)
		}
	}
	if len(toRun) > 0 {
		if err := runInterJobs(img, toRun, opts, cowAt, cowBytes); err != nil {
			return fmt.Errorf("file %s: %w", r.Orig, err)
		}
	}

	// Report.
	for _, j := range jobs {
		ic := &r.Intermediates[j.check]
		like := j.s.State
		ic.Ran = true
		r.Counts.Ran++
		if j.fail == nil {
			ic.Behaves = true
			ic.Run = fmt.Sprintf("ran on the CPU: behaves as the %s state (%s)", ic.Like, like)
			continue
		}
		f := img.finish(&j.s, j.fail)
		f.Disasm = j.disasm
		ic.Run = fmt.Sprintf("ran on the CPU: does not behave as the %s state (%s): expected %s; observed %s", ic.Like, like, f.Expected, f.Observed)
		r.Counts.RunFailed++
		l := agLoc{section: ic.Section, addr: uint64(ic.Address), offset: uint64(ic.Address), fn: f.Func}
		if sec := j.s.SectionIndex; of.Type != elf.ET_REL && sec > 0 && sec < len(of.Sections) {
			l.offset = uint64(ic.Address) - of.Sections[sec].Addr
		}
		if j.s.Slot1Off != elfscan.NoOffset {
			l.fileOffset = j.s.Slot1Off
		}
		a.r, a.opts = r, AgainstOptions{MaxProblems: agMaxProblems}
		a.problem(l, fmt.Sprintf("intermediate state (%s, between the two writes) does not behave as the %s state %s: expected %s; observed %s; site: %s",
			ic.Order, ic.Like, like, f.Expected, f.Observed, joinDisasm(f.Disasm)))
		r.Counts.ProblemsKept = len(r.Problems)
	}
	r.LiveSafe = r.LiveSafe && !r.Failed()
	return nil
}

func joinDisasm(lines []string) string {
	out := ""
	for i, l := range lines {
		if i > 0 {
			out += "; "
		}
		out += l
	}
	return out
}

// relLiteral is the value an ET_REL literal takes in img's layout from the
// words' relocation: a symbol ORIG defines at its placed address, one it
// does not define (or the patched file added) bound to verify's stand-in
// op, as placeSite binds them; the op's own first word is relocated too.
func (img *Image) relLiteral(w SiteWords) uint64 {
	if w.Ops == nil {
		return w.Literal
	}
	rl := img.rel
	val := img.standinOps
	if i := w.Ops.SymIndex; i >= 1 && int(i) <= len(rl.syms) && rl.syms[i-1].Name == w.Ops.Sym {
		if v, _, def := rl.symbol(i); def {
			val = v
		}
	}
	val += w.Ops.Addr
	rl.relocOp(img, val)
	return val
}

// runInterJobs runs jobs on a pool of engines that each own a copy of the
// regions in cow, overlaying one site at a time.
func runInterJobs(img *Image, jobs []*interJob, opts Options, cow map[*region]bool, cowBytes uint64) error {
	workers := opts.Jobs
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	workers = max(1, min(workers, (len(jobs)+255)/256))
	if cowBytes > 0 {
		workers = max(1, min(workers, int(cowBudget/cowBytes)))
	}
	engines := make([]*engine, workers)
	for w := range engines {
		e, err := newEngineCOW(img, opts, func(r *region) bool { return cow[r] })
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
				n := int(next.Add(1)) - 1
				if n >= len(jobs) {
					return
				}
				j := jobs[n]
				j.fail = e.runOverlay(j)
				if opts.Progress != nil {
					opts.Progress(1)
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
