// SPDX-License-Identifier: Apache-2.0

package livesafe

// The raw half of the ET_REL comparison: every byte of FILE is accounted
// for. debug/elf's view drops some of the file (section header 0, the
// upper 32 bits of sh_flags, which string a name index points at, bytes
// outside every section), so the section headers are compared as they are
// in the file, field by field, and FILE is walked end to end: each byte is
// in the ELF header, the section header table or a section, or it is
// padding (zero, shorter than the alignment of what follows), or it is
// where ORIG has the same byte outside everything too.

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"

	"github.com/ftpatch/ftpatch/internal/elfwrite"
)

// rawHeaders are both files' section header tables as they are in the
// files.
type rawHeaders struct {
	o, p []elf.Section64
}

// readRawHeaders reads both files' section header tables (elfwrite); the
// Objects checked that they lie in the files.
func (a *comparison) readRawHeaders() (*rawHeaders, error) {
	o, err := elfwrite.ReadSectionHeaders(a.or, &a.oh)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", a.r.Orig, err)
	}
	p, err := elfwrite.ReadSectionHeaders(a.pr, &a.ph)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", a.r.File, err)
	}
	return &rawHeaders{o: o, p: p}, nil
}

// sectionHeaderOK compares section header i of both files field by field
// and reports each change the patch does not explain; it returns whether
// the header is unchanged but for those. Explained: the place of a
// section's bytes (the file is laid out again; not section 0's, which has
// none), the size of a table that grows (checked by what it holds), and
// sh_addralign rising to 8 on a text section with patch sites (a 5,3
// literal written into a section aligned to 4).
func (a *comparison) sectionHeaderOK(rh *rawHeaders, i int) bool {
	o, p := &rh.o[i], &rh.p[i]
	ok := true
	for _, f := range elfwrite.SectionHeaderFields {
		ov, pv := f.Get(o), f.Get(p)
		if ov == pv || a.explained(rh, i, f.Name, ov, pv) {
			continue
		}
		ok = false
		at := uint64(i*elfwrite.SectionHeaderSize + f.Off)
		l := loc{section: "section headers", offset: at, addr: at, fileOffset: int64(a.ph.Shoff) + int64(at)}
		a.problem(l, fmt.Sprintf("section header %d (%s): %s changed from %#x to %#x", i, a.sectionName(i), f.Name, ov, pv))
	}
	return ok
}

// explained reports whether field of section header i may go from ov to
// pv (see sectionHeaderOK).
func (a *comparison) explained(rh *rawHeaders, i int, field string, ov, pv uint64) bool {
	switch field {
	case "sh_offset":
		return i > 0
	case "sh_size":
		return i > 0 && elfwrite.Grows(rh.o[i])
	case "sh_addralign":
		return i > 0 && ov < 8 && pv == 8 && a.hasSites(i)
	}
	return false
}

// hasSites reports whether ORIG has patch sites in section i.
func (a *comparison) hasSites(i int) bool {
	for k := range a.os.Sites {
		if a.os.Sites[k].SectionIndex() == i {
			return true
		}
	}
	return false
}

// sectionName is section i's name in ORIG (FILE's for an added one).
func (a *comparison) sectionName(i int) string {
	if i < len(a.of.Sections) {
		return fmt.Sprintf("%q", a.of.Sections[i].Name)
	}
	if i < len(a.pf.Sections) {
		return fmt.Sprintf("%q", a.pf.Sections[i].Name)
	}
	return fmt.Sprintf("#%d", i)
}

// addedHeaderOK checks the raw fields of section i, added by the patch:
// a .rela for a text section, exactly as the patch writes one
// (elfwrite.RelaHeader).
func (a *comparison) addedHeaderOK(rh *rawHeaders, i int) bool {
	s := rh.p[i]
	group := int(s.Info) < len(rh.o) && elf.SectionFlag(rh.o[s.Info].Flags)&elf.SHF_GROUP != 0
	want := elfwrite.RelaHeader(int(s.Link), int(s.Info), group)
	want.Name, want.Off, want.Size = s.Name, s.Off, s.Size
	if s == want {
		return true
	}
	a.problem(loc{section: "section headers", fileOffset: int64(a.ph.Shoff) + int64(i*64)},
		fmt.Sprintf("added section header %d (%s): flags %#x addr %#x addralign %#x entsize %#x, not those of a .rela section the patch adds (flags %#x, addr 0, addralign 8, entsize 24)",
			i, a.sectionName(i), s.Flags, s.Addr, s.Addralign, s.Entsize, want.Flags))
	return false
}

// region is a stretch of FILE that something accounts for.
type region struct {
	lo, hi int64
	align  int64
	what   string
}

// regionsOf lists what FILE's bytes belong to (elfwrite.Parts): its ELF
// header, program headers, section header table and the sections with
// bytes, in file order.
func regionsOf(h *elf.Header64, sh []elf.Section64, names func(int) string) []region {
	parts := elfwrite.Parts(h, sh)
	regs := make([]region, len(parts))
	for k, pt := range parts {
		regs[k] = region{pt.Lo, pt.Hi, pt.Align, partName(pt, names)}
	}
	return regs
}

// partName says what part pt of a file is, for a problem's detail.
func partName(pt elfwrite.Part, names func(int) string) string {
	switch pt.Kind {
	case elfwrite.PartHeader:
		return "the ELF header"
	case elfwrite.PartProgramHeaders:
		return "the program headers"
	case elfwrite.PartSectionHeaders:
		return "the section headers"
	}
	return "section " + names(pt.Section)
}

// layout walks FILE end to end (see the file comment): overlapping
// regions, and bytes outside every region that are neither padding nor
// ORIG's own bytes outside everything at the same place, are problems.
func (a *comparison) layout(rh *rawHeaders) error {
	size := a.p.Size()
	if size < 0 {
		return fmt.Errorf("comparing %s with %s: file size unknown", a.r.Orig, a.r.File)
	}
	oRegs := regionsOf(&a.oh, rh.o, a.sectionName)
	cur := int64(0)
	for _, rg := range regionsOf(&a.ph, rh.p, a.sectionName) {
		if rg.lo < cur {
			a.problem(loc{section: "(layout)", fileOffset: rg.lo},
				fmt.Sprintf("%s at file offset %#x overlaps what comes before it (up to %#x)", rg.what, rg.lo, cur))
		} else if err := a.gap(oRegs, cur, rg.lo, rg.align, "before "+rg.what); err != nil {
			return err
		}
		cur = max(cur, rg.hi)
	}
	return a.gap(oRegs, cur, size, 1, "after the end of the last section and header (appended)")
}

// gap checks FILE's bytes [lo, hi), which nothing accounts for.
func (a *comparison) gap(oRegs []region, lo, hi, align int64, where string) error {
	if lo >= hi {
		return nil
	}
	a.r.Counts.BytesCompared += hi - lo
	if hi-lo < align {
		zero, err := allZero(a.pr, lo, hi)
		if err != nil || zero {
			return err
		}
	}
	if outside(oRegs, lo, hi) && hi <= a.o.Size() {
		same := true
		err := diffRanges(a.or, a.pr, lo, lo, hi-lo, a.opts.ChunkSize, func(int64, int64) { same = false })
		if err != nil || same {
			return err
		}
	}
	a.r.Counts.DifferentBytes += hi - lo
	a.problem(loc{section: "(outside every section)", offset: uint64(lo), fileOffset: lo},
		fmt.Sprintf("%d byte(s) at file offset %#x %s are in no section and are not padding: %s", hi-lo, lo, where, hexAt(a.pr, lo, hi-lo)))
	return nil
}

// outside reports whether [lo, hi) lies outside every region of regs.
func outside(regs []region, lo, hi int64) bool {
	for _, rg := range regs {
		if rg.lo < hi && lo < rg.hi {
			return false
		}
	}
	return true
}

// allZero reports whether r's bytes [lo, hi) are all zero; hi-lo is less
// than an alignment, which the Object bounded by the file size.
func allZero(r io.ReaderAt, lo, hi int64) (bool, error) {
	var buf [4096]byte
	for pos := lo; pos < hi; {
		n := min(int64(len(buf)), hi-pos)
		if err := elfwrite.ReadFull(r, buf[:n], pos); err != nil {
			return false, err
		}
		for _, c := range buf[:n] {
			if c != 0 {
				return false, nil
			}
		}
		pos += n
	}
	return true, nil
}

// grownTable checks table section i of ORIG, which the patch may only
// make longer: FILE's bytes must start with ORIG's, and what follows must
// be covered by tail (the strings or entries the patch added, each given
// as a [lo, hi) in FILE's section). It returns FILE's bytes.
func (a *comparison) grownTable(rh *rawHeaders, i int, tail func(pb []byte) [][2]int) ([]byte, error) {
	ob, err := elfwrite.ReadSection(a.or, rh.o[i])
	if err != nil {
		return nil, fmt.Errorf("file %s: section %s: %w", a.r.Orig, a.sectionName(i), err)
	}
	pb, err := elfwrite.ReadSection(a.pr, rh.p[i])
	if err != nil {
		return nil, fmt.Errorf("file %s: section %s: %w", a.r.File, a.sectionName(i), err)
	}
	a.r.Counts.BytesCompared += int64(len(pb))
	l := loc{section: a.of.Sections[i].Name, secIndex: i, fileOffset: int64(rh.p[i].Off)}
	if len(pb) < len(ob) || !bytes.Equal(pb[:len(ob)], ob) {
		k := 0
		for k < min(len(ob), len(pb)) && ob[k] == pb[k] {
			k++
		}
		l.offset, l.addr, l.fileOffset = uint64(k), uint64(k), l.fileOffset+int64(k)
		a.problem(l, fmt.Sprintf("table changed at byte %#x (the patch only appends to it): %s -> %s", k, hexAt(bytes.NewReader(ob), int64(k), 16), hexAt(bytes.NewReader(pb), int64(k), 16)))
		return pb, nil
	}
	covered := make([]bool, len(pb)-len(ob))
	for _, r := range tail(pb) {
		for k := max(r[0], len(ob)); k < min(r[1], len(pb)); k++ {
			covered[k-len(ob)] = true
		}
	}
	for k, c := range covered {
		if !c {
			l.offset, l.addr, l.fileOffset = uint64(len(ob)+k), uint64(len(ob)+k), l.fileOffset+int64(len(ob)+k)
			a.problem(l, fmt.Sprintf("%d byte(s) appended to the table that nothing the patch added uses", len(covered)-k))
			break
		}
	}
	return pb, nil
}
