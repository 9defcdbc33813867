// SPDX-License-Identifier: Apache-2.0

package verify

import (
	"debug/elf"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/patch"
	"github.com/ftpatch/ftpatch/internal/verify/uc"
)

// DefaultTrampoline is the symbol enabled sites must call, as for enable.
const DefaultTrampoline = "ftrace_caller"

// LoadObject lays out an opened file (elfscan.Open), with its (shared)
// scan, for emulation: see Image. The Image does not keep o: the caller
// may close it once LoadObject returns, and closes the Image.
func LoadObject(o *elfscan.Object, opts Options) (img *Image, err error) {
	if opts, err = opts.withDefaults(); err != nil {
		return nil, err
	}
	sf, err := o.Scan()
	if err != nil {
		return nil, err
	}
	if err := checkTrampolineNamed(o, sf.Sites, opts); err != nil {
		return nil, err
	}
	if err := checkFileTrampoline(o, sf.Sites, opts); err != nil {
		return nil, err
	}
	f := o.ELF()
	img = &Image{Path: sf.Path, Type: f.Type, trampName: opts.Trampoline, funcs: map[uint64]bool{}}
	built := img // `return nil, err` has cleared img by the time this runs
	defer func() {
		if err != nil {
			built.Close()
			img = nil
		}
	}()
	var rel *relLayout
	var dynOther map[uint64]elf.R_AARCH64
	switch f.Type {
	case elf.ET_REL:
		if rel, err = img.loadRel(o); err != nil {
			return nil, err
		}
	default:
		fd, ok := o.Fd()
		if !ok {
			fd = -1
		}
		if err = img.loadLinked(f, o, fd); err != nil {
			return nil, err
		}
		all := opts.RunFileTrampoline || len(opts.Direct) > 0 || opts.allRelocs
		if dynOther, err = img.applyDynRelocs(o, all); err != nil {
			return nil, err
		}
	}
	if len(opts.Direct) > 0 {
		img.directOff = opts.DirectCallOffset
	}
	if err = img.addStandins(); err != nil {
		return nil, err
	}
	if err = img.resolveDirects(o, rel, opts); err != nil {
		return nil, err
	}
	img.rel = rel
	sites := sf.Sites
	if opts.Select != nil { // the scan is shared: filter a copy
		sites = slices.DeleteFunc(slices.Clone(sites), func(s elfscan.Site) bool { return !opts.Select(s.Func) })
	}
	img.bind(o, rel, dynOther, sites, opts)
	if img.classicFileErr != "" {
		return nil, fmt.Errorf("%w: %s", ErrNoFileTrampoline, img.classicFileErr)
	}
	return img, nil
}

func (s *site) fail(expected, observed string) {
	if s.static == nil {
		s.static = &Failure{Expected: expected, Observed: observed}
	}
}

// checkStatic checks what can be known without running: a known state, and
// for enabled sites the BL target and the op the literal points at.
func (img *Image) checkStatic(s *site, classic bool, opts Options) {
	b := binder{img: img, classic: classic, opts: opts, funcs: img.funcs}
	b.checkStatic(s)
}

// binder checks sites statically (checkStatic) for bind, on one goroutine
// of several: the op->func addresses it finds go to its own set, and its
// places in the relocations and its last op are its own.
type binder struct {
	img             *Image
	classic         bool
	opts            Options
	funcs           map[uint64]bool
	unapplied       []uint64 // where dynamic relocations verify does not apply are, sorted
	litHint, opHint int
	// The last op whose first word is code, and that word: the enabled
	// sites of a kernel share one or two ops.
	lastOp, lastFn uint64
	tally          tally // of its range
	// fromScan lets it take a site's words from the scan where the image
	// holds the file's bytes (Image.scanned): bind's sites, whose Sites
	// are the scan's (not an intermediate state's, whose words are its
	// own and the image's overlaid).
	fromScan bool
}

// tally counts an image's sites as bind leaves them, for Check and its
// steps, which otherwise each walked every site for them: a walk of the
// ~50k sites of a kernel loads each one's Site from its own cache line
// (perf, the 53k-site bench image: ~1 ms of cpu in Check's four walks).
type tally struct {
	skipped, static int
	byState         [256]int // of the sites not skipped (elfscan.State is a uint8)
	enabledRuns     int      // enabled sites that run: neither skipped nor failed statically
	statics         []int32  // the sites that failed statically, in site order
}

// add counts site i.
func (t *tally) add(i int, s *site) {
	switch {
	case s.skip:
		t.skipped++
		return
	case s.static != nil:
		t.static++
		t.statics = append(t.statics, int32(i))
	case s.State == elfscan.StateEnabled:
		t.enabledRuns++
	}
	t.byState[s.State]++
}

// merge adds u, whose sites all come after t's.
func (t *tally) merge(u *tally) {
	t.skipped += u.skipped
	t.static += u.static
	t.enabledRuns += u.enabledRuns
	for k, n := range u.byState {
		t.byState[k] += n
	}
	t.statics = append(t.statics, u.statics...)
}

func (b *binder) checkStatic(s *site) {
	if !b.img.checkState(s) || s.State != elfscan.StateEnabled || !b.checkBL(s) {
		return
	}
	if b.classic {
		b.classicOp(s)
		return
	}
	b.checkOp(s)
}

// checkState checks the spare word of a 5,3 site and that s is in a known
// state; false when s failed.
func (img *Image) checkState(s *site) bool {
	if s.Layout == elfscan.LayoutCallOps53 {
		if w, ok := img.read32(s.spare()); !ok || w != encode.NOP {
			s.fail(fmt.Sprintf("spare word at %#x (outside the literal at %#x) NOP", s.spare(), s.literal()), fmt.Sprintf("word %#08x", w))
			return false
		}
	}
	switch s.State {
	case elfscan.StateNop, elfscan.StateInit, elfscan.StateEnabled:
		return true
	}
	detail := "words do not form a known state"
	if len(s.Problems()) > 0 {
		detail = fmt.Sprintf("%s: %s", s.Problems()[0].Code, s.Problems()[0].Detail)
	}
	s.fail("state nop, init or enabled", "state "+s.State.String()+": "+detail)
	return false
}

// checkBL checks an enabled site's call: in the layout of the other
// enabled sites, a BL to the trampoline (or the entry of it the site
// needs). A direct site is settled here (checkDirect). It reports whether
// the op is left to check.
func (b *binder) checkBL(s *site) bool {
	img, classic := b.img, b.classic
	if (s.Layout == elfscan.LayoutClassic) != classic {
		s.fail("every enabled site in one layout", "a "+s.Layout.String()+" site among sites of the other layout")
		return false
	}
	w, ok := b.callWord(s)
	if !ok || !encode.IsBL(w) {
		s.fail("BL at the call site", fmt.Sprintf("word %#08x", w))
		return false
	}
	to := encode.BLTarget(w, s.callSite())
	if !classic && img.checkDirect(s, to) {
		return false
	}
	name, want, werr := img.trampName, img.tramp, img.trampErr
	if img.usesAltEntry(s) {
		name, want, werr = encode.AltEntryName(img.trampName), img.trampAlt, img.trampAltErr
	}
	if want == 0 {
		s.fail("BL to trampoline "+name, fmt.Sprintf("BL to %#x; %s", to, werr))
		return false
	}
	if to != want {
		s.fail(fmt.Sprintf("BL to trampoline %s at %#x%s", name, want, img.directNames()), fmt.Sprintf("BL to %#x", to))
		return false
	}
	return true
}

// callWord is the word at s's call site as the image holds it: the
// scan's copy (Site.Slot2Word) where the image holds the file's bytes there
// (scanned) and b may take it (fromScan).
func (b *binder) callWord(s *site) (uint32, bool) {
	if a := s.callSite(); !b.fromScan || !b.img.scanned(a, 4, s.Slot2Off()) {
		return b.img.read32(a)
	}
	return s.Slot2Word, true
}

// literalWord is the word at s's literal as the image holds it, relocated
// (relocate): the scan's copy (Site.LiteralWord) where the image holds the
// file's bytes there (scanned) and b may take it (fromScan).
func (b *binder) literalWord(s *site) (uint64, bool) {
	a := s.literal()
	if !b.fromScan || !b.img.scanned(a, 8, s.LiteralOff()) {
		b.img.relocate(a, &b.litHint)
		return b.img.read64(a)
	}
	return s.LiteralWord, true
}

// scanned reports whether the image's n bytes at addr are the file's at
// off, where the scan read them (NoOffset: it did not): a linked image
// whose dynamic relocations were not all written up front and none of
// which (applied when read: relocate) covers them, outside the trampoline
// entries verify redirects, where a piece of the image maps off at addr.
// bind then takes the scan's copies of a site's call word and literal:
// reading the image was each page's first touch and each word's first
// cache miss, all paid again by the site's run (perf, the cloud 6.12
// vmlinux, enabled: checkBL ~250 samples of ~12,500 a run, then as many in
// checkOp).
func (img *Image) scanned(addr, n uint64, off int64) bool {
	overlaps := func(a uint64) bool { return a != 0 && a < addr+n && a+4 > addr }
	return off != elfscan.NoOffset && img.rel == nil && !img.relocated &&
		(img.dyn == nil || !img.dyn.Overlaps(addr, addr+n)) &&
		!overlaps(img.tramp) && !overlaps(img.trampAlt) && img.fileOffset(addr, n) == off
}

// fileOffset is where in the file the n bytes the image holds at addr come
// from, -1 when no one piece of it put them there.
func (img *Image) fileOffset(addr, n uint64) int64 {
	for _, p := range img.pieces {
		if addr >= p.vaddr && addr-p.vaddr < p.n && p.n-(addr-p.vaddr) >= n {
			return p.off + int64(addr-p.vaddr)
		}
	}
	return -1
}

// classicOp gives an enabled classic site verify's stand-in op, unless the
// file's own trampoline was asked for where it cannot run.
func (b *binder) classicOp(s *site) {
	img := b.img
	if b.opts.RunFileTrampoline && (img.rel != nil || img.classicFileErr != "") {
		why := "an object has no trampoline of its own to run"
		if img.rel == nil {
			why = img.classicFileErr
		}
		s.fail("a call-ops site, or a classic kernel's ftrace_caller, or verify's classic trampoline", "classic site with "+b.opts.Names.Say(patch.RoleFileTrampoline)+": "+why)
		return
	}
	s.op = img.standinOps
	b.funcs[img.standinFunc] = true
}

// checkOp checks an enabled call-ops site's literal: aligned, mapped, and
// pointing at an ops whose first word (op->func) is code.
func (b *binder) checkOp(s *site) {
	img := b.img
	if s.literal()%8 != 0 {
		s.fail("literal 8-byte aligned", fmt.Sprintf("literal at %#x", s.literal()))
		return
	}
	op, ok := b.literalWord(s)
	if !ok {
		s.fail("literal in mapped memory", fmt.Sprintf("literal at %#x unmapped", s.literal()))
		return
	}
	if op == b.lastOp && op != 0 {
		s.op = op // its first word is code, known
		return
	}
	// An op's first word may be relocated here, and binders on other
	// goroutines may read it: one at a time (a new op is rare).
	img.opMu.Lock()
	defer img.opMu.Unlock()
	img.relocate(op, &b.opHint)
	fn, ok := img.read64(op)
	if ok && fn >= op && fn-op < 16 {
		// op->func inside the ops struct (a literal pointing at itself):
		// data that would run as code.
		s.fail("literal -> ops whose first word -> code", fmt.Sprintf("literal %#x -> func %#x, inside the ops itself", op, fn))
		return
	}
	if !ok || !img.isCode(fn) {
		s.fail("literal -> ops whose first word -> code", fmt.Sprintf("literal %#x -> %s", op, describeFunc(ok, fn)))
		return
	}
	s.op = op
	b.funcs[fn] = true
	b.lastOp, b.lastFn = op, fn
}

// usesAltEntry reports whether s (absolute addresses) must call the
// trampoline's second entry: a 5,3 site with BTI whose entry is 4 mod 8.
func (img *Image) usesAltEntry(s *site) bool {
	if s.Layout != elfscan.LayoutCallOps53 {
		return false
	}
	alt, ok := encode.TrampolineEntry(s.callSite()+4, s.literal())
	return ok && alt
}

func describeFunc(mapped bool, fn uint64) string {
	if !mapped {
		return "unmapped memory"
	}
	return fmt.Sprintf("func %#x, not code", fn)
}

// relLayout is where an ET_REL file's sections were placed, with the
// object's symbols and relocation index.
type relLayout struct {
	o      *elfscan.Object
	f      *elf.File
	placed map[int]uint64 // section index -> address
	syms   *elfscan.Symtab
	relocs *elfscan.Relocs
}

// loadRel places every SHF_ALLOC section at a synthetic, page-aligned,
// non-overlapping address from relBase.
func (img *Image) loadRel(o *elfscan.Object) (*relLayout, error) {
	f := o.ELF()
	rl := &relLayout{o: o, f: f, placed: map[int]uint64{}}
	var err error
	if rl.syms, err = o.Symbols(); err != nil {
		return nil, err
	}
	if rl.relocs, err = o.Relocs(); err != nil {
		return nil, err
	}
	next := uint64(relBase)
	for i, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Size == 0 {
			continue
		}
		if s.Size > maxImage {
			return nil, fmt.Errorf("%w: section %q size %#x", elfscan.ErrMalformed, s.Name, s.Size)
		}
		size := (s.Size + pageSize - 1) &^ (pageSize - 1)
		prot := uc.PROT_READ
		if s.Flags&elf.SHF_EXECINSTR != 0 {
			prot |= uc.PROT_EXEC
		}
		if _, err := img.addRegion(next, size, prot, fmt.Sprintf("section %q", s.Name)); err != nil {
			return nil, err
		}
		if s.Type != elf.SHT_NOBITS {
			b, err := elfscan.SafeData(s)
			if err != nil {
				return nil, err
			}
			copy(img.bytes(next, size), b)
		}
		rl.placed[i] = next
		next += size + pageSize
	}
	return rl, nil
}

// relaAt returns the relocation that decides the word at off in section
// sec (the last one there), if any.
func (rl *relLayout) relaAt(sec int, off uint64) (elfscan.Rela, bool) {
	rs, err := rl.relocs.At(sec, off)
	if err != nil || len(rs) == 0 {
		return elfscan.Rela{}, false
	}
	return rs[len(rs)-1], true
}

// symbol returns the address of symbol index i (0 and undefined: ok false)
// and its name (a section symbol's is its section's).
func (rl *relLayout) symbol(i uint32) (uint64, string, bool) {
	s, ok := rl.syms.Sym(i)
	if i == 0 || !ok {
		return 0, "", false
	}
	switch {
	case s.Section == elf.SHN_ABS:
		return s.Value, s.Name, true
	case s.Section == elf.SHN_UNDEF || s.Section >= elf.SHN_LORESERVE:
		return 0, s.Name, false
	}
	base, ok := rl.placed[int(s.Section)]
	if !ok {
		return 0, s.Name, false
	}
	name := s.Name
	if name == "" && int(s.Section) < len(rl.f.Sections) {
		name = rl.f.Sections[s.Section].Name
	}
	return base + s.Value, name, true
}

// symName is symbol i's own name ("" for none), as the symbol table has it.
func (rl *relLayout) symName(i uint32) string {
	s, _ := rl.syms.Sym(i)
	return s.Name
}

// resolveTramp finds the trampoline entry name in the object (see
// Object.Lookup): an address is an offset in the layout; a defined symbol
// is redirected to ours unless the file's is to run; an undefined one is
// bound to ours. A lookup error is stored in *errOut and gives 0.
func (rl *relLayout) resolveTramp(img *Image, opts Options, name string, ours uint64, errOut *string) uint64 {
	if a, ok := parseAddr(name); ok {
		return a + relBase // an address in an object is an offset in its layout
	}
	s, err := rl.o.Lookup(name)
	if err != nil && !errors.Is(err, elfscan.ErrSymbolNotFound) {
		*errOut = err.Error()
		return 0
	}
	if a, _, ok := rl.symbol(s.Index); err == nil && ok {
		if !opts.RunFileTrampoline {
			if w, err := (encode.B{From: a, To: ours}).Encode(); err == nil {
				img.write32(a, w)
			}
		}
		return a
	}
	// Undefined (or absent): bound to verify's own trampoline.
	return ours
}

// sectionOf returns the placed section holding addr.
func (rl *relLayout) sectionOf(addr uint64) (int, uint64, bool) {
	for i, base := range rl.placed {
		if addr >= base && addr-base < rl.f.Sections[i].Size {
			return i, addr - base, true
		}
	}
	return 0, 0, false
}

// placeSite makes a site's addresses absolute and applies the relocations
// at its words: R_AARCH64_ABS64 at the literal, CALL26/JUMP26 at the BL.
// Undefined symbols at a literal are bound to the stand-in op; at a BL, to
// verify's trampoline when named like it. Any other relocation at a site
// word fails the site.
func (rl *relLayout) placeSite(img *Image, s *site) {
	base, ok := rl.placed[s.SectionIndex()]
	if !ok {
		s.fail("site in an allocated section", fmt.Sprintf("section %d (%s) not loaded", s.SectionIndex(), s.Section))
		return
	}
	s.base = base
	words := []uint64{s.Site.CallSite() - 4, s.Site.CallSite()}
	if s.Layout.HasLiteral() {
		words = append(words, s.Site.Literal(), s.Site.Literal()+4)
	}
	if s.Layout == elfscan.LayoutCallOps53 {
		words = append(words, s.Site.Spare())
	}
	for _, off := range words {
		r, ok := rl.relaAt(s.SectionIndex(), off)
		if !ok {
			continue
		}
		addr := base + off
		val, name, def := rl.symbol(r.Sym)
		switch {
		case s.Layout.HasLiteral() && off == s.Site.Literal() && r.Type == elf.R_AARCH64_ABS64:
			if !def {
				val = img.standinOps
			}
			img.write64(addr, val+uint64(r.Addend))
			rl.relocOp(img, val+uint64(r.Addend))
		case off == s.Site.CallSite() && (r.Type == elf.R_AARCH64_CALL26 || r.Type == elf.R_AARCH64_JUMP26):
			if d, ok := img.relDirect(name); !def && ok {
				val, def = d, true
			}
			if !def {
				switch name {
				case img.trampName:
					val = img.tramp
				case encode.AltEntryName(img.trampName):
					val = img.trampAlt
				default:
					s.fail("BL to trampoline "+img.trampName, "BL to undefined "+name)
					return
				}
			}
			var w uint32
			var err error
			if r.Type == elf.R_AARCH64_JUMP26 {
				w, err = encode.B{From: addr, To: val + uint64(r.Addend)}.Encode()
			} else {
				w, err = encode.BL{From: addr, To: val + uint64(r.Addend)}.Encode()
			}
			if err != nil {
				s.fail("BL in reach", err.Error())
				return
			}
			img.write32(addr, w)
		default:
			s.fail("only ABS64 at the literal and CALL26 at the BL", fmt.Sprintf("relocation %v against %q at %s+%#x", r.Type, name, s.Section, off))
			return
		}
	}
}

// relocOp applies the relocation at the first word of an op object, so the
// trampoline loads op->func from it.
func (rl *relLayout) relocOp(img *Image, op uint64) {
	sec, off, ok := rl.sectionOf(op)
	if !ok {
		return
	}
	r, ok := rl.relaAt(sec, off)
	if !ok || r.Type != elf.R_AARCH64_ABS64 {
		return
	}
	val, _, def := rl.symbol(r.Sym)
	if !def {
		val = img.standinFunc
	}
	img.write64(op, val+uint64(r.Addend))
}

// bindAlt resolves the trampoline's second entry when an enabled site
// needs it, redirecting it to the tool's own unless the file's is to run.
func (img *Image) bindAlt(o *elfscan.Object, rel *relLayout, sites []elfscan.Site, opts Options) {
	need := false
	for i := range sites {
		s := &sites[i]
		if s.State == elfscan.StateEnabled && s.Layout == elfscan.LayoutCallOps53 {
			// In ET_REL, offsets: sections are placed page-aligned, so
			// the offsets' residues mod 8 are the addresses'.
			if alt, ok := encode.TrampolineEntry(s.CallSite()+4, s.Literal()); ok && alt {
				need = true
				break
			}
		}
	}
	if !need {
		return
	}
	name := encode.AltEntryName(img.trampName)
	if _, isAddr := parseAddr(img.trampName); isAddr {
		img.trampAltErr = "the trampoline is given as an address; its second entry needs a symbol"
		return
	}
	if rel != nil {
		img.trampAlt = rel.resolveTramp(img, opts, name, img.ourTrampAlt, &img.trampAltErr)
		return
	}
	a, err := resolveLinked(o, name)
	switch {
	case err != nil:
		img.trampAltErr = err.Error()
	case opts.RunFileTrampoline:
		img.trampAlt = a
	case !img.isCode(a):
		img.trampAltErr = fmt.Sprintf("trampoline entry %s at %#x is not in an executable segment", name, a)
	default:
		if w, err := (encode.B{From: a, To: img.ourTrampAlt}).Encode(); err == nil {
			img.trampAlt = a
			img.write32(a, w) // B, not BL: X30 must stay the site's
		} else {
			img.trampAltErr = fmt.Sprintf("trampoline entry %s at %#x: verify's own trampoline is out of reach: %v", name, a, err)
		}
	}
}

// bind resolves the trampoline, redirects it to the tool's own unless the
// file's is to run, and makes each site absolute and statically checked.
// o may be nil for a synthetic image (then --trampoline must be an address).
func (img *Image) bind(o *elfscan.Object, rel *relLayout, dynOther map[uint64]elf.R_AARCH64, sites []elfscan.Site, opts Options) {
	// The first enabled site decides the layout. With none, a linked
	// image's runs call no trampoline, so it is not looked up: a lookup by
	// name walks the whole symbol table (in the cloud 6.12 vmlinux ~1.6 ms,
	// 0.6% of verifying its nop sites; perf). An object's sites still bind
	// a BL relocation at a call site to it (placeSite), and intermediate
	// states (allRelocs: RunIntermediates' overlays) may put a BL anywhere.
	first := firstEnabled(sites)
	classic := first >= 0 && sites[first].Layout == elfscan.LayoutClassic
	if first >= 0 || rel != nil || opts.allRelocs {
		img.bindTramp(o, rel, classic, opts)
	}
	if !classic && img.ourTrampAlt != 0 && first >= 0 {
		img.bindAlt(o, rel, sites[first:], opts)
	}
	img.sites = make([]site, len(sites))
	// Sites are checked on up to GOMAXPROCS goroutines, each a range of
	// them, when the file is linked, large, and has no direct trampolines
	// (whose resolution is shared); each binder's op->func addresses are
	// merged after.
	parts := 1
	if rel == nil && img.directs == nil && len(sites) >= 2*bindPart {
		parts = min(runtime.GOMAXPROCS(0), len(sites)/bindPart)
	}
	binders := make([]binder, parts)
	unapplied := slices.Sorted(maps.Keys(dynOther))
	var wg sync.WaitGroup
	for k := range binders {
		b := &binders[k]
		*b = binder{img: img, classic: classic, opts: opts, funcs: img.funcs, unapplied: unapplied, fromScan: true}
		lo, hi := k*len(sites)/parts, (k+1)*len(sites)/parts
		if parts == 1 {
			b.bindRange(rel, dynOther, sites, lo, hi)
			break
		}
		b.funcs = map[uint64]bool{}
		wg.Go(func() { b.bindRange(rel, dynOther, sites, lo, hi) })
	}
	wg.Wait()
	for _, b := range binders[1:] {
		maps.Copy(img.funcs, b.funcs)
	}
	if parts > 1 {
		maps.Copy(img.funcs, binders[0].funcs)
	}
	img.tally = tally{}
	for k := range binders {
		img.tally.merge(&binders[k].tally)
	}
}

// firstEnabled is the index of the first enabled site, -1 when none is.
func firstEnabled(sites []elfscan.Site) int {
	for i := range sites {
		if sites[i].State == elfscan.StateEnabled {
			return i
		}
	}
	return -1
}

// bindTramp resolves the trampoline the enabled sites must reach and,
// unless the file's own is to run, redirects it to the tool's (classic or
// call-ops).
func (img *Image) bindTramp(o *elfscan.Object, rel *relLayout, classic bool, opts Options) {
	ours := img.ourTramp
	if classic {
		ours = img.ourClassic
	}
	if rel != nil {
		img.tramp = rel.resolveTramp(img, opts, img.trampName, ours, &img.trampErr)
	} else {
		a, terr := resolveLinked(o, img.trampName)
		switch {
		case terr != nil:
			img.trampErr = terr.Error()
		case !opts.RunFileTrampoline:
			if !img.isCode(a) {
				img.trampErr = fmt.Sprintf("trampoline %s at %#x is not in an executable segment", img.trampName, a)
				break
			}
			img.tramp = a
			if w, err := (encode.B{From: a, To: ours}).Encode(); err == nil {
				img.write32(a, w) // B, not BL: X30 must stay the site's
			} else {
				img.tramp = 0
				img.trampErr = fmt.Sprintf("trampoline %s at %#x: verify's own trampoline is out of reach: %v", img.trampName, a, err)
			}
		default:
			img.tramp = a
			if classic {
				img.classicFileErr = img.setupClassicFile(o)
			}
		}
	}
}

// unappliedNear reports whether a dynamic relocation verify does not apply
// (b.unapplied, sorted) lies within the words of s that must have none: its
// literal (and 5,3's spare word) when it has one, its two slots. Only then
// does bindRange look each word up: a kernel has a few such relocations,
// and four map lookups a site were 1.2-1.5 ms of a 44k-site verify (perf).
func (b *binder) unappliedNear(s *site) bool {
	lo, hi := s.callSite()-4, s.callSite()
	if s.Layout.HasLiteral() {
		lo = min(lo, s.literal())
		if s.Layout == elfscan.LayoutCallOps53 {
			lo = min(lo, s.spare())
		}
	}
	i, _ := slices.BinarySearch(b.unapplied, lo)
	return i < len(b.unapplied) && b.unapplied[i] <= hi
}

// bindPart is the fewest sites bind gives a goroutine of its own.
const bindPart = 8192

// bindRange makes img.sites[lo:hi] from sites[lo:hi] and checks them.
func (b *binder) bindRange(rel *relLayout, dynOther map[uint64]elf.R_AARCH64, sites []elfscan.Site, lo, hi int) {
	img := b.img
	for i := lo; i < hi; i++ {
		s := &img.sites[i]
		*s = site{Site: &sites[i], index: int32(i)}
		if s.HasProblem(elfscan.CodeNoFunction) {
			s.skip = true // as Linux, which disables a record it finds no symbol for
			b.tally.add(i, s)
			continue
		}
		if rel != nil {
			rel.placeSite(img, s)
		} else if len(dynOther) > 0 && b.unappliedNear(s) {
			words := []uint64{s.literal(), s.literal() + 4, s.callSite() - 4, s.callSite()}
			if s.Layout == elfscan.LayoutCallOps53 {
				words = append(words, s.spare())
			}
			for _, a := range words {
				if t, ok := dynOther[a]; ok && (a >= s.callSite()-4 || s.Layout.HasLiteral()) {
					s.fail("no unsupported relocation at the site", fmt.Sprintf("dynamic relocation %v at %#x", t, a))
				}
			}
		}
		if s.static == nil {
			b.checkStatic(s)
		}
		b.tally.add(i, s)
	}
}
