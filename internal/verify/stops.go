// SPDX-License-Identifier: Apache-2.0

package verify

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"syscall"

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
	img     *Image
	chained []bool    // by site index: its stop address holds a BRK
	planted []plantAt // in planting order
	// retTraps are the tool's trampolines' `RET X9` words, also under a
	// BRK: a run returning from the trampoline into its function
	// (X9 = its stop address) ends there, as the RET would have, without
	// translating a block at its stop address (uc.Runner.SetReturnTraps).
	retTraps []uint64

	once  sync.Once
	clean map[*region][]byte // pristine copies, made on first need
	err   error
}

type plantAt struct {
	addr uint64
	word uint32 // the image's own word there
}

// plantStops plants a BRK at the stop address (CallSite+4) of every site of
// run it can, and returns the set (restore takes them out again). It plants
// none when runs cannot be chained: with direct trampolines (their hook
// counts per engine, so those sites run one by one; and the tool's
// trampoline then also reads op->direct_call) or when the file's own
// trampoline runs (code verify does not know reads what it likes).
func (img *Image) plantStops(run []int, opts Options) *stopSet {
	if img.directs != nil || img.directOff != 0 || opts.RunFileTrampoline || len(run) == 0 {
		return nil
	}
	// Where a passing run reads data (8 bytes from each), and the words
	// verify redirected (4 bytes): sorted starts, so a stop address is
	// checked with a binary search.
	var lits []uint64
	ops := map[uint64]bool{}
	for i := range img.sites {
		s := &img.sites[i]
		if s.skip || s.State != elfscan.StateEnabled {
			continue
		}
		if s.Layout.HasLiteral() {
			lits = append(lits, s.literal)
		}
		if s.op != 0 {
			ops[s.op] = true
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
	read := func(stop uint64) bool { // does [stop, stop+4) meet a protected span?
		return meets(lits, 8, stop) || meets(redirected, 4, stop)
	}
	st := &stopSet{img: img, chained: make([]bool, len(img.sites)), planted: make([]plantAt, 0, len(run)+len(img.retX9))}
	var r *region // the last one found: sites come in address order
	for _, i := range run {
		s := &img.sites[i]
		stop := s.callSite + 4
		if stop < s.callSite || stop%4 != 0 || read(stop) {
			continue
		}
		if r == nil || stop < r.addr || stop-r.addr >= r.size {
			if r = img.find(stop); r == nil {
				continue
			}
		}
		if r.prot&uc.PROT_EXEC == 0 || stop-r.addr > r.size-4 {
			continue
		}
		st.chained[i] = true
		off := stop - r.addr
		st.planted = append(st.planted, plantAt{addr: stop, word: binary.LittleEndian.Uint32(r.mem[off:])})
		binary.LittleEndian.PutUint32(r.mem[off:], stopBRK)
	}
	// The tool's trampolines (in verify's stand-in code, where no site
	// is) run instead of the file's, always: see the RunFileTrampoline test
	// above.
	for _, a := range img.retX9 {
		if w, ok := img.read32(a); ok {
			st.retTraps = append(st.retTraps, a)
			st.planted = append(st.planted, plantAt{addr: a, word: w})
			img.write32(a, stopBRK)
		}
	}
	slices.Sort(st.retTraps)
	// Two sites may share a stop address: the first word saved there is
	// the image's own (restore puts them back last to first).
	return st
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
	for k := len(st.planted) - 1; k >= 0; k-- { // last to first: see plantStops
		st.img.write32(st.planted[k].addr, st.planted[k].word)
	}
	st.planted = nil
	for _, m := range st.clean {
		syscall.Munmap(m)
	}
	st.clean = nil
}

// pristine returns the bytes a budget engine maps for r: a copy of r
// without the BRKs when r holds any (made once, shared by every budget
// engine: they only read it), else r's own.
func (st *stopSet) pristine(r *region) ([]byte, error) {
	st.once.Do(func() {
		st.clean = map[*region][]byte{}
		// Last to first: a word planted twice was saved first as the
		// image's own.
		for k := len(st.planted) - 1; k >= 0; k-- {
			p := st.planted[k]
			rg := st.img.find(p.addr)
			if rg == nil {
				continue
			}
			m, ok := st.clean[rg]
			if !ok {
				var err error
				m, err = syscall.Mmap(-1, 0, int(rg.size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
				if err != nil {
					st.err = fmt.Errorf("copying %s: %w", rg.name, err)
					return
				}
				copy(m, rg.mem)
				st.clean[rg] = m
			}
			binary.LittleEndian.PutUint32(m[p.addr-rg.addr:], p.word)
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
