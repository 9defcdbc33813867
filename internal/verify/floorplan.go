// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package verify

// The floor plan: what scripts/verify-floor.c, the bench's emulator floor,
// needs to run exactly the runs Check runs on an image, and nothing of ELF.
// `make bench` measures verify against that program; the ratio says what
// verify costs beyond driving the emulator.
//
// Layout (little-endian; every field a u64 unless noted; the C side,
// scripts/verify-floor.c, reads it with the same names):
//
//	header   magic "ftpfloor", version (floorVersion), sentinel, stackBase,
//	         stackSize, retReg, seed (the registers of site i are
//	         uc/check.h's ftp_seed_regs(seed, i)), chunk (sites a worker
//	         takes at a time), recycle (sites an engine runs before it is
//	         replaced), populate lo, hi (the span of the image whose
//	         executable pages are copied in a chunk at a time, each
//	         chunk's writes made after it, as plantAll plants BRKs;
//	         lo >= hi: none), then the counts: regions,
//	         pieces, writes, funcs, retTraps, sites, blob bytes
//	regions  addr, size, prot, blobOff (the region's bytes in the blob, or
//	         noBlob: zeros and file pieces)
//	pieces   vaddr, off, len: len bytes of the image file at off go to vaddr
//	writes   addr, len, blobOff: bytes verify's image holds there that the
//	         file does not (dynamic relocations, the redirected trampoline,
//	         the BRKs of chained runs)
//	funcs    the op->func addresses the runner intercepts (sorted)
//	retTraps the BRKs over the tool's trampolines' RET X9 (sorted)
//	sites    entry, until, callSite, op, index (what its registers are
//	         drawn from), flags (judge | chained<<8, judge being
//	         uc/check.h's FTP_JUDGE_*), in the order Check runs them
//	blob     bytes

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/verify/uc"
)

const floorVersion = 4

// noBlob marks a region whose bytes come from zeros and file pieces.
const noBlob = ^uint64(0)

// FloorPlanError says why an image has no floor plan: the floor runs only
// what Check runs chained or with a stop address, through the tool's
// trampoline, without direct calls.
type FloorPlanError struct{ Why string }

func (e *FloorPlanError) Error() string { return "no floor plan: " + e.Why }

// WriteFloorPlan writes the floor plan of img to w: the regions as Check
// maps them, the words it writes over the file's bytes (file, the image
// file img was loaded from), and the sites Check would run with what each
// must do. The image's bytes are as they were when it returns.
func WriteFloorPlan(img *Image, opts Options, file io.ReaderAt, w io.Writer) error {
	if img.directs != nil || img.directOff != 0 || opts.RunFileTrampoline {
		return &FloorPlanError{"direct calls and the file's own trampoline are not in the floor"}
	}
	var toRun []int
	for i := range img.sites {
		if s := &img.sites[i]; !s.skip && s.static == nil {
			if s.direct != 0 {
				return &FloorPlanError{"a site reaches a direct trampoline"}
			}
			toRun = append(toRun, i)
		}
	}
	img.checkMu.Lock()
	defer img.checkMu.Unlock()
	st := img.plantStops(nil, opts)
	defer st.restore()
	p := floorPlan{}
	for _, r := range img.regions {
		if err := p.addRegion(img, r, file); err != nil {
			return err
		}
	}
	for f := range img.funcs {
		p.funcs = append(p.funcs, f)
	}
	slices.Sort(p.funcs)
	if st != nil {
		p.retTraps = st.retTraps
	}
	for _, i := range toRun {
		s := &img.sites[i]
		var state uint64
		switch s.State {
		case elfscan.StateNop:
			state = uc.JudgeNop
		case elfscan.StateInit:
			state = uc.JudgeInit
		case elfscan.StateEnabled:
			state = uc.JudgeEnabled
		default:
			return &FloorPlanError{fmt.Sprintf("site %s in state %s", s.Func, s.State)}
		}
		if st != nil && st.chained[i] {
			state |= 1 << 8
		}
		p.sites = append(p.sites, [6]uint64{s.entry(), s.callSite() + 4, s.callSite(), s.op, uint64(s.index), state})
	}
	p.popLo, p.popHi = 1, 0
	if st != nil {
		p.popLo, p.popHi = stopSpan(img, func(do func(int)) {
			for _, i := range toRun {
				do(i)
			}
		})
	}
	return p.write(w, img, opts.Seed)
}

type floorPlan struct {
	popLo, popHi uint64
	regions      [][4]uint64
	pieces       [][3]uint64
	writes       [][3]uint64
	funcs        []uint64
	retTraps     []uint64
	sites        [][6]uint64
	blob         []byte
}

// addRegion adds r: as file pieces and the words that differ from them,
// or, with no piece of the file in it (verify's stand-ins, an object's
// placed sections), as its bytes.
func (p *floorPlan) addRegion(img *Image, r *region, file io.ReaderAt) error {
	var base []byte // what zeros and the file's pieces put in r
	for _, pc := range img.pieces {
		lo, hi := max(pc.vaddr, r.addr), min(pc.vaddr+pc.n, r.addr+r.size)
		if lo >= hi {
			continue
		}
		if base == nil {
			base = make([]byte, r.size)
		}
		off := pc.off + int64(lo-pc.vaddr)
		if n, err := file.ReadAt(base[lo-r.addr:hi-r.addr], off); n != int(hi-lo) {
			return fmt.Errorf("floor plan: reading %d bytes at %#x: %w", hi-lo, off, err)
		}
		p.pieces = append(p.pieces, [3]uint64{lo, uint64(off), hi - lo})
	}
	if base == nil {
		p.regions = append(p.regions, [4]uint64{r.addr, r.size, uint64(r.prot), uint64(len(p.blob))})
		p.blob = append(p.blob, r.mem...)
		return nil
	}
	p.regions = append(p.regions, [4]uint64{r.addr, r.size, uint64(r.prot), noBlob})
	// Runs of differing 4-byte words.
	for i := 0; i < len(base); i += 4 {
		if bytes.Equal(base[i:i+4], r.mem[i:i+4]) {
			continue
		}
		j := i + 4
		for j < len(base) && !bytes.Equal(base[j:j+4], r.mem[j:j+4]) {
			j += 4
		}
		p.writes = append(p.writes, [3]uint64{r.addr + uint64(i), uint64(j - i), uint64(len(p.blob))})
		p.blob = append(p.blob, r.mem[i:j]...)
		i = j
	}
	return nil
}

func (p *floorPlan) write(w io.Writer, img *Image, seed uint64) error {
	bw := bufio.NewWriter(w)
	var buf [8]byte
	put := func(vs ...uint64) {
		for _, v := range vs {
			binary.LittleEndian.PutUint64(buf[:], v)
			bw.Write(buf[:])
		}
	}
	bw.WriteString("ftpfloor")
	put(floorVersion, img.sentinel, img.stackBase, stackSize, 9, seed, batchSites, recycleSites, p.popLo, p.popHi)
	put(uint64(len(p.regions)), uint64(len(p.pieces)), uint64(len(p.writes)), uint64(len(p.funcs)),
		uint64(len(p.retTraps)), uint64(len(p.sites)), uint64(len(p.blob)))
	for _, r := range p.regions {
		put(r[:]...)
	}
	for _, pc := range p.pieces {
		put(pc[:]...)
	}
	for _, wr := range p.writes {
		put(wr[:]...)
	}
	put(p.funcs...)
	put(p.retTraps...)
	for _, s := range p.sites {
		put(s[:]...)
	}
	bw.Write(p.blob)
	return bw.Flush()
}
