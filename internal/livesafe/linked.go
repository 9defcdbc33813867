// SPDX-License-Identifier: Apache-2.0

package livesafe

// Linked files (ET_EXEC, ET_DYN): streamed side by side, every differing
// byte range attributed to a site word or reported.

import (
	"debug/elf"
	"fmt"
	"sort"
)

// linked compares linked files: same size, every differing byte range a
// site word or a problem named by its section and function.
func (a *comparison) linked() error {
	of := a.of
	osz, psz := a.o.Size(), a.p.Size()
	if osz < 0 || psz < 0 {
		return fmt.Errorf("comparing %s with %s: file size unknown", a.r.Orig, a.r.File)
	}
	if osz != psz {
		a.problem(loc{section: "ELF header"}, fmt.Sprintf("file size changed from %d to %d bytes: a linked file must keep its layout", osz, psz))
		return nil
	}
	var sp []span
	for i := range a.os.Sites {
		sp = append(sp, a.spansOf(i, &a.os.Sites[i])...)
	}
	sortSpans(sp)

	// Regions for naming bytes: headers, then sections with contents.
	type region struct {
		lo, hi int64
		name   string
		sec    int
	}
	var regs []region
	regs = append(regs, region{0, 64, "ELF header", -1})
	h := &a.oh
	phoff, phnum, shoff, shnum := int64(h.Phoff), int64(h.Phnum), int64(h.Shoff), int64(h.Shnum)
	if phnum > 0 {
		regs = append(regs, region{phoff, phoff + phnum*56, "program headers", -1})
	}
	if shnum > 0 {
		regs = append(regs, region{shoff, shoff + shnum*64, "section headers", -1})
	}
	for i, s := range of.Sections {
		if s.Type != elf.SHT_NOBITS && s.FileSize > 0 { // the bytes in the file: compressed ones too
			regs = append(regs, region{int64(s.Offset), int64(s.Offset + s.FileSize), s.Name, i})
		}
	}
	sort.SliceStable(regs, func(i, j int) bool { return regs[i].lo < regs[j].lo })
	where := func(off int64) loc {
		l := loc{section: "(between sections)", fileOffset: off, offset: uint64(off)}
		for i := len(regs) - 1; i >= 0; i-- {
			if rg := regs[i]; rg.lo <= off && off < rg.hi {
				l.section, l.offset = rg.name, uint64(off-rg.lo)
				if rg.sec >= 0 {
					s := of.Sections[rg.sec]
					l.secIndex = rg.sec
					if s.Flags&elf.SHF_ALLOC != 0 {
						l.addr = s.Addr + l.offset
						l.fn = a.funcAt(rg.sec, l.addr)
					}
				}
				break
			}
		}
		return l
	}
	err := diffRanges(a.or, a.pr, 0, 0, osz, a.opts.ChunkSize, func(lo, hi int64) {
		a.r.Counts.DifferentBytes += hi - lo
		a.attribute(sp, lo, hi, func(lo, hi int64) {
			l := where(lo)
			a.problem(l, fmt.Sprintf("%d byte(s) changed outside any patch site: %s -> %s",
				hi-lo, hexAt(a.or, lo, hi-lo), hexAt(a.pr, lo, hi-lo)))
		})
	})
	a.r.Counts.BytesCompared = osz
	if err != nil {
		return fmt.Errorf("comparing %s with %s: %w", a.r.Orig, a.r.File, err)
	}
	return nil
}
