// SPDX-License-Identifier: Apache-2.0

// Package elfwrite owns writing ELF, and the raw view of a relocatable
// file that writing needs: the ELF header, the section header table, and
// the symbol, string, relocation and group tables a patch appends to, as
// they are in the file (debug/elf's elf.Header64, elf.Section64, elf.Sym64
// and elf.Rela64), where debug/elf's own view hides some of them.
//
//   - BuildObject writes an encode.Program as an ET_REL object (the
//     trampoline), through Object, which lays out sections built from
//     nothing.
//   - Parse reads a relocatable file's headers, each field bounded against
//     the file before anything is sized by it; Edit changes its sections'
//     contents (grows its tables, adds .rela sections) and writes it again
//     with a fresh layout.
//   - ReadHeader, ReadSectionHeaders, ReadSection and Parts read the same
//     headers from any file, for a proof that accounts for every byte of
//     it (livesafe).
//
// Both writers lay a file out the same way (layout.go): the ELF header,
// each section's bytes at its alignment, then the section header table,
// 8-byte aligned:
//
//	0x00  Elf64_Ehdr (64 bytes)
//	      section bytes, each at a multiple of its sh_addralign
//	      (zero padding in between)
//	      Elf64_Shdr[e_shnum] (64 bytes each), e_shoff 8-byte aligned
//
// Everything is ELF64 little-endian, as on AArch64. The package knows
// nothing of patch sites and imports nothing above package encode; it
// prints nothing, and the same input always gives the same bytes.
package elfwrite
