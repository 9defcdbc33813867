// SPDX-License-Identifier: Apache-2.0

package elfwrite

// An encode.Program as a relocatable object, so the tool can emit its own
// trampoline without an assembler.

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/ftpatch/ftpatch/internal/encode"
)

// ErrProgram is returned by BuildObject for a program it cannot represent
// (no name, a fixup outside the words, an unknown fixup kind).
var ErrProgram = errors.New("program cannot be written as an object")

// relocType maps encode's fixup kinds to AArch64 ELF relocations.
var relocType = map[encode.FixupKind]elf.R_AARCH64{
	encode.FixupAdrpPage: elf.R_AARCH64_ADR_PREL_PG_HI21,
	encode.FixupAddLo12:  elf.R_AARCH64_ADD_ABS_LO12_NC,
}

// GNU property note values (binutils include/elf/common.h).
const (
	ntGNUPropertyType0            = 5
	gnuPropertyAArch64Feature1And = 0xc0000000
	gnuPropertyAArch64BTI         = 1 << 0
	gnuPropertyAArch64PAC         = 1 << 1
)

// textIndex is the section index of .text in a program's object.
const textIndex = 1

// BuildObject writes prog as an ELF64 little-endian AArch64 ET_REL object:
//
//	[1] .text               PROGBITS AX, align 8: the words
//	[2] .rela.text          RELA (only with fixups), sh_info 1, sh_link .symtab
//	    .note.gnu.property  NOTE A: FEATURE_1_AND = BTI|PAC, as GCC emits with
//	                        -mbranch-protection=standard (only when prog.BTI)
//	    .note.GNU-stack     empty: no executable stack
//	    .symtab             null, section .text, $x, NAME (GLOBAL FUNC, sized),
//	                        each further entry (GLOBAL FUNC, sized), then one
//	                        undefined GLOBAL per fixup symbol
//	    .strtab, .shstrtab
//
// The same program always gives the same bytes.
func BuildObject(prog encode.Program) ([]byte, error) {
	if !goodName(prog.Name) {
		return nil, fmt.Errorf("%w: bad name %q", ErrProgram, prog.Name)
	}
	if len(prog.Words) == 0 {
		return nil, fmt.Errorf("%w: %s has no instructions", ErrProgram, prog.Name)
	}
	st := newSymbolTable()
	firstGlobal, err := st.addEntries(prog)
	if err != nil {
		return nil, err
	}
	relas, err := st.addFixups(prog)
	if err != nil {
		return nil, err
	}
	return programObject(prog, st, firstGlobal, relas)
}

// goodName reports whether s can name a symbol: not empty, no NUL.
func goodName(s string) bool { return s != "" && strings.IndexByte(s, 0) < 0 }

// symbolTable is a .symtab being built, and its .strtab.
type symbolTable struct {
	syms    []elf.Sym64
	strtab  []byte
	globals map[string]uint32 // index by name
}

// newSymbolTable starts the table as every object's does: the null
// symbol, the section symbol of .text and the AAELF64 mapping symbol $x
// (code from here).
func newSymbolTable() *symbolTable {
	st := &symbolTable{strtab: []byte{0}, globals: map[string]uint32{}}
	st.add("", elf.Sym64{})
	st.add("", elf.Sym64{Info: elf.ST_INFO(elf.STB_LOCAL, elf.STT_SECTION), Shndx: textIndex})
	st.add("$x", elf.Sym64{Info: elf.ST_INFO(elf.STB_LOCAL, elf.STT_NOTYPE), Shndx: textIndex})
	return st
}

// add appends s named name ("": no name) and returns its index.
func (st *symbolTable) add(name string, s elf.Sym64) uint32 {
	if name != "" {
		st.strtab, s.Name = appendString(st.strtab, name)
	}
	st.syms = append(st.syms, s)
	return uint32(len(st.syms) - 1)
}

// addEntries adds prog's entries as sized global functions: NAME at word
// 0, then each further entry, each sized to the next. It returns the index
// of the first global symbol (.symtab's sh_info).
func (st *symbolTable) addEntries(prog encode.Program) (uint32, error) {
	firstGlobal := uint32(len(st.syms))
	starts := append([]encode.Entry{{Name: prog.Name}}, prog.Entries...)
	for i, e := range starts {
		end := len(prog.Words)
		if i+1 < len(starts) {
			end = starts[i+1].Index
		}
		_, dup := st.globals[e.Name]
		if !goodName(e.Name) || dup || e.Index < 0 || e.Index >= end {
			return 0, fmt.Errorf("%w: %s: bad entry %q at word %d", ErrProgram, prog.Name, e.Name, e.Index)
		}
		st.globals[e.Name] = st.add(e.Name, elf.Sym64{Info: elf.ST_INFO(elf.STB_GLOBAL, elf.STT_FUNC), Shndx: textIndex,
			Value: uint64(4 * e.Index), Size: uint64(4 * (end - e.Index))})
	}
	return firstGlobal, nil
}

// addFixups returns prog's fixups as relocations of .text, adding an
// undefined global for each symbol the program does not define.
func (st *symbolTable) addFixups(prog encode.Program) ([]elf.Rela64, error) {
	var relas []elf.Rela64
	for i, f := range prog.Fixups {
		typ, ok := relocType[f.Kind]
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: %s fixup %d: unknown kind %v", ErrProgram, prog.Name, i, f.Kind)
		case f.Index < 0 || f.Index >= len(prog.Words):
			return nil, fmt.Errorf("%w: %s fixup %d: word %d of %d", ErrProgram, prog.Name, i, f.Index, len(prog.Words))
		case !goodName(f.Sym):
			return nil, fmt.Errorf("%w: %s fixup %d: bad symbol %q", ErrProgram, prog.Name, i, f.Sym)
		}
		si, ok := st.globals[f.Sym]
		if !ok {
			si = st.add(f.Sym, elf.Sym64{Info: elf.ST_INFO(elf.STB_GLOBAL, elf.STT_NOTYPE), Shndx: uint16(elf.SHN_UNDEF)})
			st.globals[f.Sym] = si
		}
		relas = append(relas, elf.Rela64{Off: uint64(4 * f.Index), Info: elf.R_INFO(si, uint32(typ)), Addend: f.Addend})
	}
	return relas, nil
}

// programObject lays out prog's object (see BuildObject) from its symbol
// table and relocations.
func programObject(prog encode.Program, st *symbolTable, firstGlobal uint32, relas []elf.Rela64) ([]byte, error) {
	o := NewObject()
	o.Add(".text", elf.Section64{Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC | elf.SHF_EXECINSTR), Addralign: 8}, prog.Bytes())
	rela := -1
	if len(relas) > 0 {
		rela = o.Add(".rela.text", elf.Section64{Type: uint32(elf.SHT_RELA), Flags: uint64(elf.SHF_INFO_LINK), Info: textIndex,
			Addralign: 8, Entsize: RelaSize}, AppendRela(nil, relas...))
	}
	if prog.BTI {
		o.Add(".note.gnu.property", elf.Section64{Type: uint32(elf.SHT_NOTE), Flags: uint64(elf.SHF_ALLOC), Addralign: 8}, btiNote())
	}
	o.Add(".note.GNU-stack", elf.Section64{Type: uint32(elf.SHT_PROGBITS), Addralign: 1}, nil)
	var syms []byte
	for _, s := range st.syms {
		syms = AppendSym(syms, s)
	}
	symtab := len(o.sh)
	o.Add(".symtab", elf.Section64{Type: uint32(elf.SHT_SYMTAB), Link: uint32(symtab + 1), Info: firstGlobal, Addralign: 8, Entsize: SymSize}, syms)
	o.Add(".strtab", elf.Section64{Type: uint32(elf.SHT_STRTAB), Addralign: 1}, st.strtab)
	if rela >= 0 {
		o.sh[rela].Link = uint32(symtab)
	}
	return o.Bytes()
}

// btiNote is the .note.gnu.property GCC writes with
// -mbranch-protection=standard: GNU_PROPERTY_AARCH64_FEATURE_1_AND = BTI|PAC.
func btiNote() []byte {
	var n []byte
	n = binary.LittleEndian.AppendUint32(n, 4)  // namesz
	n = binary.LittleEndian.AppendUint32(n, 16) // descsz
	n = binary.LittleEndian.AppendUint32(n, ntGNUPropertyType0)
	n = append(n, "GNU\x00"...)
	n = binary.LittleEndian.AppendUint32(n, gnuPropertyAArch64Feature1And)
	n = binary.LittleEndian.AppendUint32(n, 4) // pr_datasz
	n = binary.LittleEndian.AppendUint32(n, gnuPropertyAArch64BTI|gnuPropertyAArch64PAC)
	n = binary.LittleEndian.AppendUint32(n, 0) // pad to 8
	return n
}
