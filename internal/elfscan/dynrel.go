// SPDX-License-Identifier: Apache-2.0

package elfscan

import (
	"cmp"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// DynReloc is one dynamic relocation of a linked file and the value the
// loader stores at Off with a load bias of 0, as a kernel relocates itself
// at boot. It is kept small (32 bytes): a kernel image has ~100k.
type DynReloc struct {
	Off      uint64
	Value    uint64 // when Resolved
	Sym      uint32 // .dynsym index (0: none)
	typ      uint32
	index    int32  // entry index in its table, for messages
	table    uint16 // section index of its table, for messages
	Resolved bool   // false: a type the tool does not apply, or an undefined symbol
}

// Type is the relocation type.
func (r DynReloc) Type() elf.R_AARCH64 { return elf.R_AARCH64(r.typ) }

// DynRelocs are the dynamic relocations (allocated SHT_RELA sections) of a
// linked file, applied by one set of rules:
//
//   - R_AARCH64_RELATIVE: the addend;
//   - R_AARCH64_ABS64, GLOB_DAT, JUMP_SLOT: the .dynsym symbol's value plus
//     the addend, when the symbol is defined;
//   - R_AARCH64_NONE: nothing;
//   - anything else (and an undefined symbol): not resolved. A caller that
//     needs the value there reports it (see Value); none skips it silently.
//
// RELR entries need no work with a bias of 0: their values are in place.
type DynRelocs struct {
	f    *elf.File
	rels []DynReloc // by Off; entries at one Off in file order
	// unresolved are the addresses of the relocations readDynTable could
	// not resolve (few: most files have none), in file order.
	unresolved []uint64
}

// DynRelocs returns the dynamic relocations of a linked file (none for an
// ET_REL one), computed once.
func (o *Object) DynRelocs() (*DynRelocs, error) {
	o.dynRelOnce.Do(func() {
		defer recovered(&o.dynRelErr, "dynamic relocations")
		o.dynRelocs, o.dynRelErr = o.buildDynRelocs()
	})
	return o.dynRelocs, o.dynRelErr
}

// buildDynRelocs reads the allocated SHT_RELA tables of a linked file.
func (o *Object) buildDynRelocs() (*DynRelocs, error) {
	d := &DynRelocs{f: o.f}
	if o.Rel() {
		return d, nil
	}
	tables, total, err := o.dynTables()
	if err != nil {
		return nil, err
	}
	// Sized once from the headers, which must fit in the file.
	d.rels = make([]DynReloc, 0, min(total, 1<<24))
	buf := make([]byte, RelaSize*2048)
	for _, s := range tables {
		if d.rels, d.unresolved, err = o.readDynTable(d.rels, d.unresolved, s, buf); err != nil {
			return nil, err
		}
	}
	if !slices.IsSortedFunc(d.rels, cmpDynOff) {
		slices.SortStableFunc(d.rels, cmpDynOff)
	}
	return d, nil
}

// dynTables are the allocated SHT_RELA sections, and how many entries
// they hold (at most 64 when one runs past the end of the file: it fails
// when read).
func (o *Object) dynTables() (tables []*elf.Section, total uint64, err error) {
	for _, s := range o.f.Sections {
		if s.Type != elf.SHT_RELA || s.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		if s.Size%RelaSize != 0 {
			return nil, 0, fmt.Errorf("%w: section %q at %#x: size %d is not a multiple of %d", ErrMalformed, s.Name, s.Offset, s.Size, RelaSize)
		}
		tables = append(tables, s)
		total += s.Size / RelaSize
		if !inFile(o.r, int64(s.Offset), s.Size) {
			total = min(total, 64) // a corrupt size: fails when read
		}
	}
	return tables, total, nil
}

// readDynTable appends the relocations of table s (R_AARCH64_NONE
// apart) to rels, and the addresses of those it cannot resolve to
// unresolved, reading it through buf.
func (o *Object) readDynTable(rels []DynReloc, unresolved []uint64, s *elf.Section, buf []byte) ([]DynReloc, []uint64, error) {
	i := slices.Index(o.f.Sections, s)
	sr := io.NewSectionReader(o.r, int64(s.Offset), int64(s.Size))
	for pos := int64(0); pos < int64(s.Size); {
		n, err := sr.ReadAt(buf[:min(int64(len(buf)), int64(s.Size)-pos)], pos)
		if n%RelaSize != 0 || n == 0 {
			return nil, nil, fmt.Errorf("%w: section %q at %#x: truncated at %#x: %w", ErrMalformed, s.Name, s.Offset, pos+int64(n), err)
		}
		for k := 0; k < n/RelaSize; k++ {
			e := decodeRela(buf[k*RelaSize:])
			rl := DynReloc{Off: e.Off, Sym: e.Sym, typ: uint32(e.Type), table: uint16(i), index: int32(int(pos)/RelaSize + k)}
			switch e.Type {
			case elf.R_AARCH64_NONE:
				continue
			case elf.R_AARCH64_RELATIVE:
				// Most of a table, resolved here: through a call an entry,
				// reading the bench image's 53k took 704 samples instead
				// of 274 (readDynTable and dynReloc, perf, 15 scans).
				rl.Value, rl.Resolved = uint64(e.Addend), true
			default:
				if rl, err = o.resolveDyn(rl, e.Addend); err != nil {
					return nil, nil, err
				}
				if !rl.Resolved {
					unresolved = append(unresolved, rl.Off)
				}
			}
			rels = append(rels, rl)
		}
		pos += int64(n)
	}
	return rels, unresolved, nil
}

// resolveDyn resolves rl, of any type but R_AARCH64_NONE and RELATIVE,
// by DynRelocs' rules: the types that add the addend to a .dynsym symbol's
// value when it is defined; any other stays unresolved.
func (o *Object) resolveDyn(rl DynReloc, addend int64) (DynReloc, error) {
	switch rl.Type() {
	case elf.R_AARCH64_ABS64, elf.R_AARCH64_GLOB_DAT, elf.R_AARCH64_JUMP_SLOT:
		syms, err := o.DynSymbols()
		if err != nil {
			return rl, err
		}
		if sym, ok := syms.Sym(rl.Sym); ok && rl.Sym != 0 && sym.Defined() {
			rl.Value, rl.Resolved = sym.Value+uint64(addend), true
		}
	}
	return rl, nil
}

func cmpDynOff(a, b DynReloc) int { return cmp.Compare(a.Off, b.Off) }

// All returns every dynamic relocation, by address (entries at one address
// in file order: the last one wins). The caller must not modify them.
func (d *DynRelocs) All() []DynReloc { return d.rels }

// Overlaps reports whether the 8-byte word of any relocation overlaps
// [lo, hi).
func (d *DynRelocs) Overlaps(lo, hi uint64) bool {
	from := uint64(0)
	if lo >= 7 {
		from = lo - 7 // the lowest word start that reaches lo
	}
	i := d.seek(from, 0)
	return i < len(d.rels) && d.rels[i].Off < hi
}

// Unresolved returns the relocations that decide their word (the last one
// at their address) and are not resolved, by address: what a caller that
// applies the others must refuse. Found from the few readDynTable could
// not resolve, without a walk over All.
func (d *DynRelocs) Unresolved() []DynReloc {
	addrs := slices.Compact(slices.Sorted(slices.Values(d.unresolved)))
	var out []DynReloc
	for _, a := range addrs {
		if r, ok := d.At(a); ok && !r.Resolved {
			out = append(out, r)
		}
	}
	return out
}

// At returns the relocation that decides the word at addr (the last one
// there), if any.
func (d *DynRelocs) At(addr uint64) (DynReloc, bool) {
	return d.at(addr, d.seek(addr, 0))
}

// seek returns the index of the first relocation at addr or above. Every
// relocation before from must be below addr (from 0 always is): a caller
// asking for increasing addresses passes the index the last call returned,
// and the few steps it walks from there replace a binary search (an
// entries table of 50k words, each with its relocation, is read in order).
func (d *DynRelocs) seek(addr uint64, from int) int {
	for n := 0; n < 4 && from < len(d.rels); n++ {
		if d.rels[from].Off >= addr {
			return from
		}
		from++
	}
	i, _ := slices.BinarySearchFunc(d.rels[from:], addr, func(r DynReloc, a uint64) int { return cmp.Compare(r.Off, a) })
	return from + i
}

// at is At given i = seek(addr, …).
func (d *DynRelocs) at(addr uint64, i int) (DynReloc, bool) {
	if i >= len(d.rels) || d.rels[i].Off != addr {
		return DynReloc{}, false
	}
	for i+1 < len(d.rels) && d.rels[i+1].Off == addr {
		i++
	}
	return d.rels[i], true
}

// Describe names a relocation for messages: its table, index and address.
func (d *DynRelocs) Describe(r DynReloc) string {
	name := fmt.Sprintf("#%d", r.table)
	if int(r.table) < len(d.f.Sections) {
		name = d.f.Sections[r.table].Name
	}
	return fmt.Sprintf("section %q relocation %d at %#x", name, r.index, r.Off)
}

// Value returns the value the loader stores at addr: found is false when no
// relocation applies there; a relocation there that is not resolved
// (unsupported type, undefined symbol) is an error wrapping
// ErrUnsupportedReloc, never a silent zero.
func (d *DynRelocs) Value(addr uint64) (v uint64, found bool, err error) {
	r, ok := d.At(addr)
	return d.value(r, ok)
}

// value is Value given At's results.
func (d *DynRelocs) value(r DynReloc, ok bool) (v uint64, found bool, err error) {
	if !ok {
		return 0, false, nil
	}
	if !r.Resolved {
		what := r.Type().String()
		switch r.Type() {
		case elf.R_AARCH64_ABS64, elf.R_AARCH64_GLOB_DAT, elf.R_AARCH64_JUMP_SLOT:
			what = fmt.Sprintf("%v against undefined symbol %d (its value is known only at load time)", r.Type(), r.Sym)
		}
		return 0, true, fmt.Errorf("%s: %w: %s", d.Describe(r), ErrUnsupportedReloc, what)
	}
	return r.Value, true, nil
}

// Load64 returns the 64-bit little-endian value a linked file holds at
// addr once loaded at its link address: the bytes its PT_LOAD segment
// gives (zero past the file contents), replaced by the value of a dynamic
// relocation there (see DynRelocs: one that is not resolved is an error).
func (o *Object) Load64(addr uint64) (uint64, error) {
	if o.Rel() {
		return 0, fmt.Errorf("%#x: a relocatable object is not loaded; its values are in relocations", addr)
	}
	var v uint64
	found := false
	for _, p := range o.f.Progs {
		if p.Type != elf.PT_LOAD || addr < p.Vaddr || addr-p.Vaddr > p.Memsz || p.Memsz-(addr-p.Vaddr) < 8 {
			continue
		}
		found = true
		if in := addr - p.Vaddr; in < p.Filesz && p.Filesz-in >= 8 {
			var b [8]byte
			if n, err := o.r.ReadAt(b[:], int64(p.Off+in)); n != 8 {
				return 0, fmt.Errorf("%w: reading %#x at file offset %#x: %w", ErrMalformed, addr, p.Off+in, err)
			}
			v = binary.LittleEndian.Uint64(b[:])
		}
		break
	}
	if !found {
		return 0, fmt.Errorf("%w: %#x is not in a loaded segment", ErrNoMapping, addr)
	}
	d, err := o.DynRelocs()
	if err != nil {
		return 0, err
	}
	if r, found, err := d.Value(addr); err != nil || found {
		return r, err
	}
	return v, nil
}
