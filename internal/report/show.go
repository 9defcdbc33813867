// SPDX-License-Identifier: Apache-2.0

package report

// show: a file's selected sites, word by word, disassembled.

import (
	"debug/elf"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/render"
)

// ShowFile is the `show --json` line (docs/json.md, object show); ShowText
// prints the same for people.
type ShowFile struct {
	File    string     `json:"file"`
	ELFType string     `json:"elf_type"`
	Sites   []ShowSite `json:"sites"`
	Total   int        `json:"total"` // sites in the file, selected or not
}

// ShowSite is one selected site: its words, disassembled, and problems.
type ShowSite struct {
	Func     string        `json:"func"`
	Section  string        `json:"section"`
	Entry    string        `json:"entry"`
	Layout   string        `json:"layout"`
	BTI      bool          `json:"bti"`
	State    string        `json:"state"`
	Words    []ShowWord    `json:"words"`
	Problems []ShowProblem `json:"problems"`
}

// ShowWord is one word of a site.
type ShowWord struct {
	Slot    string `json:"slot"` // cfi_hash, spare, literal, bti, slot1, slot2
	Address string `json:"address"`
	Word    string `json:"word"` // hex digits: 16 for the literal, 8 for an instruction
	Asm     string `json:"asm"`
}

// ShowProblem is one problem of a site.
type ShowProblem struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// Show is the show object of f, the scan of the file path, for the sites
// whose function selects takes. btiWords[i] is the BTI word of f.Sites[i]
// when that site is selected and has one (the scan keeps no BTI word: the
// caller reads them, see cli's showDoc).
func Show(path string, f *elfscan.File, selects func(fn string) bool, btiWords []uint32) ShowFile {
	rel := f.Type == elf.ET_REL
	at := func(s *elfscan.Site, a uint64) string { return render.Place(rel, s.Section, a) }
	doc := ShowFile{File: path, ELFType: ELFType(f.Type), Sites: []ShowSite{}, Total: len(f.Sites)}
	for i := range f.Sites {
		s := &f.Sites[i]
		if !selects(s.Func) {
			continue
		}
		j := ShowSite{Func: s.Func, Section: s.Section, Entry: at(s, s.Entry()), Layout: s.Layout.String(), BTI: s.BTI,
			State: s.State.String(), Words: []ShowWord{}, Problems: []ShowProblem{}}
		if s.CFIHashOff() != elfscan.NoOffset {
			j.Words = append(j.Words, ShowWord{"cfi_hash", at(s, s.CFIHashAddr()), fmt.Sprintf("%08x", s.CFIHash()), fmt.Sprintf(".word %#x (kCFI type hash)", s.CFIHash())})
		}
		spare := func() {
			if s.SpareOff() != elfscan.NoOffset {
				j.Words = append(j.Words, ShowWord{"spare", at(s, s.Spare()), fmt.Sprintf("%08x", s.SpareWord()), disasm(s.SpareWord(), s.Spare(), nil) + " (spare)"})
			}
		}
		if s.Spare() < s.Literal() {
			spare()
		}
		if s.Layout.HasLiteral() && s.LiteralOff() != elfscan.NoOffset {
			j.Words = append(j.Words, ShowWord{"literal", at(s, s.Literal()), fmt.Sprintf("%016x", s.LiteralWord), literalText(s)})
		}
		if s.Spare() > s.Literal() {
			spare()
		}
		if s.BTI && s.Slot1Off() != elfscan.NoOffset {
			w := btiWords[i]
			j.Words = append(j.Words, ShowWord{"bti", at(s, s.Entry()), fmt.Sprintf("%08x", w), disasm(w, s.Entry(), nil)})
		}
		if s.Slot1Off() != elfscan.NoOffset {
			j.Words = append(j.Words, ShowWord{"slot1", at(s, s.Slot1()), fmt.Sprintf("%08x", s.Slot1Word), disasm(s.Slot1Word, s.Slot1(), nil)})
		}
		if s.Slot2Off() != elfscan.NoOffset {
			j.Words = append(j.Words, ShowWord{"slot2", at(s, s.CallSite()), fmt.Sprintf("%08x", s.Slot2Word), disasm(s.Slot2Word, s.CallSite(), s.Target())})
		}
		for _, p := range s.Problems() {
			j.Problems = append(j.Problems, ShowProblem{string(p.Code), p.Detail})
		}
		doc.Sites = append(doc.Sites, j)
	}
	return doc
}

// ShowText writes doc for people: per site a header line, its words in
// aligned columns, then its problems (unaligned: their text is long).
func ShowText(w io.Writer, doc *ShowFile) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range doc.Sites {
		bti := "-"
		if s.BTI {
			bti = "bti"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", render.FuncName(s.Func), s.Entry, s.Layout, bti, s.State)
		for _, wd := range s.Words {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", wd.Address, wd.Word, wd.Asm)
		}
		if len(s.Problems) > 0 {
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, p := range s.Problems {
				fmt.Fprintf(w, "  problem %s: %s\n", p.Code, p.Detail)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%s: %d of %s shown\n", doc.File, len(doc.Sites), render.Count(doc.Total, "site"))
	return err
}

// literalText shows the literal as data: two NOPs as compiled, else its value.
func literalText(s *elfscan.Site) string {
	if s.LiteralWord == uint64(encode.NOP)|uint64(encode.NOP)<<32 {
		return "nop; nop"
	}
	if s.Ops() != nil && s.Ops().Sym != "" {
		if s.Ops().SymIndex != 0 || s.Ops().Addr == 0 {
			return fmt.Sprintf(".quad %s", render.RelExpr(s.Ops().Sym, int64(s.Ops().Addr)))
		}
		return fmt.Sprintf(".quad %#x <%s>", s.Ops().Addr, s.Ops().Sym)
	}
	return fmt.Sprintf(".quad %#x", s.LiteralWord)
}

// disasm decodes w at pc in GNU syntax (encode.Disasm); a BL shows its
// target as the scan resolved it: a symbol, or relocation expression.
func disasm(w uint32, pc uint64, target *elfscan.Ref) string {
	if encode.IsBL(w) && target != nil {
		if target.SymIndex != 0 {
			return "bl " + render.RelExpr(target.Sym, int64(target.Addr))
		}
		t := fmt.Sprintf("bl %#x", target.Addr)
		if target.Sym != "" {
			t += " <" + target.Sym + ">"
		}
		return t
	}
	return encode.Disasm(w, pc)
}
