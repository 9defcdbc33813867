// SPDX-License-Identifier: Apache-2.0

package patch

// Relocatable objects (ET_REL) are rewritten whole in memory: they are small,
// and their .symtab, .strtab and .rela sections change size. Symbols and
// relocations are read through the elfscan.Object; the headers are read,
// and the file written again, by package elfwrite. This file says what a
// plan changes: words in place, section alignments, added symbols,
// relocation tables, the .rela sections a text section without one gets.

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/elfwrite"
	"github.com/ftpatch/ftpatch/internal/render"
)

// relFile is an ET_REL file opened for a rewrite: its raw headers
// (elfwrite) and the relocations its Object reads.
type relFile struct {
	o      *elfscan.Object
	relocs *elfscan.Relocs
	raw    *elfwrite.File
	sh     []elf.Section64 // raw.Sections
	nsyms  int             // entries of .symtab, the null symbol included
}

// malformed says that elfwrite refused the file's headers: the file is
// malformed ELF. Other errors pass unchanged.
func malformed(err error) error {
	if fe := (*elfwrite.FormatError)(nil); errors.As(err, &fe) {
		return fmt.Errorf("%w: %w", elfscan.ErrMalformed, err)
	}
	return err
}

// parseRel reads the headers of the ET_REL object o (elfwrite.Parse
// bounds every field a rewrite uses) and checks that its symbol table is
// the one o reads.
func parseRel(o *elfscan.Object) (*relFile, error) {
	b, err := o.Bytes()
	if err != nil {
		return nil, err
	}
	raw, err := elfwrite.Parse(b)
	if err != nil {
		return nil, malformed(err)
	}
	rf := &relFile{o: o, raw: raw, sh: raw.Sections}
	st, err := o.Symbols()
	if err != nil {
		return nil, err
	}
	if st.SectionHeader() != o.ELF().Sections[raw.Symtab] {
		return nil, fmt.Errorf("%w: .symtab: section %d is not the symbol table the object reads", elfscan.ErrMalformed, raw.Symtab)
	}
	if rf.nsyms = st.Len(); rf.nsyms == 0 {
		return nil, fmt.Errorf("%w: .symtab is empty", elfscan.ErrMalformed)
	}
	if rf.relocs, err = o.Relocs(); err != nil {
		return nil, err
	}
	return rf, nil
}

// relocsAt returns the relocations of text section sec at offset off.
func (rf *relFile) relocsAt(sec int, off uint64) ([]elfscan.Rela, error) {
	return rf.relocs.At(sec, off)
}

// rewrite returns the file with c applied: words, section alignments,
// symbols, relocations. Sections keep their indices and order; new .rela
// sections are appended after the last header; file offsets are laid out
// again.
func (rf *relFile) rewrite(c *Changes) ([]byte, error) {
	data, err := rf.writeWords(c)
	if err != nil {
		return nil, err
	}
	e := rf.raw.Edit(data)
	for _, a := range c.Aligns {
		if err := e.SetAlign(a.SectionIndex, 8); err != nil {
			return nil, malformed(err)
		}
	}
	for _, name := range c.NewSyms {
		e.AddUndefined(name)
	}
	added, err := rf.editRelocs(e, c.Relocs)
	if err != nil {
		return nil, err
	}
	rf.nameAdded(e, added)
	out, err := e.Bytes()
	return out, malformed(err)
}

// writeWords returns a copy of the file with c's words written, each old
// word checked first.
func (rf *relFile) writeWords(c *Changes) ([]byte, error) {
	data := bytes.Clone(rf.raw.Data)
	for w := range c.Writes() {
		off, size := w.Off(), int64(w.Size())
		if off < 0 || off+size > int64(len(data)) {
			return nil, fmt.Errorf("%w: write at %#x outside the file", elfscan.ErrMalformed, off)
		}
		if !w.Matches(data[off : off+size]) {
			return nil, fmt.Errorf("%w: %s at %s: expected %s at file offset %#x", ErrChanged, render.FuncName(w.Func()), render.Place(true, w.Section(), w.Addr()), render.Word(w.OldBytes()), off)
		}
		w.Put(data[off:])
	}
	return data, nil
}

// relaEdit is the relocation tables a plan changes, each as a list of
// entries by offset.
type relaEdit struct {
	rf    *relFile
	e     *elfwrite.Edit
	lists map[int][]elfscan.Rela // rela section (the file's or added) -> entries
	order []int                  // rela sections, in the order first changed
	added map[int]int            // text section -> the .rela section added for it
}

// editRelocs applies the relocation changes rs: each removes its old entry
// from whichever table of its text section holds it and inserts its new
// one in offset order, in a table added for the section when it has none.
// It returns the added tables by text section.
func (rf *relFile) editRelocs(e *elfwrite.Edit, rs []Reloc) (map[int]int, error) {
	x := &relaEdit{rf: rf, e: e, lists: map[int][]elfscan.Rela{}, added: map[int]int{}}
	for i := range rs {
		if err := x.apply(&rs[i]); err != nil {
			return nil, err
		}
	}
	for _, ri := range x.order {
		e.SetContent(ri, encodeRela(x.lists[ri]))
	}
	return x.added, nil
}

// apply makes relocation change r in the table it belongs to.
func (x *relaEdit) apply(r *Reloc) error {
	ri, err := x.table(r)
	if err != nil {
		return err
	}
	l, err := x.list(ri)
	if err != nil {
		return err
	}
	if r.Old != nil {
		k := slices.Index(l, *r.Old)
		if k < 0 {
			return fmt.Errorf("%w: %s at %s: relocation %s not found", ErrChanged, render.FuncName(r.Func), render.Place(true, r.Section, r.Off), r.OldText())
		}
		l = slices.Delete(l, k, k+1)
	}
	if r.New != nil {
		k := sort.Search(len(l), func(i int) bool { return l[i].Off > r.New.Off })
		l = slices.Insert(l, k, *r.New)
	}
	x.lists[ri] = l
	return nil
}

// table is the relocation section r changes: of its text section's
// tables, the last that holds r.Old (else the first); a table added for
// the section when it has none.
func (x *relaEdit) table(r *Reloc) (int, error) {
	l := x.rf.relocs.Tables(r.SectionIndex)
	if len(l) == 0 {
		return x.addTable(r.SectionIndex), nil
	}
	ri := l[0]
	if r.Old == nil {
		return ri, nil
	}
	for _, t := range l {
		rs, err := x.rf.relocs.Table(t)
		if err != nil {
			return 0, err
		}
		if slices.Contains(rs, *r.Old) {
			ri = t
		}
	}
	return ri, nil
}

// addTable returns the .rela section added for text section t, adding it
// (its header as elfwrite.RelaHeader says, unnamed yet) on first use.
func (x *relaEdit) addTable(t int) int {
	if ri, ok := x.added[t]; ok {
		return ri
	}
	group := elf.SectionFlag(x.rf.sh[t].Flags)&elf.SHF_GROUP != 0
	ri := x.e.AddSection(elfwrite.RelaHeader(x.rf.raw.Symtab, t, group))
	x.added[t] = ri
	x.lists[ri] = nil
	return ri
}

// list returns the entries of relocation section ri as changed so far:
// on first use, a copy of the file's table (none for an added one).
func (x *relaEdit) list(ri int) ([]elfscan.Rela, error) {
	if !slices.Contains(x.order, ri) {
		x.order = append(x.order, ri)
	}
	if l, ok := x.lists[ri]; ok {
		return l, nil
	}
	t, err := x.rf.relocs.Table(ri)
	if err != nil {
		return nil, err
	}
	x.lists[ri] = slices.Clone(t)
	return x.lists[ri], nil
}

// encodeRela is rs as an SHT_RELA section's bytes.
func encodeRela(rs []elfscan.Rela) []byte {
	b := make([]byte, 0, len(rs)*elfwrite.RelaSize)
	for _, r := range rs {
		b = elfwrite.AppendRela(b, r.Rela64())
	}
	return b
}

// nameAdded names each added .rela section after its text section
// (".rela" + name) and, when that section is in a group, adds it to the
// group, in text-section order.
func (rf *relFile) nameAdded(e *elfwrite.Edit, added map[int]int) {
	texts := make([]int, 0, len(added))
	for t := range added {
		texts = append(texts, t)
	}
	sort.Ints(texts)
	for _, t := range texts {
		ri := added[t]
		e.SetName(ri, ".rela"+rf.raw.Name(t))
		if elf.SectionFlag(rf.sh[t].Flags)&elf.SHF_GROUP != 0 {
			e.JoinGroups(t, ri)
		}
	}
}
