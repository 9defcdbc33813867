// SPDX-License-Identifier: Apache-2.0

package elfscan

import (
	"debug/elf"
	"errors"
	"fmt"
)

// ErrNoMapping is returned when an address lies in no section (or segment)
// with file contents.
var ErrNoMapping = errors.New("address not mapped to the file")

// SectionAt returns the allocated section of a linked file holding addr,
// preferring an executable one when sections overlap (zero-sized sections
// never match), or nil.
func SectionAt(f *elf.File, addr uint64) *elf.Section {
	var best *elf.Section
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Size == 0 || addr < s.Addr || addr-s.Addr >= s.Size {
			continue
		}
		if best == nil || (s.Flags&elf.SHF_EXECINSTR != 0 && best.Flags&elf.SHF_EXECINSTR == 0) {
			best = s
		}
	}
	return best
}

// FileOffset maps an address of a linked file to its file offset through
// the section headers, falling back to PT_LOAD segments when no section has
// it. In an ET_REL file addresses are section offsets, so use the section's
// Offset directly instead.
func FileOffset(f *elf.File, addr uint64) (int64, error) {
	if s := SectionAt(f, addr); s != nil {
		if s.Type == elf.SHT_NOBITS {
			return 0, fmt.Errorf("%w: %#x is in section %q, which has no file contents", ErrNoMapping, addr, s.Name)
		}
		return int64(s.Offset + (addr - s.Addr)), nil
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && addr >= p.Vaddr && addr-p.Vaddr < p.Filesz {
			return int64(p.Off + (addr - p.Vaddr)), nil
		}
	}
	return 0, fmt.Errorf("%w: %#x", ErrNoMapping, addr)
}
