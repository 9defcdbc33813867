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
// holds the defined functions, the plain labels and data objects apart,
// and no mapping symbol ($x, $d), undefined symbol or section symbol; a
// lookup at a mapping symbol's address alone finds nothing, names come
// from the string table, and of several symbols at one address a lookup
// takes the best ranked, a label or data object only where no function
// is, an object only where no label is (at) or before a label (named).
func TestSymtabIndexSkipsMappingSymbols(t *testing.T) {
	st := handSymtab()
	names := func(refs []symRef) []string {
		var got []string
		for _, r := range refs {
			got = append(got, st.name(r.idx))
		}
		return got
	}
	if got, want := names(st.sorted), []string{"f", "lf", "gf", "l2", "g2"}; !slices.Equal(got, want) {
		t.Errorf("index: %q, want %q", got, want)
	}
	if st.others.built || st.others.refs != nil {
		t.Errorf("labels and objects collected before their first lookup: %q", names(st.others.refs))
	}
	// The same answers from walks of the table (the first othersWalks
	// lookups) and from the collected, sorted others.
	for _, walked := range []bool{true, false} {
		st.others.walks = -100 // this phase's lookups all walk
		if !walked {
			st.others.walks = othersWalks // the next lookup collects them
		}
		lookups := st.others.walks
		if i := st.at(0, 0x10, 3); i >= 0 {
			t.Errorf("walked %v: at 0x10 (only $x): %q", walked, st.name(i))
		}
		for _, c := range []struct {
			v       uint64
			maxRank int
			named   bool
			want    string
		}{
			{0x30, 3, true, "obj"},
			{0x30, 3, false, "obj"}, // nothing but an object there
			{0x30, 2, false, ""},    // objects rank 3
			{0x40, 3, true, "obj2"}, // an object before a label, global first
			{0x40, 3, false, "lbl"}, // a label before an object
			{0x40, 2, false, "lbl"},
			{0x40, 1, false, ""},     // no function there
			{0x70, 3, false, "lone"}, // alone
			{0x70, 3, true, "lone"},
		} {
			i := st.at(0, c.v, c.maxRank)
			if c.named {
				i = st.named(0, c.v)
			}
			got := ""
			if i >= 0 {
				got = st.name(i)
			}
			if got != c.want {
				t.Errorf("walked %v: at %#x (rank <= %d, named %v): %q, want %q", walked, c.v, c.maxRank, c.named, got, c.want)
			}
		}
		if i := st.object(0, 0x40); i < 0 || st.name(i) != "obj2" {
			t.Errorf("walked %v: object 0x40: %d, want obj2", walked, i)
		}
		if i := st.object(0, 0x80); i >= 0 {
			t.Errorf("walked %v: object 0x80 (a label alone): %q", walked, st.name(i))
		}
		if i := st.object(1, 0x30); i >= 0 {
			t.Errorf("walked %v: object in section 1 of a linked table (keyed 0): %q", walked, st.name(i))
		}
		if i := st.at(0, 0x80, 2); i < 0 || st.name(i) != "lab2" {
			t.Errorf("walked %v: at 0x80: %d, want lab2", walked, i)
		}
		if st.others.built == walked || st.others.walks <= lookups {
			t.Errorf("walked %v: built %v after %d lookups of the others (%d before)", walked, st.others.built, st.others.walks, lookups)
		}
	}
	if got, want := names(st.others.refs), []string{"obj", "lbl", "lobj", "obj2", "obj3", "lone", "lab2"}; !slices.Equal(got, want) {
		t.Errorf("labels and objects: %q, want %q", got, want)
	}
	for _, c := range []struct {
		v    uint64
		want string
	}{{0x50, "gf"}, {0x60, "g2"}} {
		if i := st.at(0, c.v, 1); i < 0 || st.name(i) != c.want {
			t.Errorf("at %#x: %d, want %s", c.v, i, c.want)
		}
	}
	var found []int
	st.each("lbl", func(i int) { found = append(found, i) })
	if !slices.Equal(found, []int{5}) {
		t.Errorf("each lbl: %v, want [5]", found)
	}
}

// handSymtab is the indexed table of TestSymtabIndexSkipsMappingSymbols.
func handSymtab() *symtab {
	strtab := []byte("\x00$x\x00$d.1\x00f\x00obj\x00lbl\x00ext\x00lf\x00gf\x00l2\x00g2\x00lobj\x00obj2\x00lone\x00lab2\x00obj3\x00")
	off := func(s string) uint32 { return uint32(bytes.Index(strtab, []byte("\x00"+s+"\x00")) + 1) }
	type ent struct {
		name  string
		info  uint8
		shndx uint16
		value uint64
		size  uint64
	}
	local, global := uint8(elf.STB_LOCAL)<<4, uint8(elf.STB_GLOBAL)<<4
	ents := []ent{
		{"", 0, 0, 0, 0}, // the null symbol
		{"$x", uint8(elf.STT_NOTYPE), 1, 0x10, 0},
		{"f", global | uint8(elf.STT_FUNC), 1, 0x20, 0},
		{"$d.1", uint8(elf.STT_NOTYPE), 1, 0x30, 0},
		{"obj", uint8(elf.STT_OBJECT), 1, 0x30, 0},
		{"lbl", uint8(elf.STT_NOTYPE), 1, 0x40, 0},
		{"ext", global | uint8(elf.STT_FUNC), uint16(elf.SHN_UNDEF), 0, 0},
		{"", uint8(elf.STT_SECTION), 1, 0, 0},
		// At one address: sized before unsized, then global before local,
		// whatever their order in the table.
		{"lf", local | uint8(elf.STT_FUNC), 1, 0x50, 0},
		{"gf", global | uint8(elf.STT_FUNC), 1, 0x50, 8},
		{"l2", local | uint8(elf.STT_FUNC), 1, 0x60, 4},
		{"g2", global | uint8(elf.STT_FUNC), 1, 0x60, 4},
		// Data objects, indexed apart: at a label's address, global
		// before local; alone at another.
		{"lobj", local | uint8(elf.STT_OBJECT), 1, 0x40, 0},
		{"obj2", global | uint8(elf.STT_OBJECT), 1, 0x40, 0},
		{"lone", local | uint8(elf.STT_OBJECT), 1, 0x70, 0},
		{"lab2", global | uint8(elf.STT_NOTYPE), 1, 0x80, 0}, // a label alone
		{"obj3", global | uint8(elf.STT_OBJECT), 1, 0x40, 0}, // a second global object: the first wins
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
		binary.LittleEndian.PutUint64(b[16:], e.size)
	}
	st := &symtab{raw: raw, strtab: strtab}
	var scratch []keyed
	st.index(&scratch)
	return st
}

// TestSymtabWarm: warm loads the entries of the functions at each
// record's candidate entries (record-4 to record+12) and no others, also at the
// ends of the address space, and leaves the lookup hint where it was.
func TestSymtabWarm(t *testing.T) {
	st := handSymtab()
	for _, c := range []struct {
		recs []uint64
		want int
	}{
		{[]uint64{0x18}, 1},       // f at 0x20 (record+8)
		{[]uint64{0x48}, 2},       // lf and gf at 0x50 (record+8)
		{[]uint64{0x44}, 2},       // lf and gf at 0x50 (record+12); not lbl, a label, at 0x40
		{[]uint64{0x54}, 4},       // lf, gf at 0x50 (record-4); l2, g2 at 0x60 (record+12)
		{[]uint64{0x58}, 2},       // l2 and g2 at 0x60 (record+8)
		{[]uint64{0x14, 0x44}, 3}, // f; lf, gf
		{[]uint64{0x70}, 0},
		{[]uint64{0, 2}, 0},
		{[]uint64{^uint64(0) - 2}, 0},
	} {
		recs := make([]record, len(c.recs))
		for i, v := range c.recs {
			recs[i] = record{value: v, key: 1}
		}
		st.hint = 2
		if n := st.warm(recs, false); n != c.want {
			t.Errorf("warm %#x: %d entries, want %d", c.recs, n, c.want)
		}
		if st.hint != 2 {
			t.Errorf("warm %#x moved the hint to %d", c.recs, st.hint)
		}
	}
}

// TestSymtabEach: each finds a name wherever the string table holds it
// whole, also as the tail of a longer name and at the table's end without
// a NUL, and never a prefix of a name.
func TestSymtabEach(t *testing.T) {
	strtab := []byte("\x00xfoo\x00foo\x00bar")
	raw := make([]byte, 7*symSize)
	for i, off := range []uint32{0, 1, 2, 6, 10, 7, 40} { // xfoo, foo (tail), foo, bar, oo (tail), out of range
		binary.LittleEndian.PutUint32(raw[i*symSize:], off)
	}
	st := &symtab{raw: raw, strtab: strtab}
	for _, c := range []struct {
		name string
		want []int
	}{
		{"foo", []int{2, 3}},
		{"xfoo", []int{1}},
		{"bar", []int{4}},
		{"oo", []int{5}},
		{"fo", nil},
		{"ba", nil},
		{"nothere", nil},
	} {
		var got []int
		st.each(c.name, func(i int) { got = append(got, i) })
		if !slices.Equal(got, c.want) {
			t.Errorf("each %q: %v, want %v", c.name, got, c.want)
		}
	}
}
