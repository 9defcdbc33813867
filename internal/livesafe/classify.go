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
// places.
func (a *comparison) classify(i int) {
	o := &a.os.Sites[i]
	t := a.touched[i]
	a.r.Counts.SitesChanged++
	var p *elfscan.Site
	if k, ok := a.patched[siteKey{o.SectionIndex(), o.Record}]; ok {
		p = &a.ps.Sites[k]
	}
	// where returns the location of a site word at address (section offset in ET_REL).
	where := func(addr uint64, fileOff int64) loc {
		l := loc{section: o.Section, secIndex: o.SectionIndex(), addr: addr, fn: o.Func, fileOffset: fileOff}
		l.offset = addr
		if !a.rel && o.SectionIndex() > 0 && o.SectionIndex() < len(a.of.Sections) {
			l.offset = addr - a.of.Sections[o.SectionIndex()].Addr
		}
		if a.rel && o.SectionIndex() > 0 && o.SectionIndex() < len(a.of.Sections) {
			l.fileOffset = int64(a.of.Sections[o.SectionIndex()].Offset + addr)
		}
		return l
	}
	change := func(l loc, kind Kind, old, new string, safe bool, why string) {
		a.r.Changes = append(a.r.Changes, Change{Section: l.section, Offset: l.offset, Address: l.addr, FileOffset: l.fileOffset,
			Func: l.fn, Kind: kind, Old: old, New: new, LiveSafe: safe, Why: why})
		a.r.Counts.Changes[kind]++
		if safe {
			a.r.Counts.LiveSafe++
		} else {
			a.r.Counts.NotLiveSafe++
		}
	}
	if p == nil {
		a.problem(where(o.Entry(), o.Slot1Off()), "the patched file has no patch site here (its entries table changed?)")
		return
	}
	// The words are read from the patched file where ORIG has them: a
	// changed BTI can make the patched scan place the slots elsewhere.
	// The view lives in a (one Site for all sites), not on the heap per site.
	a.view = a.patchedView(o, p)
	if p.CallSite() != o.CallSite() || p.Layout != o.Layout {
		a.view.State = elfscan.StateUnknown
	}
	p = &a.view
	bad := false
	if t&bitBTI != 0 {
		bti := o.Entry()
		off := o.Slot1Off() - 4
		l := where(bti, off)
		old, new := "?", "?"
		if a.rel {
			old, new = a.relWord(a.or, o.SectionIndex(), a.of, bti), a.relWord(a.pr, o.SectionIndex(), a.pf, bti)
		} else {
			old, new = a.fileWord(a.or, off, bti), a.fileWord(a.pr, off, bti)
		}
		a.problem(l, fmt.Sprintf("the BTI at the function entry changed: %s -> %s", old, new))
		bad = true
	}
	// Words no patch may touch: the 5,3 spare word and a kCFI type hash.
	for _, w := range []struct {
		bit  uint8
		addr uint64
		off  int64
		what string
	}{
		{bitSpare, o.Spare(), o.SpareOff(), fmt.Sprintf("the spare word of this 5,3 site (the literal is at %#x) changed", o.Literal())},
		{bitCFI, o.CFIHashAddr(), o.CFIHashOff(), "the kCFI type hash before the NOPs changed (indirect calls to the function would trap)"},
	} {
		if t&w.bit == 0 {
			continue
		}
		old, new := "?", "?"
		if a.rel {
			old, new = a.relWord(a.or, o.SectionIndex(), a.of, w.addr), a.relWord(a.pr, o.SectionIndex(), a.pf, w.addr)
		} else {
			old, new = a.fileWord(a.or, w.off, w.addr), a.fileWord(a.pr, w.off, w.addr)
		}
		a.problem(where(w.addr, w.off), fmt.Sprintf("%s: %s -> %s; it must never change", w.what, old, new))
		bad = true
	}
	relOf := func(m map[relPos]string, addr uint64) string {
		if !a.rel {
			return ""
		}
		return m[relPos{o.SectionIndex(), addr}]
	}
	// Literal.
	if o.Layout.HasLiteral() && o.LiteralOff() != elfscan.NoOffset {
		oldRel, newRel := relOf(a.oRel, o.Literal()), relOf(a.pRel, o.Literal())
		if o.LiteralWord != p.LiteralWord || oldRel != newRel {
			l := where(o.Literal(), o.LiteralOff())
			old, new := literalText(o.LiteralWord, oldRel), literalText(p.LiteralWord, newRel)
			if o.Literal()%8 != 0 || o.HasProblem(elfscan.CodeMisalignedLiteral) {
				a.problem(l, fmt.Sprintf("literal changed (%s -> %s) but it is not 8-byte aligned, so no single-copy-atomic store can write it", old, new))
				bad = true
			} else {
				change(l, KindLiteral, old, new, true, "")
			}
		}
	}
	// Slot1.
	if o.Slot1Word != p.Slot1Word {
		l := where(o.CallSite()-4, o.Slot1Off())
		old, new := encode.Disasm(o.Slot1Word, o.CallSite()-4), encode.Disasm(p.Slot1Word, o.CallSite()-4)
		switch {
		case o.Slot1Word == encode.NOP && p.Slot1Word == encode.MovX9X30:
			change(l, KindMov, old, new, false, "NOP -> MOV X9,X30 is an init-time change: not allowed under a running CPU")
		case o.Slot1Word == encode.MovX9X30 && p.Slot1Word == encode.NOP:
			change(l, KindUnmov, old, new, false, "MOV X9,X30 -> NOP is not allowed under a running CPU")
		default:
			a.problem(l, fmt.Sprintf("slot1 changed from %s to %s; only NOP <-> MOV X9,X30 is allowed", old, new))
			bad = true
		}
	}
	// Slot2.
	oldRel, newRel := relOf(a.oRel, o.CallSite()), relOf(a.pRel, o.CallSite())
	if o.Slot2Word != p.Slot2Word || oldRel != newRel {
		l := where(o.CallSite(), o.Slot2Off())
		old, new := a.slot2Text(o.Slot2Word, o.CallSite(), oldRel), a.slot2Text(p.Slot2Word, o.CallSite(), newRel)
		isCall := func(w uint32, rel string) bool {
			return encode.IsBL(w) && (!a.rel || strings.HasPrefix(rel, "CALL26 ") || strings.HasPrefix(rel, "JUMP26 "))
		}
		isNop := func(w uint32, rel string) bool { return w == encode.NOP && rel == "" }
		switch {
		case a.rel && encode.IsBL(p.Slot2Word) && newRel == "":
			a.problem(l, fmt.Sprintf("slot2 is now %s without an R_AARCH64_CALL26 relocation: it would call itself", new))
			bad = true
		case a.rel && p.Slot2Word == encode.NOP && newRel != "":
			a.problem(l, fmt.Sprintf("slot2 is NOP but carries relocation %s: the linker would make it a branch", newRel))
			bad = true
		case isNop(o.Slot2Word, oldRel) && isCall(p.Slot2Word, newRel):
			change(l, KindCall, old, new, true, "")
		case isCall(o.Slot2Word, oldRel) && isNop(p.Slot2Word, newRel):
			change(l, KindUncall, old, new, true, "")
		case isCall(o.Slot2Word, oldRel) && isCall(p.Slot2Word, newRel):
			change(l, KindRetarget, old, new, true, "")
		default:
			a.problem(l, fmt.Sprintf("slot2 changed from %s to %s; only NOP <-> BL and BL <-> BL are allowed", old, new))
			bad = true
		}
	}
	if !bad && p.State == elfscan.StateUnknown {
		a.problem(where(o.Entry(), o.Slot1Off()), fmt.Sprintf("the patched site is in no known state (slot1 %s, slot2 %s)",
			encode.Disasm(p.Slot1Word, o.CallSite()-4), encode.Disasm(p.Slot2Word, o.CallSite())))
	}
	if in, ok := IntermediateOf(*o, *p); ok {
		a.r.Counts.Intermediates++
		like := "new"
		if in.LikeOld {
			like = "old"
		}
		if !in.Proven {
			a.r.Counts.Unproven++
		}
		state := p.State
		if in.LikeOld {
			state = o.State
		}
		at := where(o.Entry(), 0)
		if o.Slot1Off() != elfscan.NoOffset {
			at.fileOffset = o.Slot1Off()
		}
		if at.fn == "" {
			at.fn = fmt.Sprintf("<no function at %#x>", o.Entry())
		}
		a.r.Intermediates = append(a.r.Intermediates, Intermediate{Section: o.Section, Address: o.Entry(), Func: o.Func,
			Order: in.Order, Like: like, Proven: in.Proven, Detail: in.Detail, Site: i, Words: in.Words, Next: WordsOf(*p), State: state, at: at})
	}
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
	if o.LiteralOff() != elfscan.NoOffset && readFull(a.pr, b[:8], off(o.LiteralOff())) == nil {
		v.LiteralWord = binary.LittleEndian.Uint64(b[:])
	}
	if o.Slot1Off() != elfscan.NoOffset && readFull(a.pr, b[:4], off(o.Slot1Off())) == nil {
		v.Slot1Word = binary.LittleEndian.Uint32(b[:])
	}
	if o.Slot2Off() != elfscan.NoOffset && readFull(a.pr, b[:4], off(o.Slot2Off())) == nil {
		v.Slot2Word = binary.LittleEndian.Uint32(b[:])
	}
	return v
}
