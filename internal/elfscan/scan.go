// SPDX-License-Identifier: Apache-2.0

package elfscan

import (
	"cmp"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"

	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/pool"
)

// EntriesSection is the section the compiler fills with one 8-byte record
// per patchable function entry.
const EntriesSection = "__patchable_function_entries"

// The symbols a kernel-like linker script puts around the gathered entries
// when the entries section itself is not kept (Linux's vmlinux.lds).
const (
	StartMcountLoc = "__start_mcount_loc"
	StopMcountLoc  = "__stop_mcount_loc"
)

// nopLiteral is a call-ops literal as compiled: two NOPs.
const nopLiteral = uint64(encode.NOP) | uint64(encode.NOP)<<32

// MisalignedHelp is the cause and fix named by every misaligned-literal problem.
const MisalignedHelp = "usual causes: GCC before 14 puts cold functions in .text.unlikely aligned to only 4 " +
	"(-falign-functions does not reach them), or -Os; fix: -fpatchable-function-entry=5,3 (no alignment needed), " +
	"or GCC 14+: -fmin-function-alignment=8; Clang: -falign-functions=8; older GCC: no -Os, and leave such functions untraced (enable --skip-misaligned)"

// kcfiHelp is the advice for a misaligned 4,2 literal behind a kCFI hash.
const kcfiHelp = "cause: kCFI (-fsanitize=kcfi) puts a 4-byte type hash before the NOPs and aligns the hash, " +
	"so the entry lands at 4 mod 8 and no -falign-functions helps; fix: compile with -fpatchable-function-entry=5,3 " +
	"(three NOPs before the entry: one pair of them is always 8-byte aligned)"

// MisalignedAdvice is the cause and fix for a misaligned literal at s:
// kCFI's when a type hash precedes the site, MisalignedHelp otherwise.
func MisalignedAdvice(s *Site) string {
	if s.CFIHashOff() != NoOffset {
		return kcfiHelp
	}
	return MisalignedHelp
}

// scanSites finds every patch site of the file.
//
// Where the records come from:
//   - ET_REL: the R_AARCH64_ABS64 relocations of every __patchable_function_entries
//     section (symbol value + addend, an offset in the symbol's section);
//   - linked files: the values stored in __patchable_function_entries, or in
//     the __start_mcount_loc..__stop_mcount_loc range when that section is
//     gone; a zero value is replaced by the value the dynamic relocation at
//     that place stores (see DynRelocs). With RELR the addends are stored in
//     place. A zero record with no relocation is skipped, as Linux's
//     ftrace_process_locs does.
//
// Each record is mapped to a site as Linux's ftrace_call_adjust does: in
// the call-ops layout the record is the literal and the entry is record+8
// (then BTI C, if any); in the classic layout the record is slot1.
func (o *Object) scanSites() (*File, error) {
	sc, recs, dups, err := o.prepare()
	if err != nil {
		return nil, err
	}
	out := &File{Path: o.Path, Type: sc.f.Type, Sites: newSites(len(recs)), fileProblems: sc.zeroedEntries(len(recs))}
	ordered, err := sc.sites(out.Sites, recs, dups)
	sc.relCur.close()
	putReadBuf(sc.rd.buf)
	if err != nil {
		return nil, err
	}
	if !ordered {
		sortSites(out.Sites)
	}
	return out, nil
}

// prepare loads the file's symbols and returns its records, sorted and
// with equal records made one, with the (rare) repeats counted by record
// index.
func (o *Object) prepare() (*scanner, []record, map[int]int, error) {
	st, err := o.Symbols()
	if err != nil {
		return nil, nil, nil, err
	}
	sc := &scanner{o: o, f: o.f, r: o.r, rel: o.Rel(), st: st.view(), rd: chunkReader{r: o.r, mem: o.mem, buf: getReadBuf()}, lastSec: -1,
		kcfi: kcfiToolchain(o.f)}
	if buf := o.sortBuf.Swap(nil); buf != nil {
		sc.scratch = *buf
	}
	var recs []record
	if sc.rel {
		if sc.relocs, err = o.Relocs(); err != nil {
			return nil, nil, nil, err
		}
		sc.relCur.x = sc.relocs
		recs, err = sc.relRecords()
	} else {
		recs, err = sc.linkedRecords()
	}
	if err != nil {
		return nil, nil, nil, err
	}
	radixSort(recs, &sc.scratch)
	// Equal records make one site: compact them in place, counting the
	// (rare) repeats by site.
	var dups map[int]int
	n := 0
	for i := range recs {
		if i > 0 && recs[i].key == recs[n-1].key && recs[i].value == recs[n-1].value {
			if dups == nil {
				dups = map[int]int{}
			}
			dups[n-1]++
			continue
		}
		recs[n] = recs[i]
		n++
	}
	return sc, recs[:n], dups, nil
}

// cmpSite orders sites by (section index, entry).
func cmpSite(a, b *Site) int {
	if a.secIndex != b.secIndex {
		return cmp.Compare(a.secIndex, b.secIndex)
	}
	return cmp.Compare(a.Entry(), b.Entry())
}

// sortSites sorts sites by (section index, entry), stably. Sites are
// built from sorted records, so they nearly always are already: buildSites
// checks as it goes and the scan sorts only when it found them out of
// order (a walk of its own over every Site was 1.6% of a scan of the bench
// image when each comparison copied two of them, ~0.3% of verify's cpu by
// pointer).
func sortSites(sites []Site) {
	slices.SortStableFunc(sites, func(a, b Site) int { return cmpSite(&a, &b) })
}

type scanner struct {
	o   *Object
	f   *elf.File
	r   io.ReaderAt
	rel bool
	st  *symtab // this scanner's view: lookups move its hint
	rd  chunkReader

	relocs *Relocs   // ET_REL
	relCur relCursor // lookups in relocs, in address order

	lastSec int     // SectionAt cache
	scratch []keyed // radixSort's buffer, shared by the symbol and record sorts

	// The entries table of a linked file: how many entries it has, zero
	// ones included, and the section holding them (see zeroedEntries).
	entries     int
	entriesName string

	kcfi bool // the file may hold kCFI type hashes (kcfiToolchain)

	x    siteExtra  // the extras of the site being built
	last *siteExtra // the last site's, shared by the next when alike

	names [2]named // symName's last answers
}

// named is one answer of symName: the name of the symbol at (key, a).
type named struct {
	key  uint32
	a    uint64
	name string
	ok   bool
}

// record is one entries-table value placed in a section: key is the
// section index (0 when the address is in no section), value the offset in
// it (ET_REL) or the address (linked files).
type record = keyed

// newSites returns n zero sites whose pages have been written once. Each
// site is built through a pointer, and Go loads through a pointer before it
// first stores through it (a nil check): on a page fresh from the kernel
// that load maps the shared zero page, and the store after it takes a
// second fault, which replaces that page and flushes the TLBs of every
// other CPU running the process (an inter-processor interrupt each, costly
// under a hypervisor). Clearing the sites first takes one fault a page,
// written. scan --quiet -j 1: 0.84x cpu on the bench image (35.1 -> 29.3
// ms), 0.89x on a 6.12 cloud vmlinux (41.0 -> 36.8 ms), 21 interleaved
// pairs each.
func newSites(n int) []Site {
	s := make([]Site, n)
	clear(s)
	return s
}

// parallelSites is the fewest sites per goroutine worth starting one for.
const parallelSites = 8192

// sites fills out[k] with the site of recs[k], flagged duplicate-entry
// when the entries table had dups[k] more copies of it, and reports
// whether out is in (section index, entry) order. A large linked file's
// sites are built on up to GOMAXPROCS goroutines, each with its own reader
// window and lookup hint; the error is the one the first failing record
// gives, as if built in order.
func (sc *scanner) sites(out []Site, recs []record, dups map[int]int) (ordered bool, err error) {
	workers := min(runtime.GOMAXPROCS(0), len(out)/parallelSites)
	if sc.rel || workers <= 1 {
		// ET_REL loads relocations lazily into shared maps; its files are small.
		return sc.buildSites(out, recs, 0, dups)
	}
	inOrder := make([]bool, workers) // each range's
	err = pool.Each(context.Background(), workers, workers, func(_ context.Context, w int) error {
		c := *sc
		st := *sc.st
		c.st, c.rd = &st, chunkReader{r: sc.r}
		lo, hi := w*len(out)/workers, (w+1)*len(out)/workers
		ok, err := c.buildSites(out[lo:hi], recs, lo, dups)
		inOrder[w] = ok
		return err
	})
	if err != nil {
		return false, err
	}
	for w, ok := range inOrder { // and across the ranges' bounds
		if lo := w * len(out) / workers; !ok || w > 0 && cmpSite(&out[lo], &out[lo-1]) < 0 {
			return false, nil
		}
	}
	return true, nil
}

// buildSites fills out[k] with the site of recs[lo+k], flagged
// duplicate-entry when dups says so, and reports whether out is in
// (section index, entry) order, checked as each site is built.
func (sc *scanner) buildSites(out []Site, recs []record, lo int, dups map[int]int) (ordered bool, err error) {
	ordered = true
	for k := range out {
		if k%warmSites == 0 {
			sc.st.warm(recs[lo+k:lo+min(k+warmSites, len(out))], sc.rel)
		}
		s := &out[k]
		rec := recs[lo+k]
		if err := sc.site(rec, s); err != nil {
			return false, err
		}
		if d := dups[lo+k]; d > 0 {
			s.addProblem(Problem{CodeDuplicateEntry,
				fmt.Sprintf("record %#x appears %d times in the entries table; it is kept once", rec.value, d+1)})
		}
		sc.finish(s)
		ordered = ordered && (k == 0 || cmpSite(s, &out[k-1]) >= 0)
	}
	return ordered, nil
}

// finish gives s, built with its extras in sc's scratch, its own: none,
// the previous site's when alike (an enabled kernel's sites all have the
// same ops and trampoline), or a new one.
func (sc *scanner) finish(s *Site) {
	switch x := s.x; {
	case x.empty():
		s.x = nil
	case sc.last != nil && x.alike(sc.last):
		s.x = sc.last
	default:
		c := new(siteExtra)
		*c = *x
		s.x, sc.last = c, c
	}
}

// relRecords reads the records of an ET_REL file from the relocations of
// its entries sections.
func (sc *scanner) relRecords() ([]record, error) {
	f := sc.f
	if err := checkEntriesTables(f); err != nil {
		return nil, err
	}
	var recs []record
	for i, s := range f.Sections {
		if s.Name != EntriesSection {
			continue
		}
		if s.Size%8 != 0 {
			return nil, fmt.Errorf("%w: section %q at %#x: size %d is not a multiple of 8", ErrMalformed, s.Name, s.Offset, s.Size)
		}
		stored, err := SafeData(s)
		if err != nil {
			return nil, err
		}
		n := int(s.Size / 8)
		covered := make([]bool, n)
		rels, err := sc.relocs.For(i)
		if err != nil {
			return nil, err
		}
		for _, rl := range rels {
			if rl.Off%8 != 0 || rl.Off >= s.Size {
				return nil, fmt.Errorf("%w: section %q: relocation at offset %#x is not an entry (size %#x)", ErrMalformed, s.Name, rl.Off, s.Size)
			}
			e := int(rl.Off / 8)
			if rl.Type != elf.R_AARCH64_ABS64 {
				return nil, fmt.Errorf("section %q entry %d at %#x: %w %v", s.Name, e, rl.Off, ErrUnsupportedReloc, rl.Type)
			}
			if covered[e] {
				return nil, fmt.Errorf("%w: section %q entry %d at %#x: two relocations", ErrMalformed, s.Name, e, rl.Off)
			}
			covered[e] = true
			if rl.Sym == 0 || int(rl.Sym) >= sc.st.len() {
				return nil, fmt.Errorf("%w: section %q entry %d at %#x: symbol index %d out of range", ErrMalformed, s.Name, e, rl.Off, rl.Sym)
			}
			sym := sc.st.sym(rl.Sym)
			if sym.shndx == 0 || int(sym.shndx) >= len(f.Sections) {
				return nil, fmt.Errorf("%w: section %q entry %d at %#x: symbol %q is not defined in a section (st_shndx %d)",
					ErrMalformed, s.Name, e, rl.Off, sc.st.name(int32(rl.Sym)), sym.shndx)
			}
			recs = append(recs, record{key: uint32(sym.shndx), value: sym.value + uint64(rl.Addend)})
		}
		// Compilers relocate every entry of an object: an entry without a
		// relocation names no section, so its site cannot be found.
		for e, ok := range covered {
			if !ok {
				return nil, fmt.Errorf("%w: section %q entry %d at %#x (stored value %#x) has no relocation, so no function: "+
					"the relocation table for %q is missing or points elsewhere",
					ErrMalformed, s.Name, e, e*8, binary.LittleEndian.Uint64(stored[e*8:]), s.Name)
			}
		}
	}
	return recs, nil
}

// checkEntriesTables refuses entries tables that would otherwise read as
// "no sites": an entries section without contents, and a relocation table
// named for the entries section that applies to another section.
func checkEntriesTables(f *elf.File) error {
	for _, s := range f.Sections {
		switch {
		case s.Name == EntriesSection && s.Type == elf.SHT_NOBITS && s.Size > 0:
			return fmt.Errorf("%w: section %q at %#x is SHT_NOBITS: an entries table must have contents", ErrMalformed, s.Name, s.Offset)
		case (s.Type == elf.SHT_RELA || s.Type == elf.SHT_REL) && (s.Name == ".rela"+EntriesSection || s.Name == ".rel"+EntriesSection):
			if int(s.Info) <= 0 || int(s.Info) >= len(f.Sections) || f.Sections[s.Info].Name != EntriesSection {
				target := "none"
				if int(s.Info) > 0 && int(s.Info) < len(f.Sections) {
					target = fmt.Sprintf("%q", f.Sections[s.Info].Name)
				}
				return fmt.Errorf("%w: section %q at %#x applies to section %d (%s), not to %q (sh_info is wrong)",
					ErrMalformed, s.Name, s.Offset, s.Info, target, EntriesSection)
			}
		}
	}
	return nil
}

// entriesRange is where a linked file keeps its records.
type entriesRange struct {
	name       string // section holding the range, for messages
	addr, size uint64
	off        int64
}

// linkedRecords reads the records of a linked file: the values in its
// entries ranges (entriesRanges), a zero one replaced by what the dynamic
// relocation there stores (dynRecord) and skipped when that is zero too.
func (sc *scanner) linkedRecords() ([]record, error) {
	if err := checkEntriesTables(sc.f); err != nil {
		return nil, err
	}
	ranges, err := sc.entriesRanges()
	if err != nil {
		return nil, err
	}
	sc.noteEntries(ranges)
	recs := make([]record, 0, recordsCap(sc.r, ranges))
	for _, rg := range ranges {
		if recs, err = sc.rangeRecords(recs, rg); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// entriesRanges is where a linked file keeps its records: its allocated
// entries sections, else the range its mcount_loc symbols bound
// (mcountRange), else nowhere.
func (sc *scanner) entriesRanges() ([]entriesRange, error) {
	var ranges []entriesRange
	for _, s := range sc.f.Sections {
		if s.Name == EntriesSection && s.Type != elf.SHT_NOBITS && s.Flags&elf.SHF_ALLOC != 0 {
			ranges = append(ranges, entriesRange{s.Name, s.Addr, s.Size, int64(s.Offset)})
		}
	}
	if len(ranges) > 0 {
		return ranges, nil
	}
	rg, ok, err := sc.mcountRange()
	if err != nil || !ok {
		return nil, err
	}
	return []entriesRange{rg}, nil
}

// mcountRange is the range __start_mcount_loc..__stop_mcount_loc bound;
// ok is false when either is missing or the range is empty.
func (sc *scanner) mcountRange() (rg entriesRange, ok bool, err error) {
	start, err1 := sc.o.Lookup(StartMcountLoc)
	stop, err2 := sc.o.Lookup(StopMcountLoc)
	for _, err := range []error{err1, err2} {
		if err != nil && !errors.Is(err, ErrSymbolNotFound) {
			return rg, false, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
	}
	if err1 != nil || err2 != nil {
		return rg, false, nil
	}
	a, b := start.Value, stop.Value
	if b < a {
		return rg, false, fmt.Errorf("%w: %s %#x is after %s %#x", ErrMalformed, StopMcountLoc, b, StartMcountLoc, a)
	}
	if b == a {
		return rg, false, nil
	}
	s := SectionAt(sc.f, a)
	if s == nil || s.Type == elf.SHT_NOBITS || b-s.Addr > s.Size {
		return rg, false, fmt.Errorf("%w: %s..%s (%#x..%#x) is not inside one section with contents", ErrMalformed, StartMcountLoc, StopMcountLoc, a, b)
	}
	return entriesRange{s.Name, a, b - a, int64(s.Offset + (a - s.Addr))}, true, nil
}

// recordsCap is how many records to make room for: one per entry at
// most, but a corrupt size (caught by readRange) must not pre-size more
// than the file holds.
func recordsCap(r io.ReaderAt, ranges []entriesRange) uint64 {
	total := uint64(0)
	for _, rg := range ranges {
		total += rg.size / 8
	}
	n := min(total, 1<<20)
	for _, rg := range ranges {
		if !inFile(r, rg.off, rg.size) {
			n = min(n, 64)
		}
	}
	return n
}

// noteEntries keeps how many entries the ranges hold, and the name of the
// section holding them, for the zeroed-entries finding.
func (sc *scanner) noteEntries(ranges []entriesRange) {
	total := uint64(0)
	for _, rg := range ranges {
		total += rg.size / 8
		sc.entriesName = rg.name
	}
	sc.entries = int(min(total, math.MaxInt32))
}

// entriesChunk is how much of an entries table rangeRecords reads at a
// time: the records are all it keeps, and a table read whole was 0.4 MB
// more fresh memory for the 53k-site bench image (what fresh memory costs
// verify: the README's sixth look).
const entriesChunk = 64 << 10

// rangeRecords appends the records of entries range rg to recs.
func (sc *scanner) rangeRecords(recs []record, rg entriesRange) ([]record, error) {
	if rg.size%8 != 0 {
		return nil, fmt.Errorf("%w: section %q entries at %#x: size %d is not a multiple of 8", ErrMalformed, rg.name, rg.addr, rg.size)
	}
	if rg.off < 0 || rg.size > 1<<40 {
		return nil, fmt.Errorf("%w: section %q entries at file offset %#x (size %#x): out of range", ErrMalformed, rg.name, rg.off, rg.size)
	}
	buf := make([]byte, min(rg.size, entriesChunk))
	next := 0 // DynRelocs.seek's start: the entries are read by increasing address
	for pos := 0; uint64(pos) < rg.size; pos += len(buf) {
		b := buf[:min(uint64(len(buf)), rg.size-uint64(pos))]
		if n, err := sc.r.ReadAt(b, rg.off+int64(pos)); n < len(b) {
			if err == nil || err == io.EOF {
				err = fmt.Errorf("file truncated: read %d of %d bytes", pos+n, rg.size)
			}
			return nil, fmt.Errorf("%w: section %q entries at file offset %#x (size %#x): %w", ErrMalformed, rg.name, rg.off, rg.size, err)
		}
		for e := 0; e+8 <= len(b); e += 8 {
			v := binary.LittleEndian.Uint64(b[e:])
			if v == 0 {
				var err error
				if v, next, err = sc.dynRecord(rg, pos+e, next); err != nil {
					return nil, err
				}
				if v == 0 {
					continue
				}
			}
			recs = append(recs, record{key: uint32(sc.sectionIndexAt(v)), value: v})
		}
	}
	return recs, nil
}

// dynRecord is the value the dynamic relocation at byte e of rg stores (0
// when none), next being where DynRelocs.seek starts, and returned moved
// on for the next entry.
func (sc *scanner) dynRecord(rg entriesRange, e, next int) (uint64, int, error) {
	dyn, err := sc.o.DynRelocs()
	if err != nil {
		return 0, next, err
	}
	a := rg.addr + uint64(e)
	next = dyn.seek(a, next)
	v, _, err := dyn.value(dyn.at(a, next))
	if err != nil {
		return 0, next, fmt.Errorf("section %q entry %d: %w", rg.name, e/8, err)
	}
	return v, next, nil
}

// inFile reports whether the last of size bytes at off can be read: whether
// a buffer of that size is worth allocating up front.
func inFile(r io.ReaderAt, off int64, size uint64) bool {
	if size == 0 {
		return true
	}
	end := uint64(off) + size - 1
	if off < 0 || end < uint64(off) || end > 1<<62 {
		return false
	}
	var b [1]byte
	n, _ := r.ReadAt(b[:], int64(end))
	return n == 1
}

// sectionIndexAt is SectionAt returning an index (0 when none), with a
// one-entry cache since records come in address order.
func (sc *scanner) sectionIndexAt(a uint64) int {
	if i := sc.lastSec; i > 0 {
		s := sc.f.Sections[i]
		if a >= s.Addr && a-s.Addr < s.Size {
			return i
		}
	}
	s := SectionAt(sc.f, a)
	if s == nil {
		return 0
	}
	for i, t := range sc.f.Sections {
		if t == s {
			sc.lastSec = i
			return i
		}
	}
	return 0
}
