package patch

// Relocatable objects (ET_REL) are rewritten whole in memory: they are small,
// and their .symtab, .strtab and .rela sections change size.

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/render"
)

const (
	ehdrSize = 64
	shdrSize = 64
	symSize  = 24
)

// shdr is one Elf64_Shdr.
type shdr struct {
	Name           uint32
	Type           elf.SectionType
	Flags          elf.SectionFlag
	Addr, Off      uint64
	Size           uint64
	Link, Info     uint32
	Align, Entsize uint64
}

func (h shdr) hasData() bool { return h.Type != elf.SHT_NULL && h.Type != elf.SHT_NOBITS }

// relSym is what planning needs of a .symtab entry.
type relSym struct {
	name  string
	info  uint8
	shndx uint16
}

// relFile is the raw view of an ET_REL file.
type relFile struct {
	data     []byte
	sh       []shdr
	shstrndx int
	symtab   int // index of .symtab, 0 when none
	strtab   int
	syms     []relSym               // by index, element 0 the null symbol
	relaFor  map[int][]int          // text section -> its SHT_RELA sections
	relas    map[int][]elfscan.Rela // SHT_RELA section -> entries, file order
}

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", elfscan.ErrMalformed, fmt.Sprintf(format, a...))
}

func (rf *relFile) section(i int) ([]byte, error) {
	h := rf.sh[i]
	if !h.hasData() {
		return nil, nil
	}
	if h.Off > uint64(len(rf.data)) || h.Size > uint64(len(rf.data))-h.Off {
		return nil, malformed("section %d at %#x size %#x runs past the end of the file (%#x)", i, h.Off, h.Size, len(rf.data))
	}
	return rf.data[h.Off : h.Off+h.Size], nil
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

func parseRel(b []byte) (*relFile, error) {
	le := binary.LittleEndian
	if len(b) < ehdrSize {
		return nil, malformed("file shorter than an ELF header")
	}
	rf := &relFile{data: b, relaFor: map[int][]int{}, relas: map[int][]elfscan.Rela{}}
	shoff := le.Uint64(b[0x28:])
	if le.Uint16(b[0x36:]) != 0 { // e_phnum
		return nil, malformed("relocatable object with program headers is not supported")
	}
	shentsize, shnum, shstrndx := le.Uint16(b[0x3a:]), int(le.Uint16(b[0x3c:])), int(le.Uint16(b[0x3e:]))
	if shnum == 0 || shentsize != shdrSize || shstrndx >= shnum {
		return nil, malformed("section header table: e_shnum %d, e_shentsize %d, e_shstrndx %d not supported", shnum, shentsize, shstrndx)
	}
	if shoff > uint64(len(b)) || uint64(shnum)*shdrSize > uint64(len(b))-shoff {
		return nil, malformed("section header table at %#x runs past the end of the file", shoff)
	}
	rf.shstrndx = shstrndx
	for i := 0; i < shnum; i++ {
		e := b[shoff+uint64(i)*shdrSize:]
		rf.sh = append(rf.sh, shdr{
			Name: le.Uint32(e), Type: elf.SectionType(le.Uint32(e[4:])), Flags: elf.SectionFlag(le.Uint64(e[8:])),
			Addr: le.Uint64(e[16:]), Off: le.Uint64(e[24:]), Size: le.Uint64(e[32:]),
			Link: le.Uint32(e[40:]), Info: le.Uint32(e[44:]), Align: le.Uint64(e[48:]), Entsize: le.Uint64(e[56:]),
		})
	}
	for i, h := range rf.sh {
		if _, err := rf.section(i); err != nil {
			return nil, err
		}
		switch h.Type {
		case elf.SHT_SYMTAB:
			if rf.symtab != 0 {
				return nil, malformed("two symbol tables")
			}
			rf.symtab = i
		case elf.SHT_SYMTAB_SHNDX:
			return nil, malformed("SHT_SYMTAB_SHNDX (more than 65279 sections) is not supported")
		case elf.SHT_RELA:
			if int(h.Info) >= shnum {
				return nil, malformed("section %d: sh_info %d out of range", i, h.Info)
			}
			d, _ := rf.section(i)
			rs, err := elfscan.DecodeRela(d, fmt.Sprintf("#%d", i))
			if err != nil {
				return nil, err
			}
			rf.relas[i] = rs
			rf.relaFor[int(h.Info)] = append(rf.relaFor[int(h.Info)], i)
		}
	}
	if rf.symtab == 0 {
		return nil, malformed("relocatable object without .symtab")
	}
	st := rf.sh[rf.symtab]
	rf.strtab = int(st.Link)
	if rf.strtab == 0 || rf.strtab >= shnum || rf.sh[rf.strtab].Type != elf.SHT_STRTAB {
		return nil, malformed(".symtab: sh_link %d is not a string table", st.Link)
	}
	d, _ := rf.section(rf.symtab)
	strs, _ := rf.section(rf.strtab)
	if len(d)%symSize != 0 || len(d) == 0 {
		return nil, malformed(".symtab size %d is not a non-zero multiple of %d", len(d), symSize)
	}
	for k := 0; k < len(d); k += symSize {
		rf.syms = append(rf.syms, relSym{name: cstring(strs, le.Uint32(d[k:])), info: d[k+4], shndx: le.Uint16(d[k+6:])})
	}
	for i, rs := range rf.relas {
		if rf.sh[i].Link != uint32(rf.symtab) {
			return nil, malformed("relocation section %d: sh_link %d is not .symtab", i, rf.sh[i].Link)
		}
		for k, r := range rs {
			if int(r.Sym) >= len(rf.syms) {
				return nil, malformed("relocation section %d entry %d: symbol %d out of range", i, k, r.Sym)
			}
		}
	}
	return rf, nil
}

func (rf *relFile) name(i int) string {
	d, _ := rf.section(rf.shstrndx)
	return cstring(d, rf.sh[i].Name)
}

// symbol returns the index of a usable .symtab symbol named name: the one
// definition, else an undefined reference; 0 when there is none.
func (rf *relFile) symbol(name string) (uint32, error) {
	var defined []int
	undef := 0
	for i, s := range rf.syms {
		if i == 0 || s.name != name {
			continue
		}
		switch elf.ST_TYPE(s.info) {
		case elf.STT_SECTION, elf.STT_FILE:
			continue
		}
		if s.shndx == uint16(elf.SHN_UNDEF) {
			if undef == 0 {
				undef = i
			}
		} else {
			defined = append(defined, i)
		}
	}
	switch {
	case len(defined) == 1:
		return uint32(defined[0]), nil
	case len(defined) > 1:
		return 0, fmt.Errorf("%w: symbol %q is ambiguous: .symtab defines it %d times (indices %v)", ErrSymbol, name, len(defined), defined)
	}
	return uint32(undef), nil
}

func (rf *relFile) symName(i uint32) string {
	if int(i) < len(rf.syms) {
		s := rf.syms[i]
		if elf.ST_TYPE(s.info) == elf.STT_SECTION && int(s.shndx) < len(rf.sh) {
			return rf.name(int(s.shndx))
		}
		return s.name
	}
	return fmt.Sprintf("#%d", i)
}

// relocsAt returns the relocations of text section sec at offset off.
func (rf *relFile) relocsAt(sec int, off uint64) []elfscan.Rela {
	var out []elfscan.Rela
	for _, ri := range rf.relaFor[sec] {
		for _, r := range rf.relas[ri] {
			if r.Off == off {
				out = append(out, r)
			}
		}
	}
	return out
}

// rewrite returns the file with c applied: words, relocations, symbols.
// Sections keep their indices and order; new .rela sections are appended
// after the last header; file offsets are laid out again.
func (rf *relFile) rewrite(c *Changes) ([]byte, error) {
	le := binary.LittleEndian
	data := bytes.Clone(rf.data)
	for _, w := range c.Writes {
		if w.Off < 0 || w.Off+int64(len(w.New)) > int64(len(data)) {
			return nil, malformed("write at %#x outside the file", w.Off)
		}
		if !bytes.Equal(data[w.Off:w.Off+int64(len(w.Old))], w.Old) {
			return nil, fmt.Errorf("%w: %s at %s: expected %s at file offset %#x", ErrChanged, funcName(w.Func), render.Place(true, w.Section, w.Addr), render.Word(w.Old), w.Off)
		}
		copy(data[w.Off:], w.New)
	}
	sh := append([]shdr(nil), rf.sh...)
	content := make([][]byte, len(sh))
	for i := range sh {
		content[i], _ = rf.section(i)
		if sh[i].hasData() {
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
		var add []byte
		for _, name := range c.NewSyms {
			e := make([]byte, symSize)
			le.PutUint32(e, appendStr(rf.strtab, name))
			e[4] = byte(elf.STB_GLOBAL)<<4 | byte(elf.STT_NOTYPE)
			add = append(add, e...)
		}
		content[rf.symtab] = append(modified(rf.symtab), add...)
	}

	// Relocations, grouped by the text section they apply to.
	lists := map[int][]elfscan.Rela{} // rela section (existing or new) -> entries
	newRela := map[int]int{}          // text section -> index of its new .rela section
	var order []int
	for _, r := range c.Relocs {
		ri := 0
		if l := rf.relaFor[r.SectionIndex]; len(l) > 0 {
			ri = l[0]
			if r.Old != nil {
				for _, x := range l { // remove from whichever holds it
					if containsRela(rf.relas[x], *r.Old) {
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
			h := shdr{Type: elf.SHT_RELA, Flags: elf.SHF_INFO_LINK, Link: uint32(rf.symtab), Info: uint32(r.SectionIndex), Align: 8, Entsize: elfscan.RelaSize}
			if text.Flags&elf.SHF_GROUP != 0 {
				h.Flags |= elf.SHF_GROUP
			}
			sh = append(sh, h)
			content = append(content, nil)
			lists[ri] = nil
		}
		if _, ok := lists[ri]; !ok && ri < len(rf.sh) {
			lists[ri] = append([]elfscan.Rela(nil), rf.relas[ri]...)
		}
		if !containsKey(order, ri) {
			order = append(order, ri)
		}
		l := lists[ri]
		if r.Old != nil {
			k := indexRela(l, *r.Old)
			if k < 0 {
				return nil, fmt.Errorf("%w: %s at %s: relocation %s not found", ErrChanged, funcName(r.Func), render.Place(true, r.Section, r.Off), relaString(r.Old, r.OldSym))
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
		sh[ri].Name = appendStr(rf.shstrndx, ".rela"+rf.name(t))
		if sh[t].Flags&elf.SHF_GROUP == 0 {
			continue
		}
		for g := range rf.sh {
			if sh[g].Type != elf.SHT_GROUP {
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
		if sh[i].hasData() {
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
	out := bytes.Clone(data[:ehdrSize])
	for _, i := range idx {
		al := max(sh[i].Align, 1)
		for uint64(len(out))%al != 0 {
			out = append(out, 0)
		}
		sh[i].Off = uint64(len(out))
		sh[i].Size = uint64(len(content[i]))
		out = append(out, content[i]...)
	}
	for len(out)%8 != 0 {
		out = append(out, 0)
	}
	le.PutUint64(out[0x28:], uint64(len(out)))
	le.PutUint16(out[0x3c:], uint16(len(sh)))
	for i, h := range sh {
		if !h.hasData() && i > 0 && h.Type != elf.SHT_NOBITS {
			h.Off = 0
		}
		e := make([]byte, shdrSize)
		le.PutUint32(e, h.Name)
		le.PutUint32(e[4:], uint32(h.Type))
		le.PutUint64(e[8:], uint64(h.Flags))
		le.PutUint64(e[16:], h.Addr)
		le.PutUint64(e[24:], h.Off)
		le.PutUint64(e[32:], h.Size)
		le.PutUint32(e[40:], h.Link)
		le.PutUint32(e[44:], h.Info)
		le.PutUint64(e[48:], h.Align)
		le.PutUint64(e[56:], h.Entsize)
		out = append(out, e...)
	}
	if len(sh) >= int(elf.SHN_LORESERVE) {
		return nil, malformed("too many sections (%d)", len(sh))
	}
	return out, nil
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
