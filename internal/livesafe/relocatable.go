// SPDX-License-Identifier: Apache-2.0

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
	"github.com/ftpatch/ftpatch/internal/elfwrite"
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

// relocatable compares ET_REL files, accounting for every byte of FILE:
// the ELF header but for the section table's place and count, each section
// header as it is in the file (relraw.go), each section's bytes (site words
// attributed), added sections (only .rela<text>), the tables the patch
// appends to (symbols, strings, group members: ORIG's bytes first, then
// only what the added entries use), symbols (existing unchanged, added ones
// undefined globals), relocations (only ABS64 at a literal and CALL26 at a
// slot2 may change), and every byte outside all of these (padding only).
func (a *comparison) relocatable() error {
	osyms, osymIdx, err := symbolsOf(a.o)
	if err != nil {
		return fmt.Errorf("file %s: %w", a.r.Orig, err)
	}
	psyms, _, err := symbolsOf(a.p)
	if err != nil {
		return fmt.Errorf("file %s: %w", a.r.File, err)
	}
	if err := a.relHeader(); err != nil {
		return err
	}
	if len(a.pf.Sections) < len(a.of.Sections) {
		a.problem(loc{section: "ELF header"}, fmt.Sprintf("section count dropped from %d to %d", len(a.of.Sections), len(a.pf.Sections)))
		return nil
	}
	rh, err := a.readRawHeaders()
	if err != nil {
		return err
	}
	sitePos := a.relSitePositions()
	if err := a.relSections(rh, sitePos.spans); err != nil {
		return err
	}
	a.relAdded(rh, osymIdx)
	if !a.relSymbols(osyms, psyms, osymIdx) {
		return nil
	}
	if err := a.relTables(rh, len(osyms), osymIdx); err != nil {
		return err
	}
	if err := a.relRelocs(sitePos); err != nil {
		return err
	}
	return a.layout(rh)
}

// relHeader compares the ELF headers: they may differ only where the
// section header table is and how many entries it has (e_shoff, e_shnum).
func (a *comparison) relHeader() error {
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
	return nil
}

// sitePositions are ORIG's site words by section (for the byte diff) and
// by (section, offset) (for relocations).
type sitePositions struct {
	spans map[int][]span
	at    map[relPos]siteWord
}

type siteWord struct {
	site int
	bit  uint8
}

func (a *comparison) relSitePositions() sitePositions {
	sp := sitePositions{spans: map[int][]span{}, at: map[relPos]siteWord{}}
	for i := range a.os.Sites {
		s := &a.os.Sites[i]
		for _, p := range a.spansOf(i, s) {
			sp.spans[s.SectionIndex()] = append(sp.spans[s.SectionIndex()], p)
			sp.at[relPos{s.SectionIndex(), uint64(p.lo)}] = siteWord{i, p.bit}
		}
	}
	return sp
}

// secLoc is the place of byte off of section sec, for problems.
func (a *comparison) secLoc(sec int, s *elf.Section, off uint64) loc {
	l := loc{section: s.Name, secIndex: sec, offset: off, addr: off, fileOffset: int64(s.Offset + off)}
	if s.Flags&elf.SHF_EXECINSTR != 0 {
		l.fn = a.funcAt(sec, off)
	}
	return l
}

// relSections compares ORIG's sections: headers as they are in the file,
// then the bytes of each but the tables (relTables, relRelocs).
func (a *comparison) relSections(rh *rawHeaders, spans map[int][]span) error {
	for i, osec := range a.of.Sections {
		if !a.sectionHeaderOK(rh, i) || elfwrite.Grows(rh.o[i]) {
			continue
		}
		if t := elf.SectionType(rh.o[i].Type); t == elf.SHT_NOBITS || t == elf.SHT_NULL {
			continue
		}
		if err := a.relSectionBytes(i, osec, a.pf.Sections[i], spans[i]); err != nil {
			return err
		}
	}
	return nil
}

// relSectionBytes diffs section i's bytes in the files (compressed ones as
// they are), attributing each difference to a site word or reporting it.
func (a *comparison) relSectionBytes(i int, osec, ps *elf.Section, sp []span) error {
	sortSpans(sp)
	err := diffRanges(a.or, a.pr, int64(osec.Offset), int64(ps.Offset), int64(osec.FileSize), a.opts.ChunkSize, func(lo, hi int64) {
		a.r.Counts.DifferentBytes += hi - lo
		a.attribute(sp, lo, hi, func(lo, hi int64) {
			a.problem(a.secLoc(i, osec, uint64(lo)), fmt.Sprintf("%d byte(s) changed outside any patch site: %s -> %s",
				hi-lo, hexAt(a.or, int64(osec.Offset)+lo, hi-lo), hexAt(a.pr, int64(ps.Offset)+lo, hi-lo)))
		})
	})
	a.r.Counts.BytesCompared += int64(osec.FileSize)
	if err != nil {
		return fmt.Errorf("comparing section %q of %s with %s: %w", osec.Name, a.r.Orig, a.r.File, err)
	}
	return nil
}

// relAdded checks the sections FILE adds: only .rela<text> for executable
// sections, linked to the symbol table, with the header the patch writes.
func (a *comparison) relAdded(rh *rawHeaders, osymIdx int) {
	of := a.of
	symtabName := ""
	if osymIdx >= 0 {
		symtabName = of.Sections[osymIdx].Name
	}
	for i := len(of.Sections); i < len(a.pf.Sections); i++ {
		s := a.pf.Sections[i]
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
			continue
		}
		a.addedHeaderOK(rh, i)
	}
}

// relSymbols compares the symbol tables: ORIG's entries unchanged, added
// ones undefined default-visibility globals with new names. It returns
// false when FILE has fewer symbols (nothing more can be compared).
func (a *comparison) relSymbols(osyms, psyms []elfscan.Sym, osymIdx int) bool {
	symtabName := ""
	if osymIdx >= 0 {
		symtabName = a.of.Sections[osymIdx].Name
	}
	if len(psyms) < len(osyms) {
		a.problem(loc{section: symtabName}, fmt.Sprintf("symbol count dropped from %d to %d", len(osyms), len(psyms)))
		return false
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
		if bad := addedSymbolProblem(p, names); bad != "" {
			a.problem(loc{section: symtabName, offset: uint64(k * 24), addr: uint64(k * 24)}, fmt.Sprintf("added symbol %d %q %s", k, p.Name, bad))
		}
		names[p.Name] = true
	}
	return true
}

// addedSymbolProblem says what is wrong with p, a symbol the patch added,
// or "".
func addedSymbolProblem(p elfscan.Sym, names map[string]bool) string {
	switch {
	case p.Name == "":
		return "has no name"
	case p.Bind() != elf.STB_GLOBAL:
		return fmt.Sprintf("is %v, not GLOBAL", p.Bind())
	case elf.ST_VISIBILITY(p.Other) != elf.STV_DEFAULT:
		return fmt.Sprintf("has visibility %v, not DEFAULT", elf.ST_VISIBILITY(p.Other))
	case p.Other != 0:
		return fmt.Sprintf("has st_other %#x, not 0", p.Other)
	case p.Section != elf.SHN_UNDEF || p.Value != 0 || p.Size != 0:
		return fmt.Sprintf("is defined (shndx %d value %#x size %#x), not undefined", p.Section, p.Value, p.Size)
	case names[p.Name]:
		return "duplicates an existing global symbol"
	}
	return ""
}

// relTables checks, byte by byte, the tables the patch appends to: the
// symbol table (ORIG's entries, then the added ones, checked by
// relSymbols), its string table (then the added symbols' names), the
// section name table (then the added sections' names), group sections
// (then added .rela sections of their members), and any other string
// table (unchanged).
func (a *comparison) relTables(rh *rawHeaders, nsyms, osymIdx int) error {
	var addedNames [][2]int // in the symbol string table
	if osymIdx >= 0 {
		pb, err := a.grownTable(rh, osymIdx, func(pb []byte) [][2]int { return [][2]int{{nsyms * 24, len(pb)}} })
		if err != nil {
			return err
		}
		for k := nsyms * 24; k+24 <= len(pb); k += 24 {
			addedNames = append(addedNames, [2]int{int(binary.LittleEndian.Uint32(pb[k:])), -1})
		}
	}
	for i := 1; i < len(rh.o); i++ {
		var tail func([]byte) [][2]int
		switch elf.SectionType(rh.o[i].Type) {
		case elf.SHT_GROUP:
			tail = a.groupTail(rh, i)
		case elf.SHT_STRTAB:
			// One table may hold both symbol and section names (Clang's).
			var names [][2]int
			if osymIdx >= 0 && i == int(rh.o[osymIdx].Link) {
				names = append(names, addedNames...)
			}
			if i == int(a.ph.Shstrndx) {
				names = append(names, a.addedSectionNames(rh)...)
			}
			tail = stringsAt(names)
		default:
			continue
		}
		if _, err := a.grownTable(rh, i, tail); err != nil {
			return err
		}
	}
	return nil
}

// stringsAt returns a tail function covering, for each [start, -1) in
// offs, the NUL-terminated string at start.
func stringsAt(offs [][2]int) func([]byte) [][2]int {
	return func(pb []byte) [][2]int {
		out := make([][2]int, 0, len(offs))
		for _, o := range offs {
			if o[0] < 0 || o[0] >= len(pb) {
				continue
			}
			end := bytes.IndexByte(pb[o[0]:], 0)
			if end < 0 {
				continue // runs off the table: left uncovered, so reported
			}
			out = append(out, [2]int{o[0], o[0] + end + 1})
		}
		return out
	}
}

// addedSectionNames are the sh_name offsets of the sections FILE adds.
func (a *comparison) addedSectionNames(rh *rawHeaders) [][2]int {
	var out [][2]int
	for i := len(rh.o); i < len(rh.p); i++ {
		out = append(out, [2]int{int(rh.p[i].Name), -1})
	}
	return out
}

// groupTail covers the entries appended to group section g: the index of
// an added .rela section whose text section is a member of the group (in
// ORIG's entries), as the patch appends it.
func (a *comparison) groupTail(rh *rawHeaders, g int) func([]byte) [][2]int {
	return func(pb []byte) [][2]int {
		le := binary.LittleEndian
		n := int(rh.o[g].Size)
		members := map[uint32]bool{}
		for k := 4; k+4 <= n && k+4 <= len(pb); k += 4 {
			members[le.Uint32(pb[k:])] = true
		}
		var out [][2]int
		for k := n; k+4 <= len(pb); k += 4 {
			idx := int(le.Uint32(pb[k:]))
			if idx >= len(rh.o) && idx < len(rh.p) && members[rh.p[idx].Info] {
				out = append(out, [2]int{k, k + 4})
			}
		}
		return out
	}
}

// relRelocs compares the relocations as multisets per target section:
// only ABS64 at a site's literal and CALL26 at its slot2 may change.
func (a *comparison) relRelocs(sp sitePositions) error {
	orels, err := relasByTarget(a.o)
	if err != nil {
		return fmt.Errorf("file %s: %w", a.r.Orig, err)
	}
	prels, err := relasByTarget(a.p)
	if err != nil {
		return fmt.Errorf("file %s: %w", a.r.File, err)
	}
	a.oRel, a.pRel = map[relPos]string{}, map[relPos]string{}
	targets := map[int]bool{}
	for t := range orels {
		targets[t] = true
	}
	for t := range prels {
		targets[t] = true
	}
	tlist := make([]int, 0, len(targets))
	for t := range targets {
		tlist = append(tlist, t)
	}
	sort.Ints(tlist)
	for _, t := range tlist {
		a.relRelocsOf(t, orels[t], prels[t], sp)
	}
	return nil
}

// relText is a relocation as problems show it.
func (a *comparison) relText(r elfscan.Rela) string {
	return fmt.Sprintf("%s %s", strings.TrimPrefix(r.Type.String(), "R_AARCH64_"), render.RelExpr(a.p.SymName(r.Sym), r.Addend))
}

// relRelocsOf compares the relocations of target section t.
func (a *comparison) relRelocsOf(t int, orels, prels []elfscan.Rela, sp sitePositions) {
	count := map[relKey]int{}
	for _, r := range orels {
		count[relKey{r.Off, r.Type, r.Sym, r.Addend}]++
		if _, ok := sp.at[relPos{t, r.Off}]; ok {
			a.oRel[relPos{t, r.Off}] = a.relText(r)
		}
	}
	for _, r := range prels {
		count[relKey{r.Off, r.Type, r.Sym, r.Addend}]--
		if _, ok := sp.at[relPos{t, r.Off}]; ok {
			a.pRel[relPos{t, r.Off}] = a.relText(r)
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
		a.relChanged(t, k, count[k], sp)
	}
}

// relChanged accounts for n more (n > 0: removed) or fewer (added)
// relocations k at target section t: a site's literal or slot2 change, or
// a problem.
func (a *comparison) relChanged(t int, k relKey, n int, sp sitePositions) {
	verb := "removed"
	if n < 0 {
		verb, n = "added", -n
		a.r.Counts.RelocsAdded += n
	} else {
		a.r.Counts.RelocsRemoved += n
	}
	w, ok := sp.at[relPos{t, k.off}]
	if ok && n == 1 && (w.bit == bitLiteral && k.typ == elf.R_AARCH64_ABS64 || w.bit == bitSlot2 && k.typ == elf.R_AARCH64_CALL26) {
		a.touched[w.site] |= w.bit
		return
	}
	name := fmt.Sprintf("section#%d", t)
	if t < len(a.pf.Sections) {
		name = a.pf.Sections[t].Name
	}
	l := loc{section: name, secIndex: t, offset: k.off, addr: k.off}
	if t < len(a.pf.Sections) && t < len(a.of.Sections) {
		l = a.secLoc(t, a.of.Sections[t], k.off)
	}
	if ok {
		l.fn = a.os.Sites[w.site].Func
	}
	a.problem(l, fmt.Sprintf("relocation %s %s %s (x%d): only R_AARCH64_ABS64 at a site's literal and R_AARCH64_CALL26 at its slot2 may change",
		verb, strings.TrimPrefix(k.typ.String(), "R_AARCH64_"), render.RelExpr(a.p.SymName(k.sym), k.addend), n))
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
