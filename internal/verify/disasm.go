package verify

import (
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/arch/arm64/arm64asm"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
)

// disasm renders a site's words as loaded (relocations applied), in GNU
// syntax: the literal as .quad, then the entry up to the call site.
func (img *Image) disasm(s *site) []string {
	var out []string
	spare := func() {
		if w, ok := img.read32(s.spare); ok && s.Layout == elfscan.LayoutCallOps53 {
			out = append(out, fmt.Sprintf("%#x: %08x  %s (spare)", s.spare, w, Insn(w, s.spare)))
		}
	}
	if s.spare < s.literal {
		spare()
	}
	if s.Layout.HasLiteral() && s.literal != 0 {
		if v, ok := img.read64(s.literal); ok {
			out = append(out, fmt.Sprintf("%#x: %016x  .quad %#x", s.literal, v, v))
		}
	}
	if s.spare > s.literal {
		spare()
	}
	for a := s.entry; a <= s.callSite && a >= s.entry && len(out) < 8; a += 4 {
		w, ok := img.read32(a)
		if !ok {
			out = append(out, fmt.Sprintf("%#x: unmapped", a))
			break
		}
		out = append(out, fmt.Sprintf("%#x: %08x  %s", a, w, Insn(w, a)))
	}
	return out
}

// Insn disassembles the word w at pc in GNU syntax.
func Insn(w uint32, pc uint64) string {
	switch {
	case w == encode.BTIC:
		return "bti c"
	case encode.IsBL(w):
		return fmt.Sprintf("bl %#x", encode.BLTarget(w, pc))
	case w&0xfc000000 == 0x14000000:
		return fmt.Sprintf("b %#x", encode.BLTarget(w, pc))
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], w)
	in, err := arm64asm.Decode(b[:])
	if err != nil {
		return fmt.Sprintf(".inst %#08x", w)
	}
	return strings.TrimSpace(arm64asm.GNUSyntax(in))
}
