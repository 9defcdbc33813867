// SPDX-License-Identifier: Apache-2.0

package verify

import (
	"fmt"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
)

// disasm renders a site's words as loaded (relocations applied), in GNU
// syntax: the literal as .quad, then the entry up to the call site.
func (img *Image) disasm(s *site) []string {
	var out []string
	spare := func() {
		if w, ok := img.read32(s.spare()); ok && s.Layout == elfscan.LayoutCallOps53 {
			out = append(out, fmt.Sprintf("%#x: %08x  %s (spare)", s.spare(), w, encode.Disasm(w, s.spare())))
		}
	}
	if s.spare() < s.literal() {
		spare()
	}
	if s.Layout.HasLiteral() && s.literal() != 0 {
		if v, ok := img.read64(s.literal()); ok {
			out = append(out, fmt.Sprintf("%#x: %016x  .quad %#x", s.literal(), v, v))
		}
	}
	if s.spare() > s.literal() {
		spare()
	}
	for a := s.entry(); a <= s.callSite() && a >= s.entry() && len(out) < 8; a += 4 {
		w, ok := img.read32(a)
		if !ok {
			out = append(out, fmt.Sprintf("%#x: unmapped", a))
			break
		}
		out = append(out, fmt.Sprintf("%#x: %08x  %s", a, w, encode.Disasm(w, a)))
	}
	return out
}
