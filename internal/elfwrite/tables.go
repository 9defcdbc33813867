// SPDX-License-Identifier: Apache-2.0

package elfwrite

// The tables of a relocatable file, entry by entry: symbols, relocations,
// strings, group members.

import (
	"debug/elf"
	"encoding/binary"
)

// AppendRela appends the Elf64_Rela entries rs to b.
func AppendRela(b []byte, rs ...elf.Rela64) []byte {
	for _, r := range rs {
		b, _ = binary.Append(b, le, r) // fixed-size: cannot fail
	}
	return b
}

// AppendSym appends the Elf64_Sym entry s to b.
func AppendSym(b []byte, s elf.Sym64) []byte {
	b, _ = binary.Append(b, le, s) // fixed-size: cannot fail
	return b
}

// DecodeSymbols decodes the whole Elf64_Sym entries of b (a trailing
// partial entry is left out).
func DecodeSymbols(b []byte) []elf.Sym64 {
	syms := make([]elf.Sym64, len(b)/SymSize)
	binary.Decode(b[:len(syms)*SymSize], le, syms) // sized to fit: cannot fail
	return syms
}

// appendString appends s and its NUL to the string table b and returns
// the table and s's offset in it.
func appendString(b []byte, s string) ([]byte, uint32) {
	off := uint32(len(b))
	return append(append(b, s...), 0), off
}

// RelaHeader is the header of the SHT_RELA section a rewrite adds for the
// relocations of section target (sh_info) against symbol table symtab
// (sh_link): SHF_INFO_LINK, and SHF_GROUP when target is in a group (the
// section joins its group). The name, offset and size are set when the
// section is named and laid out.
func RelaHeader(symtab, target int, group bool) elf.Section64 {
	h := elf.Section64{Type: uint32(elf.SHT_RELA), Flags: uint64(elf.SHF_INFO_LINK), Link: uint32(symtab), Info: uint32(target),
		Addralign: 8, Entsize: RelaSize}
	if group {
		h.Flags |= uint64(elf.SHF_GROUP)
	}
	return h
}

// groupHas reports whether the SHT_GROUP section's bytes b list section
// member (after the flag word, one Elf32_Word per member).
func groupHas(b []byte, member int) bool {
	for k := 4; k+4 <= len(b); k += 4 {
		if le.Uint32(b[k:]) == uint32(member) {
			return true
		}
	}
	return false
}
