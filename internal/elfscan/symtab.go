// SPDX-License-Identifier: Apache-2.0

package elfscan

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"sort"
	"sync"
	"unsafe"
)

// symtab is a compact view of one symbol table: the entries stay as the
// file has them (24 bytes each, decoded when read) and names stay in the
// string table until asked for, so a kernel's 200k symbols cost a few
// allocations, or none but the sorted index when the file is mapped.
type symtab struct {
	raw    []byte   // the entries, symSize bytes each, by index; entry 0 is the null symbol
	sorted []symRef // the functions, sorted by (key section, value, index)
	others *others  // the other useful symbols, walked or sorted when looked up; shared by views
	strtab []byte
	rel    bool // ET_REL: values are section offsets, keyed by st_shndx
	owned  bool // raw is a copy of this table's (pooled), not a view of the file
	hint   int  // lower's last answer: lookups come in address order
	sink   byte // what warm loaded, kept so that its loads are made
}

// len is the number of entries, the null symbol included.
func (st *symtab) len() int { return len(st.raw) / symSize }

// sym decodes entry i (an Elf64_Sym, by hand: lookups read a few fields
// of many entries), which must be in range.
func (st *symtab) sym(i uint32) rawSym {
	b := st.raw[int(i)*symSize:][:symSize]
	return rawSym{
		name:  binary.LittleEndian.Uint32(b),
		info:  b[4],
		other: b[5],
		shndx: binary.LittleEndian.Uint16(b[6:]),
		value: binary.LittleEndian.Uint64(b[8:]),
		size:  binary.LittleEndian.Uint64(b[16:]),
	}
}

// symRef is one entry of the sorted index: 16 bytes, for a cache-friendly
// search and a cheap radix sort.
type symRef = keyed

func (a symRef) less(key uint32, v uint64) bool {
	return a.key < key || a.key == key && a.value < v
}

// others are a table's useful symbols that are not functions: plain
// labels (STT_NOTYPE) and data objects (STT_OBJECT), which rank after
// every function. A scan looks one up only where no function symbol
// places a site, or to name an ops literal: 6 times in all for the
// enabled cloud 6.12 vmlinux, 2 for the enabled bench image, never for a
// nop image or the bench's modules. So the first othersWalks lookups walk
// the table (in index order, as the sorted refs order ties), and only then
// are the others collected and sorted. A kernel's are most of its indexed
// symbols (96,154 of 147,380 in the cloud 6.12 vmlinux): collected by
// index, they took 1.5 MB, and their sort's scratch 1.5 MB more, each
// page fresh memory (~750 page faults, at 3-13 µs each on this machine).
type others struct {
	mu    sync.Mutex
	walks int      // the lookups walks answered
	built bool     // refs is collected and sorted
	refs  []symRef // sorted by (key section, value, index)
}

// othersWalks is how many lookups of the others walk the table before
// they are collected and sorted: a walk reads the entries (5.5 MB for a
// kernel's 228k, already in memory after index), where collecting and
// sorting writes 3 MB of fresh memory; a file that needs many lookups
// (sites no function symbol places) pays for 8 walks at most.
const othersWalks = 8

// eachOther calls fn with the index of each of st's others defined at
// (sec, v), in index order; none for a table never indexed.
func (st *symtab) eachOther(sec uint32, v uint64, fn func(idx int32)) {
	o := st.others
	if o == nil {
		return
	}
	o.mu.Lock()
	if !o.built && o.walks >= othersWalks {
		o.refs, o.built = st.collectOthers(), true
	}
	o.walks++
	built, refs := o.built, o.refs
	o.mu.Unlock()
	if built {
		for i := lowerIn(refs, sec, v); i < len(refs) && refs[i].key == sec && refs[i].value == v; i++ {
			fn(refs[i].idx)
		}
		return
	}
	raw := st.raw
	for i, off := 1, symSize; off <= len(raw)-symSize; i, off = i+1, off+symSize {
		b := raw[off : off+symSize : off+symSize]
		if binary.LittleEndian.Uint64(b[8:]) != v {
			continue
		}
		if c, key := st.classify(b); c == classOther && key == sec && !st.mappingAt(b) {
			fn(int32(i))
		}
	}
}

// collectOthers returns st's others sorted by (key section, value, index).
func (st *symtab) collectOthers() []symRef {
	var refs []symRef
	raw := st.raw
	for i, off := 1, symSize; off <= len(raw)-symSize; i, off = i+1, off+symSize {
		b := raw[off : off+symSize : off+symSize]
		if c, key := st.classify(b); c == classOther && !st.mappingAt(b) {
			refs = append(refs, symRef{value: binary.LittleEndian.Uint64(b[8:]), idx: int32(i), key: key})
		}
	}
	var scratch []keyed
	radixSort(refs, &scratch) // appended in index order, and radixSort is stable
	return refs
}

// The classes of a symbol table entry (classify).
const (
	classNone  = iota // undefined, or of a type that names no code or data
	classFunc         // a function (STT_FUNC, STT_GNU_IFUNC)
	classOther        // a label (STT_NOTYPE, which may be a mapping symbol) or a data object
)

// classify tells what the index makes of entry b, and its key (its section
// in ET_REL, else 0). It reads no name: whether a label is a mapping
// symbol is mappingAt's.
func (st *symtab) classify(b []byte) (class int, key uint32) {
	shndx := binary.LittleEndian.Uint16(b[6:])
	if shndx == uint16(elf.SHN_UNDEF) || shndx >= uint16(elf.SHN_LORESERVE) && shndx != uint16(elf.SHN_ABS) {
		return classNone, 0
	}
	if st.rel {
		key = uint32(shndx)
	}
	switch elf.ST_TYPE(b[4]) {
	case elf.STT_FUNC, elf.STT_GNU_IFUNC:
		return classFunc, key
	case elf.STT_NOTYPE, elf.STT_OBJECT:
		return classOther, key
	}
	return classNone, 0
}

// mappingAt reports whether entry b is an AArch64 mapping symbol (see
// isMapping).
func (st *symtab) mappingAt(b []byte) bool {
	return elf.ST_TYPE(b[4]) == elf.STT_NOTYPE && st.isMapping(binary.LittleEndian.Uint32(b))
}

type rawSym struct {
	value, size uint64
	name        uint32
	shndx       uint16
	info        uint8
	other       uint8 // st_other: visibility
}

func (s rawSym) typ() elf.SymType { return elf.ST_TYPE(s.info) }

// rank2 orders candidates at one address from their st_info and st_size:
// rankOf*2, +1 when local, so smaller wins. at reads just those two fields
// of each candidate: decoding the whole entry into a rawSym and passing it
// to a rank taking it by value stalled on the copy (the fields stored one
// by one, then loaded 16 bytes at a time: 55% of its samples on that
// store, perf annotate).
func rank2(info uint8, size uint64) uint8 {
	r := uint8(rankOf(info, size) * 2)
	if elf.ST_BIND(info) == elf.STB_LOCAL {
		r++
	}
	return r
}

const symSize = 24 // sizeof(Elf64_Sym)

// loadSymtab reads .symtab (else .dynsym) and its string table, and
// returns the section it read (nil when there is neither). view maps a
// section of a plain file in place (Object.mapped), or returns nil.
func loadSymtab(f *elf.File, mem []byte, view func(*elf.Section) []byte, rel bool, scratch *[]keyed) (*symtab, *elf.Section, error) {
	var sec *elf.Section
	for _, t := range []elf.SectionType{elf.SHT_SYMTAB, elf.SHT_DYNSYM} {
		for _, s := range f.Sections {
			if s.Type == t {
				sec = s
				break
			}
		}
		if sec != nil {
			break
		}
	}
	if sec == nil {
		return &symtab{rel: rel}, nil, nil
	}
	st, err := loadSymtabSection(f, mem, view, sec, rel, scratch)
	return st, sec, err
}

// loadSymtabSection reads the symbol table sec and its string table. A
// plain file read in place has both mapped (view), never copied. Otherwise
// the entries are copied (from mem, Object.mem, when it holds them, else
// as they stream in) and the string table is read whole: names share its
// memory, and mem goes to the next input at Close.
func loadSymtabSection(f *elf.File, mem []byte, view func(*elf.Section) []byte, sec *elf.Section, rel bool, scratch *[]keyed) (*symtab, error) {
	st := &symtab{rel: rel}
	if int(sec.Link) >= len(f.Sections) || sec.Link == 0 {
		return nil, fmt.Errorf("%w: section %q: string table index %d out of range", ErrMalformed, sec.Name, sec.Link)
	}
	if sec.Type == elf.SHT_NOBITS {
		return st, nil
	}
	if sec.Size%symSize != 0 {
		return nil, fmt.Errorf("%w: section %q at %#x: size %d is not a multiple of %d", ErrMalformed, sec.Name, sec.Offset, sec.Size, symSize)
	}
	strsec := f.Sections[sec.Link]
	if st.strtab = view(strsec); st.strtab == nil {
		var err error
		if st.strtab, err = SafeData(strsec); err != nil {
			return nil, err
		}
	}
	if st.raw = view(sec); st.raw == nil {
		var err error
		if st.raw, err = copyEntries(sec, mem); err != nil {
			return nil, err
		}
		st.owned = true
	}
	st.sorted = getSortedBuf(st.len())
	st.index(scratch)
	return st, nil
}

// copyEntries copies the entries of symbol table sec into a pooled
// buffer: from mem when it holds them, else as they stream in.
func copyEntries(sec *elf.Section, mem []byte) ([]byte, error) {
	if end := sec.Offset + sec.Size; sec.Flags&elf.SHF_COMPRESSED == 0 && end >= sec.Offset && end <= uint64(len(mem)) {
		return append(getRawBuf(int(sec.Size)), mem[sec.Offset:end]...), nil
	}
	// Capacity from the header, but bounded: a corrupt size must not
	// allocate more than the data that actually arrives.
	n := int(min(sec.Size/symSize, 1<<20))
	if n > 64 {
		var last [1]byte
		if _, err := sec.ReadAt(last[:], int64(sec.Size-1)); err != nil {
			n = 64 // the section runs past the file: grow as data arrives
		}
	}
	raw := getRawBuf(n * symSize)
	err := streamSection(sec, symSize*2048, func(b []byte) error {
		raw = append(raw, b[:len(b)/symSize*symSize]...)
		return nil
	})
	return raw, err
}

// index appends every function symbol (defined, STT_FUNC or
// STT_GNU_IFUNC) to st.sorted and sorts it; the others are looked up apart
// (eachOther). It reads the fields it tests in place, walking the entries
// by offset: through sym (six fields, two bounds checks an entry),
// indexing a kernel's 228k entries cost 4.0 ms of cpu instead of 1.6-2.1.
func (st *symtab) index(scratch *[]keyed) {
	raw := st.raw
	if cap(st.sorted) < st.len() { // room for every entry
		st.sorted = make([]symRef, 0, st.len())
	}
	buf := st.sorted[:cap(st.sorted)]
	n := 0
	for i, off := 1, symSize; off <= len(raw)-symSize; i, off = i+1, off+symSize {
		b := raw[off : off+symSize : off+symSize]
		if c, key := st.classify(b); c == classFunc {
			buf[n] = symRef{value: binary.LittleEndian.Uint64(b[8:]), idx: int32(i), key: key}
			n++
		}
	}
	st.sorted = buf[:n]
	st.others = &others{}
	// Entries were appended in index order and radixSort is stable, so ties
	// stay ordered by index.
	radixSort(st.sorted, scratch)
}

// The pools of a symbol table's arrays, which Object.Release returns: in a
// folder walk each file's table would otherwise be fresh memory (about a
// sixth of what scan allocates per module).
var rawBufs, sortedBufs sync.Pool // of *[]byte, *[]symRef

// getRawBuf returns an empty buffer with room for n bytes: a pooled one
// when large enough.
func getRawBuf(n int) []byte {
	if p, _ := rawBufs.Get().(*[]byte); p != nil && cap(*p) >= n {
		return (*p)[:0]
	}
	return make([]byte, 0, n)
}

// getSortedBuf returns an empty index with room for n symbols: a pooled
// one when large enough.
func getSortedBuf(n int) []symRef {
	if p, _ := sortedBufs.Get().(*[]symRef); p != nil && cap(*p) >= n {
		return (*p)[:0]
	}
	return make([]symRef, 0, n)
}

// recycle hands st's arrays to the pools and empties st, which must not be
// used afterwards (nothing else may refer to the arrays). A view of the
// file is not st's to hand on.
func (st *symtab) recycle() {
	if st.owned && cap(st.raw) > 0 {
		b := st.raw[:0]
		rawBufs.Put(&b)
	}
	if cap(st.sorted) > 0 {
		r := st.sorted[:0]
		sortedBufs.Put(&r)
	}
	st.raw, st.sorted, st.owned, st.others = nil, nil, false, nil
}

// isMapping reports whether an STT_NOTYPE symbol named at name is an
// AArch64 mapping symbol ($x, $d, $x.42), which marks code or data, not a
// function. Callers test the type first: reading each symbol's name misses
// the cache (the string table is megabytes, in its own order), and in a
// kernel fewer than half the symbols are STT_NOTYPE.
func (st *symtab) isMapping(name uint32) bool {
	return int(name) < len(st.strtab) && st.strtab[name] == '$'
}

func (st *symtab) nameBytes(off uint32) []byte {
	if int(off) >= len(st.strtab) {
		return nil
	}
	b := st.strtab[off:]
	// Names are short: a plain loop beats IndexByte's set-up.
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

// name returns symbol i's name. It shares the string table's memory
// (never written after loading) instead of copying each name.
func (st *symtab) name(i int32) string {
	b := st.nameBytes(st.sym(uint32(i)).name)
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// rankOf orders candidates at one address by their st_info and st_size:
// sized functions first.
func rankOf(info uint8, size uint64) int {
	switch t := elf.ST_TYPE(info); {
	case (t == elf.STT_FUNC || t == elf.STT_GNU_IFUNC) && size > 0:
		return 0
	case t == elf.STT_FUNC || t == elf.STT_GNU_IFUNC:
		return 1
	case t == elf.STT_NOTYPE:
		return 2
	default:
		return 3
	}
}

// lower returns the first position in sorted whose (key, value) >=
// (sec, v). Lookups mostly come in increasing order, so it first tries a
// few steps forward from the last answer.
func (st *symtab) lower(sec uint32, v uint64) int {
	n := len(st.sorted)
	if h := st.hint; h <= n && (h == 0 || st.sorted[h-1].less(sec, v)) {
		for k := 0; k < 8; k, h = k+1, h+1 {
			if h == n || !st.sorted[h].less(sec, v) {
				st.hint = h
				return h
			}
		}
	}
	i := lowerIn(st.sorted, sec, v)
	st.hint = i
	return i
}

// warmSites is how many records warm looks ahead of: enough candidates
// for a CPU to have their loads in flight at once, few enough that they
// stay in the L1 cache until the sites are built.
const warmSites = 16

// warm loads, ahead of the lookups of the sites of recs, the entries and
// names of the functions at each record's candidate entries (record-4 to
// record+12: symbolShape's; the others are rarely looked up). The entries
// are in index order and the names in the string table's, neither in
// address order: building each site in turn, at and name each waited for
// one miss a site, 87% of at's samples on the entry's load (perf
// annotate). Here the loads of a block do not wait for each other. key is
// 0 for a linked file, the record's section in ET_REL. It leaves the
// lookup hint where it found it, and returns how many entries it loaded.
func (st *symtab) warm(recs []record, rel bool) int {
	var idx [warmSites * 4]int32
	n, h := 0, st.hint
	raw, strtab := st.raw, st.strtab
	for _, r := range recs {
		key := uint32(0)
		if rel {
			key = r.key
		}
		lo := r.value - min(r.value, 4)
		for i := st.lower(key, lo); i < len(st.sorted) && n < len(idx); i++ {
			e := st.sorted[i]
			if e.key != key || e.value > r.value+12 {
				break
			}
			idx[n] = e.idx
			n++
		}
	}
	st.hint = h
	var sink byte
	for _, i := range idx[:n] {
		if off := int(i) * symSize; off <= len(raw)-symSize {
			sink += raw[off+4] + raw[off+symSize-1]
		}
	}
	for _, i := range idx[:n] {
		if off := int(i) * symSize; off <= len(raw)-symSize {
			if name := binary.LittleEndian.Uint32(raw[off:]); int(name) < len(strtab) {
				sink += strtab[name]
			}
		}
	}
	st.sink = sink
	return n
}

// at returns the best symbol defined exactly at (sec, v) whose rank is at
// most maxRank, or -1: by rank, then global before local, then the lowest
// index (deterministic).
//
// Functions rank first (0, 1), so the others are looked up, apart, only
// when maxRank admits them and no function is there.
func (st *symtab) at(sec uint32, v uint64, maxRank int) int32 {
	p := newPick(maxRank)
	for i := st.lower(sec, v); i < len(st.sorted) && st.sorted[i].key == sec && st.sorted[i].value == v; i++ {
		p.consider(st, st.sorted[i].idx)
	}
	if p.best < 0 && maxRank >= 2 {
		st.eachOther(sec, v, func(idx int32) { p.consider(st, idx) })
	}
	return p.best
}

// pick is at's choice among the symbols at one address, offered in index
// order: the best rank no worse than its limit, the first of equals.
type pick struct {
	best int32
	rank uint8
}

func newPick(maxRank int) pick { return pick{best: -1, rank: uint8(maxRank*2 + 2)} }

func (p *pick) consider(st *symtab, idx int32) {
	b := st.raw[int(idx)*symSize:][:symSize]
	if rk := rank2(b[4], binary.LittleEndian.Uint64(b[16:])); rk < p.rank {
		p.best, p.rank = idx, rk
	}
}

// lowerIn returns the first position in refs (sorted) whose (key, value)
// >= (sec, v).
func lowerIn(refs []symRef, sec uint32, v uint64) int {
	return sort.Search(len(refs), func(i int) bool { return !refs[i].less(sec, v) })
}

// object returns a data object (STT_OBJECT) defined exactly at (sec, v),
// global before local, or -1.
func (st *symtab) object(sec uint32, v uint64) int32 {
	best, global := int32(-1), false
	st.eachOther(sec, v, func(idx int32) {
		if s := st.sym(uint32(idx)); !global && s.typ() == elf.STT_OBJECT && (best < 0 || elf.ST_BIND(s.info) != elf.STB_LOCAL) {
			best, global = idx, elf.ST_BIND(s.info) != elf.STB_LOCAL
		}
	})
	return best
}

// containing returns a sized function symbol covering (sec, v), or -1.
func (st *symtab) containing(sec uint32, v uint64) int32 {
	i := st.lower(sec, v+1) - 1
	for n := 0; i >= 0 && n < 256; i, n = i-1, n+1 {
		r := st.sorted[i]
		if r.key != sec {
			break
		}
		if s := st.sym(uint32(r.idx)); rankOf(s.info, s.size) == 0 && v-s.value < s.size {
			return r.idx
		}
	}
	return -1
}

// named returns the symbol that names (sec, v): a function, else a data
// object, else any other symbol defined there; or -1.
func (st *symtab) named(sec uint32, v uint64) int32 {
	if i := st.at(sec, v, 1); i >= 0 {
		return i
	}
	if i := st.object(sec, v); i >= 0 {
		return i
	}
	return st.at(sec, v, 3)
}
