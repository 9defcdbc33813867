// SPDX-License-Identifier: Apache-2.0

package patch

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/input"
	"github.com/ftpatch/ftpatch/internal/render"
)

// Input is a file opened for patching: the opened object, its scan, and
// for ET_REL its raw view for the rewrite.
type Input struct {
	Path string
	Mode os.FileMode
	Obj  *elfscan.Object
	ELF  *elf.File
	Scan *elfscan.File

	fd  *os.File
	rel *relFile // ET_REL only
}

// Open opens and scans the file at path, opening it once. Compressed
// inputs are refused before anything is decompressed: the patch commands
// rewrite files in place.
func Open(path string) (in *Input, err error) {
	fd, err := input.OpenPlain(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			fd.Close()
		}
	}()
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	o, err := elfscan.NewObject(fd, path)
	if err != nil {
		return nil, err
	}
	if in, err = newInput(o, st.Mode().Perm()); err != nil {
		return nil, err
	}
	in.fd = fd
	return in, nil
}

// newInput scans o and, for ET_REL, reads its headers for the rewrite.
func newInput(o *elfscan.Object, mode os.FileMode) (*Input, error) {
	in := &Input{Path: o.Path, Mode: mode, Obj: o, ELF: o.ELF()}
	var err error
	if in.Scan, err = o.Scan(); err != nil {
		return nil, err
	}
	if o.Rel() {
		if in.rel, err = parseRel(o); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// Close releases the file.
func (in *Input) Close() error {
	if in.fd == nil {
		return nil
	}
	return in.fd.Close()
}

// Reloc replaces the relocation Old (nil: none) at Off in the text section
// SectionIndex by New (nil: none). ET_REL only.
type Reloc struct {
	Func         string
	Section      string
	SectionIndex int
	Off          uint64
	Old, New     *elfscan.Rela
	OldSym       string // names, for printing
	NewSym       string
}

// Skip is a site left untouched on request.
type Skip struct {
	Func    string
	Section string
	Addr    uint64 // entry; ET_REL: offset in Section
	Where   string // Addr as printed: 0x… or section+0x…
	Reason  string
}

// Align raises an ET_REL text section's sh_addralign from Old to 8, so the
// pair a 5,3 literal was written into (chosen by its offset) stays 8-byte
// aligned when the object is linked.
type Align struct {
	Section      string
	SectionIndex int
	Old          uint64
}

// Changes is a plan: every byte and relocation a request changes.
type Changes struct {
	Path    string
	Type    elf.Type
	Op      Op
	writes  writes // the words: see Words and Writes
	Relocs  []Reloc
	NewSyms []string // ET_REL: undefined globals appended to .symtab, in order
	Aligns  []Align  // ET_REL: sections whose sh_addralign rises to 8
	Skipped []Skip
	Sites   int // sites the plan changes
}

// Empty reports whether the plan changes nothing.
func (c *Changes) Empty() bool { return c.Words() == 0 && len(c.Relocs) == 0 && len(c.Aligns) == 0 }

// OldText and NewText name the relocation before and after, as messages
// and the printed plan show it: "R_AARCH64_CALL26 ftrace_caller", or
// "none".
func (r *Reloc) OldText() string { return relaText(r.Old, r.OldSym) }

// NewText: see OldText.
func (r *Reloc) NewText() string { return relaText(r.New, r.NewSym) }

func relaText(r *elfscan.Rela, sym string) string {
	if r == nil {
		return "none"
	}
	return fmt.Sprintf("%v %s", r.Type, render.RelExpr(sym, r.Addend))
}

// symbolErr marks a failed lookup by name as ErrSymbol; elfscan's
// message says what to do.
func symbolErr(err error) error {
	if errors.Is(err, elfscan.ErrSymbolNotFound) || errors.Is(err, elfscan.ErrSymbolAmbiguous) {
		return fmt.Errorf("%w: %w", ErrSymbol, err)
	}
	return err
}

// siteName names a site in messages: function and address.
func siteName(rel bool, s *elfscan.Site) string {
	return fmt.Sprintf("function %s at %s", render.FuncName(s.Func), render.Place(rel, s.Section, s.Entry()))
}

// issues collects every refusal of a plan, by kind, so one error lists all
// the sites at fault. Sites refused for the same reason (a request mistake
// such as --ops on classic sites, or sites not initialised) are said once,
// with the sites they concern.
type issues struct {
	kinds   []error
	reasons map[error][]string            // in order of first appearance
	sites   map[error]map[string][]string // kind -> reason -> sites
	words   map[string]Words              // reason (as said with no Namer) -> its words
	refused []Refusal                     // every refusal, in site order; Reason said with no Namer
}

// Refusal is one site a plan refused: why (Kind, one of the sentinel
// errors, and Reason) and where.
type Refusal struct {
	Kind    error
	Func    string
	Section string
	Entry   uint64 // ET_REL: offset in Section
	Reason  string
}

// RefusedError is Plan's error when it refuses sites: its text is one
// message per kind and reason (errors.Join, so errors.Is finds the kinds),
// and Sites lists every refused site, for reports that name each one.
type RefusedError struct {
	Sites  []Refusal
	joined error
	is     issues // a copy: the planner stays on the stack
}

func (e *RefusedError) Error() string { return e.joined.Error() }

// Spell returns the error with the roles its reasons name spelled by
// name, in its text and in each site's Reason.
func (e *RefusedError) Spell(name Namer) error { return e.is.refusedError(name) }

// Unwrap returns the messages, each wrapping its kind.
func (e *RefusedError) Unwrap() []error {
	if j, ok := e.joined.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{e.joined}
}

// add records that s (named site in messages) is refused for kind with a
// reason, whose Role arguments a caller may spell (RefusedError.Spell).
func (is *issues) add(kind error, s *elfscan.Site, site, format string, a ...any) {
	if is.reasons == nil {
		is.reasons, is.sites, is.words = map[error][]string{}, map[error]map[string][]string{}, map[string]Words{}
	}
	if _, ok := is.reasons[kind]; !ok {
		is.kinds = append(is.kinds, kind)
		is.sites[kind] = map[string][]string{}
	}
	w := Say(format, a...)
	reason := w.Spell(nil).Error()
	is.words[reason] = w
	if _, ok := is.sites[kind][reason]; !ok {
		is.reasons[kind] = append(is.reasons[kind], reason)
	}
	is.sites[kind][reason] = append(is.sites[kind][reason], site)
	is.refused = append(is.refused, Refusal{Kind: kind, Func: s.Func, Section: s.Section, Entry: s.Entry(), Reason: reason})
}

// sitesNamed is how many sites one message names before "and N more".
const sitesNamed = 3

func (is *issues) err() error {
	if len(is.kinds) == 0 {
		return nil
	}
	return is.refusedError(nil)
}

// refusedError says every refusal, its reasons' roles spelled by name.
func (is *issues) refusedError(name Namer) *RefusedError {
	said := func(reason string) string {
		if name == nil {
			return reason
		}
		return is.words[reason].Spell(name).Error()
	}
	var errs []error
	for _, k := range is.kinds {
		for _, reason := range is.reasons[k] {
			ss := is.sites[k][reason]
			r := said(reason)
			line := ss[0] + ": " + r
			if len(ss) > 1 {
				named := strings.Join(ss[:min(len(ss), sitesNamed)], ", ")
				if len(ss) > sitesNamed {
					named += fmt.Sprintf(" and %d more", len(ss)-sitesNamed)
				}
				line = fmt.Sprintf("%d sites (%s): %s", len(ss), named, r)
			}
			// Each reason is a message of its own, one line each.
			errs = append(errs, fmt.Errorf("%w: %s", k, line))
		}
	}
	sites := is.refused
	if name != nil {
		sites = slices.Clone(is.refused)
		for i := range sites {
			sites[i].Reason = said(sites[i].Reason)
		}
	}
	return &RefusedError{Sites: sites, joined: errors.Join(errs...), is: *is}
}

// literal is the value of a call-ops literal: its bytes and, in ET_REL, the
// R_AARCH64_ABS64 relocation at it.
type literal struct {
	bytes uint64
	rel   *elfscan.Rela
	sym   string
}

func (l literal) same(o literal) bool {
	if l.bytes != o.bytes || (l.rel == nil) != (o.rel == nil) {
		return false
	}
	return l.rel == nil || (l.rel.Sym == o.rel.Sym && l.rel.Addend == o.rel.Addend && l.rel.Type == o.rel.Type)
}

// call is slot2: its word and, in ET_REL, the CALL26 relocation at it.
type call struct {
	word uint32
	rel  *elfscan.Rela
	sym  string
}

// planner holds what one Plan call resolves once.
type planner struct {
	in     *Input
	req    Request
	rel    bool
	out    *Changes
	is     issues
	direct *direct // Request.Direct resolved (direct.go)

	cur    sitePlan // the words planned for the site being planned
	curLit uint64   // and its literal's new value, when cur plans one
}

// Plan decides every change req makes to in, or fails with nothing planned.
// Errors wrap ErrState, ErrSymbol, ErrRange, ErrClassic, ErrAbsolute,
// ErrMisaligned or ErrRequest.
func Plan(in *Input, req Request) (*Changes, error) {
	if err := req.Check(); err != nil {
		return nil, err
	}
	if req.Op == OpEnable && req.Trampoline.IsZero() {
		req.Trampoline = Value{Sym: DefaultTrampoline}
	}
	p := &planner{in: in, req: req, rel: in.Scan.Type == elf.ET_REL,
		out: &Changes{Path: in.Path, Type: in.Scan.Type, Op: req.Op,
			writes: writes{sites: in.Scan.Sites, op: req.Op, plans: make([]sitePlan, 0, len(in.Scan.Sites))}}}
	v, err := p.resolveValues() // errors are per file, not per site
	if err != nil {
		return nil, err
	}
	p.planSites(v)
	if err := p.is.err(); err != nil {
		return nil, err
	}
	p.dropUnusedSymbols()
	return p.out, nil
}

// values are what a plan writes, resolved once for the file: the
// literals, and the trampoline's two entries (a linked file's addresses,
// an object's CALL26 relocations).
type values struct {
	defLit, opsLit   literal
	tramp, alt       uint64
	trampRel, altRel *elfscan.Rela
}

// resolveValues resolves the request's values: the default ops, and for
// enable the ops, the trampoline and the direct trampoline.
func (p *planner) resolveValues() (v values, err error) {
	req := p.req
	if v.defLit, err = p.literalOf(req.DefaultOps); err != nil {
		return v, forRole(RoleDefaultOps, err)
	}
	if req.Op != OpEnable {
		return v, nil
	}
	if req.Ops != nil {
		if v.opsLit, err = p.literalOf(*req.Ops); err != nil {
			return v, forRole(RoleOps, err)
		}
	} else if p.usesLiteral() {
		return v, roleErr(RoleOps, "%w: enable needs %s SYM|ADDR: the selected call-ops sites take their ops from the literal", ErrRequest, RoleOps)
	}
	if !p.hasSelected() {
		return v, nil
	}
	if err := p.resolveTrampoline(&v); err != nil {
		return v, err
	}
	if req.Direct != nil {
		return v, p.resolveDirect(v.opsLit)
	}
	return v, nil
}

// resolveTrampoline resolves the trampoline the BLs go to and, when some
// selected site calls it, its second entry (altEntry).
func (p *planner) resolveTrampoline(v *values) (err error) {
	t := p.req.Trampoline
	switch {
	case p.rel && t.Sym == "":
		return fmt.Errorf("%w: trampoline %s: a relocatable object has no addresses; name the trampoline by symbol", ErrSymbol, t)
	case p.rel:
		idx, err := p.relSymbol(t.Sym)
		if err != nil {
			return forRole(RoleTrampoline, err)
		}
		v.trampRel = &elfscan.Rela{Type: elf.R_AARCH64_CALL26, Sym: idx}
	default:
		if v.tramp, err = p.resolve(t); err != nil {
			return forRole(RoleTrampoline, err)
		}
		if v.tramp%4 != 0 {
			return roleErr(RoleTrampoline, "%w: %s %s is at %#x, which is not 4-byte aligned: a BL can only branch to an instruction; "+
				"give the trampoline's symbol or its 4-aligned address", ErrRequest, RoleTrampoline, t, v.tramp)
		}
	}
	if !p.needsAltEntry() {
		return nil
	}
	return p.resolveAltEntry(v)
}

// resolveAltEntry resolves the trampoline's second entry
// (encode.AltEntryName), which 5,3 sites with BTI whose entry is 4 mod 8
// call.
func (p *planner) resolveAltEntry(v *values) (err error) {
	t := p.req.Trampoline
	if t.Sym == "" {
		return fmt.Errorf("%w: trampoline %s: 5,3 sites with BTI whose entry is 4 mod 8 call the trampoline's second entry (%s); name the trampoline by symbol",
			ErrSymbol, t, encode.AltEntryName("SYM"))
	}
	name := encode.AltEntryName(t.Sym)
	if p.rel {
		idx, err := p.relSymbol(name)
		if err != nil {
			return err
		}
		v.altRel = &elfscan.Rela{Type: elf.R_AARCH64_CALL26, Sym: idx}
	} else if v.alt, err = p.resolve(Value{Sym: name}); err != nil {
		return fmt.Errorf("5,3 sites with BTI whose entry is 4 mod 8 call the trampoline's second entry (ftpatch trampoline emits it): %w", err)
	}
	return nil
}

// planSites plans every selected site, in scan order.
func (p *planner) planSites(v values) {
	for i := range p.in.Scan.Sites {
		s := &p.in.Scan.Sites[i]
		if !p.req.Selects(s.Func) {
			continue
		}
		n := len(p.out.Relocs)
		t, tr := v.tramp, v.trampRel
		if p.altEntry(s) {
			t, tr = v.alt, v.altRel
		}
		p.cur = sitePlan{site: int32(i)}
		p.site(s, v.defLit, v.opsLit, t, tr)
		if p.cur.set != 0 {
			p.out.writes.add(p.cur, p.curLit)
		}
		if p.cur.set != 0 || len(p.out.Relocs) > n {
			p.out.Sites++
		}
	}
}

// altEntry reports whether s's BL goes to the trampoline's second entry
// (encode.LiteralOffsetAlt): 5,3 sites with BTI whose entry is 4 mod 8.
func (p *planner) altEntry(s *elfscan.Site) bool {
	if s.Layout != elfscan.LayoutCallOps53 {
		return false
	}
	alt, ok := encode.TrampolineEntry(s.CallSite()+4, s.Literal())
	return ok && alt
}

// needsAltEntry reports whether any selected site calls the second entry.
func (p *planner) needsAltEntry() bool {
	for i := range p.in.Scan.Sites {
		s := &p.in.Scan.Sites[i]
		if p.req.Selects(s.Func) && p.altEntry(s) {
			return true
		}
	}
	return false
}

// dropUnusedSymbols forgets the planned undefined symbols when no planned
// relocation refers to one (say, --func matched nothing), so the file is
// left as it was rather than gaining symbols nothing uses.
func (p *planner) dropUnusedSymbols() {
	for _, r := range p.out.Relocs {
		if r.New != nil && int(r.New.Sym) >= p.in.rel.nsyms {
			return
		}
	}
	p.out.NewSyms = nil
}

func (p *planner) hasSelected() bool {
	for i := range p.in.Scan.Sites {
		if p.req.Selects(p.in.Scan.Sites[i].Func) {
			return true
		}
	}
	return false
}

// literalOf resolves the value a literal should hold.
func (p *planner) literalOf(v Value) (literal, error) {
	if p.rel {
		if v.Sym == "" {
			return literal{bytes: v.Addr}, nil
		}
		idx, err := p.relSymbol(v.Sym)
		if err != nil {
			return literal{}, err
		}
		return literal{rel: &elfscan.Rela{Type: elf.R_AARCH64_ABS64, Sym: idx}, sym: v.Sym}, nil
	}
	a, err := p.resolve(v)
	if err != nil {
		return literal{}, err
	}
	if a != 0 && p.in.Scan.Type == elf.ET_DYN && !p.req.AllowAbsolute && p.usesLiteral() && !p.in.Obj.RunsAtLinkAddress() {
		return literal{}, roleErr(RoleAllowAbsolute, "%w: ops %s = %#x would be stored as an absolute address, but this position-independent (ET_DYN) file "+
			"has no dynamic relocation for the literal, so the value is wrong once the file is loaded elsewhere%s; "+
			"patch the objects before linking, or link without PIE, or pass %s if the file is loaded at its link address",
			ErrAbsolute, v, a, p.kaslrNote(), RoleAllowAbsolute)
	}
	return literal{bytes: a, sym: v.Sym}, nil
}

// kaslrNote says why a Linux image may move: KASLR.
func (p *planner) kaslrNote() string {
	if _, err := p.in.Obj.Lookup("linux_banner"); err != nil {
		return ""
	}
	return " (this Linux image is built with KASLR, CONFIG_RANDOMIZE_BASE: it runs at its link address only when booted with nokaslr)"
}

// usesLiteral reports whether any selected site has a literal.
func (p *planner) usesLiteral() bool {
	for i := range p.in.Scan.Sites {
		s := &p.in.Scan.Sites[i]
		if p.req.Selects(s.Func) && s.Layout.HasLiteral() {
			return true
		}
	}
	return false
}

// resolve turns a value into an address of a linked file.
func (p *planner) resolve(v Value) (uint64, error) {
	if v.Sym == "" {
		return v.Addr, nil
	}
	s, err := p.in.Obj.Lookup(v.Sym) // only when a symbol is named: reading them costs
	if err != nil {
		return 0, symbolErr(err)
	}
	return s.Value, nil
}

// relSymbol returns the .symtab index of name in an ET_REL file, planning
// an undefined global when it is missing.
func (p *planner) relSymbol(name string) (uint32, error) {
	s, err := p.in.Obj.Lookup(name)
	switch {
	case err == nil:
		return s.Index, nil
	case !errors.Is(err, elfscan.ErrSymbolNotFound):
		return 0, symbolErr(err)
	}
	st, err := p.in.Obj.Symbols()
	if err != nil {
		return 0, err
	}
	if idx := st.Undefined(name); idx > 0 {
		return idx, nil
	}
	for k, s := range p.out.NewSyms {
		if s == name {
			return uint32(p.in.rel.nsyms + k), nil
		}
	}
	p.out.NewSyms = append(p.out.NewSyms, name)
	return uint32(p.in.rel.nsyms + len(p.out.NewSyms) - 1), nil
}

// site plans one site: first whether it may be touched at all (skipped,
// refused, or in a state the operation leaves alone), then its words.
func (p *planner) site(s *elfscan.Site, defLit, opsLit literal, tramp uint64, trampRel *elfscan.Rela) {
	name := func() string { return siteName(p.rel, s) } // only errors need it
	if !p.touchable(s, name) || !p.stateAllows(s, name) || !p.layoutAllows(s, name) {
		return
	}
	callOps := s.Layout.HasLiteral()
	switch p.req.Op {
	case OpInit:
		if callOps {
			p.setLiteral(s, defLit)
		}
		p.setWord(SlotSlot1, s.Slot1Word, encode.MovX9X30)
	case OpEnable:
		want, ok := p.enableCall(s, tramp, trampRel, name)
		if !ok {
			return
		}
		if callOps {
			p.setLiteral(s, opsLit)
		}
		p.setWord(SlotSlot1, s.Slot1Word, encode.MovX9X30)
		p.setCall(s, want)
	case OpDisable:
		p.setCall(s, call{word: encode.NOP})
		if callOps {
			p.setLiteral(s, defLit)
		}
	}
}

// skip leaves s untouched on request, saying why.
func (p *planner) skip(s *elfscan.Site, reason string) {
	p.out.Skipped = append(p.out.Skipped, Skip{s.Func, s.Section, s.Entry(), render.Place(p.rel, s.Section, s.Entry()), reason})
}

// touchable reports whether s is a site any operation may write: not one
// without a function (skipped, as Linux disables a record it finds no
// symbol for), not one whose words are no known state (refused), and not
// one whose literal no single store can write (refused, or skipped with
// SkipMisaligned).
func (p *planner) touchable(s *elfscan.Site, name func() string) bool {
	if s.HasProblem(elfscan.CodeNoFunction) {
		p.skip(s, string(elfscan.CodeNoFunction))
		return false
	}
	if s.State == elfscan.StateUnknown || s.HasProblem(elfscan.CodeUnexpectedInsn) || s.HasProblem(elfscan.CodeOutsideText) {
		p.is.add(ErrState, s, name(), "state %s (slot1 %#08x, slot2 %#08x); not touching words that are not a known patch site", s.State, s.Slot1Word, s.Slot2Word)
		return false
	}
	// A literal no single store can write (and the trampoline cannot find):
	// refused wherever one is written, by init as by enable, before the
	// site's state is looked at: init --skip-misaligned leaves it a NOP, which
	// a later enable --skip-misaligned skips again.
	if !s.Layout.HasLiteral() || p.req.Op == OpDisable || !s.HasProblem(elfscan.CodeMisalignedLiteral) {
		return true
	}
	if p.req.SkipMisaligned {
		p.skip(s, "misaligned-literal")
		return false
	}
	// The literal's place goes with the site, so that the sites of one
	// cause are said in one message.
	at := fmt.Sprintf("%s (literal at %s)", name(), render.Place(p.rel, s.Section, s.Literal()))
	p.is.add(ErrMisaligned, s, at, "literal not 8-byte aligned, so the trampoline cannot find it; %s (or pass %s to leave it untouched)",
		elfscan.MisalignedAdvice(s), RoleSkipMisaligned)
	return false
}

// stateAllows reports whether the operation changes s in its state:
// init refuses enabled sites, enable nop ones (unless InitToo), and
// disable leaves sites that were never enabled as they are.
func (p *planner) stateAllows(s *elfscan.Site, name func() string) bool {
	switch op := p.req.Op; {
	case op == OpInit && s.State == elfscan.StateEnabled:
		p.is.add(ErrState, s, name(), "enabled; init never touches an enabled site (as Linux's ftrace_init_nop): disable it first")
		return false
	case op == OpEnable && s.State == elfscan.StateNop && !p.req.InitToo:
		p.is.add(ErrState, s, name(), "nop (not initialised); run init first, or pass %s to do both", RoleInitToo)
		return false
	case op == OpDisable && s.State != elfscan.StateEnabled:
		return false // never enabled: nothing to disable, its literal is left as it is
	}
	return true
}

// layoutAllows refuses ops for a classic site, which has no literal.
func (p *planner) layoutAllows(s *elfscan.Site, name func() string) bool {
	if s.Layout.HasLiteral() {
		return true
	}
	switch op := p.req.Op; {
	case op == OpEnable && p.req.Ops != nil:
		p.is.add(ErrClassic, s, name(), "%s %s given, but classic sites (-fpatchable-function-entry=2) have no literal; "+
			"drop %s and branch to a classic trampoline (%s %s)", RoleOps, p.req.Ops, RoleOps, RoleClassicTrampoline, p.req.Ops)
		return false
	case op != OpEnable && !p.req.DefaultOps.IsZero():
		p.is.add(ErrClassic, s, name(), "%s %s given, but classic sites have no literal; drop %s", RoleDefaultOps, p.req.DefaultOps, RoleDefaultOps)
		return false
	}
	return true
}

// enableCall is the call enable plants at s: to the direct trampoline
// (directCall), or a BL to the trampoline (an object: a CALL26 against
// it). It refuses the site when no BL reaches.
func (p *planner) enableCall(s *elfscan.Site, tramp uint64, trampRel *elfscan.Rela, name func() string) (call, bool) {
	if p.direct != nil {
		return p.directCall(s, tramp, name)
	}
	if p.rel {
		r := *trampRel
		r.Off = s.CallSite()
		return call{word: encode.BLZero, rel: &r, sym: p.req.Trampoline.Sym}, true
	}
	w, err := encode.BL{From: s.CallSite(), To: tramp}.Encode()
	if err != nil {
		// Alignment was checked once, in Plan: what is left is range,
		// said once for all the sites it concerns.
		p.is.add(ErrRange, s, name(), "%s %s at %#x is beyond a BL's reach (±128 MiB) from the call site; "+
			"link the trampoline within 128 MiB of the code", RoleTrampoline, p.req.Trampoline, tramp)
		return call{}, false
	}
	return call{word: w}, true
}

// setWord plans new for slot1 or slot2 of the site being planned, which
// holds old.
func (p *planner) setWord(slot Slot, old, new uint32) {
	if old == new {
		return
	}
	p.cur.set |= 1 << slot
	if slot == SlotSlot1 {
		p.cur.slot1 = new
	} else {
		p.cur.slot2 = new
	}
}

// currentRel returns the relocation of the types given at off in s's
// section (ET_REL), or nil.
func (p *planner) currentRel(s *elfscan.Site, off uint64, types ...elf.R_AARCH64) *elfscan.Rela {
	if !p.rel {
		return nil
	}
	rels, err := p.in.rel.relocsAt(s.SectionIndex(), off)
	if err != nil {
		p.is.add(elfscan.ErrMalformed, s, siteName(p.rel, s), "%v", err)
		return nil
	}
	for _, r := range rels {
		for _, t := range types {
			if r.Type == t {
				r := r
				return &r
			}
		}
	}
	return nil
}

func (p *planner) setLiteral(s *elfscan.Site, want literal) {
	cur := literal{bytes: s.LiteralWord, rel: p.currentRel(s, s.Literal(), elf.R_AARCH64_ABS64)}
	if cur.rel != nil {
		cur.sym = p.in.Obj.SymName(cur.rel.Sym)
	}
	if want.rel != nil {
		r := *want.rel
		r.Off = s.Literal()
		want.rel = &r
	}
	if cur.same(want) {
		return
	}
	if p.rel && s.Layout == elfscan.LayoutCallOps53 {
		p.raiseAlign(s)
	}
	if cur.bytes != want.bytes {
		p.cur.set |= 1 << SlotLiteral
		p.curLit = want.bytes
	}
	if !sameRel(cur.rel, want.rel) {
		p.out.Relocs = append(p.out.Relocs, Reloc{Func: s.Func, Section: s.Section, SectionIndex: s.SectionIndex(), Off: s.Literal(),
			Old: cur.rel, New: want.rel, OldSym: cur.sym, NewSym: want.sym})
	}
}

// raiseAlign plans sh_addralign 8 for s's section when it is lower, once.
func (p *planner) raiseAlign(s *elfscan.Site) {
	old := p.in.rel.sh[s.SectionIndex()].Addralign
	if old >= 8 {
		return
	}
	for _, a := range p.out.Aligns {
		if a.SectionIndex == s.SectionIndex() {
			return
		}
	}
	p.out.Aligns = append(p.out.Aligns, Align{Section: s.Section, SectionIndex: s.SectionIndex(), Old: old})
}

func (p *planner) setCall(s *elfscan.Site, want call) {
	cur := call{word: s.Slot2Word, rel: p.currentRel(s, s.CallSite(), elf.R_AARCH64_CALL26, elf.R_AARCH64_JUMP26)}
	if cur.rel != nil {
		cur.sym = p.in.Obj.SymName(cur.rel.Sym)
	}
	p.setWord(SlotSlot2, cur.word, want.word)
	if !sameRel(cur.rel, want.rel) {
		p.out.Relocs = append(p.out.Relocs, Reloc{Func: s.Func, Section: s.Section, SectionIndex: s.SectionIndex(), Off: s.CallSite(),
			Old: cur.rel, New: want.rel, OldSym: cur.sym, NewSym: want.sym})
	}
}

func sameRel(a, b *elfscan.Rela) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
