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
// the Site of one record.
//
// Layout, when a symbol says it: a function symbol at record+8 means
// call-ops (4,2); at record+12, call-ops-5-3; at the record, or at record-4
// over a BTI, classic. Without one (stripped or hand-written code) the words
// decide: BTI at record+8 → call-ops; BTI at record+12 → call-ops-5-3; BTI
// at record-4 → classic; MOV X9,X30 at the record → classic (already
// initialised); MOV X9,X30 at record+12, or five NOPs from the record →
// call-ops-5-3; an 8-aligned record followed, after the would-be literal, by
// {NOP|MOV X9,X30} and {NOP|BL} → call-ops; otherwise classic. The site then
// carries no-function.
func (sc *scanner) site(rec record, s *Site) error {
	recSec := int(rec.key)
	*s = Site{Record: rec.value, secIndex: int32(recSec), State: StateUnknown}
	sc.x = siteExtra{}
	s.x = &sc.x
	R := rec.value
	var sec *elf.Section
	var base uint64
	w := window{}
	if recSec > 0 {
		sec = sc.f.Sections[recSec]
		s.Section = sec.Name
		if !sc.rel {
			base = sec.Addr
		}
		end := base + sec.Size
		if end < base {
			end = ^uint64(0) // a corrupt size; reading will fail
		}
		if sec.Type != elf.SHT_NOBITS && R >= base && R < end && R < ^uint64(0)-24 {
			lo := max(R, base+4) - 4
			hi := min(R+24, end) // at most 28 bytes: a kCFI hash, 5,3's three words, BTI, two slots
			b, err := sc.rd.get(int64(sec.Offset+(lo-base)), int(hi-lo), int64(sec.Offset+sec.Size))
			if err != nil {
				return fmt.Errorf("%w: section %q at %#x: reading the words of record %#x: %w", ErrMalformed, sec.Name, sec.Offset+(lo-base), R, err)
			}
			w = window{lo, hi, b}
		}
	}
	key := uint32(0)
	if sc.rel {
		key = rec.key
	}
	isBTI := func(a uint64) bool { v, ok := w.word(a); return ok && encode.IsBTI(v) }
	isWord := func(a uint64, want uint32) bool { v, ok := w.word(a); return ok && v == want }

	// Layout and entry.
	fn := int32(-1)
	layout, entry, bti := LayoutClassic, R, false
	pick := func(maxRank int) bool {
		if i := sc.st.at(key, R+8, maxRank); i >= 0 {
			fn, layout, entry, bti = i, LayoutCallOps, R+8, isBTI(R+8)
			return true
		}
		// A function at the record itself is a classic site, even with
		// another 12 bytes on: Debian 12's 6.1 has `abort` (NOP, NOP, BRK)
		// right before bitmap_copy. A 5,3 record cannot start a function:
		// its three words come before the entry.
		if i := sc.st.at(key, R, maxRank); i >= 0 {
			fn, layout, entry = i, LayoutClassic, R
			return true
		}
		if i := sc.st.at(key, R+12, maxRank); i >= 0 {
			fn, layout, entry, bti = i, LayoutCallOps53, R+12, isBTI(R+12)
			return true
		}
		if R >= 4 && isBTI(R-4) {
			if i := sc.st.at(key, R-4, maxRank); i >= 0 {
				fn, layout, entry, bti = i, LayoutClassic, R-4, true
				return true
			}
		}
		return false
	}
	if !pick(1) && !pick(2) {
		w0, _ := w.word(R)
		w2, ok2 := w.word(R + 8)
		w3, ok3 := w.word(R + 12)
		nops5 := true
		for a := R; a < R+20; a += 4 {
			nops5 = nops5 && isWord(a, encode.NOP)
		}
		switch {
		case isBTI(R + 8):
			layout, entry, bti = LayoutCallOps, R+8, true
		case isBTI(R + 12):
			layout, entry, bti = LayoutCallOps53, R+12, true
		case R >= 4 && isBTI(R-4):
			layout, entry, bti = LayoutClassic, R-4, true
		case w0 == encode.MovX9X30:
			layout, entry = LayoutClassic, R
		case ok3 && w3 == encode.MovX9X30, nops5:
			layout, entry = LayoutCallOps53, R+12
		case R%8 == 0 && ok2 && ok3 && (w2 == encode.NOP || w2 == encode.MovX9X30) && (w3 == encode.NOP || encode.IsBL(w3)):
			layout, entry = LayoutCallOps, R+8
		}
		if fn = sc.st.containing(key, entry); fn < 0 {
			s.addProblem(Problem{CodeNoFunction, fmt.Sprintf("no function symbol at or around entry %#x; %s", entry, NoFunctionHelp)})
		}
	}
	if fn >= 0 {
		s.Func = sc.st.name(fn)
	}
	// Every address of the site follows from these three (Site.Entry,
	// CallSite, Literal, Spare), as its file offsets from the record's.
	s.Layout, s.BTI = layout, bti
	if s.Entry() != entry {
		return fmt.Errorf("internal error: site at record %#x: entry %#x, but %v with bti %v puts it at %#x", R, entry, layout, bti, s.Entry())
	}
	if sec != nil {
		s.recOff = int64(sec.Offset + (R - base))
	}
	slot1 := s.Slot1()
	callSite := s.CallSite()
	first := entry
	if layout.HasLiteral() {
		first = R
	}
	if layout.HasLiteral() && R >= 4 {
		// A kCFI type hash: a word just before the NOPs that no function
		// covers and no NOP, BTI or padding explains, in a file Clang
		// may have built (see kcfiToolchain).
		if h, ok := w.word(R - 4); ok && sc.kcfi && h != encode.NOP && h != 0 && !encode.IsBTI(h) && fn >= 0 && sc.st.containing(key, R-4) < 0 {
			s.have |= haveCFIHash
			s.x.cfiHash = h
		}
	}

	// Where the site is.
	switch {
	case sec == nil:
		s.addProblem(Problem{CodeOutsideText, fmt.Sprintf("record %#x is in no section", R)})
	case sec.Flags&elf.SHF_EXECINSTR == 0:
		s.addProblem(Problem{CodeOutsideText, fmt.Sprintf("record %#x is in section %q, which is not executable", R, sec.Name)})
	case !w.has(first, callSite+4-first):
		s.addProblem(Problem{CodeOutsideText, fmt.Sprintf("site words %#x..%#x run past the end of section %q (%#x..%#x)",
			first, callSite+4, sec.Name, base, base+sec.Size)})
	}
	align := uint64(0)
	if sec != nil {
		align = sec.Addralign
	}
	switch {
	case layout == LayoutCallOps && R%8 != 0:
		s.addProblem(Problem{CodeMisalignedLiteral, fmt.Sprintf("literal at %#x in section %q is not 8-byte aligned; %s", R, s.Section, MisalignedAdvice(s))})
	case layout == LayoutCallOps && sc.rel && align < 8:
		s.addProblem(Problem{CodeMisalignedLiteral, fmt.Sprintf("literal at %#x in section %q cannot be 8-byte aligned after linking (sh_addralign %d); %s", R, s.Section, align, MisalignedAdvice(s))})
	case layout == LayoutCallOps53 && R%4 != 0:
		s.addProblem(Problem{CodeMisalignedLiteral, fmt.Sprintf("record %#x in section %q is not 4-byte aligned, so no pair of its words is 8-byte aligned", R, s.Section)})
	}
	// Literal, spare word and ops.
	literal, spare := s.Literal(), s.Spare()
	if layout == LayoutCallOps53 {
		if v, ok := w.word(spare); ok {
			s.have |= haveSpare
			s.x.spareWord = v
			if v != encode.NOP {
				s.addProblem(Problem{CodeUnexpectedInsn, fmt.Sprintf(
					"spare word at %#x (the pre-entry word outside the literal at %#x) holds %#08x; it must stay NOP", spare, literal, v)})
			}
		}
	}
	if layout.HasLiteral() {
		if v, ok := w.dword(literal); ok {
			s.have |= haveLiteral
			s.LiteralWord = v
		}
		if err := sc.ops(s, recSec, key); err != nil {
			return err
		}
	}

	// Slots and state.
	w1, ok1 := w.word(slot1)
	w2, ok2 := w.word(callSite)
	if ok1 {
		s.have |= haveSlot1
		s.Slot1Word = w1
	}
	if ok2 {
		s.have |= haveSlot2
		s.Slot2Word = w2
	}
	var call *Rela
	if sc.rel {
		rels, err := sc.relocsAt(recSec, slot1, callSite+4)
		if err != nil {
			return err
		}
		for _, rl := range rels {
			switch {
			case rl.Off == callSite && (rl.Type == elf.R_AARCH64_CALL26 || rl.Type == elf.R_AARCH64_JUMP26):
				r := rl
				call = &r
			default:
				s.addProblem(Problem{CodeUnexpectedInsn, fmt.Sprintf("relocation %v at %#x in the site", rl.Type, rl.Off)})
			}
		}
	}
	isBL := ok2 && encode.IsBL(w2)
	switch {
	case !ok1 || !ok2:
		// outside-text says why
	case w1 == encode.NOP && w2 == encode.NOP && call == nil:
		s.State = StateNop
	case w1 == encode.MovX9X30 && w2 == encode.NOP && call == nil:
		s.State = StateInit
	case w1 == encode.MovX9X30 && isBL:
		s.State = StateEnabled
	default:
		s.addProblem(Problem{CodeUnexpectedInsn, fmt.Sprintf(
			"slot1 at %#x holds %#08x, slot2 at %#x holds %#08x; expected NOP or MOV X9,X30 (%#08x), then NOP or BL",
			slot1, w1, callSite, w2, encode.MovX9X30)})
	}
	if layout == LayoutCallOps53 {
		if sc.rel {
			rels, err := sc.relocsAt(recSec, spare, spare+4)
			if err != nil {
				return err
			}
			for _, rl := range rels {
				s.addProblem(Problem{CodeUnexpectedInsn, fmt.Sprintf("relocation %v at %#x, the spare word (the literal is at %#x)", rl.Type, rl.Off, literal)})
			}
		}
		if sc.rel && align < 8 && (s.LiteralWord != nopLiteral || s.Ops() != nil) {
			s.addProblem(Problem{CodeMisalignedLiteral, fmt.Sprintf(
				"literal written at %#x in section %q, whose sh_addralign %d does not keep it 8-byte aligned after linking (ftpatch raises it to 8 when it writes a literal)", literal, s.Section, align)})
		}
	}
	if isBL {
		if call != nil {
			s.setTarget(sc.relRef(*call))
		} else {
			t := encode.BLTarget(w2, callSite)
			s.setTarget(Ref{Addr: t, Sym: sc.symName(key, t)})
		}
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
	if int(rl.Sym) < len(sc.st.syms) && rl.Sym != 0 {
		sym := sc.st.syms[rl.Sym]
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
