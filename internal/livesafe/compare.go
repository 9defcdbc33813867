// SPDX-License-Identifier: Apache-2.0

// Package livesafe proves that the difference between two files (ORIG and
// a patched copy) may be applied to running code: `ftpatch verify --against
// ORIG FILE`. It is static and needs no emulator (nor cgo): it compares
// bytes, relocations and symbols, and lists the intermediate state of each
// two-write site change (IntermediateOf), which verify.RunIntermediates then
// runs on the CPU and records here (Report.RecordRun).
//
// What may differ, per patch site (Arm ARM B2.2.5, concurrent modification
// and execution; Linux's arm64 ftrace_modify_code relies on the same rules):
//
//	literal  8 bytes, 8-byte aligned   one single-copy-atomic store    live-safe
//	slot2    NOP <-> BL, BL <-> BL     allowed under a running CPU     live-safe
//	slot1    NOP <-> MOV X9,X30        init time only                  allowed, NOT live-safe
//	BTI, anything outside a site, a misaligned literal                 failure
//
// Linked files (ET_EXEC, ET_DYN) must keep their size, so they are streamed
// side by side in chunks (memory does not grow with the file) and every
// differing byte range is attributed to a site word or reported
// (linked.go). ET_REL files are rewritten by the patcher, so they are
// compared section by section (relocatable.go): the bytes of every section
// but the symbol, string and relocation tables, then relocations as
// multisets of (offset, type, symbol, addend), then symbols (existing ones
// unchanged, added ones undefined globals at the end). Each touched site is
// then classified (classify.go) from its words (words.go). The report is
// in report.go, plain values that package report prints (as JSON and
// text); the byte diff is in bytediff.go.
package livesafe

import (
	"debug/elf"
	"fmt"
	"io"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/elfwrite"
)

// Compare checks that every difference between orig and patched (each
// opened once, compressed or not, by elfscan.Open) is an allowed patch.
// It reads both files' scans, symbols and relocations through the
// Objects, so verify can run the intermediate states from orig without
// reading anything again. Errors are for unreadable input; a difference
// that is not a patch is a problem in the report.
func Compare(orig, patched *elfscan.Object, opts Options) (*Report, error) {
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 4 << 20
	}
	if opts.MaxProblems <= 0 {
		opts.MaxProblems = DefaultMaxProblems
	}
	origPath, patchedPath := orig.Path, patched.Path
	of, pf := orig.ELF(), patched.ELF()
	origScan, err := orig.Scan()
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", origPath, err)
	}
	ps, err := patched.Scan()
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", patchedPath, err)
	}
	oh, err := elfwrite.ReadHeader(orig)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", origPath, err)
	}
	ph, err := elfwrite.ReadHeader(patched)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", patchedPath, err)
	}
	a := &comparison{opts: opts, o: orig, p: patched, oh: oh, ph: ph, of: of, pf: pf, or: orig, pr: patched, os: origScan, ps: ps, rel: of.Type == elf.ET_REL,
		r: &Report{Orig: origPath, File: patchedPath, Type: of.Type, maxProblems: opts.MaxProblems,
			Changes: []Change{}, Intermediates: []Intermediate{}, Problems: []Problem{},
			Counts: Counts{Sites: len(origScan.Sites), Changes: map[Kind]int{}}}}
	a.touched = make([]uint8, len(origScan.Sites))
	a.patched = make(map[siteKey]int, len(ps.Sites))
	for i := range ps.Sites {
		s := &ps.Sites[i]
		a.patched[siteKey{s.SectionIndex(), s.Record}] = i
	}
	switch {
	case of.Type != pf.Type:
		a.problem(loc{section: "ELF header"}, fmt.Sprintf("file type changed from %v to %v", of.Type, pf.Type))
	case a.rel:
		err = a.relocatable()
	default:
		err = a.linked()
	}
	if err != nil {
		return nil, err
	}
	a.classifySites()
	r := a.r
	r.Counts.ProblemsKept = len(r.Problems)
	r.LiveSafe = !r.Failed() && r.Counts.NotLiveSafe == 0 && r.Counts.Unproven == 0
	return r, nil
}

// Touched-word bits of a site.
const (
	bitLiteral = 1 << iota
	bitSlot1
	bitSlot2
	bitBTI
	bitSpare // call-ops-5-3: the pre-entry word outside the literal
	bitCFI   // a kCFI type hash before the NOPs
)

type siteKey struct {
	sec int
	rec uint64
}

// span is one site word in the coordinate space being diffed: file offsets
// for linked files, offsets in one section for ET_REL.
type span struct {
	lo, hi int64
	site   int32
	bit    uint8
}

// loc says where a byte is, for problems.
type loc struct {
	section    string
	secIndex   int
	offset     uint64 // in section
	addr       uint64
	fileOffset int64
	fn         string
}

// comparison is one run of Compare.
type comparison struct {
	opts    Options
	o, p    *elfscan.Object
	oh, ph  elf.Header64 // ORIG's and FILE's ELF headers
	of, pf  *elf.File
	or, pr  io.ReaderAt
	os, ps  *elfscan.File
	rel     bool
	r       *Report
	touched []uint8
	view    elfscan.Site // classify's patched view of the current site
	patched map[siteKey]int

	// ET_REL relocations at site words, by (section, offset): the value
	// each file gives the literal or BL.
	oRel, pRel map[relPos]string
}

type relPos struct {
	sec int
	off uint64
}

// problem reports a difference that is not an allowed patch.
func (a *comparison) problem(l loc, detail string) { a.r.add(l.problem(detail)) }

// siteProblem records a problem of a site's words at l: code, with the
// word's old and new values.
func (a *comparison) siteProblem(l loc, code ProblemCode, old, new Value) {
	p := l.problem("")
	p.Code, p.Old, p.New = code, old, new
	a.r.add(p)
}

// problem is the Problem at l.
func (l loc) problem(detail string) Problem {
	return Problem{Section: l.section, Offset: l.offset, Address: l.addr, FileOffset: l.fileOffset, Func: l.fn, Detail: detail}
}

// spansOf returns the positions of a site's words: literal, BTI, slot1,
// slot2, as file offsets (linked) or section offsets (ET_REL).
func (a *comparison) spansOf(i int, s *elfscan.Site) []span {
	var out []span
	add := func(lo int64, n int64, bit uint8) {
		if lo >= 0 {
			out = append(out, span{lo, lo + n, int32(i), bit})
		}
	}
	if a.rel {
		if s.Layout.HasLiteral() {
			add(int64(s.Literal()), 8, bitLiteral)
		}
		if s.SpareOff() != elfscan.NoOffset {
			add(int64(s.Spare()), 4, bitSpare)
		}
		if s.CFIHashOff() != elfscan.NoOffset {
			add(int64(s.CFIHashAddr()), 4, bitCFI)
		}
		if s.BTI {
			add(int64(s.Entry()), 4, bitBTI)
		}
		add(int64(s.CallSite())-4, 4, bitSlot1)
		add(int64(s.CallSite()), 4, bitSlot2)
		return out
	}
	if s.LiteralOff() != elfscan.NoOffset {
		add(s.LiteralOff(), 8, bitLiteral)
	}
	add(s.SpareOff(), 4, bitSpare)
	add(s.CFIHashOff(), 4, bitCFI)
	if s.BTI && s.Slot1Off() != elfscan.NoOffset {
		add(s.Slot1Off()-4, 4, bitBTI)
	}
	if s.Slot1Off() != elfscan.NoOffset {
		add(s.Slot1Off(), 4, bitSlot1)
	}
	if s.Slot2Off() != elfscan.NoOffset {
		add(s.Slot2Off(), 4, bitSlot2)
	}
	return out
}

// funcAt names the function holding addr (ET_REL: the offset in section
// sec), or "".
func (a *comparison) funcAt(sec int, addr uint64) string {
	st, err := a.o.Symbols()
	if err != nil {
		return ""
	}
	if !a.rel {
		sec = 0
	}
	if s, ok := st.Containing(sec, addr); ok {
		return s.Name
	}
	if s, ok := st.Func(sec, addr); ok && s.Type() == elf.STT_FUNC {
		return s.Name
	}
	return ""
}
