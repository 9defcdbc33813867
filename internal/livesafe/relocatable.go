package livesafe

// Relocatable files (ET_REL): rewritten by the patcher, so compared section
// by section, then relocations as multisets, then symbols.

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/render"
)

// symbolsOf returns every entry of o's symbol table (null symbol first)
// and the table's section index, -1 when there is none.
func symbolsOf(o *elfscan.Object) ([]elfscan.Sym, int, error) {
	st, err := o.Symbols()
	if err != nil {
		return nil, -1, err
	}
	idx := -1
	for i, s := range o.ELF().Sections {
		if s == st.SectionHeader() {
			idx = i
		}
	}
	syms := make([]elfscan.Sym, st.Len())
	for i := range syms {
		syms[i], _ = st.Sym(uint32(i))
	}
	return syms, idx, nil
}

// relKey is a relocation compared across the files: with existing symbols
// unchanged and added ones appended, equal indices mean equal symbols.
type relKey struct {
	off    uint64
	typ    elf.R_AARCH64
	sym    uint32
	addend int64
}

// relocatable compares ET_REL files: the ELF header but for the section
// table's place, section headers and bytes (site words attributed), added
// sections (only .rela<text>), symbols (existing unchanged, added ones
// undefined globals) and relocations (only ABS64 at a literal and CALL26 at
// a slot2 may change).
func (a *comparison) relocatable() error {
	of, pf := a.of, a.pf
	osyms, osymIdx, err := symbolsOf(a.o)
	if err != nil {
		return fmt.Errorf("file %s: %w", a.r.Orig, err)
	}
	psyms, _, err := symbolsOf(a.p)
	if err != nil {
		return fmt.Errorf("file %s: %w", a.r.File, err)
	}
	hdr := loc{section: "ELF header"}
	// The header may change only where sections are: e_shoff and e_shnum.
	oh, err := headerBytes(&a.oh)
	if err != nil {
		return fmt.Errorf("file %s: ELF header: %w", a.r.Orig, err)
	}
	ph, err := headerBytes(&a.ph)
	if err != nil {
		return fmt.Errorf("file %s: ELF header: %w", a.r.File, err)
	}
	for _, r := range [][2]int{{0, 40}, {48, 60}, {62, 64}} {
		if !bytes.Equal(oh[r[0]:r[1]], ph[r[0]:r[1]]) {
			a.problem(loc{section: "ELF header", offset: uint64(r[0]), addr: uint64(r[0]), fileOffset: int64(r[0])},
				fmt.Sprintf("ELF header bytes %#x..%#x changed: %x -> %x", r[0], r[1], oh[r[0]:r[1]], ph[r[0]:r[1]]))
		}
	}
	if len(pf.Sections) < len(of.Sections) {
		a.problem(hdr, fmt.Sprintf("section count dropped from %d to %d", len(of.Sections), len(pf.Sections)))
		return nil
	}

	// Site words by section, for bytes and relocations.
	spans := map[int][]span{}
	sitePos := map[relPos]struct {
		site int
		bit  uint8
	}{}
	for i := range a.os.Sites {
		s := &a.os.Sites[i]
		for _, p := range a.spansOf(i, s) {
			spans[s.SectionIndex()] = append(spans[s.SectionIndex()], p)
			sitePos[relPos{s.SectionIndex(), uint64(p.lo)}] = struct {
				site int
				bit  uint8
			}{i, p.bit}
		}
	}
	secLoc := func(sec int, s *elf.Section, off uint64) loc {
		l := loc{section: s.Name, secIndex: sec, offset: off, addr: off, fileOffset: int64(s.Offset + off)}
		if s.Flags&elf.SHF_EXECINSTR != 0 {
			l.fn = a.funcAt(sec, off)
		}
		return l
	}

	// Section headers and bytes.
	for i, os_ := range of.Sections {
		ps := pf.Sections[i]
		l := loc{section: os_.Name, secIndex: i, fileOffset: int64(os_.Offset)}
		if os_.Name != ps.Name || os_.Type != ps.Type || os_.Flags != ps.Flags || os_.Addralign != ps.Addralign ||
			os_.Entsize != ps.Entsize || os_.Link != ps.Link || os_.Info != ps.Info || os_.Addr != ps.Addr {
			a.problem(l, fmt.Sprintf("section header %d changed (name %q type %v flags %v link %d info %d -> name %q type %v flags %v link %d info %d)",
				i, os_.Name, os_.Type, os_.Flags, os_.Link, os_.Info, ps.Name, ps.Type, ps.Flags, ps.Link, ps.Info))
			continue
		}
		switch os_.Type {
		case elf.SHT_SYMTAB, elf.SHT_STRTAB, elf.SHT_RELA:
			continue // compared by meaning below
		case elf.SHT_NOBITS:
			if os_.Size != ps.Size {
				a.problem(l, fmt.Sprintf("size changed from %#x to %#x", os_.Size, ps.Size))
			}
			continue
		}
		// FileSize: the bytes in the file (fewer than Size for a
		// compressed section, whose bytes are compared as they are).
		if os_.Size != ps.Size || os_.FileSize != ps.FileSize {
			a.problem(l, fmt.Sprintf("size changed from %#x to %#x", os_.FileSize, ps.FileSize))
			continue
		}
		sp := spans[i]
		sortSpans(sp)
		err := diffRanges(a.or, a.pr, int64(os_.Offset), int64(ps.Offset), int64(os_.FileSize), a.opts.ChunkSize, func(lo, hi int64) {
			a.r.Counts.DifferentBytes += hi - lo
			a.attribute(sp, lo, hi, func(lo, hi int64) {
				a.problem(secLoc(i, os_, uint64(lo)), fmt.Sprintf("%d byte(s) changed outside any patch site: %s -> %s",
					hi-lo, hexAt(a.or, int64(os_.Offset)+lo, hi-lo), hexAt(a.pr, int64(ps.Offset)+lo, hi-lo)))
			})
		})
		a.r.Counts.BytesCompared += int64(os_.FileSize)
		if err != nil {
			return fmt.Errorf("comparing section %q of %s with %s: %w", os_.Name, a.r.Orig, a.r.File, err)
		}
	}

	// Added sections: only .rela<text> for executable sections.
	symtabName := ""
	if osymIdx >= 0 {
		symtabName = of.Sections[osymIdx].Name
	}
	for i := len(of.Sections); i < len(pf.Sections); i++ {
		s := pf.Sections[i]
		a.r.Counts.SectionsAdded++
		l := loc{section: s.Name, secIndex: i, fileOffset: int64(s.Offset)}
		ok := s.Type == elf.SHT_RELA && int(s.Info) < len(of.Sections) && int(s.Info) > 0 && int(s.Link) == osymIdx
		if ok {
			t := of.Sections[s.Info]
			ok = t.Flags&elf.SHF_EXECINSTR != 0 && s.Name == ".rela"+t.Name
		}
		if !ok {
			a.problem(l, fmt.Sprintf("added section %d %q (%v, link %d, info %d) is not a .rela section for a text section linked to %s",
				i, s.Name, s.Type, s.Link, s.Info, symtabName))
		}
	}

	// Symbols.
	if len(psyms) < len(osyms) {
		a.problem(loc{section: symtabName}, fmt.Sprintf("symbol count dropped from %d to %d", len(osyms), len(psyms)))
		return nil
	}
	names := map[string]bool{}
	for k, s := range osyms {
		p := psyms[k]
		if s != p {
			a.problem(loc{section: symtabName, offset: uint64(k * 24), addr: uint64(k * 24)},
				fmt.Sprintf("symbol %d %q changed (info %#x other %#x shndx %d value %#x size %#x -> %q info %#x other %#x shndx %d value %#x size %#x)",
					k, s.Name, s.Info, s.Other, s.Section, s.Value, s.Size, p.Name, p.Info, p.Other, p.Section, p.Value, p.Size))
		}
		if s.Bind() != elf.STB_LOCAL {
			names[s.Name] = true
		}
	}
	for k := len(osyms); k < len(psyms); k++ {
		p := psyms[k]
		a.r.Counts.SymbolsAdded++
		bad := ""
		switch {
		case p.Name == "":
			bad = "has no name"
		case p.Bind() != elf.STB_GLOBAL:
			bad = fmt.Sprintf("is %v, not GLOBAL", p.Bind())
		case elf.ST_VISIBILITY(p.Other) != elf.STV_DEFAULT:
			bad = fmt.Sprintf("has visibility %v, not DEFAULT", elf.ST_VISIBILITY(p.Other))
		case p.Section != elf.SHN_UNDEF || p.Value != 0 || p.Size != 0:
			bad = fmt.Sprintf("is defined (shndx %d value %#x size %#x), not undefined", p.Section, p.Value, p.Size)
		case names[p.Name]:
			bad = "duplicates an existing global symbol"
		}
		names[p.Name] = true
		if bad != "" {
			a.problem(loc{section: symtabName, offset: uint64(k * 24), addr: uint64(k * 24)}, fmt.Sprintf("added symbol %d %q %s", k, p.Name, bad))
		}
	}
	symName := a.p.SymName

	// Relocations, as multisets per target section.
	orels, err := relasByTarget(a.o)
	if err != nil {
		return fmt.Errorf("file %s: %w", a.r.Orig, err)
	}
	prels, err := relasByTarget(a.p)
	if err != nil {
		return fmt.Errorf("file %s: %w", a.r.File, err)
	}
	a.oRel, a.pRel = map[relPos]string{}, map[relPos]string{}
	relText := func(r elfscan.Rela) string {
		return fmt.Sprintf("%s %s", strings.TrimPrefix(r.Type.String(), "R_AARCH64_"), render.RelExpr(symName(r.Sym), r.Addend))
	}
	targets := map[int]bool{}
	for t := range orels {
		targets[t] = true
	}
	for t := range prels {
		targets[t] = true
	}
	var tlist []int
	for t := range targets {
		tlist = append(tlist, t)
	}
	sort.Ints(tlist)
	for _, t := range tlist {
		count := map[relKey]int{}
		for _, r := range orels[t] {
			count[relKey{r.Off, r.Type, r.Sym, r.Addend}]++
			if _, ok := sitePos[relPos{t, r.Off}]; ok {
				a.oRel[relPos{t, r.Off}] = relText(r)
			}
		}
		for _, r := range prels[t] {
			count[relKey{r.Off, r.Type, r.Sym, r.Addend}]--
			if _, ok := sitePos[relPos{t, r.Off}]; ok {
				a.pRel[relPos{t, r.Off}] = relText(r)
			}
		}
		var keys []relKey
		for k, n := range count {
			if n != 0 {
				keys = append(keys, k)
			}
		}
		sort.Slice(keys, func(i, j int) bool {
			return keys[i].off < keys[j].off || keys[i].off == keys[j].off && keys[i].typ < keys[j].typ
		})
		for _, k := range keys {
			n := count[k]
			verb := "removed"
			if n < 0 {
				verb, n = "added", -n
				a.r.Counts.RelocsAdded += n
			} else {
				a.r.Counts.RelocsRemoved += n
			}
			sp, ok := sitePos[relPos{t, k.off}]
			if ok && n == 1 && (sp.bit == bitLiteral && k.typ == elf.R_AARCH64_ABS64 || sp.bit == bitSlot2 && k.typ == elf.R_AARCH64_CALL26) {
				a.touched[sp.site] |= sp.bit
				continue
			}
			var s *elf.Section
			name := fmt.Sprintf("section#%d", t)
			if t < len(pf.Sections) {
				s, name = pf.Sections[t], pf.Sections[t].Name
			}
			l := loc{section: name, secIndex: t, offset: k.off, addr: k.off}
			if s != nil && t < len(of.Sections) {
				l = secLoc(t, of.Sections[t], k.off)
			}
			if ok {
				l.fn = a.os.Sites[sp.site].Func
			}
			a.problem(l, fmt.Sprintf("relocation %s %s %s (x%d): only R_AARCH64_ABS64 at a site's literal and R_AARCH64_CALL26 at its slot2 may change",
				verb, strings.TrimPrefix(k.typ.String(), "R_AARCH64_"), render.RelExpr(symName(k.sym), k.addend), n))
		}
	}
	return nil
}

// relasByTarget returns o's relocations grouped by the section they
// relocate (sh_info), from the Object's one relocation index.
func relasByTarget(o *elfscan.Object) (map[int][]elfscan.Rela, error) {
	x, err := o.Relocs()
	if err != nil {
		return nil, err
	}
	out := map[int][]elfscan.Rela{}
	for t := range o.ELF().Sections {
		if len(x.Tables(t)) == 0 {
			continue
		}
		rs, err := x.For(t)
		if err != nil {
			return nil, err
		}
		out[t] = rs
	}
	return out, nil
}

// headerBytes is h as the 64 bytes of a little-endian ELF64 header.
func headerBytes(h *elf.Header64) ([]byte, error) {
	return binary.Append(make([]byte, 0, 64), binary.LittleEndian, h)
}
