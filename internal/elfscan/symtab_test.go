// SPDX-License-Identifier: Apache-2.0

package elfscan

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"slices"
	"testing"
)

// TestSymtabIndexSkipsMappingSymbols builds a table by hand: the index
// holds the defined functions, objects and plain labels, and no mapping
// symbol ($x, $d), undefined symbol or section symbol; a lookup at a
// mapping symbol's address alone finds nothing, and names come from the
// string table.
func TestSymtabIndexSkipsMappingSymbols(t *testing.T) {
	strtab := []byte("\x00$x\x00$d.1\x00f\x00obj\x00lbl\x00ext\x00")
	off := func(s string) uint32 { return uint32(bytes.Index(strtab, []byte("\x00"+s+"\x00")) + 1) }
	type ent struct {
		name  string
		info  uint8
		shndx uint16
		value uint64
	}
	ents := []ent{
		{"", 0, 0, 0}, // the null symbol
		{"$x", uint8(elf.STT_NOTYPE), 1, 0x10},
		{"f", uint8(elf.STB_GLOBAL)<<4 | uint8(elf.STT_FUNC), 1, 0x20},
		{"$d.1", uint8(elf.STT_NOTYPE), 1, 0x30},
		{"obj", uint8(elf.STT_OBJECT), 1, 0x30},
		{"lbl", uint8(elf.STT_NOTYPE), 1, 0x40},
		{"ext", uint8(elf.STB_GLOBAL)<<4 | uint8(elf.STT_FUNC), uint16(elf.SHN_UNDEF), 0},
		{"", uint8(elf.STT_SECTION), 1, 0},
	}
	raw := make([]byte, len(ents)*symSize)
	for i, e := range ents {
		b := raw[i*symSize:]
		if e.name != "" {
			binary.LittleEndian.PutUint32(b, off(e.name))
		}
		b[4] = e.info
		binary.LittleEndian.PutUint16(b[6:], e.shndx)
		binary.LittleEndian.PutUint64(b[8:], e.value)
	}
	st := &symtab{raw: raw, strtab: strtab}
	var scratch []keyed
	st.index(&scratch)
	var got []string
	for _, r := range st.sorted {
		got = append(got, st.name(r.idx))
	}
	if want := []string{"f", "obj", "lbl"}; !slices.Equal(got, want) {
		t.Errorf("index: %q, want %q", got, want)
	}
	if i := st.at(0, 0x10, 3); i >= 0 {
		t.Errorf("at 0x10 (only $x): %q", st.name(i))
	}
	if i := st.named(0, 0x30); i < 0 || st.name(i) != "obj" {
		t.Errorf("named 0x30: %d", i)
	}
	var found []int
	st.each("lbl", func(i int) { found = append(found, i) })
	if !slices.Equal(found, []int{5}) {
		t.Errorf("each lbl: %v, want [5]", found)
	}
}
