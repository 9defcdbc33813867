// SPDX-License-Identifier: Apache-2.0

package elfscan

import (
	"debug/elf"
	"slices"
	"strconv"
)

// Layout is the shape of a patch site. It is a small enum (a kernel has
// hundreds of thousands of sites); its text, String, is what scan prints
// (package report renders it).
type Layout uint8

const (
	LayoutClassic   Layout = iota // =2: no literal
	LayoutCallOps                 // =4,2: an 8-byte literal just before the entry
	LayoutCallOps53               // =5,3: three words before the entry, the aligned pair holds the literal
)

var layoutNames = [...]string{LayoutClassic: "classic", LayoutCallOps: "call-ops", LayoutCallOps53: "call-ops-5-3"}

// HasLiteral reports whether sites of layout l carry an ops literal.
func (l Layout) HasLiteral() bool { return l == LayoutCallOps || l == LayoutCallOps53 }

func (l Layout) String() string { return enumName(layoutNames[:], int(l), "layout") }

// State is what a site's words say about it (a small enum; see Layout).
type State uint8

const (
	StateUnknown State = iota // anything else; see Site words
	StateNop                  // as compiled
	StateInit                 // MOV X9,X30 in slot1
	StateEnabled              // and BL in slot2
)

var stateNames = [...]string{StateUnknown: "unknown", StateNop: "nop", StateInit: "init", StateEnabled: "enabled"}

func (s State) String() string { return enumName(stateNames[:], int(s), "state") }

func enumName(names []string, v int, kind string) string {
	if v < len(names) {
		return names[v]
	}
	return kind + "(" + strconv.Itoa(v) + ")"
}

// Code is a stable problem code; scripts match on these strings.
type Code string

const (
	CodeMisalignedLiteral Code = "misaligned-literal"
	CodeUnexpectedInsn    Code = "unexpected-insn"
	CodeDuplicateEntry    Code = "duplicate-entry"
	CodeOutsideText       Code = "outside-text"
	CodeNoFunction        Code = "no-function"
)

// Codes lists every problem code, in the order the docs give them: the
// sites' codes, then the file's own (CodeZeroedEntries).
var Codes = []Code{CodeMisalignedLiteral, CodeUnexpectedInsn, CodeDuplicateEntry, CodeOutsideText, CodeNoFunction, CodeZeroedEntries}

// NoFunctionHelp explains a no-function record: in a linked kernel it is the
// code of a weak function that a strong definition replaced at link time
// (the weak copy stays in .text, without a symbol, and its record stays in
// the table); Linux finds no symbol for it at boot and disables the record.
const NoFunctionHelp = "likely cause: a weak function overridden at link time (its code stays, without a symbol; " +
	"Linux disables such records at boot), or a stripped .symtab; init, enable, disable and verify skip it"

// Problem is one finding at a site.
type Problem struct {
	Code   Code
	Detail string
}

// Ref is the value of a literal or a BL target. In linked files Addr is the
// value and Sym the symbol defined exactly there, if any. In ET_REL files the
// value comes from a relocation: Sym is its symbol's name, SymIndex its index
// in .symtab and Addr the addend.
type Ref struct {
	Addr     uint64
	Sym      string
	SymIndex uint32
}

// NoOffset marks a slot a site does not have (the literal of a classic site).
const NoOffset int64 = -1

// Site is one patchable function entry.
//
// A kernel image has hundreds of thousands, and the patch commands hold
// them all, so a Site is kept small (80 bytes): every address follows from
// Record, Layout and BTI (methods Entry, CallSite, Literal, Spare), every
// file offset from the record's (LiteralOff, Slot1Off, ...), and the parts
// few sites have (a literal or BL value, problems, a 5,3 spare word, a kCFI
// hash) live out of line, one copy shared by alike sites.
type Site struct {
	Func        string // containing function, "" when none
	Section     string // section holding the entry
	Record      uint64 // the value in the entries table (where the NOPs start); ET_REL: offset in Section
	LiteralWord uint64 // bytes at the literal, in the file's byte order (0 for classic)
	Slot1Word   uint32 // raw words, for patch and verify
	Slot2Word   uint32
	recOff      int64 // file offset of Record, when read (see have)
	secIndex    int32 // see SectionIndex
	Layout      Layout
	State       State
	BTI         bool
	have        uint8 // which words were read: have* bits
	x           *siteExtra
}

// The words a site's have bits say were read from the file.
const (
	haveLiteral uint8 = 1 << iota
	haveSlot1
	haveSlot2
	haveSpare
	haveCFIHash
)

// siteExtra holds what few sites of a scan have. Sites whose extras are
// alike (every enabled site of a kernel has the same ops and the same
// trampoline) share one: see scanner.finish.
type siteExtra struct {
	ops, target       Ref
	hasOps, hasTarget bool
	spareWord         uint32 // LayoutCallOps53
	cfiHash           uint32
	problems          []Problem
}

// empty reports whether x holds nothing.
func (x *siteExtra) empty() bool {
	return !x.hasOps && !x.hasTarget && x.spareWord == 0 && x.cfiHash == 0 && len(x.problems) == 0
}

// alike reports whether x and y hold the same, and no problems (which
// are per site).
func (x *siteExtra) alike(y *siteExtra) bool {
	return len(x.problems) == 0 && len(y.problems) == 0 && x.hasOps == y.hasOps && x.hasTarget == y.hasTarget &&
		x.ops == y.ops && x.target == y.target && x.spareWord == y.spareWord && x.cfiHash == y.cfiHash
}

// SectionIndex is the index of Section in the section header table (0:
// the record is in no section).
func (s *Site) SectionIndex() int { return int(s.secIndex) }

// Entry is the function entry (where BTI C is, if any); ET_REL: offset in
// Section.
func (s *Site) Entry() uint64 {
	switch s.Layout {
	case LayoutCallOps:
		return s.Record + 8
	case LayoutCallOps53:
		return s.Record + 12
	}
	if s.BTI { // classic: the record is slot1, after the BTI
		return s.Record - 4
	}
	return s.Record
}

// Slot1 is the address of the slot that holds or will hold MOV X9,X30.
func (s *Site) Slot1() uint64 {
	if s.Layout == LayoutClassic {
		return s.Record
	}
	if s.BTI {
		return s.Entry() + 4
	}
	return s.Entry()
}

// CallSite is slot2, which holds or will hold the BL.
func (s *Site) CallSite() uint64 { return s.Slot1() + 4 }

// Literal is the address of the literal; valid only when
// Layout.HasLiteral(): 4,2's record; of 5,3's three words, the 8-byte
// aligned pair (in ET_REL aligned as an offset: patching raises the
// section's alignment to 8, so it stays aligned when linked).
func (s *Site) Literal() uint64 {
	if s.Layout == LayoutCallOps53 && s.Record%8 != 0 {
		return s.Record + 4
	}
	if s.Layout.HasLiteral() {
		return s.Record
	}
	return 0
}

// Spare is the pre-entry word outside the literal (LayoutCallOps53 only;
// it stays NOP).
func (s *Site) Spare() uint64 {
	if s.Layout != LayoutCallOps53 {
		return 0
	}
	if s.Record%8 != 0 {
		return s.Record
	}
	return s.Record + 8
}

// CFIHashAddr is the address of the kCFI type hash (valid when CFIHashOff
// != NoOffset).
func (s *Site) CFIHashAddr() uint64 { return s.Record - 4 }

func (s *Site) offAt(bit uint8, a uint64) int64 {
	if s.have&bit == 0 {
		return NoOffset
	}
	return s.recOff + int64(a-s.Record)
}

// LiteralOff is the file offset of the literal, NoOffset for classic (or
// when it could not be read).
func (s *Site) LiteralOff() int64 { return s.offAt(haveLiteral, s.Literal()) }

// Slot1Off is the file offset of slot1 (MOV X9,X30), NoOffset when unread.
func (s *Site) Slot1Off() int64 { return s.offAt(haveSlot1, s.Slot1()) }

// Slot2Off is the file offset of slot2 (BL), NoOffset when unread.
func (s *Site) Slot2Off() int64 { return s.offAt(haveSlot2, s.CallSite()) }

// SpareOff is the file offset of the spare word, NoOffset unless
// LayoutCallOps53.
func (s *Site) SpareOff() int64 { return s.offAt(haveSpare, s.Spare()) }

// CFIHashOff is the file offset of a kCFI type hash just before the
// pre-entry NOPs (record-4), which patching never touches; NoOffset when
// there is none.
func (s *Site) CFIHashOff() int64 { return s.offAt(haveCFIHash, s.CFIHashAddr()) }

// SpareWord is the word at Spare (LayoutCallOps53).
func (s *Site) SpareWord() uint32 {
	if s.x == nil {
		return 0
	}
	return s.x.spareWord
}

// CFIHash is the kCFI type hash (when CFIHashOff != NoOffset).
func (s *Site) CFIHash() uint32 {
	if s.x == nil {
		return 0
	}
	return s.x.cfiHash
}

// Ops is the literal's value: nil when zero and unrelocated, or classic.
// It may be shared with other sites: read only.
func (s *Site) Ops() *Ref {
	if s.x == nil || !s.x.hasOps {
		return nil
	}
	return &s.x.ops
}

// Target is the BL's target: nil unless slot2 holds a BL. It may be
// shared with other sites: read only.
func (s *Site) Target() *Ref {
	if s.x == nil || !s.x.hasTarget {
		return nil
	}
	return &s.x.target
}

// Problems are the site's findings, in the order scan found them.
func (s *Site) Problems() []Problem {
	if s.x == nil {
		return nil
	}
	return s.x.problems
}

// HasProblem reports whether the site carries code c.
func (s *Site) HasProblem(c Code) bool {
	for _, p := range s.Problems() {
		if p.Code == c {
			return true
		}
	}
	return false
}

// The scan's sites are shared, read-only: a Site copied from another
// shares its out-of-line part, so TakeFindings, which changes a copy (a
// view), gives the site its own copy first.

// own gives s its own out-of-line part.
func (s *Site) own() *siteExtra {
	x := new(siteExtra)
	if s.x != nil {
		*x = *s.x
		x.problems = slices.Clip(x.problems)
	}
	s.x = x
	return x
}

// TakeFindings gives s what p's scan found: its state's values (Ops,
// Target) and its Problems, keeping s's own words (a view of one site's
// words as another file holds them). s shares p's out-of-line part when the
// rest of it is alike, so it allocates nothing.
func (s *Site) TakeFindings(p *Site) {
	if s.SpareWord() == p.SpareWord() && s.CFIHash() == p.CFIHash() {
		s.x = p.x
		return
	}
	var px siteExtra
	if p.x != nil {
		px = *p.x
	}
	x := s.own()
	x.ops, x.hasOps, x.target, x.hasTarget, x.problems = px.ops, px.hasOps, px.target, px.hasTarget, slices.Clip(px.problems)
}

// The scanner builds a site's extras in its own scratch (s.x points at it
// while the site is built), so a site that has none, or the same as the
// site before, allocates nothing: see scanner.finish.

func (s *Site) addProblem(p Problem) { s.x.problems = append(s.x.problems, p) }

func (s *Site) setOps(r Ref) { s.x.ops, s.x.hasOps = r, true }

func (s *Site) setTarget(r Ref) { s.x.target, s.x.hasTarget = r, true }

// File is the scan of one ELF file.
type File struct {
	Path  string
	Type  elf.Type // ET_REL, ET_EXEC or ET_DYN
	Sites []Site

	fileProblems []Problem // see FileProblems
}

// Problems counts the problems of the file: its own and its sites'.
func (f *File) Problems() int {
	n := len(f.fileProblems)
	for i := range f.Sites {
		n += len(f.Sites[i].Problems())
	}
	return n
}
