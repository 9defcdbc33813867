// SPDX-License-Identifier: Apache-2.0

package elfscan

// A file cut short (a partial download or copy) makes debug/elf fail with
// a bare EOF. truncation says what is missing instead: the file's size and
// the offset its own headers say it reaches.

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrTruncated is wrapped (with ErrMalformed) when a file is shorter than
// its ELF headers say.
var ErrTruncated = errors.New("truncated")

// truncation returns an error naming the size and the first structure that
// lies past the end of r, or nil when r is not short (or cannot say).
// It reads the ELF64 header itself, so it works where debug/elf gave up.
func truncation(r io.ReaderAt) error {
	size := sizeOf(r)
	if size < 0 {
		return nil
	}
	const ehsize = 64
	var magic [4]byte
	if n, _ := r.ReadAt(magic[:], 0); n < len(magic) || string(magic[:]) != "\x7fELF" {
		return nil // not ELF at all: debug/elf says so
	}
	if size < ehsize {
		return fmt.Errorf("%w: the file is %d bytes, shorter than the %d-byte ELF64 header", ErrTruncated, size, ehsize)
	}
	var h [ehsize]byte
	if _, err := r.ReadAt(h[:], 0); err != nil || string(h[:4]) != "\x7fELF" || h[4] != byte(elf.ELFCLASS64) {
		return nil
	}
	le := binary.LittleEndian
	phoff, shoff := le.Uint64(h[0x20:]), le.Uint64(h[0x28:])
	phentsize, phnum := uint64(le.Uint16(h[0x36:])), uint64(le.Uint16(h[0x38:]))
	shentsize, shnum := uint64(le.Uint16(h[0x3a:])), uint64(le.Uint16(h[0x3c:]))
	short := func(what string, end uint64) error {
		return fmt.Errorf("%w: the file is %d bytes (%#x), but %s ends at offset %#x (%d bytes expected); was it cut short while copying or downloading?",
			ErrTruncated, size, size, what, end, end)
	}
	if phnum > 0 && phoff+phnum*phentsize > uint64(size) {
		return short("its program header table", phoff+phnum*phentsize)
	}
	if shnum > 0 && shoff+shnum*shentsize > uint64(size) {
		return short("its section header table", shoff+shnum*shentsize)
	}
	return nil
}

// truncatedSections is the error for a section whose contents run past the
// end of r, or nil.
func truncatedSections(f *elf.File, r io.ReaderAt) error {
	size := sizeOf(r)
	if size < 0 {
		return nil
	}
	for _, s := range f.Sections {
		if s.Type == elf.SHT_NOBITS || s.FileSize == 0 {
			continue
		}
		// FileSize: the bytes in the file, which for a compressed section
		// (SHF_COMPRESSED) are fewer than its Size, the decompressed one.
		if end := s.Offset + s.FileSize; end < s.Offset || end > uint64(size) {
			return fmt.Errorf("%w: the file is %d bytes (%#x), but section %q ends at offset %#x (%d bytes expected); was it cut short while copying or downloading?",
				ErrTruncated, size, size, s.Name, end, end)
		}
	}
	return nil
}

// shtRELR is the section type of packed relative relocations (.relr.dyn),
// which debug/elf does not name.
const shtRELR elf.SectionType = 19

// ErrCompressedSection is wrapped (with ErrMalformed) for a compressed
// section (SHF_COMPRESSED) where ftpatch cannot take one.
var ErrCompressedSection = errors.New("compressed section")

// compressedSections refuses compressed sections the ELF ABI forbids
// (SHF_ALLOC ones: what is loaded is never compressed) and those whose
// bytes ftpatch reads as they are (relocations, dynamic tables). Debug
// sections compressed by gcc -gz, ld --compress-debug-sections or objcopy
// --compress-debug-sections are neither: they are checked against the file
// by their size in it, and decompressed only if a command reads them.
func compressedSections(f *elf.File) error {
	for i, s := range f.Sections {
		if s.Flags&elf.SHF_COMPRESSED == 0 {
			continue
		}
		switch {
		case s.Flags&elf.SHF_ALLOC != 0:
			return fmt.Errorf("%w: section %q (#%d) is both compressed (SHF_COMPRESSED) and loaded (SHF_ALLOC), which the ELF ABI forbids",
				ErrCompressedSection, s.Name, i)
		case s.Type == elf.SHT_RELA || s.Type == elf.SHT_REL || s.Type == shtRELR || s.Type == elf.SHT_NOBITS ||
			s.Type == elf.SHT_DYNAMIC || s.Type == elf.SHT_DYNSYM || s.Type == elf.SHT_GROUP || s.Type == elf.SHT_SYMTAB_SHNDX:
			return fmt.Errorf("%w: section %q (#%d) of type %v is compressed (SHF_COMPRESSED), which no toolchain does and ftpatch does not read; rebuild the file without compressing it",
				ErrCompressedSection, s.Name, i, s.Type)
		}
	}
	return nil
}
