// SPDX-License-Identifier: Apache-2.0

package elfwrite

import (
	"bytes"
	"debug/elf"
	"sort"
)

// An Edit is a relocatable file being changed: its sections' contents
// replaced or grown and sections added, then written again with a fresh
// layout (Bytes). Sections keep their indices; those the file had keep
// their file order, and added ones follow in index order. A section's
// contents are copied on their first change, so the bytes the Edit started
// from are never written.
type Edit struct {
	f       *File
	sh      []elf.Section64
	content [][]byte
	own     []bool // content[i] is the Edit's own copy
	inSize  int
}

// Edit starts a rewrite of f with the section contents of data: f.Data,
// or a copy of it with words written in place (same length, same layout).
func (f *File) Edit(data []byte) *Edit {
	e := &Edit{f: f, sh: append([]elf.Section64(nil), f.Sections...), inSize: len(data)}
	e.content = make([][]byte, len(e.sh))
	e.own = make([]bool, len(e.sh))
	for i, s := range e.sh {
		if HasData(s) {
			e.content[i] = data[s.Off : s.Off+s.Size]
		}
	}
	return e
}

// Content returns section i's contents as they stand; the caller must not
// modify them.
func (e *Edit) Content(i int) []byte { return e.content[i] }

// SetContent replaces section i's contents with b, which the Edit then
// owns.
func (e *Edit) SetContent(i int, b []byte) {
	e.content[i], e.own[i] = b, true
}

// owned returns section i's contents as the Edit's own copy, to append to.
func (e *Edit) owned(i int) []byte {
	if !e.own[i] {
		e.content[i], e.own[i] = bytes.Clone(e.content[i]), true
	}
	return e.content[i]
}

// SetAlign sets section i's sh_addralign; i must be a section of the file.
func (e *Edit) SetAlign(i int, align uint64) error {
	if i <= 0 || i >= len(e.f.Sections) {
		return formatError("alignment of section %d outside the file", i)
	}
	e.sh[i].Addralign = align
	return nil
}

// AppendString appends s to string table sec and returns its offset there.
func (e *Edit) AppendString(sec int, s string) uint32 {
	b, off := appendString(e.owned(sec), s)
	e.content[sec] = b
	return off
}

// AddUndefined appends an undefined global symbol (STB_GLOBAL, STT_NOTYPE,
// SHN_UNDEF) named name to the symbol table, and its name to the table's
// strings. Globals follow the locals (sh_info), so no index moves.
func (e *Edit) AddUndefined(name string) {
	sym := elf.Sym64{Name: e.AppendString(e.f.Strtab, name), Info: elf.ST_INFO(elf.STB_GLOBAL, elf.STT_NOTYPE)}
	e.content[e.f.Symtab] = AppendSym(e.owned(e.f.Symtab), sym)
}

// AddSection appends a section with header h (its name unset: SetName)
// and no contents (SetContent), and returns its index.
func (e *Edit) AddSection(h elf.Section64) int {
	e.sh = append(e.sh, h)
	e.content = append(e.content, nil)
	e.own = append(e.own, true)
	return len(e.sh) - 1
}

// SetName names section i: its name is appended to the section name table.
func (e *Edit) SetName(i int, name string) {
	e.sh[i].Name = e.AppendString(int(e.f.Header.Shstrndx), name)
}

// Header returns section i's header as it stands.
func (e *Edit) Header(i int) elf.Section64 { return e.sh[i] }

// JoinGroups adds section added to every group (SHT_GROUP section of the
// file) that lists section member, as a group's .rela section belongs to
// the group of the section it relocates.
func (e *Edit) JoinGroups(member, added int) {
	for g := range e.f.Sections {
		if elf.SectionType(e.sh[g].Type) != elf.SHT_GROUP || !groupHas(e.content[g], member) {
			continue
		}
		e.content[g] = le.AppendUint32(e.owned(g), uint32(added))
	}
}

// Bytes writes the edited file: the ELF header, the sections with data
// (the file's in their old file order, then the added ones), the section
// header table. Errors are *FormatError.
func (e *Edit) Bytes() ([]byte, error) {
	n := len(e.f.Sections) // sections below n are the file's own
	order := make([]int, 0, len(e.sh))
	for i := 1; i < len(e.sh); i++ {
		if HasData(e.sh[i]) {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool {
		x, y := order[a], order[b]
		if (x >= n) != (y >= n) {
			return y >= n
		}
		if x >= n {
			return x < y
		}
		return e.sh[x].Off < e.sh[y].Off
	})
	return layout(e.f.Header, e.sh, e.content, order, e.inSize)
}
