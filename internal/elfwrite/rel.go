// SPDX-License-Identifier: Apache-2.0

package elfwrite

// A relocatable file's headers, read for a rewrite: every field used later
// is bounded here, before anything is sized or looped by it.

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"math/bits"
)

// File is the raw view of an ET_REL file: its bytes, ELF header and
// section headers as they are in the file, and where its symbol table is.
// Parse checked that each section with data lies in Data.
type File struct {
	Data     []byte
	Header   elf.Header64
	Sections []elf.Section64
	Symtab   int // index of the symbol table (SHT_SYMTAB)
	Strtab   int // index of its string table (the symbol table's sh_link)
}

// Parse reads the headers of the relocatable file b. It checks every field
// a rewrite uses: the section header table and each section's bytes lie in
// the file, sh_addralign is 0 or a power of two no larger than the file (a
// section that large could not have been laid out in it), there are no
// program headers, and there is one symbol table, linked to a string
// table. Errors are *FormatError.
func Parse(b []byte) (*File, error) {
	f := &File{Data: b}
	if err := f.readHeaders(); err != nil {
		return nil, err
	}
	for i, s := range f.Sections {
		if err := f.checkSection(i, s); err != nil {
			return nil, err
		}
	}
	if f.Symtab == 0 {
		return nil, formatError("relocatable object without .symtab")
	}
	f.Strtab = int(f.Sections[f.Symtab].Link)
	if f.Strtab == 0 || f.Strtab >= len(f.Sections) || elf.SectionType(f.Sections[f.Strtab].Type) != elf.SHT_STRTAB {
		return nil, formatError(".symtab: sh_link %d is not a string table", f.Strtab)
	}
	return f, nil
}

// readHeaders decodes the ELF header and the section header table.
func (f *File) readHeaders() error {
	b := f.Data
	if _, err := binary.Decode(b, le, &f.Header); err != nil {
		return formatError("file shorter than an ELF header")
	}
	h := f.Header
	if h.Phnum != 0 {
		return formatError("relocatable object with program headers is not supported")
	}
	shnum, shstrndx := int(h.Shnum), int(h.Shstrndx)
	if shnum == 0 || h.Shentsize != SectionHeaderSize || shstrndx >= shnum {
		return formatError("section header table: e_shnum %d, e_shentsize %d, e_shstrndx %d not supported", shnum, h.Shentsize, shstrndx)
	}
	size := uint64(len(b))
	if h.Shoff > size || uint64(shnum)*SectionHeaderSize > size-h.Shoff {
		return formatError("section header table at %#x (%d entries) runs past the end of the file (%#x)", h.Shoff, shnum, size)
	}
	f.Sections = make([]elf.Section64, shnum)
	if _, err := binary.Decode(b[h.Shoff:], le, f.Sections); err != nil {
		return formatError("section header table at %#x: %v", h.Shoff, err)
	}
	return nil
}

// checkSection bounds section i's bytes and alignment by the file, and
// notes the symbol table.
func (f *File) checkSection(i int, s elf.Section64) error {
	if !HasData(s) {
		return nil
	}
	size := uint64(len(f.Data))
	if s.Off > size || s.Size > size-s.Off {
		return formatError("section %d at %#x size %#x runs past the end of the file (%#x)", i, s.Off, s.Size, size)
	}
	if s.Addralign > 1 && (bits.OnesCount64(s.Addralign) != 1 || s.Addralign > size) {
		return formatError("section %d: sh_addralign %#x is not a power of two no larger than the file (%#x)", i, s.Addralign, size)
	}
	switch elf.SectionType(s.Type) {
	case elf.SHT_SYMTAB:
		if f.Symtab != 0 {
			return formatError("two symbol tables")
		}
		f.Symtab = i
	case elf.SHT_SYMTAB_SHNDX:
		return formatError("SHT_SYMTAB_SHNDX (more than 65279 sections) is not supported")
	}
	return nil
}

// Section returns the bytes of section i (nil for one without data).
func (f *File) Section(i int) []byte {
	s := f.Sections[i]
	if !HasData(s) {
		return nil
	}
	return f.Data[s.Off : s.Off+s.Size]
}

// Name returns section i's name from the section name table ("" when its
// sh_name is outside the table).
func (f *File) Name(i int) string {
	return cstring(f.Section(int(f.Header.Shstrndx)), f.Sections[i].Name)
}

// cstring is the NUL-terminated string at off in b ("" past its end).
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

// Grows reports whether a rewrite may make section s longer: the tables a
// patch appends to (symbols, strings, relocations, group members). Their
// sizes change; every other section keeps its bytes' length.
func Grows(s elf.Section64) bool {
	switch elf.SectionType(s.Type) {
	case elf.SHT_SYMTAB, elf.SHT_STRTAB, elf.SHT_RELA, elf.SHT_GROUP:
		return true
	}
	return false
}
