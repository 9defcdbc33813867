// SPDX-License-Identifier: Apache-2.0

package elfwrite

import (
	"debug/elf"
	"encoding/binary"
)

// pagePad is the padding layout allows each section beyond what the input
// itself held: a page.
const pagePad = 4096

// layout writes a file (see the package comment): hdr, then the contents
// of the sections in order, each at a multiple of its sh_addralign, then
// the section header table sh. It sets sh_offset and sh_size of each
// section it places, sh_offset 0 of the SHT_NULL ones, and e_shoff and
// e_shnum. The padding is bounded: each gap is below its section's
// alignment, and all of them together below what an input of inSize
// bytes could hold plus a page per section (an object built from nothing
// has inSize 0).
func layout(hdr elf.Header64, sh []elf.Section64, content [][]byte, order []int, inSize int) ([]byte, error) {
	if len(sh) >= int(elf.SHN_LORESERVE) {
		return nil, formatError("too many sections (%d)", len(sh))
	}
	maxPad := uint64(inSize) + uint64(len(order))*pagePad
	var pad uint64
	out := make([]byte, HeaderSize, inSize+inSize/8+pagePad)
	for _, i := range order {
		al := max(sh[i].Addralign, 1)
		if n := (al - uint64(len(out))%al) % al; n > 0 {
			if pad += n; pad > maxPad {
				return nil, formatError("laying out section %d (sh_addralign %#x) needs more than %d bytes of padding", i, al, maxPad)
			}
			out = append(out, make([]byte, n)...)
		}
		sh[i].Off = uint64(len(out))
		sh[i].Size = uint64(len(content[i]))
		out = append(out, content[i]...)
	}
	for len(out)%8 != 0 {
		out = append(out, 0)
	}
	hdr.Shoff, hdr.Shnum = uint64(len(out)), uint16(len(sh))
	binary.Encode(out, le, hdr) // HeaderSize bytes are there: cannot fail
	for i := range sh {
		if i > 0 && elf.SectionType(sh[i].Type) == elf.SHT_NULL {
			sh[i].Off = 0
		}
	}
	out, _ = binary.Append(out, le, sh) // fixed-size entries: cannot fail
	return out, nil
}
