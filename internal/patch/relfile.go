// SPDX-License-Identifier: Apache-2.0

package patch

// Relocatable objects (ET_REL) are rewritten whole in memory: they are small,
// and their .symtab, .strtab and .rela sections change size. Symbols and
// relocations are read through the elfscan.Object; this file reads and
// writes only the headers, with debug/elf's types, and bounds every field
// it uses before it sizes an allocation or a loop by it.

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"math/bits"
	"sort"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/render"
)

const (
	ehdrSize = 64 // sizeof(Elf64_Ehdr)
	shdrSize = 64 // sizeof(Elf64_Shdr)
)

func hasData(h elf.Section64) bool {
	return elf.SectionType(h.Type) != elf.SHT_NULL && elf.SectionType(h.Type) != elf.SHT_NOBITS
}

// relFile is the raw view of an ET_REL file: its bytes and headers.
type relFile struct {
	o      *elfscan.Object
	relocs *elfscan.Relocs
	data   []byte
	hdr    elf.Header64
	sh     []elf.Section64
	symtab int // index of .symtab
	strtab int
	nsyms  int // entries of .symtab, the null symbol included
}

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", elfscan.ErrMalformed, fmt.Sprintf(format, a...))
}

// section returns the contents of section i (nil without data); parseRel
// has checked they lie in the file.
func (rf *relFile) section(i int) []byte {
	h := rf.sh[i]
	if !hasData(h) {
		return nil
	}
	return rf.data[h.Off : h.Off+h.Size]
}

func cstring(b []byte, off uint32) string {
	if int(off) >= len(b) {
		return ""
	}
	b = b[off:]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// parseRel reads the headers of the ET_REL object o. Every field used later
// is checked here: the section header table and each section's contents lie
// in the file, sh_addralign is 0 or a power of two no larger than the file
// (a section that large could not have been laid out in it), the symbol
// table is the one o reads and links to a string table.
func parseRel(o *elfscan.Object) (*relFile, error) {
	b, err := o.Bytes()
	if err != nil {
		return nil, err
	}
	rf := &relFile{o: o, data: b}
	if _, err := binary.Decode(b, binary.LittleEndian, &rf.hdr); err != nil {
		return nil, malformed("file shorter than an ELF header")
	}
	h := rf.hdr
	if h.Phnum != 0 {
		return nil, malformed("relocatable object with program headers is not supported")
	}
	shnum, shstrndx := int(h.Shnum), int(h.Shstrndx)
	if shnum == 0 || h.Shentsize != shdrSize || shstrndx >= shnum {
		return nil, malformed("section header table: e_shnum %d, e_shentsize %d, e_shstrndx %d not supported", shnum, h.Shentsize, shstrndx)
	}
	size := uint64(len(b))
	if h.Shoff > size || uint64(shnum)*shdrSize > size-h.Shoff {
		return nil, malformed("section header table at %#x (%d entries) runs past the end of the file (%#x)", h.Shoff, shnum, size)
	}
	rf.sh = make([]elf.Section64, shnum)
	if _, err := binary.Decode(b[h.Shoff:], binary.LittleEndian, rf.sh); err != nil {
		return nil, malformed("section header table at %#x: %v", h.Shoff, err)
	}
	for i, s := range rf.sh {
		if !hasData(s) {
			continue
		}
		if s.Off > size || s.Size > size-s.Off {
			return nil, malformed("section %d at %#x size %#x runs past the end of the file (%#x)", i, s.Off, s.Size, size)
		}
		if s.Addralign > 1 && (bits.OnesCount64(s.Addralign) != 1 || s.Addralign > size) {
			return nil, malformed("section %d: sh_addralign %#x is not a power of two no larger than the file (%#x)", i, s.Addralign, size)
		}
		switch elf.SectionType(s.Type) {
		case elf.SHT_SYMTAB:
			if rf.symtab != 0 {
				return nil, malformed("two symbol tables")
			}
			rf.symtab = i
		case elf.SHT_SYMTAB_SHNDX:
			return nil, malformed("SHT_SYMTAB_SHNDX (more than 65279 sections) is not supported")
		}
	}
	if rf.symtab == 0 {
		return nil, malformed("relocatable object without .symtab")
	}
	st, err := o.Symbols()
	if err != nil {
		return nil, err
	}
	if st.SectionHeader() != o.ELF().Sections[rf.symtab] {
		return nil, malformed(".symtab: section %d is not the symbol table the object reads", rf.symtab)
	}
	rf.strtab = int(rf.sh[rf.symtab].Link)
	if rf.strtab == 0 || rf.strtab >= shnum || elf.SectionType(rf.sh[rf.strtab].Type) != elf.SHT_STRTAB {
		return nil, malformed(".symtab: sh_link %d is not a string table", rf.strtab)
	}
	if rf.nsyms = st.Len(); rf.nsyms == 0 {
		return nil, malformed(".symtab is empty")
	}
	if rf.relocs, err = o.Relocs(); err != nil {
		return nil, err
	}
	return rf, nil
}

func (rf *relFile) name(i int) string {
	return cstring(rf.section(int(rf.hdr.Shstrndx)), rf.sh[i].Name)
}

// relocsAt returns the relocations of text section sec at offset off.
func (rf *relFile) relocsAt(sec int, off uint64) ([]elfscan.Rela, error) {
	return rf.relocs.At(sec, off)
}

// rewrite returns the file with c applied: words, relocations, symbols.
// Sections keep their indices and order; new .rela sections are appended
// after the last header; file offsets are laid out again.
func (rf *relFile) rewrite(c *Changes) ([]byte, error) {
	le := binary.LittleEndian
	data := bytes.Clone(rf.data)
	for w := range c.Writes() {
		off, size := w.Off(), int64(w.Size())
		if off < 0 || off+size > int64(len(data)) {
			return nil, malformed("write at %#x outside the file", off)
		}
		if !w.Matches(data[off : off+size]) {
			return nil, fmt.Errorf("%w: %s at %s: expected %s at file offset %#x", ErrChanged, render.FuncName(w.Func()), render.Place(true, w.Section(), w.Addr()), render.Word(w.OldBytes()), off)
		}
		w.Put(data[off:])
	}
	sh := append([]elf.Section64(nil), rf.sh...)
	for _, a := range c.Aligns {
		if a.SectionIndex <= 0 || a.SectionIndex >= len(sh) {
			return nil, malformed("alignment of section %d outside the file", a.SectionIndex)
		}
		sh[a.SectionIndex].Addralign = 8
	}
	content := make([][]byte, len(sh))
	for i := range sh {
		if hasData(sh[i]) {
			content[i] = data[sh[i].Off : sh[i].Off+sh[i].Size]
		}
	}
	modified := func(i int) []byte { // private copy on first change
		content[i] = bytes.Clone(content[i])
		return content[i]
	}
	appendStr := func(sec int, s string) uint32 {
		b := modified(sec)
		off := uint32(len(b))
		content[sec] = append(append(b, s...), 0)
		return off
	}

	// Symbols: undefined globals at the end; globals already follow the
	// locals (sh_info), so no index moves.
	if len(c.NewSyms) > 0 {
		syms := modified(rf.symtab)
		for _, name := range c.NewSyms {
			var err error
			syms, err = binary.Append(syms, le, elf.Sym64{Name: appendStr(rf.strtab, name), Info: elf.ST_INFO(elf.STB_GLOBAL, elf.STT_NOTYPE)})
			if err != nil {
				return nil, err
			}
		}
		content[rf.symtab] = syms
	}

	// Relocations, grouped by the text section they apply to.
	lists := map[int][]elfscan.Rela{} // rela section (existing or new) -> entries
	newRela := map[int]int{}          // text section -> index of its new .rela section
	var order []int
	for _, r := range c.Relocs {
		ri := 0
		if l := rf.relocs.Tables(r.SectionIndex); len(l) > 0 {
			ri = l[0]
			if r.Old != nil {
				for _, x := range l { // remove from whichever holds it
					t, err := rf.relocs.Table(x)
					if err != nil {
						return nil, err
					}
					if containsRela(t, *r.Old) {
						ri = x
					}
				}
			}
		} else if ni, ok := newRela[r.SectionIndex]; ok {
			ri = ni
		} else {
			ri = len(sh)
			newRela[r.SectionIndex] = ri
			text := sh[r.SectionIndex]
			h := elf.Section64{Type: uint32(elf.SHT_RELA), Flags: uint64(elf.SHF_INFO_LINK), Link: uint32(rf.symtab), Info: uint32(r.SectionIndex),
				Addralign: 8, Entsize: elfscan.RelaSize}
			if elf.SectionFlag(text.Flags)&elf.SHF_GROUP != 0 {
				h.Flags |= uint64(elf.SHF_GROUP)
			}
			sh = append(sh, h)
			content = append(content, nil)
			lists[ri] = nil
		}
		if _, ok := lists[ri]; !ok && ri < len(rf.sh) {
			t, err := rf.relocs.Table(ri)
			if err != nil {
				return nil, err
			}
			lists[ri] = append([]elfscan.Rela(nil), t...)
		}
		if !containsKey(order, ri) {
			order = append(order, ri)
		}
		l := lists[ri]
		if r.Old != nil {
			k := indexRela(l, *r.Old)
			if k < 0 {
				return nil, fmt.Errorf("%w: %s at %s: relocation %s not found", ErrChanged, render.FuncName(r.Func), render.Place(true, r.Section, r.Off), r.OldText())
			}
			l = append(l[:k], l[k+1:]...)
		}
		if r.New != nil {
			k := sort.Search(len(l), func(i int) bool { return l[i].Off > r.New.Off })
			l = append(l[:k], append([]elfscan.Rela{*r.New}, l[k:]...)...)
		}
		lists[ri] = l
	}
	for _, ri := range order {
		content[ri] = elfscan.EncodeRela(nil, lists[ri])
	}
	// New sections: names, group membership.
	texts := make([]int, 0, len(newRela))
	for t := range newRela {
		texts = append(texts, t)
	}
	sort.Ints(texts)
	for _, t := range texts {
		ri := newRela[t]
		sh[ri].Name = appendStr(int(rf.hdr.Shstrndx), ".rela"+rf.name(t))
		if elf.SectionFlag(sh[t].Flags)&elf.SHF_GROUP == 0 {
			continue
		}
		for g := range rf.sh {
			if elf.SectionType(sh[g].Type) != elf.SHT_GROUP {
				continue
			}
			members := content[g]
			for k := 4; k+4 <= len(members); k += 4 {
				if le.Uint32(members[k:]) == uint32(t) {
					content[g] = le.AppendUint32(modified(g), uint32(ri))
					break
				}
			}
		}
	}

	// Layout: header, sections in their old file order, new ones, headers.
	idx := make([]int, 0, len(sh))
	for i := 1; i < len(sh); i++ {
		if hasData(sh[i]) {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool {
		x, y := idx[a], idx[b]
		if (x >= len(rf.sh)) != (y >= len(rf.sh)) {
			return y >= len(rf.sh)
		}
		if x >= len(rf.sh) {
			return x < y
		}
		return sh[x].Off < sh[y].Off
	})
	if len(sh) >= int(elf.SHN_LORESERVE) {
		return nil, malformed("too many sections (%d)", len(sh))
	}
	// Padding is bounded: each gap is below its section's alignment, which
	// parseRel bounded by the file size, and all of them together by the
	// padding the file itself could hold plus a page per section.
	maxPad := uint64(len(data)) + uint64(len(idx))*4096
	var pad uint64
	out := make([]byte, ehdrSize, len(data)+len(data)/8+4096)
	for _, i := range idx {
		al := max(sh[i].Addralign, 1)
		if n := (al - uint64(len(out))%al) % al; n > 0 {
			if pad += n; pad > maxPad {
				return nil, malformed("laying out section %d (sh_addralign %#x) needs more than %d bytes of padding", i, al, maxPad)
			}
			out = append(out, make([]byte, n)...)
		}
		sh[i].Off = uint64(len(out))
		sh[i].Size = uint64(len(content[i]))
		out = append(out, content[i]...)
	}
	for len(out)%8 != 0 {
		out = append(out, 0)
	}
	hdr := rf.hdr
	hdr.Shoff, hdr.Shnum = uint64(len(out)), uint16(len(sh))
	if _, err := binary.Encode(out, le, hdr); err != nil {
		return nil, err
	}
	for i := range sh {
		if !hasData(sh[i]) && i > 0 && elf.SectionType(sh[i].Type) != elf.SHT_NOBITS {
			sh[i].Off = 0
		}
	}
	return binary.Append(out, le, sh)
}

func containsKey(l []int, v int) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

func indexRela(l []elfscan.Rela, r elfscan.Rela) int {
	for i, x := range l {
		if x == r {
			return i
		}
	}
	return -1
}

func containsRela(l []elfscan.Rela, r elfscan.Rela) bool { return indexRela(l, r) >= 0 }
