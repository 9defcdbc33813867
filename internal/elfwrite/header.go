// SPDX-License-Identifier: Apache-2.0

package elfwrite

// The ELF header and the section header table, decoded as they are in the
// file with debug/elf's types.

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
)

// Sizes of the ELF64 structures this package reads and writes.
const (
	HeaderSize        = 64 // sizeof(Elf64_Ehdr)
	SectionHeaderSize = 64 // sizeof(Elf64_Shdr)
	SymSize           = 24 // sizeof(Elf64_Sym)
	RelaSize          = 24 // sizeof(Elf64_Rela)
)

// le is the byte order of every file this package handles.
var le = binary.LittleEndian

// A FormatError says what is wrong with a file's headers. It does not say
// that the file is malformed ELF: the caller does (package patch wraps it
// in elfscan.ErrMalformed).
type FormatError struct{ Detail string }

func (e *FormatError) Error() string { return e.Detail }

func formatError(format string, a ...any) error {
	return &FormatError{Detail: fmt.Sprintf(format, a...)}
}

// HasData reports whether section s has bytes in the file (it is neither
// SHT_NULL nor SHT_NOBITS).
func HasData(s elf.Section64) bool {
	t := elf.SectionType(s.Type)
	return t != elf.SHT_NULL && t != elf.SHT_NOBITS
}

// ReadHeader reads the ELF header at the start of r.
func ReadHeader(r io.ReaderAt) (elf.Header64, error) {
	var h elf.Header64
	var b [HeaderSize]byte
	if err := ReadFull(r, b[:], 0); err != nil {
		return h, fmt.Errorf("ELF header: %w", err)
	}
	if _, err := binary.Decode(b[:], le, &h); err != nil {
		return h, fmt.Errorf("ELF header: %w", err)
	}
	return h, nil
}

// AppendHeader appends h, as its 64 bytes in the file, to b.
func AppendHeader(b []byte, h *elf.Header64) []byte {
	b, _ = binary.Append(b, le, h) // fixed-size: cannot fail
	return b
}

// ReadSectionHeaders reads the section header table h describes (e_shnum
// entries at e_shoff). The caller has checked that it lies in the file.
func ReadSectionHeaders(r io.ReaderAt, h *elf.Header64) ([]elf.Section64, error) {
	b := make([]byte, int(h.Shnum)*SectionHeaderSize)
	if err := ReadFull(r, b, int64(h.Shoff)); err != nil {
		return nil, fmt.Errorf("section headers: %w", err)
	}
	sh := make([]elf.Section64, h.Shnum)
	if _, err := binary.Decode(b, le, sh); err != nil {
		return nil, fmt.Errorf("section headers: %w", err)
	}
	return sh, nil
}

// ReadSection reads the bytes section header s says the section has (none
// for SHT_NOBITS). The caller has bounded them by the file's size.
func ReadSection(r io.ReaderAt, s elf.Section64) ([]byte, error) {
	if elf.SectionType(s.Type) == elf.SHT_NOBITS || s.Size == 0 {
		return nil, nil
	}
	b := make([]byte, s.Size)
	return b, ReadFull(r, b, int64(s.Off))
}

// ReadFull reads exactly len(p) bytes at off: a short read is an error
// (io.ErrUnexpectedEOF when the reader gave none).
func ReadFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// A SectionHeaderField is one field of an Elf64_Shdr: its name, its
// offset in the header, and how to read it from an elf.Section64.
type SectionHeaderField struct {
	Name string
	Off  int
	Get  func(*elf.Section64) uint64
}

// SectionHeaderFields are the fields of an Elf64_Shdr, in file order.
var SectionHeaderFields = []SectionHeaderField{
	{"sh_name", 0x00, func(s *elf.Section64) uint64 { return uint64(s.Name) }},
	{"sh_type", 0x04, func(s *elf.Section64) uint64 { return uint64(s.Type) }},
	{"sh_flags", 0x08, func(s *elf.Section64) uint64 { return s.Flags }},
	{"sh_addr", 0x10, func(s *elf.Section64) uint64 { return s.Addr }},
	{"sh_offset", 0x18, func(s *elf.Section64) uint64 { return s.Off }},
	{"sh_size", 0x20, func(s *elf.Section64) uint64 { return s.Size }},
	{"sh_link", 0x28, func(s *elf.Section64) uint64 { return uint64(s.Link) }},
	{"sh_info", 0x2c, func(s *elf.Section64) uint64 { return uint64(s.Info) }},
	{"sh_addralign", 0x30, func(s *elf.Section64) uint64 { return s.Addralign }},
	{"sh_entsize", 0x38, func(s *elf.Section64) uint64 { return s.Entsize }},
}

// PartKind says what a Part of a file is.
type PartKind uint8

const (
	PartHeader         PartKind = iota // the ELF header
	PartProgramHeaders                 // the program header table
	PartSectionHeaders                 // the section header table
	PartSection                        // a section's bytes
)

// A Part is a stretch [Lo, Hi) of a file that its headers account for,
// and the alignment that placed it (what padding before it may be).
type Part struct {
	Lo, Hi  int64
	Align   int64
	Kind    PartKind
	Section int // PartSection: the section's index
}

// Parts lists what the bytes of a file with ELF header h and section
// headers sh belong to: the ELF header, the program headers (if any), the
// section header table and each section with bytes, by offset (a stable
// sort: parts at one offset keep that order).
func Parts(h *elf.Header64, sh []elf.Section64) []Part {
	parts := []Part{{Lo: 0, Hi: HeaderSize, Align: 1, Kind: PartHeader}}
	if h.Phnum > 0 {
		parts = append(parts, Part{Lo: int64(h.Phoff), Hi: int64(h.Phoff) + int64(h.Phnum)*int64(h.Phentsize), Align: 8, Kind: PartProgramHeaders})
	}
	parts = append(parts, Part{Lo: int64(h.Shoff), Hi: int64(h.Shoff) + int64(len(sh))*SectionHeaderSize, Align: 8, Kind: PartSectionHeaders})
	for i, s := range sh {
		if i == 0 || !HasData(s) || s.Size == 0 {
			continue
		}
		parts = append(parts, Part{Lo: int64(s.Off), Hi: int64(s.Off + s.Size), Align: int64(max(s.Addralign, 1)), Kind: PartSection, Section: i})
	}
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].Lo < parts[j].Lo })
	return parts
}
