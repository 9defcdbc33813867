// SPDX-License-Identifier: Apache-2.0

package report

import (
	"debug/elf"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/render"
)

// ScanFile is the `ftpatch scan --json` object for one file. The field
// names are a contract scripts rely on; add fields, never rename.
type ScanFile struct {
	File     string     `json:"file"`     // path as given
	ElfType  string     `json:"elf_type"` // REL, EXEC or DYN
	Sites    []ScanSite `json:"sites"`    // never null
	Problems int        `json:"problems"` // count across the sites and file_problems
	// The file's own problems (zeroed-entries), left out when none.
	FileProblems []ShowProblem `json:"file_problems,omitempty"`
}

// ScanSite is one site in ScanFile. Layout, state and problem codes are
// the scan's names (elfscan.Layout, State, Code). Addresses are "0x…" strings; in ET_REL
// files they are offsets in "section". ops and target are "0x…" values in
// linked files (with the symbol there in ops_sym / target_sym when known)
// and "sym" or "sym+0x10" relocation expressions in ET_REL files.
type ScanSite struct {
	Func           string      `json:"func"`
	Section        string      `json:"section"`
	Entry          render.Hex  `json:"entry"`
	CallSite       render.Hex  `json:"call_site"`
	Literal        *render.Hex `json:"literal"`
	Layout         string      `json:"layout"`
	BTI            bool        `json:"bti"`
	State          string      `json:"state"`
	Ops            *string     `json:"ops"`
	Target         *string     `json:"target"`
	Problems       []string    `json:"problems"`
	ProblemDetails []string    `json:"problem_details"`
	Record         render.Hex  `json:"record"`
	OpsSym         string      `json:"ops_sym,omitempty"`
	TargetSym      string      `json:"target_sym,omitempty"`
	// call-ops-5-3 only: the pre-entry word outside the literal, which
	// stays NOP.
	Spare *render.Hex `json:"spare,omitempty"`
	// The kCFI type hash before the NOPs, when there is one: its value.
	CFIHash *render.Hex `json:"cfi_hash,omitempty"`
}

// ELFType is the elf_type string of t: REL, EXEC, DYN, else debug/elf's
// name.
func ELFType(t elf.Type) string {
	switch t {
	case elf.ET_REL:
		return "REL"
	case elf.ET_EXEC:
		return "EXEC"
	case elf.ET_DYN:
		return "DYN"
	}
	return t.String()
}

// Site is one site's object in ScanFile; rel says the file is ET_REL (refs
// are relocation expressions).
func Site(s *elfscan.Site, rel bool) ScanSite {
	j := ScanSite{
		Func: s.Func, Section: s.Section, Entry: render.Hex(s.Entry()), CallSite: render.Hex(s.CallSite()),
		Layout: s.Layout.String(), BTI: s.BTI, State: s.State.String(), Record: render.Hex(s.Record),
		Problems: make([]string, len(s.Problems())), ProblemDetails: make([]string, len(s.Problems())),
	}
	if s.Layout.HasLiteral() {
		l := render.Hex(s.Literal())
		j.Literal = &l
	}
	if s.Layout == elfscan.LayoutCallOps53 {
		sp := render.Hex(s.Spare())
		j.Spare = &sp
	}
	if s.CFIHashOff() != elfscan.NoOffset {
		h := render.Hex(uint64(s.CFIHash()))
		j.CFIHash = &h
	}
	for i, p := range s.Problems() {
		j.Problems[i], j.ProblemDetails[i] = string(p.Code), p.Detail
	}
	ref := func(r *elfscan.Ref, sym *string) *string {
		if r == nil {
			return nil
		}
		var v string
		if rel && r.Sym != "" {
			v = render.RelExpr(r.Sym, int64(r.Addr))
		} else {
			v = render.Hex(r.Addr).String()
			*sym = r.Sym
		}
		return &v
	}
	j.Ops = ref(s.Ops(), &j.OpsSym)
	j.Target = ref(s.Target(), &j.TargetSym)
	return j
}

// ScanText writes the table of f's sites for people, the problems in
// full, and a summary line.
func ScanText(w io.Writer, f *elfscan.File) error {
	rel := f.Type == elf.ET_REL
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "FUNCTION\tSECTION\tENTRY\tLAYOUT\tBTI\tSTATE\tOPS/TARGET\tPROBLEMS\n")
	states := map[elfscan.State]int{}
	for i := range f.Sites {
		s := &f.Sites[i]
		states[s.State]++
		j := Site(s, rel)
		fn := s.Func
		if fn == "" {
			fn = "?"
		}
		bti := "-"
		if s.BTI {
			bti = "bti"
		}
		var ot []string
		if j.Ops != nil {
			ot = append(ot, "ops="+refText(*j.Ops, j.OpsSym))
		}
		if j.Target != nil {
			ot = append(ot, "bl="+refText(*j.Target, j.TargetSym))
		}
		if len(ot) == 0 {
			ot = append(ot, "-")
		}
		probs := "-"
		if len(j.Problems) > 0 {
			ps := make([]string, len(j.Problems))
			for k, c := range j.Problems {
				ps[k] = string(c)
			}
			probs = strings.Join(ps, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", fn, s.Section, j.Entry, s.Layout, bti, s.State, strings.Join(ot, " "), probs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range f.FileProblems() {
		fmt.Fprintf(w, "  %s: %s\n", p.Code, p.Detail)
	}
	for i := range f.Sites {
		for _, p := range f.Sites[i].Problems() {
			fmt.Fprintf(w, "  %s %s: %s: %s\n", f.Sites[i].Section, render.Hex(f.Sites[i].Entry()), p.Code, p.Detail)
		}
	}
	var parts []string
	for _, st := range siteStates {
		if states[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", states[st], st))
		}
	}
	summary := "no sites"
	if len(parts) > 0 {
		summary = strings.Join(parts, ", ")
	}
	_, err := fmt.Fprintf(w, "%s: %s, %s (%s), %s\n", f.Path, ELFType(f.Type), render.Count(len(f.Sites), "site"), summary, render.Count(f.Problems(), "problem"))
	return err
}

func refText(v, sym string) string {
	if sym != "" {
		return v + "<" + sym + ">"
	}
	return v
}
