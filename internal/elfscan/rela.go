// SPDX-License-Identifier: Apache-2.0

package elfscan

import (
	"cmp"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// ErrUnsupportedReloc is returned for relocation types the tool does not
// understand at a place it must understand (never silently skipped).
var ErrUnsupportedReloc = errors.New("unsupported relocation")

// Rela is one Elf64_Rela entry.
type Rela struct {
	Off    uint64 // r_offset
	Type   elf.R_AARCH64
	Sym    uint32 // symbol index (0: none); .symtab index i is elf.File.Symbols()[i-1]
	Addend int64
}

// RelaSize is sizeof(Elf64_Rela).
const RelaSize = 24

// decodeRela decodes the Elf64_Rela (elf.Rela64) at the start of e. It is
// written out rather than through binary.Decode: a kernel image's dynamic
// relocations are decoded by the hundred thousand.
func decodeRela(e []byte) Rela {
	e = e[:RelaSize]
	info := binary.LittleEndian.Uint64(e[8:])
	return Rela{
		Off:    binary.LittleEndian.Uint64(e),
		Type:   elf.R_AARCH64(elf.R_TYPE64(info)),
		Sym:    elf.R_SYM64(info),
		Addend: int64(binary.LittleEndian.Uint64(e[16:])),
	}
}

// Rela64 returns r as debug/elf's Elf64_Rela.
func (r Rela) Rela64() elf.Rela64 {
	return elf.Rela64{Off: r.Off, Info: elf.R_INFO(r.Sym, uint32(r.Type)), Addend: r.Addend}
}

// Relocs indexes the relocations of an ET_REL file by the section they
// apply to. The tables' headers are checked once, when the index is built,
// so scan, patch and verify refuse a malformed one with the same error;
// each table's entries are decoded on first use.
type Relocs struct {
	o       *Object
	f       *elf.File
	nsyms   int           // entries of the symbol table the tables refer to
	tables  map[int][]int // target section -> its SHT_RELA sections, in order
	mu      sync.Mutex
	entries map[int][]Rela // SHT_RELA section -> entries, file order
	ordered map[int]bool   // SHT_RELA section -> its entries are by offset (compilers write them so)
	sorted  map[int][]Rela // target section -> entries, by offset (stable)
}

// Relocs returns the relocation index of an ET_REL file (empty for linked
// files). Every SHT_RELA section must apply to a section with contents
// (sh_info) and refer to the symbol table (sh_link); an SHT_REL section
// is refused (AArch64 objects use RELA), as are relocations naming a symbol
// past the table's end.
func (o *Object) Relocs() (*Relocs, error) {
	o.relOnce.Do(func() {
		defer recovered(&o.relErr, "relocations")
		o.relocs, o.relErr = o.buildRelocs()
	})
	return o.relocs, o.relErr
}

func (o *Object) buildRelocs() (*Relocs, error) {
	x := &Relocs{o: o, f: o.f, tables: map[int][]int{}, entries: map[int][]Rela{}, ordered: map[int]bool{}, sorted: map[int][]Rela{}}
	if !o.Rel() {
		return x, nil
	}
	st, err := o.Symbols()
	if err != nil {
		return nil, err
	}
	x.nsyms = st.Len()
	for i, s := range o.f.Sections {
		if s.Type != elf.SHT_RELA && s.Type != elf.SHT_REL {
			continue
		}
		where := relaSection{s.Name, i} // formatted only in an error
		if s.Type == elf.SHT_REL {
			return nil, fmt.Errorf("%s: %w: SHT_REL (AArch64 objects use SHT_RELA); rebuild the object", where, ErrUnsupportedReloc)
		}
		if s.Info == 0 || int(s.Info) >= len(o.f.Sections) {
			return nil, fmt.Errorf("%w: %s: sh_info %d is not a section index (%d sections); the object is corrupt, rebuild it",
				ErrMalformed, where, s.Info, len(o.f.Sections))
		}
		if t := o.f.Sections[s.Info]; t.Type == elf.SHT_NOBITS && s.Size > 0 {
			return nil, fmt.Errorf("%w: %s: applies to %q, which has no file contents (SHT_NOBITS); the object is corrupt, rebuild it",
				ErrMalformed, where, t.Name)
		}
		if st.sec == nil || int(s.Link) >= len(o.f.Sections) || o.f.Sections[s.Link] != st.sec {
			return nil, fmt.Errorf("%w: %s: sh_link %d is not the symbol table; the object is corrupt, rebuild it", ErrMalformed, where, s.Link)
		}
		if s.Size%RelaSize != 0 {
			return nil, fmt.Errorf("%w: %s at %#x: size %d is not a multiple of %d", ErrMalformed, where, s.Offset, s.Size, RelaSize)
		}
		x.tables[int(s.Info)] = append(x.tables[int(s.Info)], i)
	}
	return x, nil
}

// relaSection names relocation section #i in a message.
type relaSection struct {
	name string
	i    int
}

func (w relaSection) String() string { return fmt.Sprintf("relocation section %q (#%d)", w.name, w.i) }

// Tables returns the SHT_RELA sections applying to section sec, in section
// order.
func (x *Relocs) Tables(sec int) []int { return x.tables[sec] }

// Table returns the entries of SHT_RELA section i, in file order. The
// caller must not modify them.
func (x *Relocs) Table(i int) ([]Rela, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.table(i)
}

func (x *Relocs) table(i int) (rs []Rela, err error) {
	if rs, ok := x.entries[i]; ok {
		return rs, nil
	}
	if i <= 0 || i >= len(x.f.Sections) || x.f.Sections[i].Type != elf.SHT_RELA {
		return nil, fmt.Errorf("%w: section %d is not a relocation section", ErrMalformed, i)
	}
	s := x.f.Sections[i]
	defer func() { // as recovered, naming the section only on a panic
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: section %q: %v", ErrMalformed, s.Name, p)
		}
	}()
	err = x.o.withSection(s, func(b []byte) error {
		var ordered bool
		var err error
		rs, ordered, err = decodeRelaTable(b, s.Name, x.nsyms)
		x.ordered[i] = ordered
		return err
	})
	if err != nil {
		return nil, err
	}
	x.entries[i] = rs
	return rs, nil
}

// decodeRelaTable decodes the relocation table b (section name), checking
// each symbol index against nsyms, and reports whether its entries are in
// offset order.
func decodeRelaTable(b []byte, name string, nsyms int) (rs []Rela, ordered bool, err error) {
	if len(b)%RelaSize != 0 {
		return nil, false, fmt.Errorf("%w: section %q size %d is not a multiple of %d", ErrMalformed, name, len(b), RelaSize)
	}
	rs = getRelaBuf(len(b) / RelaSize)
	ordered = true
	var last uint64
	for k := range rs {
		r := decodeRela(b[k*RelaSize:])
		if int(r.Sym) >= nsyms {
			return nil, false, fmt.Errorf("%w: relocation section %q entry %d at %#x: symbol index %d out of range (%d symbols)",
				ErrMalformed, name, k, r.Off, r.Sym, nsyms)
		}
		if r.Off < last {
			ordered = false
		}
		last = r.Off
		rs[k] = r
	}
	return rs, ordered, nil
}

// relaBufs is the pool of decoded relocation tables, which
// Object.Release returns (see symBufs).
var relaBufs sync.Pool // of *[]Rela

// getRelaBuf returns n entries to decode into: a pooled array when large
// enough.
func getRelaBuf(n int) []Rela {
	if p, _ := relaBufs.Get().(*[]Rela); p != nil && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]Rela, n)
}

// recycle hands the decoded tables to the pool and forgets them; x must
// not be used afterwards (nothing else may refer to its entries).
func (x *Relocs) recycle() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, rs := range x.entries {
		if cap(rs) > 0 {
			relaBufs.Put(&rs)
		}
	}
	clear(x.entries)
	clear(x.sorted)
}

// For returns the relocations applying to section sec, sorted by offset
// (entries at one offset in table order). The caller must not modify them.
func (x *Relocs) For(sec int) ([]Rela, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if rs, ok := x.sorted[sec]; ok {
		return rs, nil
	}
	if ts := x.tables[sec]; len(ts) == 1 {
		// One table in offset order, as compilers write them: it is its
		// own index.
		rs, err := x.table(ts[0])
		if err != nil {
			return nil, err
		}
		if x.ordered[ts[0]] {
			x.sorted[sec] = rs
			return rs, nil
		}
	}
	var all []Rela
	for _, ri := range x.tables[sec] {
		rs, err := x.table(ri)
		if err != nil {
			return nil, err
		}
		all = append(all, rs...)
	}
	if len(x.tables[sec]) == 1 && len(all) > 0 {
		all = slices.Clone(all) // do not sort the table's own slice
	}
	slices.SortStableFunc(all, func(a, b Rela) int { return cmp.Compare(a.Off, b.Off) })
	x.sorted[sec] = all
	return all, nil
}

// In returns the relocations of section sec with offsets in [lo, hi).
func (x *Relocs) In(sec int, lo, hi uint64) ([]Rela, error) {
	rs, err := x.For(sec)
	if err != nil {
		return nil, err
	}
	i, _ := slices.BinarySearchFunc(rs, lo, func(r Rela, v uint64) int { return cmp.Compare(r.Off, v) })
	j := i
	for j < len(rs) && rs[j].Off < hi {
		j++
	}
	return rs[i:j], nil
}

// At returns the relocations of section sec at offset off.
func (x *Relocs) At(sec int, off uint64) ([]Rela, error) { return x.In(sec, off, off+1) }

// relCursor answers In for lookups that mostly come in increasing offset
// order (a scan's sites): it keeps the last section's relocations and where
// the last answer started, and walks forward from there before falling
// back to a binary search. A section with one table in offset order (as
// compilers write them) is read in place, checked but not decoded: a
// scan looks at a few entries per site of a table that holds every call
// and data reference of the code. Not safe for concurrent use; close
// returns its buffer.
type relCursor struct {
	x       *Relocs
	sec     int
	started bool
	rs      []Rela // x.For(sec), when the table is not read in place
	raw     []byte // the table in place (RelaSize bytes per entry)
	release func()
	pos     int
	out     []Rela // the last answer, when read in place
}

func (c *relCursor) close() {
	if c.release != nil {
		c.release()
	}
	*c = relCursor{x: c.x}
}

// load points c at section sec's relocations.
func (c *relCursor) load(sec int) error {
	c.close()
	c.sec, c.started = sec, true
	if ts := c.x.tables[sec]; len(ts) == 1 {
		s := c.x.f.Sections[ts[0]]
		b, release, err := c.x.o.sectionBytes(s)
		if err != nil {
			return err
		}
		ordered, err := checkRelaTable(b, s.Name, c.x.nsyms)
		if err != nil {
			release()
			return err
		}
		if ordered {
			c.raw, c.release = b, release
			return nil
		}
		release()
	}
	rs, err := c.x.For(sec)
	c.rs = rs
	return err
}

// checkRelaTable checks the relocation table b as decodeRelaTable does,
// without decoding it, and reports whether it is in offset order.
func checkRelaTable(b []byte, name string, nsyms int) (ordered bool, err error) {
	if len(b)%RelaSize != 0 {
		return false, fmt.Errorf("%w: section %q size %d is not a multiple of %d", ErrMalformed, name, len(b), RelaSize)
	}
	// One pass for the largest symbol index and the order; the entry at
	// fault, if any, is found again for the message.
	var last, maxInfo uint64
	ordered = true
	for e := b; len(e) >= RelaSize; e = e[RelaSize:] {
		off, info := binary.LittleEndian.Uint64(e), binary.LittleEndian.Uint64(e[8:])
		maxInfo = max(maxInfo, info)
		ordered = ordered && off >= last
		last = off
	}
	if int(elf.R_SYM64(maxInfo)) < nsyms {
		return ordered, nil
	}
	for k := 0; k+RelaSize <= len(b); k += RelaSize {
		if sym := elf.R_SYM64(binary.LittleEndian.Uint64(b[k+8:])); int(sym) >= nsyms {
			return false, fmt.Errorf("%w: relocation section %q entry %d at %#x: symbol index %d out of range (%d symbols)",
				ErrMalformed, name, k/RelaSize, binary.LittleEndian.Uint64(b[k:]), sym, nsyms)
		}
	}
	return ordered, nil
}

// In is Relocs.In. The answer is valid until the next call.
func (c *relCursor) In(sec int, lo, hi uint64) ([]Rela, error) {
	if !c.started || sec != c.sec {
		if err := c.load(sec); err != nil {
			return nil, err
		}
	}
	if c.raw != nil {
		return c.inRaw(lo, hi), nil
	}
	rs := c.rs
	i := c.pos
	if i > len(rs) || i > 0 && rs[i-1].Off >= lo {
		i = 0 // went back: search from the start
	}
	k, _ := slices.BinarySearchFunc(rs[i:], lo, func(r Rela, v uint64) int { return cmp.Compare(r.Off, v) })
	i += k
	c.pos = i
	j := i
	for j < len(rs) && rs[j].Off < hi {
		j++
	}
	return rs[i:j], nil
}

// rawOff is r_offset of entry i of a table read in place.
func rawOff(raw []byte, i int) uint64 { return binary.LittleEndian.Uint64(raw[i*RelaSize:]) }

// inRaw is In over the table read in place.
func (c *relCursor) inRaw(lo, hi uint64) []Rela {
	raw := c.raw
	n := len(raw) / RelaSize
	i := c.pos
	if i > n || i > 0 && rawOff(raw, i-1) >= lo {
		i = 0 // went back: search from the start
	}
	if i < n && rawOff(raw, i) < lo { // else i is the answer: a site's lookups share one
		for j := n; i < j; { // the first entry at or after lo
			if h := int(uint(i+j) >> 1); rawOff(raw, h) < lo {
				i = h + 1
			} else {
				j = h
			}
		}
	}
	c.pos = i
	c.out = c.out[:0]
	for ; i < n && rawOff(raw, i) < hi; i++ {
		c.out = append(c.out, decodeRela(raw[i*RelaSize:]))
	}
	return c.out
}
