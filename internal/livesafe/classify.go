// SPDX-License-Identifier: Apache-2.0

package livesafe

// Classification: each site some difference touched becomes changes (an
// allowed write of a literal, slot1 or slot2, live-safe or not), problems
// (anything else), and its intermediate state when it takes two writes.

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/elfwrite"
	"github.com/ftpatch/ftpatch/internal/encode"
)

// classifySites classifies every touched site, in ORIG's site order.
func (a *comparison) classifySites() {
	n := 0
	for _, t := range a.touched {
		if t != 0 {
			n++
		}
	}
	// At most three changed words a site (literal, slot1, slot2): one
	// allocation, not a doubling per thousand sites.
	a.r.Changes = make([]Change, 0, 3*n)
	a.r.Intermediates = make([]Intermediate, 0, n)
	for i := range a.os.Sites {
		if a.touched[i] != 0 {
			a.classify(i)
		}
	}
}

// classify compares ORIG's site i with the patched file's words at the same
// places, in named steps: the words no patch may touch, the literal, slot1,
// slot2, the state the patched site is in, and its intermediate state.
// Problems and changes are reported in that order.
func (a *comparison) classify(i int) {
	c := siteCheck{a: a, o: &a.os.Sites[i], i: i}
	a.r.Counts.SitesChanged++
	p := c.patchedSite()
	if p == nil {
		a.siteProblem(c.where(c.o.Entry(), c.o.Slot1Off()), ProblemNoSite, Value{}, Value{})
		return
	}
	t := a.touched[i]
	bad := c.fixedWords(t)
	bad = c.literal(p) || bad
	bad = c.slot1(p) || bad
	bad = c.slot2(p) || bad
	if !bad && p.State == elfscan.StateUnknown {
		o := c.o
		q := c.where(o.Entry(), o.Slot1Off()).problem("")
		q.Code = ProblemUnknownState
		q.Words = []encode.Placed{{Addr: o.CallSite() - 4, Bits: uint64(p.Slot1Word)}, {Addr: o.CallSite(), Bits: uint64(p.Slot2Word)}}
		a.r.add(q)
	}
	c.intermediate(p)
}

// siteCheck is the classification of ORIG's site o (index i).
type siteCheck struct {
	a *comparison
	o *elfscan.Site
	i int
}

// patchedSite returns the patched view of the site (nil when the patched
// file has no site at its place). The words are read from the patched
// file where ORIG has them: a changed BTI can make the patched scan place
// the slots elsewhere. The view lives in the comparison (one Site for all
// sites), not on the heap per site; a site whose call site or layout moved
// is in no known state.
func (c siteCheck) patchedSite() *elfscan.Site {
	a, o := c.a, c.o
	k, ok := a.patched[siteKey{o.SectionIndex(), o.Record}]
	if !ok {
		return nil
	}
	p := &a.ps.Sites[k]
	a.view = a.patchedView(o, p)
	if p.CallSite() != o.CallSite() || p.Layout != o.Layout {
		a.view.State = elfscan.StateUnknown
	}
	return &a.view
}

// where returns the location of a site word at addr (a section offset in
// ET_REL) and file offset fileOff.
func (c siteCheck) where(addr uint64, fileOff int64) loc {
	a, o := c.a, c.o
	l := loc{section: o.Section, secIndex: o.SectionIndex(), addr: addr, fn: o.Func, fileOffset: fileOff}
	l.offset = addr
	inFile := o.SectionIndex() > 0 && o.SectionIndex() < len(a.of.Sections)
	if !a.rel && inFile {
		l.offset = addr - a.of.Sections[o.SectionIndex()].Addr
	}
	if a.rel && inFile {
		l.fileOffset = int64(a.of.Sections[o.SectionIndex()].Offset + addr)
	}
	return l
}

// change records an allowed write at l, live-safe or not.
func (c siteCheck) change(l loc, kind Kind, old, new Value, safe bool, why string) {
	r := c.a.r
	r.Changes = append(r.Changes, Change{Section: l.section, Offset: l.offset, Address: l.addr, FileOffset: l.fileOffset,
		Func: l.fn, Kind: kind, Old: old, New: new, LiveSafe: safe, Why: why})
	r.Counts.Changes[kind]++
	if safe {
		r.Counts.LiveSafe++
	} else {
		r.Counts.NotLiveSafe++
	}
}

// words returns both files' word at addr (file offset off in ORIG).
func (c siteCheck) words(addr uint64, off int64) (old, new Value) {
	a, sec := c.a, c.o.SectionIndex()
	if a.rel {
		return relWord(a.or, sec, a.of, addr), relWord(a.pr, sec, a.pf, addr)
	}
	return fileWord(a.or, off), fileWord(a.pr, off)
}

// relAt returns the relocation at addr in the site's section in one
// file's relocations m ("" in a linked file).
func (c siteCheck) relAt(m map[relPos]string, addr uint64) string {
	if !c.a.rel {
		return ""
	}
	return m[relPos{c.o.SectionIndex(), addr}]
}

// fixedWords reports the words no patch may touch that touched t says
// changed: the BTI at the function entry, the 5,3 spare word and a kCFI
// type hash. It returns whether there was one.
func (c siteCheck) fixedWords(t uint8) bool {
	o, bad := c.o, false
	if t&bitBTI != 0 {
		bti, off := o.Entry(), o.Slot1Off()-4
		old, new := c.words(bti, off)
		c.a.siteProblem(c.where(bti, off), ProblemBTI, old, new)
		bad = true
	}
	for _, w := range []struct {
		bit  uint8
		addr uint64
		off  int64
		code ProblemCode
	}{
		{bitSpare, o.Spare(), o.SpareOff(), ProblemSpare},
		{bitCFI, o.CFIHashAddr(), o.CFIHashOff(), ProblemCFI},
	} {
		if t&w.bit == 0 {
			continue
		}
		old, new := c.words(w.addr, w.off)
		p := c.where(w.addr, w.off).problem("")
		p.Code, p.Old, p.New = w.code, old, new
		if w.code == ProblemSpare {
			p.LiteralAt = o.Literal()
		}
		c.a.r.add(p)
		bad = true
	}
	return bad
}

// literal classifies a change of the 5,3 literal (its value or its
// relocation): allowed when it is 8-byte aligned. It returns whether
// there was a problem.
func (c siteCheck) literal(p *elfscan.Site) bool {
	o, a := c.o, c.a
	if !o.Layout.HasLiteral() || o.LiteralOff() == elfscan.NoOffset {
		return false
	}
	oldRel, newRel := c.relAt(a.oRel, o.Literal()), c.relAt(a.pRel, o.Literal())
	if o.LiteralWord == p.LiteralWord && oldRel == newRel {
		return false
	}
	l := c.where(o.Literal(), o.LiteralOff())
	old, new := Value{Bits: o.LiteralWord, Rel: oldRel}, Value{Bits: p.LiteralWord, Rel: newRel}
	if o.Literal()%8 != 0 || o.HasProblem(elfscan.CodeMisalignedLiteral) {
		a.siteProblem(l, ProblemMisalignedLiteral, old, new)
		return true
	}
	c.change(l, KindLiteral, old, new, true, "")
	return false
}

// slot1 classifies a change of slot1: NOP <-> MOV X9,X30 are allowed
// writes, neither live-safe. It returns whether there was a problem.
func (c siteCheck) slot1(p *elfscan.Site) bool {
	o := c.o
	if o.Slot1Word == p.Slot1Word {
		return false
	}
	l := c.where(o.CallSite()-4, o.Slot1Off())
	old, new := Value{Bits: uint64(o.Slot1Word)}, Value{Bits: uint64(p.Slot1Word)}
	switch {
	case o.Slot1Word == encode.NOP && p.Slot1Word == encode.MovX9X30:
		c.change(l, KindMov, old, new, false, "NOP -> MOV X9,X30 is an init-time change: not allowed under a running CPU")
	case o.Slot1Word == encode.MovX9X30 && p.Slot1Word == encode.NOP:
		c.change(l, KindUnmov, old, new, false, "MOV X9,X30 -> NOP is not allowed under a running CPU")
	default:
		c.a.siteProblem(l, ProblemSlot1, old, new)
		return true
	}
	return false
}

// slot2 classifies a change of slot2 (its word or, in ET_REL, its
// relocation): NOP <-> BL and BL <-> BL are live-safe writes. It returns
// whether there was a problem.
func (c siteCheck) slot2(p *elfscan.Site) bool {
	o, a := c.o, c.a
	oldRel, newRel := c.relAt(a.oRel, o.CallSite()), c.relAt(a.pRel, o.CallSite())
	if o.Slot2Word == p.Slot2Word && oldRel == newRel {
		return false
	}
	l := c.where(o.CallSite(), o.Slot2Off())
	old, new := a.slot2Value(o.Slot2Word, oldRel), a.slot2Value(p.Slot2Word, newRel)
	isCall := func(w uint32, rel string) bool {
		return encode.IsBL(w) && (!a.rel || strings.HasPrefix(rel, "CALL26 ") || strings.HasPrefix(rel, "JUMP26 "))
	}
	isNop := func(w uint32, rel string) bool { return w == encode.NOP && rel == "" }
	switch {
	case a.rel && encode.IsBL(p.Slot2Word) && newRel == "":
		a.siteProblem(l, ProblemSlot2Unrelocated, old, new)
		return true
	case a.rel && p.Slot2Word == encode.NOP && newRel != "":
		a.siteProblem(l, ProblemSlot2Relocated, old, new)
		return true
	case isNop(o.Slot2Word, oldRel) && isCall(p.Slot2Word, newRel):
		c.change(l, KindCall, old, new, true, "")
	case isCall(o.Slot2Word, oldRel) && isNop(p.Slot2Word, newRel):
		c.change(l, KindUncall, old, new, true, "")
	case isCall(o.Slot2Word, oldRel) && isCall(p.Slot2Word, newRel):
		c.change(l, KindRetarget, old, new, true, "")
	default:
		a.siteProblem(l, ProblemSlot2, old, new)
		return true
	}
	return false
}

// intermediate records the site's intermediate state when going from
// ORIG's words to the patched ones takes two writes.
func (c siteCheck) intermediate(p *elfscan.Site) {
	o, a := c.o, c.a
	in, ok := IntermediateOf(*o, *p)
	if !ok {
		return
	}
	a.r.Counts.Intermediates++
	like, state := "new", p.State
	if in.LikeOld {
		like, state = "old", o.State
	}
	if !in.Proven {
		a.r.Counts.Unproven++
	}
	at := c.where(o.Entry(), 0)
	if o.Slot1Off() != elfscan.NoOffset {
		at.fileOffset = o.Slot1Off()
	}
	if at.fn == "" {
		at.fn = fmt.Sprintf("<no function at %#x>", o.Entry())
	}
	a.r.Intermediates = append(a.r.Intermediates, Intermediate{Section: o.Section, Address: o.Entry(), Func: o.Func,
		Order: in.Order, Like: like, Proven: in.Proven, CallSite: o.CallSite(), Site: c.i, Words: in.Words, Next: WordsOf(*p), State: state, at: at})
}

// patchedView is o with the words the patched file holds at o's places,
// and the patched scan's state, ops and target.
func (a *comparison) patchedView(o, p *elfscan.Site) elfscan.Site {
	v := *o
	v.State = p.State
	v.TakeFindings(p)
	off := func(origOff int64) int64 {
		if a.rel && o.SectionIndex() > 0 && o.SectionIndex() < len(a.of.Sections) && o.SectionIndex() < len(a.pf.Sections) {
			return origOff - int64(a.of.Sections[o.SectionIndex()].Offset) + int64(a.pf.Sections[o.SectionIndex()].Offset)
		}
		return origOff
	}
	var b [8]byte
	if o.LiteralOff() != elfscan.NoOffset && elfwrite.ReadFull(a.pr, b[:8], off(o.LiteralOff())) == nil {
		v.LiteralWord = binary.LittleEndian.Uint64(b[:])
	}
	if o.Slot1Off() != elfscan.NoOffset && elfwrite.ReadFull(a.pr, b[:4], off(o.Slot1Off())) == nil {
		v.Slot1Word = binary.LittleEndian.Uint32(b[:])
	}
	if o.Slot2Off() != elfscan.NoOffset && elfwrite.ReadFull(a.pr, b[:4], off(o.Slot2Off())) == nil {
		v.Slot2Word = binary.LittleEndian.Uint32(b[:])
	}
	return v
}
