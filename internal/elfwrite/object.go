// SPDX-License-Identifier: Apache-2.0

package elfwrite

import "debug/elf"

// An Object is an ET_REL file built from nothing: sections in the order
// they are added (index 0 is the null section), then a section name table,
// .shstrtab, which Bytes adds last.
type Object struct {
	names   []string
	sh      []elf.Section64
	content [][]byte
}

// NewObject returns an object with only the null section.
func NewObject() *Object {
	return &Object{names: []string{""}, sh: []elf.Section64{{}}, content: [][]byte{nil}}
}

// Add appends section name with header h (its sh_name, sh_offset and
// sh_size are set by Bytes) and contents data, and returns its index.
func (o *Object) Add(name string, h elf.Section64, data []byte) int {
	o.names = append(o.names, name)
	o.sh = append(o.sh, h)
	o.content = append(o.content, data)
	return len(o.sh) - 1
}

// Bytes writes the object: an ELF64 little-endian AArch64 ET_REL file,
// its sections laid out in index order, then .shstrtab (every section's
// name, in index order, its own last). The Object is left as it was.
func (o *Object) Bytes() ([]byte, error) {
	names := append(o.names[:len(o.names):len(o.names)], ".shstrtab")
	sh := append(o.sh[:len(o.sh):len(o.sh)], elf.Section64{Type: uint32(elf.SHT_STRTAB), Addralign: 1})
	shstr := []byte{0}
	for i := 1; i < len(sh); i++ {
		shstr, sh[i].Name = appendString(shstr, names[i])
	}
	content := append(o.content[:len(o.content):len(o.content)], shstr)
	order := make([]int, 0, len(sh)-1)
	for i := 1; i < len(sh); i++ {
		order = append(order, i)
	}
	hdr := elf.Header64{Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_AARCH64), Version: uint32(elf.EV_CURRENT),
		Ehsize: HeaderSize, Shentsize: SectionHeaderSize, Shstrndx: uint16(len(sh) - 1)}
	copy(hdr.Ident[:], []byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT), byte(elf.ELFOSABI_NONE)})
	return layout(hdr, sh, content, order, 0)
}
