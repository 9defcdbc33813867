// SPDX-License-Identifier: Apache-2.0

package elfscan

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/ftpatch/ftpatch/internal/encode"
)

// chunkReader serves small reads from a window of the file, refilled when a
// read falls outside it; sites are visited in address order, so the words
// of neighbouring sites come from one read.
type chunkReader struct {
	r     io.ReaderAt
	mem   []byte // the whole file when it is in memory (Object.mem): read in place
	buf   []byte
	start int64
	n     int
}

// chunkSize is how far ahead one read goes.
const chunkSize = 128 << 10

// readBufs pools chunkReader buffers: a folder scan reads every file's
// code through one per worker.
var readBufs sync.Pool

func getReadBuf() []byte {
	if p, ok := readBufs.Get().(*[]byte); ok {
		return *p
	}
	return nil
}

func putReadBuf(b []byte) {
	if cap(b) > 0 {
		readBufs.Put(&b)
	}
}

// get returns size bytes at off, reading ahead no further than limit.
func (c *chunkReader) get(off int64, size int, limit int64) ([]byte, error) {
	if off < 0 || size < 0 || off > math.MaxInt64-int64(size) {
		return nil, fmt.Errorf("file offset %#x out of range", uint64(off))
	}
	if c.n > 0 && off >= c.start && off-c.start <= int64(c.n-size) {
		return c.buf[off-c.start:][:size], nil
	}
	if c.mem != nil && off <= int64(len(c.mem)-size) {
		return c.mem[off:][:size:size], nil
	}
	want := min(chunkSize, limit-off)
	if want < int64(size) {
		want = int64(size)
	}
	if int64(len(c.buf)) < want {
		if int64(cap(c.buf)) >= want {
			c.buf = c.buf[:cap(c.buf)]
		} else {
			c.buf = make([]byte, want)
		}
	}
	n, err := c.r.ReadAt(c.buf[:want], off)
	c.start, c.n = off, n
	if n < size {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		c.n = 0
		return nil, err
	}
	return c.buf[off-c.start:][:size], nil
}

// window holds the words around one record: [lo, hi) in the site's address
// space, read from the file.
type window struct {
	lo, hi uint64
	b      []byte
}

func (w *window) has(a uint64, n uint64) bool { return a >= w.lo && a+n <= w.hi && a+n >= a }

func (w *window) word(a uint64) (uint32, bool) {
	if !w.has(a, 4) {
		return 0, false
	}
	return binary.LittleEndian.Uint32(w.b[a-w.lo:]), true
}

func (w *window) dword(a uint64) (uint64, bool) {
	if !w.has(a, 8) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(w.b[a-w.lo:]), true
}

// site fills *s (in place: a kernel has many, and a Site is large) with
// the Site of one record, in four steps: the words around the record
// (readWords), the layout they and the symbols give (placeSite), the
// problems of where the site is (placementProblems), then its literal
// (literalWords) and its state (siteState).
func (sc *scanner) site(rec record, s *Site) error {
	*s = Site{Record: rec.value, secIndex: int32(rec.key), State: StateUnknown}
	sc.x = siteExtra{}
	s.x = &sc.x
	c := siteCtx{rec: rec.value, recSec: int(rec.key), fn: -1}
	if sc.rel {
		c.key = rec.key
	}
	if err := sc.readWords(&c, s); err != nil {
		return err
	}
	if err := sc.placeSite(&c, s); err != nil {
		return err
	}
	sc.placementProblems(&c, s)
	if err := sc.literalWords(&c, s); err != nil {
		return err
	}
	return sc.siteState(&c, s)
}

// siteCtx is what the steps of one site's scan share. It lives on the
// stack of site: a kernel has tens of thousands of sites, built without
// allocating.
type siteCtx struct {
	rec    uint64       // the record (ET_REL: an offset in its section)
	recSec int          // the record's section index (0: none)
	key    uint32       // the section key of symbol lookups (ET_REL: recSec; linked files: 0)
	sec    *elf.Section // the record's section, nil when none
	base   uint64       // sec's address (0 in ET_REL, where addresses are offsets)
	w      window       // the words around the record
	fn     int32        // the function symbol, -1 when none
}

func (c *siteCtx) isBTI(a uint64) bool { v, ok := c.w.word(a); return ok && encode.IsBTI(v) }

// align is the record section's sh_addralign (0 when in no section).
func (c *siteCtx) align() uint64 {
	if c.sec == nil {
		return 0
	}
	return c.sec.Addralign
}

// readWords finds the record's section and reads the words around the
// record into c.w: at most 28 bytes, a kCFI hash, 5,3's three words, BTI
// and two slots. A record outside its section's contents reads none
// (placementProblems says why).
func (sc *scanner) readWords(c *siteCtx, s *Site) error {
	if c.recSec <= 0 {
		return nil
	}
	sec := sc.f.Sections[c.recSec]
	c.sec, s.Section = sec, sec.Name
	if !sc.rel {
		c.base = sec.Addr
	}
	base, r := c.base, c.rec
	end := base + sec.Size
	if end < base {
		end = ^uint64(0) // a corrupt size; reading will fail
	}
	if sec.Type == elf.SHT_NOBITS || r < base || r >= end || r >= ^uint64(0)-24 {
		return nil
	}
	lo := max(r, base+4) - 4
	hi := min(r+24, end)
	b, err := sc.rd.get(int64(sec.Offset+(lo-base)), int(hi-lo), int64(sec.Offset+sec.Size))
	if err != nil {
		return fmt.Errorf("%w: section %q at %#x: reading the words of record %#x: %w", ErrMalformed, sec.Name, sec.Offset+(lo-base), r, err)
	}
	c.w = window{lo, hi, b}
	return nil
}

// shape is a site's layout, entry and BTI: every address of the site
// follows from them (Site.Entry, CallSite, Literal, Spare).
type shape struct {
	layout Layout
	entry  uint64
	bti    bool
}

// placeSite gives s its layout and function, and notes a kCFI hash before
// it.
//
// Layout, when a symbol says it: a function symbol at record+8 means
// call-ops (4,2); at record+12, call-ops-5-3; at the record, or at record-4
// over a BTI, classic (symbolShape). Without one (stripped or hand-written
// code) the words decide (wordShape), and the site carries no-function.
func (sc *scanner) placeSite(c *siteCtx, s *Site) error {
	p, ok := sc.symbolShape(c, 1)
	if !ok {
		p, ok = sc.symbolShape(c, 2)
	}
	if !ok {
		p = wordShape(c)
		if c.fn = sc.st.containing(c.key, p.entry); c.fn < 0 {
			s.addProblem(Problem{CodeNoFunction, fmt.Sprintf("no function symbol at or around entry %#x; %s", p.entry, NoFunctionHelp)})
		}
	}
	if c.fn >= 0 {
		s.Func = sc.st.name(c.fn)
	}
	s.Layout, s.BTI = p.layout, p.bti
	if s.Entry() != p.entry {
		return fmt.Errorf("internal error: site at record %#x: entry %#x, but %v with bti %v puts it at %#x", c.rec, p.entry, p.layout, p.bti, s.Entry())
	}
	if c.sec != nil {
		s.recOff = int64(c.sec.Offset + (c.rec - c.base))
	}
	sc.cfiHash(c, s)
	return nil
}

// symbolShape is the shape a function symbol of rank at most maxRank
// gives the site, setting c.fn; ok is false when there is none.
func (sc *scanner) symbolShape(c *siteCtx, maxRank int) (p shape, ok bool) {
	r, key := c.rec, c.key
	if i := sc.st.at(key, r+8, maxRank); i >= 0 {
		c.fn = i
		return shape{LayoutCallOps, r + 8, c.isBTI(r + 8)}, true
	}
	// A function at the record itself is a classic site, even with
	// another 12 bytes on: Debian 12's 6.1 has `abort` (NOP, NOP, BRK)
	// right before bitmap_copy. A 5,3 record cannot start a function:
	// its three words come before the entry.
	if i := sc.st.at(key, r, maxRank); i >= 0 {
		c.fn = i
		return shape{LayoutClassic, r, false}, true
	}
	if i := sc.st.at(key, r+12, maxRank); i >= 0 {
		c.fn = i
		return shape{LayoutCallOps53, r + 12, c.isBTI(r + 12)}, true
	}
	if r >= 4 && c.isBTI(r-4) {
		if i := sc.st.at(key, r-4, maxRank); i >= 0 {
			c.fn = i
			return shape{LayoutClassic, r - 4, true}, true
		}
	}
	return shape{}, false
}

// wordShape is the shape the words give a site no symbol places: BTI at
// record+8 → call-ops; BTI at record+12 → call-ops-5-3; BTI at record-4 →
// classic; MOV X9,X30 at the record → classic (already initialised); MOV
// X9,X30 at record+12, or five NOPs from the record → call-ops-5-3; an
// 8-aligned record followed, after the would-be literal, by {NOP|MOV
// X9,X30} and {NOP|BL} → call-ops; otherwise classic.
func wordShape(c *siteCtx) shape {
	r, w := c.rec, &c.w
	w0, _ := w.word(r)
	w2, ok2 := w.word(r + 8)
	w3, ok3 := w.word(r + 12)
	switch {
	case c.isBTI(r + 8):
		return shape{LayoutCallOps, r + 8, true}
	case c.isBTI(r + 12):
		return shape{LayoutCallOps53, r + 12, true}
	case r >= 4 && c.isBTI(r-4):
		return shape{LayoutClassic, r - 4, true}
	case w0 == encode.MovX9X30:
		return shape{LayoutClassic, r, false}
	case ok3 && w3 == encode.MovX9X30, fiveNOPs(w, r):
		return shape{LayoutCallOps53, r + 12, false}
	case r%8 == 0 && ok2 && ok3 && (w2 == encode.NOP || w2 == encode.MovX9X30) && (w3 == encode.NOP || encode.IsBL(w3)):
		return shape{LayoutCallOps, r + 8, false}
	}
	return shape{LayoutClassic, r, false}
}

// fiveNOPs reports whether the five words from r are NOPs (true too
// when r+20 wraps around: no word is tested).
func fiveNOPs(w *window, r uint64) bool {
	for a := r; a < r+20; a += 4 {
		if v, ok := w.word(a); !ok || v != encode.NOP {
			return false
		}
	}
	return true
}

// cfiHash notes a kCFI type hash before a site with a literal: a word just
// before the NOPs that no function covers and no NOP, BTI or padding
// explains.
func (sc *scanner) cfiHash(c *siteCtx, s *Site) {
	if !s.Layout.HasLiteral() || c.rec < 4 {
		return
	}
	// A kCFI type hash: a word just before the NOPs that no function
	// covers and no NOP, BTI or padding explains, in a file Clang may have
	// built (see kcfiToolchain).
	h, ok := c.w.word(c.rec - 4)
	if ok && sc.kcfi && h != encode.NOP && h != 0 && !encode.IsBTI(h) && c.fn >= 0 && sc.st.containing(c.key, c.rec-4) < 0 {
		s.have |= haveCFIHash
		s.x.cfiHash = h
	}
}

// placementProblems flags a site whose place cannot hold it: in no
// section, in one that is not code, or running past its end
// (outside-text); a literal that is, or may end up, misaligned
// (misaligned-literal).
func (sc *scanner) placementProblems(c *siteCtx, s *Site) {
	outsideText(c, s)
	sc.misalignedLiteral(c, s)
}

// outsideText flags a site that is not wholly in executable code.
func outsideText(c *siteCtx, s *Site) {
	r, sec := c.rec, c.sec
	first, callSite := s.Entry(), s.CallSite()
	if s.Layout.HasLiteral() {
		first = r
	}
	switch {
	case sec == nil:
		s.addProblem(Problem{CodeOutsideText, fmt.Sprintf("record %#x is in no section", r)})
	case sec.Flags&elf.SHF_EXECINSTR == 0:
		s.addProblem(Problem{CodeOutsideText, fmt.Sprintf("record %#x is in section %q, which is not executable", r, sec.Name)})
	case !c.w.has(first, callSite+4-first):
		s.addProblem(Problem{CodeOutsideText, fmt.Sprintf("site words %#x..%#x run past the end of section %q (%#x..%#x)",
			first, callSite+4, sec.Name, c.base, c.base+sec.Size)})
	}
}

// misalignedLiteral flags a literal that is not 8-byte aligned, or in
// ET_REL may not stay so after linking.
func (sc *scanner) misalignedLiteral(c *siteCtx, s *Site) {
	r, align := c.rec, c.align()
	switch {
	case s.Layout == LayoutCallOps && r%8 != 0:
		s.addProblem(Problem{CodeMisalignedLiteral, fmt.Sprintf("literal at %#x in section %q is not 8-byte aligned; %s", r, s.Section, MisalignedAdvice(s))})
	case s.Layout == LayoutCallOps && sc.rel && align < 8:
		s.addProblem(Problem{CodeMisalignedLiteral, fmt.Sprintf("literal at %#x in section %q cannot be 8-byte aligned after linking (sh_addralign %d); %s", r, s.Section, align, MisalignedAdvice(s))})
	case s.Layout == LayoutCallOps53 && r%4 != 0:
		s.addProblem(Problem{CodeMisalignedLiteral, fmt.Sprintf("record %#x in section %q is not 4-byte aligned, so no pair of its words is 8-byte aligned", r, s.Section)})
	}
}

// literalWords reads a 5,3 site's spare word, which must stay NOP, and
// the literal of a site that has one, with the ops it holds (ops).
func (sc *scanner) literalWords(c *siteCtx, s *Site) error {
	if s.Layout == LayoutCallOps53 {
		if v, ok := c.w.word(s.Spare()); ok {
			s.have |= haveSpare
			s.x.spareWord = v
			if v != encode.NOP {
				s.addProblem(Problem{CodeUnexpectedInsn, fmt.Sprintf(
					"spare word at %#x (the pre-entry word outside the literal at %#x) holds %#08x; it must stay NOP", s.Spare(), s.Literal(), v)})
			}
		}
	}
	if !s.Layout.HasLiteral() {
		return nil
	}
	if v, ok := c.w.dword(s.Literal()); ok {
		s.have |= haveLiteral
		s.LiteralWord = v
	}
	return sc.ops(s, c.recSec, c.key)
}

// siteState reads the two slots and gives s the state they say (nop, init,
// enabled; unexpected-insn otherwise) and the BL's target.
func (sc *scanner) siteState(c *siteCtx, s *Site) error {
	slot1, callSite := s.Slot1(), s.CallSite()
	w1, ok1 := c.w.word(slot1)
	w2, ok2 := c.w.word(callSite)
	if ok1 {
		s.have |= haveSlot1
		s.Slot1Word = w1
	}
	if ok2 {
		s.have |= haveSlot2
		s.Slot2Word = w2
	}
	call, hasCall, err := sc.callReloc(c, s)
	if err != nil {
		return err
	}
	if ok1 && ok2 { // else outside-text says why
		if st, ok := slotState(w1, w2, hasCall); ok {
			s.State = st
		} else {
			s.addProblem(Problem{CodeUnexpectedInsn, fmt.Sprintf(
				"slot1 at %#x holds %#08x, slot2 at %#x holds %#08x; expected NOP or MOV X9,X30 (%#08x), then NOP or BL",
				slot1, w1, callSite, w2, encode.MovX9X30)})
		}
	}
	isBL := ok2 && encode.IsBL(w2)
	if s.Layout == LayoutCallOps53 && sc.rel {
		if err := sc.relLiteral53(c, s); err != nil {
			return err
		}
	}
	switch {
	case isBL && hasCall:
		s.setTarget(sc.relRef(call))
	case isBL:
		t := encode.BLTarget(w2, callSite)
		s.setTarget(Ref{Addr: t, Sym: sc.symName(c.key, t)})
	}
	return nil
}

// slotState is the state slot1 w1 and slot2 w2 say (hasCall: slot2 has
// an ET_REL call relocation); ok is false when they say none.
func slotState(w1, w2 uint32, hasCall bool) (st State, ok bool) {
	switch {
	case w1 == encode.NOP && w2 == encode.NOP && !hasCall:
		return StateNop, true
	case w1 == encode.MovX9X30 && w2 == encode.NOP && !hasCall:
		return StateInit, true
	case w1 == encode.MovX9X30 && encode.IsBL(w2):
		return StateEnabled, true
	}
	return StateUnknown, false
}

// callReloc is, in ET_REL, the relocation of the BL in slot2 (found
// false when none); any other relocation in the slots is a problem.
func (sc *scanner) callReloc(c *siteCtx, s *Site) (call Rela, found bool, err error) {
	if !sc.rel {
		return Rela{}, false, nil
	}
	callSite := s.CallSite()
	rels, err := sc.relocsAt(c.recSec, s.Slot1(), callSite+4)
	if err != nil {
		return Rela{}, false, err
	}
	for _, rl := range rels {
		if rl.Off == callSite && (rl.Type == elf.R_AARCH64_CALL26 || rl.Type == elf.R_AARCH64_JUMP26) {
			call, found = rl, true
			continue
		}
		s.addProblem(Problem{CodeUnexpectedInsn, fmt.Sprintf("relocation %v at %#x in the site", rl.Type, rl.Off)})
	}
	return call, found, nil
}

// relLiteral53 flags, in an ET_REL 5,3 site, a relocation at the spare
// word, and a written literal whose section's alignment does not keep it
// aligned after linking.
func (sc *scanner) relLiteral53(c *siteCtx, s *Site) error {
	spare, literal := s.Spare(), s.Literal()
	rels, err := sc.relocsAt(c.recSec, spare, spare+4)
	if err != nil {
		return err
	}
	for _, rl := range rels {
		s.addProblem(Problem{CodeUnexpectedInsn, fmt.Sprintf("relocation %v at %#x, the spare word (the literal is at %#x)", rl.Type, rl.Off, literal)})
	}
	if align := c.align(); align < 8 && (s.LiteralWord != nopLiteral || s.Ops() != nil) {
		s.addProblem(Problem{CodeMisalignedLiteral, fmt.Sprintf(
			"literal written at %#x in section %q, whose sh_addralign %d does not keep it 8-byte aligned after linking (ftpatch raises it to 8 when it writes a literal)", literal, s.Section, align)})
	}
	return nil
}

// ops sets the value of a call-ops literal (Site.Ops).
func (sc *scanner) ops(s *Site, sec int, key uint32) error {
	if sc.rel {
		lit := s.Literal()
		rels, err := sc.relocsAt(sec, lit, lit+8)
		if err != nil {
			return err
		}
		for _, rl := range rels {
			if rl.Off == lit && rl.Type == elf.R_AARCH64_ABS64 {
				s.setOps(sc.relRef(rl))
				return nil
			}
			s.addProblem(Problem{CodeUnexpectedInsn, fmt.Sprintf("relocation %v at %#x in the literal", rl.Type, rl.Off)})
		}
	}
	v := s.LiteralWord
	if s.have&haveLiteral == 0 || v == nopLiteral {
		return nil
	}
	if v == 0 {
		// Zero: as compiled by some toolchains, or relocated at load time
		// (only the entries' own dynamic relocations are read).
		return nil
	}
	if sc.rel {
		s.setOps(Ref{Addr: v})
	} else {
		s.setOps(Ref{Addr: v, Sym: sc.symName(key, v)})
	}
	return nil
}

// symName names the symbol defined exactly at (key, a), or "": a function,
// else a data object (ops is one), else any other symbol — so a linker
// script's untyped marker such as _sdata never hides the object it starts.
// It remembers its last two answers: the sites of a patched file name the
// same trampoline and ops over and over, and looking them up again moved
// the symbol table's hint away from the sites' addresses, so that each
// next site's lookup began with a binary search (about a thousand
// instructions an enabled site).
func (sc *scanner) symName(key uint32, a uint64) string {
	for k := range sc.names {
		if n := &sc.names[k]; n.ok && n.key == key && n.a == a {
			return n.name
		}
	}
	name := ""
	if i := sc.st.named(key, a); i >= 0 {
		name = sc.st.name(i)
	}
	sc.names[1], sc.names[0] = sc.names[0], named{key, a, name, true}
	return name
}

// relRef turns an ET_REL relocation into a Ref: the symbol's name (its
// section's for a section symbol) and the addend.
func (sc *scanner) relRef(rl Rela) Ref {
	ref := Ref{Addr: uint64(rl.Addend), SymIndex: rl.Sym}
	if int(rl.Sym) < sc.st.len() && rl.Sym != 0 {
		sym := sc.st.sym(rl.Sym)
		if sym.typ() == elf.STT_SECTION && int(sym.shndx) < len(sc.f.Sections) {
			ref.Sym = sc.f.Sections[sym.shndx].Name
		} else {
			ref.Sym = sc.st.name(int32(rl.Sym))
		}
	}
	return ref
}

// relocsAt returns the relocations of ET_REL section sec with offsets in
// [lo, hi).
func (sc *scanner) relocsAt(sec int, lo, hi uint64) ([]Rela, error) { return sc.relCur.In(sec, lo, hi) }
