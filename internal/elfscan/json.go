package elfscan

import (
	"debug/elf"

	"github.com/ftpatch/ftpatch/internal/render"
)

// FileJSON is the `ftpatch scan --json` object for one file. The field
// names are a contract scripts rely on; add fields, never rename.
type FileJSON struct {
	File     string     `json:"file"`     // path as given
	ElfType  string     `json:"elf_type"` // REL, EXEC or DYN
	Sites    []SiteJSON `json:"sites"`    // never null
	Problems int        `json:"problems"` // count across sites
}

// SiteJSON is one site in FileJSON. Addresses are "0x…" strings; in ET_REL
// files they are offsets in "section". ops and target are "0x…" values in
// linked files (with the symbol there in ops_sym / target_sym when known)
// and "sym" or "sym+0x10" relocation expressions in ET_REL files.
type SiteJSON struct {
	Func           string      `json:"func"`
	Section        string      `json:"section"`
	Entry          render.Hex  `json:"entry"`
	CallSite       render.Hex  `json:"call_site"`
	Literal        *render.Hex `json:"literal"`
	Layout         Layout      `json:"layout"`
	BTI            bool        `json:"bti"`
	State          State       `json:"state"`
	Ops            *string     `json:"ops"`
	Target         *string     `json:"target"`
	Problems       []Code      `json:"problems"`
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

// ElfTypeName is the elf_type string of t.
func ElfTypeName(t elf.Type) string {
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

// JSON converts the scan for `--json`.
func (f *File) JSON() FileJSON {
	out := FileJSON{File: f.Path, ElfType: ElfTypeName(f.Type), Sites: make([]SiteJSON, len(f.Sites)), Problems: f.Problems()}
	for i := range f.Sites {
		out.Sites[i] = f.Sites[i].JSON(f.Type == elf.ET_REL)
	}
	return out
}

// JSON converts one site; rel says the file is ET_REL (refs are relocation
// expressions).
func (s *Site) JSON(rel bool) SiteJSON {
	j := SiteJSON{
		Func: s.Func, Section: s.Section, Entry: render.Hex(s.Entry()), CallSite: render.Hex(s.CallSite()),
		Layout: s.Layout, BTI: s.BTI, State: s.State, Record: render.Hex(s.Record),
		Problems: make([]Code, len(s.Problems())), ProblemDetails: make([]string, len(s.Problems())),
	}
	if s.Layout.HasLiteral() {
		l := render.Hex(s.Literal())
		j.Literal = &l
	}
	if s.Layout == LayoutCallOps53 {
		sp := render.Hex(s.Spare())
		j.Spare = &sp
	}
	if s.CFIHashOff() != NoOffset {
		h := render.Hex(uint64(s.CFIHash()))
		j.CFIHash = &h
	}
	for i, p := range s.Problems() {
		j.Problems[i], j.ProblemDetails[i] = p.Code, p.Detail
	}
	ref := func(r *Ref, sym *string) *string {
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
