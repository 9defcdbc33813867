// SPDX-License-Identifier: Apache-2.0

package patch

// This file builds relocatable objects from encode.Programs, so the tool can
// emit its own trampoline without an assembler.

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
)

// ErrObjectProgram is returned by BuildObject for a program it cannot
// represent (no name, a fixup outside the words, an unknown fixup kind).
var ErrObjectProgram = errors.New("program cannot be written as an object")

// objectRelocType maps encode's fixup kinds to AArch64 ELF relocations.
var objectRelocType = map[encode.FixupKind]elf.R_AARCH64{
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
	if prog.Name == "" || strings.IndexByte(prog.Name, 0) >= 0 {
		return nil, fmt.Errorf("%w: bad name %q", ErrObjectProgram, prog.Name)
	}
	if len(prog.Words) == 0 {
		return nil, fmt.Errorf("%w: %s has no instructions", ErrObjectProgram, prog.Name)
	}

	// Symbols and strings.
	strtab := []byte{0}
	addStr := func(s string) uint32 {
		off := uint32(len(strtab))
		strtab = append(append(strtab, s...), 0)
		return off
	}
	type sym struct {
		name        uint32
		info        byte
		shndx       uint16
		value, size uint64
	}
	const textIdx = 1
	syms := []sym{
		{},
		{info: elf.ST_INFO(elf.STB_LOCAL, elf.STT_SECTION), shndx: textIdx},
		{name: addStr("$x"), info: elf.ST_INFO(elf.STB_LOCAL, elf.STT_NOTYPE), shndx: textIdx}, // AAELF64 mapping symbol: code from here
	}
	firstGlobal := uint32(len(syms))
	symIndex := map[string]uint32{}
	// NAME at word 0, then each further entry; each sized to the next.
	starts := append([]encode.Entry{{Name: prog.Name}}, prog.Entries...)
	for i, e := range starts {
		end := len(prog.Words)
		if i+1 < len(starts) {
			end = starts[i+1].Index
		}
		_, dup := symIndex[e.Name]
		if e.Name == "" || strings.IndexByte(e.Name, 0) >= 0 || dup || e.Index < 0 || e.Index >= end {
			return nil, fmt.Errorf("%w: %s: bad entry %q at word %d", ErrObjectProgram, prog.Name, e.Name, e.Index)
		}
		symIndex[e.Name] = uint32(len(syms))
		syms = append(syms, sym{name: addStr(e.Name), info: elf.ST_INFO(elf.STB_GLOBAL, elf.STT_FUNC),
			shndx: textIdx, value: uint64(4 * e.Index), size: uint64(4 * (end - e.Index))})
	}

	var relas []elfscan.Rela
	for i, f := range prog.Fixups {
		typ, ok := objectRelocType[f.Kind]
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: %s fixup %d: unknown kind %v", ErrObjectProgram, prog.Name, i, f.Kind)
		case f.Index < 0 || f.Index >= len(prog.Words):
			return nil, fmt.Errorf("%w: %s fixup %d: word %d of %d", ErrObjectProgram, prog.Name, i, f.Index, len(prog.Words))
		case f.Sym == "" || strings.IndexByte(f.Sym, 0) >= 0:
			return nil, fmt.Errorf("%w: %s fixup %d: bad symbol %q", ErrObjectProgram, prog.Name, i, f.Sym)
		}
		si, ok := symIndex[f.Sym]
		if !ok {
			si = uint32(len(syms))
			symIndex[f.Sym] = si
			syms = append(syms, sym{name: addStr(f.Sym), info: elf.ST_INFO(elf.STB_GLOBAL, elf.STT_NOTYPE), shndx: uint16(elf.SHN_UNDEF)})
		}
		relas = append(relas, elfscan.Rela{Off: uint64(4 * f.Index), Type: typ, Sym: si, Addend: f.Addend})
	}

	// Section contents, in file order.
	type section struct {
		name       string
		typ        elf.SectionType
		flags      elf.SectionFlag
		data       []byte
		link, info uint32
		align, ent uint64
	}
	secs := []section{{}, {name: ".text", typ: elf.SHT_PROGBITS, flags: elf.SHF_ALLOC | elf.SHF_EXECINSTR, data: prog.Bytes(), align: 8}}
	relaAt := -1
	if len(relas) > 0 {
		relaAt = len(secs)
		secs = append(secs, section{name: ".rela.text", typ: elf.SHT_RELA, flags: elf.SHF_INFO_LINK,
			data: elfscan.EncodeRela(nil, relas), info: textIdx, align: 8, ent: elfscan.RelaSize})
	}
	if prog.BTI {
		var n []byte
		n = binary.LittleEndian.AppendUint32(n, 4)  // namesz
		n = binary.LittleEndian.AppendUint32(n, 16) // descsz
		n = binary.LittleEndian.AppendUint32(n, ntGNUPropertyType0)
		n = append(n, "GNU\x00"...)
		n = binary.LittleEndian.AppendUint32(n, gnuPropertyAArch64Feature1And)
		n = binary.LittleEndian.AppendUint32(n, 4) // pr_datasz
		n = binary.LittleEndian.AppendUint32(n, gnuPropertyAArch64BTI|gnuPropertyAArch64PAC)
		n = binary.LittleEndian.AppendUint32(n, 0) // pad to 8
		secs = append(secs, section{name: ".note.gnu.property", typ: elf.SHT_NOTE, flags: elf.SHF_ALLOC, data: n, align: 8})
	}
	secs = append(secs, section{name: ".note.GNU-stack", typ: elf.SHT_PROGBITS, align: 1})
	symtabAt := len(secs)
	var st []byte
	for _, s := range syms {
		st = binary.LittleEndian.AppendUint32(st, s.name)
		st = append(st, s.info, 0)
		st = binary.LittleEndian.AppendUint16(st, s.shndx)
		st = binary.LittleEndian.AppendUint64(st, s.value)
		st = binary.LittleEndian.AppendUint64(st, s.size)
	}
	secs = append(secs, section{name: ".symtab", typ: elf.SHT_SYMTAB, data: st, link: uint32(symtabAt + 1),
		info: firstGlobal, align: 8, ent: 24})
	secs = append(secs, section{name: ".strtab", typ: elf.SHT_STRTAB, data: strtab, align: 1})
	if relaAt >= 0 {
		secs[relaAt].link = uint32(symtabAt)
	}
	shstr := []byte{0}
	names := make([]uint32, len(secs)+1)
	secs = append(secs, section{name: ".shstrtab", typ: elf.SHT_STRTAB, align: 1})
	for i := 1; i < len(secs); i++ {
		names[i] = uint32(len(shstr))
		shstr = append(append(shstr, secs[i].name...), 0)
	}
	secs[len(secs)-1].data = shstr

	// Lay out: header, section data, section headers.
	var out bytes.Buffer
	out.Write(make([]byte, 64))
	offs := make([]uint64, len(secs))
	pad := func(align uint64) {
		for align > 1 && uint64(out.Len())%align != 0 {
			out.WriteByte(0)
		}
	}
	for i := 1; i < len(secs); i++ {
		pad(secs[i].align)
		offs[i] = uint64(out.Len())
		out.Write(secs[i].data)
	}
	pad(8)
	shoff := uint64(out.Len())
	for i, s := range secs {
		var h [64]byte
		if i > 0 {
			le := binary.LittleEndian
			le.PutUint32(h[0:], names[i])
			le.PutUint32(h[4:], uint32(s.typ))
			le.PutUint64(h[8:], uint64(s.flags))
			le.PutUint64(h[24:], offs[i])
			le.PutUint64(h[32:], uint64(len(s.data)))
			le.PutUint32(h[40:], s.link)
			le.PutUint32(h[44:], s.info)
			le.PutUint64(h[48:], s.align)
			le.PutUint64(h[56:], s.ent)
		}
		out.Write(h[:])
	}

	b := out.Bytes()
	copy(b, []byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT), byte(elf.ELFOSABI_NONE)})
	le := binary.LittleEndian
	le.PutUint16(b[16:], uint16(elf.ET_REL))
	le.PutUint16(b[18:], uint16(elf.EM_AARCH64))
	le.PutUint32(b[20:], uint32(elf.EV_CURRENT))
	le.PutUint64(b[40:], shoff)
	le.PutUint16(b[52:], 64) // e_ehsize
	le.PutUint16(b[58:], 64) // e_shentsize
	le.PutUint16(b[60:], uint16(len(secs)))
	le.PutUint16(b[62:], uint16(len(secs)-1)) // e_shstrndx
	return b, nil
}
