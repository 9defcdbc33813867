// SPDX-License-Identifier: Apache-2.0

package verify

import (
	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
)

// siteWords lists a site's words as loaded (relocations applied), for a
// failure: the literal (and a 5,3 site's spare word) in address order,
// then the entry up to the call site. Package report disassembles them.
func (img *Image) siteWords(s *site) []encode.Placed {
	var out []encode.Placed
	spare := func() {
		if w, ok := img.read32(s.spare()); ok && s.Layout == elfscan.LayoutCallOps53 {
			out = append(out, encode.Placed{Addr: s.spare(), Bits: uint64(w), Kind: encode.PlacedSpare})
		}
	}
	if s.spare() < s.literal() {
		spare()
	}
	if s.Layout.HasLiteral() && s.literal() != 0 {
		if v, ok := img.read64(s.literal()); ok {
			out = append(out, encode.Placed{Addr: s.literal(), Bits: v, Kind: encode.PlacedLiteral})
		}
	}
	if s.spare() > s.literal() {
		spare()
	}
	for a := s.entry(); a <= s.callSite() && a >= s.entry() && len(out) < 8; a += 4 {
		w, ok := img.read32(a)
		if !ok {
			out = append(out, encode.Placed{Addr: a, Kind: encode.PlacedUnmapped})
			break
		}
		out = append(out, encode.Placed{Addr: a, Bits: uint64(w)})
	}
	return out
}
