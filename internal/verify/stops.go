// SPDX-License-Identifier: Apache-2.0

package verify

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"sync"
	"syscall"
	"unsafe"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/verify/uc"
)

// stopBRK is the word Check plants at the stop address of each site it
// runs chained (uc.Runner.Run with chain): the run traps there, and the
// next one starts from the trap without a uc_emu_start of its own. Its
// imm16 means nothing; any value would do.
var stopBRK, _ = encode.BRK{Imm16: 0xf7a5}.Encode()

// stopSet is the BRKs planted in an image's (shared) bytes for one Check,
// with the words they replaced. While it is planted, every fast engine of
// the pool sees the BRKs; budget engines, which judge a run that went
// wrong, map a pristine copy instead (pristine), so what they report is
// what the image holds.
//
// A BRK changes what a run reads only at its address. It is planted where
// no run that passes reads data, or needs its own words: never on a word
// of an enabled site's literal or of its op's first word (op->func), nor
// on the trampoline entries verify redirects. A run that executes
// another site's BRK traps away from its own stop address: it fails on the
// fast path and runs again on its budget engine, without BRKs.
type stopSet struct {
	img *Image
	// chained is, by site index, whether the site's run ends at a trap: a
	// BRK at its stop address (nop and init sites), or the return trap of
	// the tool's trampoline (enabled sites: with no BRK at their stop
	// address, a run that does not return through the trampoline goes on
	// past it, fails on the fast path and runs again on the budget engine).
	chained []bool
	// stops are the nop and init sites given a stop, by index, in address
	// order, addrs their stop addresses and words what was at each: a
	// site's stop took a BRK when the site is chained (for one site, all
	// its entries alike; see plant). 16 bytes a stop: an address and a
	// word each, kept twice (the stops to plant, the words planted), were
	// 32, 0.85 MB more fresh memory on the 53k-site bench image; the
	// address looked up from the site's instead cost more cpu than that
	// saved (perf: plantAll's loads of each site, between its copies).
	stops []int32
	addrs []uint64
	words []uint32
	// retTraps are the tool's trampolines' `RET X9` words, also under a
	// BRK: a run returning from the trampoline into its function
	// (X9 = its stop address) ends there, as the RET would have, without
	// translating a block at its stop address (uc.Runner.SetReturnTraps).
	// retWords are the words they replaced, in planting order.
	retTraps []uint64
	retWords []plantAt

	once  sync.Once
	clean map[*region][]byte // pristine copies, made on first need
	err   error
}

type plantAt struct {
	addr uint64
	word uint32 // the image's own word there
}

// plantStops plants a BRK at the stop address (CallSite+4) of every nop and
// init site of run (nil: every site Check runs) it can, marks those and
// every enabled site of run as chained, and returns the set (restore takes
// the BRKs out again). It plants
// none when runs cannot be chained: with direct trampolines (their hook
// counts per engine, so those sites run one by one; and the tool's
// trampoline then also reads op->direct_call) or when the file's own
// trampoline runs (code verify does not know reads what it likes).
func (img *Image) plantStops(run []int, opts Options) *stopSet {
	if img.directs != nil || img.directOff != 0 || opts.RunFileTrampoline {
		return nil
	}
	each := func(do func(i int)) {
		if run != nil {
			for _, i := range run {
				do(i)
			}
			return
		}
		for i := range img.sites {
			if s := &img.sites[i]; !s.skip && s.static == nil {
				do(i)
			}
		}
	}
	st := &stopSet{img: img, chained: make([]bool, len(img.sites))}
	// An enabled site's run returns from the tool's trampoline through a
	// return trap (retTraps): no BRK at its stop address, so no copy of
	// its page.
	chainEnabled := func(i int) {
		if img.sites[i].State == elfscan.StateEnabled {
			st.chained[i] = true
		}
	}
	var runs, planting int
	if run == nil {
		t := &img.tally
		runs = len(img.sites) - t.skipped - t.static
		planting = runs - t.enabledRuns
		if t.enabledRuns > 0 {
			each(chainEnabled)
		}
	} else {
		runs = len(run)
		each(func(i int) {
			chainEnabled(i)
			if !st.chained[i] {
				planting++
			}
		})
	}
	if runs == 0 {
		return nil
	}
	if planting > 0 {
		st.stops, st.addrs = make([]int32, 0, planting), make([]uint64, 0, planting)
		each(func(i int) {
			// A stop past the top of the address space gets no BRK.
			if s := &img.sites[i]; s.State != elfscan.StateEnabled {
				if cs := s.callSite(); cs+4 > cs {
					st.stops, st.addrs = append(st.stops, int32(i)), append(st.addrs, cs+4)
				}
			}
		})
		st.sortStops()
		st.plantAll(img.readWords(), opts.Jobs)
	}
	// The tool's trampolines (in verify's stand-in code, where no site
	// is) run instead of the file's, always: see the RunFileTrampoline test
	// above.
	for _, a := range img.retX9 {
		if w, ok := img.read32(a); ok {
			st.retTraps = append(st.retTraps, a)
			st.retWords = append(st.retWords, plantAt{addr: a, word: w})
			img.write32(a, stopBRK)
		}
	}
	slices.Sort(st.retTraps)
	// Two sites may share a stop address: the first word saved there is
	// the image's own (restore puts them back last to first).
	return st
}

// sortStops puts the stops in address order (they are in site order,
// which nearly always is that already); sites sharing a stop keep theirs
// (see restore).
func (st *stopSet) sortStops() {
	if slices.IsSorted(st.addrs) {
		return
	}
	type stop struct {
		addr uint64
		i    int32
	}
	all := make([]stop, len(st.stops))
	for k := range all {
		all[k] = stop{st.addrs[k], st.stops[k]}
	}
	slices.SortStableFunc(all, func(a, b stop) int { return cmp.Compare(a.addr, b.addr) })
	for k, s := range all {
		st.addrs[k], st.stops[k] = s.addr, s.i
	}
}

// replaced calls do with each word a BRK replaced, the last planted first:
// a word planted twice was saved first as the image's own.
func (st *stopSet) replaced(do func(addr uint64, word uint32)) {
	for k := len(st.retWords) - 1; k >= 0; k-- {
		do(st.retWords[k].addr, st.retWords[k].word)
	}
	for k := len(st.stops) - 1; k >= 0; k-- {
		if i := st.stops[k]; st.chained[i] {
			do(st.addrs[k], st.words[k])
		}
	}
}

// populateChunk is how much of the image plantAll copies in before it
// plants the BRKs there, while those pages are still in the CPU's caches.
const populateChunk = 256 << 10

// plantAll plants the BRKs of st.stops (in address order). The pages that
// take them are copied in at once (madvise MADV_POPULATE_WRITE): written
// one by one, each page of a mapped file is copied on a fault of its own,
// and, in a process with threads on other CPUs (the Go runtime's), each
// such fault also flushes their TLBs (flush_tlb_mm_range: an interrupt to
// each; 5% of verify's cpu on the 53k-site nop bench image). Best effort:
// a kernel without MADV_POPULATE_WRITE (Linux 5.14) faults page by page as
// before.
//
// A kernel's text is 25 MB of such copies and 44k BRKs, before any run:
// the span of the stops is cut into jobs parts done at once, and each part
// is copied in populateChunk at a time, each chunk's BRKs planted right
// after. Copied whole first and planted after, the cloud 6.12 vmlinux (nop)
// took 13-15 ms of one CPU in the copies and another 5.8 ms in the BRKs,
// nearly all of it the load of each stop's word (perf annotate); this
// whole step, 16-25 ms of cpu at -j 1, takes 12-16 now (medians 22.4 and
// 12.9 of six runs), and verify 0.94x the cpu (15 interleaved pairs). The
// floor lays its image out the same way (scripts/verify-floor.c).
func (st *stopSet) plantAll(read func(uint64) bool, jobs int) {
	img, addrs := st.img, st.addrs // in address order
	st.words = make([]uint32, len(addrs))
	// Each part plants stops [start, end) of st's arrays, writing the
	// words it replaces at their places in st.words.
	type part struct {
		r          *region
		from, to   uint64 // guest addresses, from page-aligned
		start, end int    // its stops
	}
	var parts []part
	hp := uint64(os.Getpagesize())
	for _, r := range img.regions {
		lo, _ := slices.BinarySearch(addrs, r.addr)
		hi, _ := slices.BinarySearch(addrs, r.addr+r.size)
		if r.prot&uc.PROT_EXEC == 0 || lo >= hi {
			continue
		}
		a, b := addrs[lo]&^(hp-1), min(addrs[hi-1]+4, r.addr+r.size)
		for _, pg := range splitPages(a, b, hp, jobs) {
			k, _ := slices.BinarySearch(addrs[lo:hi], pg[1])
			parts = append(parts, part{r: r, from: pg[0], to: pg[1], start: lo, end: lo + k})
			lo += k
		}
	}
	var wg sync.WaitGroup
	for _, pt := range parts {
		wg.Go(func() {
			k := pt.start
			for c := pt.from; c < pt.to; c += populateChunk {
				end := min(c+populateChunk, pt.to)
				m := pt.r.mem[c-pt.r.addr : end-pt.r.addr]
				syscall.Syscall(syscall.SYS_MADVISE, uintptr(unsafe.Pointer(unsafe.SliceData(m))), uintptr(len(m)), madvPopulateWrite)
				for ; k < pt.end && addrs[k] < end; k++ {
					st.plant(st.stops[k], addrs[k], pt.r, read, &st.words[k])
				}
			}
		})
	}
	wg.Wait()
}

// splitPages cuts [start, end) (start page-aligned, start < end) into at
// most n consecutive parts, each but the first starting on a page.
func splitPages(start, end, page uint64, n int) [][2]uint64 {
	step := max(((end-start)/uint64(max(n, 1))+page-1)&^(page-1), page)
	var parts [][2]uint64
	for x := start; x < end; x += step {
		parts = append(parts, [2]uint64{x, min(x+step, end)})
	}
	return parts
}

// stopSpan is the span of the nop and init sites' stop addresses (the
// floor's plan copies it in at once: floorplan.go).
func stopSpan(img *Image, each func(func(i int))) (lo, hi uint64) {
	lo = ^uint64(0)
	each(func(i int) {
		if s := &img.sites[i]; s.State != elfscan.StateEnabled {
			lo, hi = min(lo, s.callSite()+4), max(hi, s.callSite()+8)
		}
	})
	return lo, hi
}

// madvPopulateWrite is Linux's MADV_POPULATE_WRITE (the syscall package
// has no name for it).
const madvPopulateWrite = 23

// readWords returns whether a stop address's word meets one a passing run
// reads as data (8 bytes from each enabled site's literal and op) or one
// verify redirected (4 bytes at each trampoline entry): sorted starts,
// searched.
func (img *Image) readWords() func(stop uint64) bool {
	var lits []uint64
	ops := map[uint64]bool{}
	if img.tally.byState[elfscan.StateEnabled] > 0 { // else nothing to find: no walk
		for i := range img.sites {
			s := &img.sites[i]
			if s.skip || s.State != elfscan.StateEnabled {
				continue
			}
			if s.Layout.HasLiteral() {
				lits = append(lits, s.literal())
			}
			if s.op != 0 {
				ops[s.op] = true
			}
		}
	}
	for op := range ops {
		lits = append(lits, op)
	}
	slices.Sort(lits)
	var redirected []uint64
	for _, a := range []uint64{img.tramp, img.trampAlt} {
		if a != 0 {
			redirected = append(redirected, a)
		}
	}
	return func(stop uint64) bool {
		return meets(lits, 8, stop) || meets(redirected, 4, stop)
	}
}

// plant puts a BRK at site i's stop address in r (executable, holding
// it), unless a passing run reads the word there (read) or it is not a
// whole word of r, and saves what it replaced in *word.
func (st *stopSet) plant(i int32, stop uint64, r *region, read func(uint64) bool, word *uint32) {
	if stop%4 != 0 || read(stop) || stop-r.addr > r.size-4 {
		return
	}
	st.chained[i] = true
	off := stop - r.addr
	*word = binary.LittleEndian.Uint32(r.mem[off:])
	binary.LittleEndian.PutUint32(r.mem[off:], stopBRK)
}

// meets reports whether the word [w, w+4) overlaps [a, a+n) for an a of
// sorted starts (n <= 8: only the starts from w-n+1 to w+3 can).
func meets(starts []uint64, n, w uint64) bool {
	lo := w - (n - 1)
	if lo > w {
		lo = 0
	}
	i, _ := slices.BinarySearch(starts, lo)
	return i < len(starts) && starts[i] <= w+3
}

// restore puts the image's own words back and unmaps the pristine copies;
// every engine of the pool must be closed.
func (st *stopSet) restore() {
	if st == nil {
		return
	}
	st.replaced(func(a uint64, w uint32) { st.img.write32(a, w) })
	st.release()
}

// release unmaps the pristine copies and forgets the words the BRKs
// replaced, leaving the BRKs in the image's bytes: for an image nothing
// reads again (Options.Closing); every engine of the pool must be closed.
func (st *stopSet) release() {
	if st == nil {
		return
	}
	st.stops, st.addrs, st.words, st.retWords = nil, nil, nil, nil
	for _, m := range st.clean {
		syscall.Munmap(m)
	}
	st.clean = nil
}

// pristine returns the bytes a budget engine maps for r: a copy of r
// without the BRKs and with every dynamic relocation applied
// (applyDynRelocs applies them only where runs through the tool's
// trampoline read) when r holds any of either (made once, shared by every
// budget engine: they only read it), else r's own.
func (st *stopSet) pristine(r *region) ([]byte, error) {
	st.once.Do(func() {
		st.clean = map[*region][]byte{}
		st.replaced(func(a uint64, w uint32) {
			rg := st.img.find(a)
			if rg == nil || st.err != nil {
				return
			}
			m, err := st.copyOf(rg)
			if err != nil {
				st.err = err
				return
			}
			binary.LittleEndian.PutUint32(m[a-rg.addr:], w)
		})
		if st.err != nil {
			return
		}
		for _, rg := range st.img.regions {
			if !st.img.hasRelocs(rg) {
				continue
			}
			m, err := st.copyOf(rg)
			if err != nil {
				st.err = err
				return
			}
			st.img.relocateAll(rg, m) // after the BRKs' words: a relocated word wins
		}
	})
	if st.err != nil {
		return nil, st.err
	}
	if m, ok := st.clean[r]; ok {
		return m, nil
	}
	return r.mem, nil
}

// copyOf returns the pristine copy of rg, made now if there is none.
func (st *stopSet) copyOf(rg *region) ([]byte, error) {
	if m, ok := st.clean[rg]; ok {
		return m, nil
	}
	m, err := syscall.Mmap(-1, 0, int(rg.size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("copying %s: %w", rg.name, err)
	}
	copy(m, rg.mem)
	st.clean[rg] = m
	return m, nil
}
