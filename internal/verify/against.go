package verify

// This file proves that the difference between two files (ORIG and a patched
// copy) may be applied to running code: `ftpatch verify --against ORIG FILE`.
// It is static (no emulator): it compares bytes, relocations and symbols,
// and hands the intermediate state of each two-write change to the emulator
// through IntermediateWords.
//
// What may differ, per patch site (Arm ARM B2.2.5, concurrent modification
// and execution; Linux's arm64 ftrace_modify_code relies on the same rules):
//
//	literal  8 bytes, 8-byte aligned   one single-copy-atomic store    live-safe
//	slot2    NOP <-> BL, BL <-> BL     allowed under a running CPU     live-safe
//	slot1    NOP <-> MOV X9,X30        init time only                  allowed, NOT live-safe
//	BTI, anything outside a site, a misaligned literal                 failure
//
// Linked files (ET_EXEC, ET_DYN) must keep their size, so they are streamed
// side by side in chunks (memory does not grow with the file) and every
// differing byte range is attributed to a site word or reported. ET_REL files
// are rewritten by the patcher, so they are compared section by section: the
// bytes of every section but the symbol, string and relocation tables, then
// relocations as multisets of (offset, type, symbol, addend), then symbols
// (existing ones unchanged, added ones undefined globals at the end).

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/render"
)

// AgainstOptions control Against.
type AgainstOptions struct {
	ChunkSize   int // bytes read from each file at a time; default 4 MiB
	MaxProblems int // problems kept in the report (all are counted); default 1000
}

// ChangeKind names one allowed change of a site word.
type ChangeKind string

const (
	KindLiteral  ChangeKind = "literal"  // the 8-byte ops literal (live-safe)
	KindCall     ChangeKind = "call"     // slot2 NOP -> BL (live-safe)
	KindUncall   ChangeKind = "uncall"   // slot2 BL -> NOP (live-safe)
	KindRetarget ChangeKind = "retarget" // slot2 BL -> another BL (live-safe)
	KindMov      ChangeKind = "mov"      // slot1 NOP -> MOV X9,X30 (init only)
	KindUnmov    ChangeKind = "unmov"    // slot1 MOV X9,X30 -> NOP (not live-safe)
)

// Intermediate orders: which of a site's two live writes comes first.
const (
	OrderLiteralFirst = "literal-first" // enable: literal, then BL (ftrace_make_call)
	OrderCallFirst    = "call-first"    // disable: BL := NOP, then literal
)

// Change is one changed word of a patch site.
type Change struct {
	Section    string     `json:"section"`
	Offset     Addr       `json:"offset"`      // in Section
	Address    Addr       `json:"address"`     // linked: virtual address; ET_REL: = Offset
	FileOffset int64      `json:"file_offset"` // in ORIG
	Func       string     `json:"func"`
	Kind       ChangeKind `json:"kind"`
	Old        string     `json:"old"`
	New        string     `json:"new"`
	LiveSafe   bool       `json:"live_safe"`
	Why        string     `json:"why,omitempty"` // why not live-safe
}

// AgainstProblem is one difference that is not an allowed patch.
type AgainstProblem struct {
	Section    string `json:"section"`
	Offset     Addr   `json:"offset"`  // in Section
	Address    Addr   `json:"address"` // linked: virtual address (0 when not allocated); ET_REL: = Offset
	FileOffset int64  `json:"file_offset"`
	Func       string `json:"func,omitempty"`
	Detail     string `json:"detail"`
}

// IntermediateCheck is the static verdict on one site's intermediate state.
type IntermediateCheck struct {
	Section string `json:"section"`
	Address Addr   `json:"address"` // the site's entry
	Func    string `json:"func"`
	Order   string `json:"order"`
	Like    string `json:"like"`   // "old" or "new": the state it must behave as
	Proven  bool   `json:"proven"` // shown statically: slot2 is NOP, so the literal is unreachable
	Detail  string `json:"detail"`
	// Set by RunIntermediates: the state was run on the emulator (Ran) and
	// behaved as Like says (Behaves); Run says what it showed, or why no
	// run happened.
	Ran     bool   `json:"ran"`
	Behaves bool   `json:"behaves"`
	Run     string `json:"run,omitempty"`
}

// AgainstCounts sums up a report.
type AgainstCounts struct {
	Sites          int                `json:"sites"`
	SitesChanged   int                `json:"sites_changed"`
	Changes        map[ChangeKind]int `json:"changes"`
	LiveSafe       int                `json:"live_safe"`
	NotLiveSafe    int                `json:"not_live_safe"`
	Intermediates  int                `json:"intermediates"`
	Unproven       int                `json:"intermediates_unproven"`
	Ran            int                `json:"intermediates_ran"`    // RunIntermediates
	RunFailed      int                `json:"intermediates_failed"` // RunIntermediates: each also a problem
	RelocsAdded    int                `json:"relocs_added"`
	RelocsRemoved  int                `json:"relocs_removed"`
	SymbolsAdded   int                `json:"symbols_added"`
	SectionsAdded  int                `json:"sections_added"`
	BytesCompared  int64              `json:"bytes_compared"`
	Problems       int                `json:"problems"` // all, including those not kept
	ProblemsKept   int                `json:"problems_kept"`
	DifferentBytes int64              `json:"different_bytes"`
}

// AgainstReport is the result of Against.
type AgainstReport struct {
	Orig          string              `json:"orig"`
	File          string              `json:"file"`
	Type          string              `json:"elf_type"`
	Changes       []Change            `json:"changes"`
	Intermediates []IntermediateCheck `json:"intermediates"`
	Problems      []AgainstProblem    `json:"problems"`
	Counts        AgainstCounts       `json:"counts"`
	LiveSafe      bool                `json:"live_safe"` // no problem, every change live-safe, every intermediate proven
}

// Addr is an address or offset; in JSON a "0x…" string, as in scan --json.
type Addr = render.Hex

// Failed reports whether some difference is not an allowed patch.
func (r *AgainstReport) Failed() bool { return r.Counts.Problems > 0 }

// JSON writes the report as one line of JSON.
func (r *AgainstReport) JSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// agWriteLimit is how many lines of each list Write prints.
const agWriteLimit = 20

// Write renders the report for people: a verdict, the problems, the changes
// that are not live-safe, unproven intermediates, then a sample of changes.
func (r *AgainstReport) Write(w io.Writer) error {
	var b strings.Builder
	c := &r.Counts
	verdict := "ok"
	if r.Failed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "%s: against %s (%s): %s\n", r.File, r.Orig, r.Type, verdict)
	kinds := []ChangeKind{KindLiteral, KindCall, KindUncall, KindRetarget, KindMov, KindUnmov}
	var parts []string
	for _, k := range kinds {
		if c.Changes[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.Changes[k], k))
		}
	}
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	fmt.Fprintf(&b, "  sites %d, changed %d; changes: %s\n", c.Sites, c.SitesChanged, strings.Join(parts, ", "))
	if c.RelocsAdded+c.RelocsRemoved+c.SymbolsAdded+c.SectionsAdded > 0 {
		fmt.Fprintf(&b, "  relocations +%d -%d, symbols +%d, sections +%d\n", c.RelocsAdded, c.RelocsRemoved, c.SymbolsAdded, c.SectionsAdded)
	}
	live := "yes"
	if !r.LiveSafe {
		live = "no"
	}
	fmt.Fprintf(&b, "  live-safe: %s (%d changes live-safe, %d not; %d intermediate states, %d unproven)\n",
		live, c.LiveSafe, c.NotLiveSafe, c.Intermediates, c.Unproven)
	if c.Ran > 0 || c.RunFailed > 0 {
		fmt.Fprintf(&b, "  intermediate states run on the CPU: %d, %d behave as required, %d failed\n", c.Ran, c.Ran-c.RunFailed, c.RunFailed)
	}
	if c.Problems > 0 {
		fmt.Fprintf(&b, "  problems: %d\n", c.Problems)
		for i, p := range r.Problems {
			if i == agWriteLimit {
				fmt.Fprintf(&b, "    ... %d more (--json lists %d)\n", c.Problems-agWriteLimit, c.ProblemsKept)
				break
			}
			fmt.Fprintf(&b, "    %s\n", p.String())
		}
	}
	whys := map[ChangeKind]string{}
	counts := map[ChangeKind]int{}
	for _, ch := range r.Changes {
		if !ch.LiveSafe {
			whys[ch.Kind] = ch.Why
			counts[ch.Kind]++
		}
	}
	for _, k := range kinds {
		if counts[k] > 0 {
			fmt.Fprintf(&b, "  not live-safe: %d %s: %s\n", counts[k], k, whys[k])
		}
	}
	n := 0
	for _, ic := range r.Intermediates {
		if ic.Proven {
			continue
		}
		if n == 0 {
			b.WriteString("  intermediate states not proven:\n")
		}
		if n++; n > agWriteLimit {
			b.WriteString("    ...\n")
			break
		}
		fmt.Fprintf(&b, "    %s %#x %s (%s): %s\n", ic.Section, ic.Address, agFuncName(ic.Func), ic.Order, ic.Detail)
	}
	agWriteChanges(&b, "  changes (! = not live-safe):", r.Changes)
	_, err := io.WriteString(w, b.String())
	return err
}

func agWriteChanges(b *strings.Builder, title string, cs []Change) {
	if len(cs) == 0 {
		return
	}
	b.WriteString(title + "\n")
	for i, ch := range cs {
		if i == agWriteLimit {
			fmt.Fprintf(b, "    ... %d more (--json lists them all)\n", len(cs)-agWriteLimit)
			return
		}
		mark := " "
		if !ch.LiveSafe {
			mark = "!"
		}
		fmt.Fprintf(b, "  %s %s+%#x (%#x) %s: %s: %s -> %s\n", mark, ch.Section, ch.Offset, ch.Address, agFuncName(ch.Func), ch.Kind, ch.Old, ch.New)
	}
}

func agFuncName(f string) string {
	if f == "" {
		return "(no function)"
	}
	return f
}

// String names where the problem is and what it is.
func (p AgainstProblem) String() string {
	where := fmt.Sprintf("%s+%#x", p.Section, p.Offset)
	if p.Address != p.Offset && p.Address != 0 {
		where += fmt.Sprintf(" (%#x)", p.Address)
	}
	where += fmt.Sprintf(" file offset %#x", p.FileOffset)
	if p.Func != "" {
		where += " in " + p.Func
	}
	return where + ": " + p.Detail
}

// SiteWords are a site's words in one state. In ET_REL files the literal
// and the BL get their values from relocations: Ops and Target (as the
// scanner reports them) then matter more than the raw words.
type SiteWords struct {
	HasLiteral bool
	Literal    uint64 // raw 8 bytes, little-endian
	Ops        *elfscan.Ref
	Slot1      uint32
	Slot2      uint32
	Target     *elfscan.Ref
}

// WordsOf returns the words a scan found at a site.
func WordsOf(s elfscan.Site) SiteWords {
	return SiteWords{HasLiteral: s.Layout == elfscan.LayoutCallOps && s.LiteralOff != elfscan.NoOffset,
		Literal: s.LiteralWord, Ops: s.Ops, Slot1: s.Slot1Word, Slot2: s.Slot2Word, Target: s.Target}
}

// Intermediate is the state between a site's two live writes, when both
// its literal and its slot2 change.
type Intermediate struct {
	Words   SiteWords
	Order   string // OrderLiteralFirst or OrderCallFirst
	LikeOld bool   // it must behave as the old state (else as the new one)
	Proven  bool   // statically: slot2 is NOP there, so no code reads the literal
	Detail  string
}

func agSameRef(a, b *elfscan.Ref) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Addr == b.Addr && a.Sym == b.Sym
}

// IntermediateWords returns the intermediate state between orig and
// patched, the site as it is after the first of two writes, or false when
// the change takes at most one live write (literal and slot2 do not both
// change). Enable (old slot2 not a BL) writes the literal first, as Linux's
// ftrace_make_call: the intermediate is the old words with the new literal
// and must behave as the old state. Disable (new slot2 NOP) removes the BL
// first: the new words with the old literal, behaving as the new state. A
// BL -> other BL with a new literal leaves the old BL reading the new
// literal: reported, never proven.
func IntermediateWords(orig, patched elfscan.Site) (Intermediate, bool) {
	o, p := WordsOf(orig), WordsOf(patched)
	litChanged := o.HasLiteral && p.HasLiteral && (o.Literal != p.Literal || !agSameRef(o.Ops, p.Ops))
	slot2Changed := o.Slot2 != p.Slot2 || !agSameRef(o.Target, p.Target)
	if !litChanged || !slot2Changed {
		return Intermediate{}, false
	}
	var in Intermediate
	switch {
	case !encode.IsBL(o.Slot2):
		in.Words, in.Order, in.LikeOld = o, OrderLiteralFirst, true
		in.Words.Literal, in.Words.Ops = p.Literal, p.Ops
	case p.Slot2 == encode.NOP:
		in.Words, in.Order = p, OrderCallFirst
		in.Words.Literal, in.Words.Ops = o.Literal, o.Ops
	default:
		in.Words, in.Order, in.LikeOld = o, OrderLiteralFirst, true
		in.Words.Literal, in.Words.Ops = p.Literal, p.Ops
	}
	like := "new"
	if in.LikeOld {
		like = "old"
	}
	if in.Words.Slot2 == encode.NOP {
		in.Proven = true
		in.Detail = fmt.Sprintf("slot2 is still NOP after the first write, so the literal is unreachable: behaves as the %s state", like)
	} else {
		in.Detail = fmt.Sprintf("slot2 holds %s while the literal is new: the old call reads the new ops", encode.Disasm(in.Words.Slot2, orig.CallSite))
	}
	return in, true
}

// Against checks that every difference between the files at origPath and
// patchedPath is an allowed patch. Errors are for unreadable input; a
// difference that is not a patch is a problem in the report.
func Against(origPath, patchedPath string, opts AgainstOptions) (*AgainstReport, error) {
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 4 << 20
	}
	if opts.MaxProblems <= 0 {
		opts.MaxProblems = 1000
	}
	ofd, of, err := elfscan.Open(origPath)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", origPath, err)
	}
	defer ofd.Close()
	pfd, pf, err := elfscan.Open(patchedPath)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", patchedPath, err)
	}
	defer pfd.Close()
	os_, err := elfscan.Scan(ofd, origPath)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", origPath, err)
	}
	ps, err := elfscan.Scan(pfd, patchedPath)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", patchedPath, err)
	}
	a := &against{opts: opts, of: of, pf: pf, or: ofd, pr: pfd, os: os_, ps: ps, rel: of.Type == elf.ET_REL,
		r: &AgainstReport{Orig: origPath, File: patchedPath, Type: elfscan.ElfTypeName(of.Type),
			Changes: []Change{}, Intermediates: []IntermediateCheck{}, Problems: []AgainstProblem{},
			Counts: AgainstCounts{Sites: len(os_.Sites), Changes: map[ChangeKind]int{}}}}
	a.touched = make([]uint8, len(os_.Sites))
	a.patched = make(map[agSiteKey]int, len(ps.Sites))
	for i := range ps.Sites {
		s := &ps.Sites[i]
		a.patched[agSiteKey{s.SectionIndex, s.Record}] = i
	}
	switch {
	case of.Type != pf.Type:
		a.problem(agLoc{section: "ELF header"}, fmt.Sprintf("file type changed from %v to %v", of.Type, pf.Type))
	case a.rel:
		err = a.relocatable()
	default:
		err = a.linked()
	}
	if err != nil {
		return nil, err
	}
	a.classifySites()
	r := a.r
	r.Counts.ProblemsKept = len(r.Problems)
	r.LiveSafe = !r.Failed() && r.Counts.NotLiveSafe == 0 && r.Counts.Unproven == 0
	return r, nil
}

// Touched-word bits of a site.
const (
	agLiteral = 1 << iota
	agSlot1
	agSlot2
	agBTI
)

type agSiteKey struct {
	sec int
	rec uint64
}

// agSpan is one site word in the coordinate space being diffed: file offsets
// for linked files, offsets in one section for ET_REL.
type agSpan struct {
	lo, hi int64
	site   int32
	bit    uint8
}

// agLoc says where a byte is, for problems.
type agLoc struct {
	section    string
	secIndex   int
	offset     uint64 // in section
	addr       uint64
	fileOffset int64
	fn         string
}

type against struct {
	opts    AgainstOptions
	of, pf  *elf.File
	or, pr  io.ReaderAt
	os, ps  *elfscan.File
	rel     bool
	r       *AgainstReport
	touched []uint8
	patched map[agSiteKey]int

	funcs []agFunc // lazily loaded, for naming functions outside sites
	fdone bool

	// ET_REL relocations at site words, by (section, offset): the value
	// each file gives the literal or BL.
	oRel, pRel map[agRelPos]string
}

type agRelPos struct {
	sec int
	off uint64
}

func (a *against) problem(l agLoc, detail string) {
	a.r.Counts.Problems++
	if len(a.r.Problems) >= a.opts.MaxProblems {
		return
	}
	a.r.Problems = append(a.r.Problems, AgainstProblem{Section: l.section, Offset: Addr(l.offset), Address: Addr(l.addr),
		FileOffset: l.fileOffset, Func: l.fn, Detail: detail})
}

// sitePos returns the positions of a site's words: literal, BTI, slot1,
// slot2, as file offsets (linked) or section offsets (ET_REL).
func (a *against) spansOf(i int, s *elfscan.Site) []agSpan {
	var out []agSpan
	add := func(lo int64, n int64, bit uint8) {
		if lo >= 0 {
			out = append(out, agSpan{lo, lo + n, int32(i), bit})
		}
	}
	if a.rel {
		if s.Layout == elfscan.LayoutCallOps {
			add(int64(s.Literal), 8, agLiteral)
		}
		if s.BTI {
			add(int64(s.Entry), 4, agBTI)
		}
		add(int64(s.CallSite)-4, 4, agSlot1)
		add(int64(s.CallSite), 4, agSlot2)
		return out
	}
	if s.LiteralOff != elfscan.NoOffset {
		add(s.LiteralOff, 8, agLiteral)
	}
	if s.BTI && s.Slot1Off != elfscan.NoOffset {
		add(s.Slot1Off-4, 4, agBTI)
	}
	if s.Slot1Off != elfscan.NoOffset {
		add(s.Slot1Off, 4, agSlot1)
	}
	if s.Slot2Off != elfscan.NoOffset {
		add(s.Slot2Off, 4, agSlot2)
	}
	return out
}

func agSortSpans(sp []agSpan) {
	sort.Slice(sp, func(i, j int) bool { return sp[i].lo < sp[j].lo })
}

// attribute marks the site words that [lo, hi) covers and calls outside for
// each covered-by-nothing part.
func (a *against) attribute(sp []agSpan, lo, hi int64, outside func(lo, hi int64)) {
	for cur := lo; cur < hi; {
		k := sort.Search(len(sp), func(k int) bool { return sp[k].hi > cur })
		if k < len(sp) && sp[k].lo <= cur {
			a.touched[sp[k].site] |= sp[k].bit
			cur = min(sp[k].hi, hi)
			continue
		}
		next := hi
		if k < len(sp) {
			next = min(sp[k].lo, hi)
		}
		outside(cur, next)
		cur = next
	}
}

// agDiffRanges streams n bytes of a (from aOff) and b (from bOff) side by side
// and calls fn with each maximal differing range, relative to the start.
func agDiffRanges(a, b io.ReaderAt, aOff, bOff, n int64, chunk int, fn func(lo, hi int64)) error {
	const block = 256
	ba, bb := make([]byte, min(int64(chunk), max(n, 1))), make([]byte, min(int64(chunk), max(n, 1)))
	open, start := false, int64(0)
	for pos := int64(0); pos < n; {
		m := min(int64(len(ba)), n-pos)
		if _, err := a.ReadAt(ba[:m], aOff+pos); err != nil && !(err == io.EOF) {
			return err
		}
		if k, err := b.ReadAt(bb[:m], bOff+pos); k < int(m) {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		x, y := ba[:m], bb[:m]
		if bytes.Equal(x, y) {
			if open {
				fn(start, pos)
				open = false
			}
			pos += m
			continue
		}
		for i := int64(0); i < m; i += block {
			j := min(i+block, m)
			if bytes.Equal(x[i:j], y[i:j]) {
				if open {
					fn(start, pos+i)
					open = false
				}
				continue
			}
			for k := i; k < j; k++ {
				d := x[k] != y[k]
				if d && !open {
					open, start = true, pos+k
				} else if !d && open {
					fn(start, pos+k)
					open = false
				}
			}
		}
		pos += m
	}
	if open {
		fn(start, n)
	}
	return nil
}

// agReadFull reads exactly len(p) bytes at off: short reads of a file that is
// long enough are errors.
func agReadFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func agHex(r io.ReaderAt, off, n int64) string {
	n = min(n, 16)
	b := make([]byte, n)
	if agReadFull(r, b, off) != nil {
		return "?"
	}
	return fmt.Sprintf("%x", b)
}

// ---- linked files ----

func (a *against) linked() error {
	of := a.of
	osz, err := agFileSize(a.or)
	if err != nil {
		return fmt.Errorf("file %s: %w", a.r.Orig, err)
	}
	psz, err := agFileSize(a.pr)
	if err != nil {
		return fmt.Errorf("file %s: %w", a.r.File, err)
	}
	if osz != psz {
		a.problem(agLoc{section: "ELF header"}, fmt.Sprintf("file size changed from %d to %d bytes: a linked file must keep its layout", osz, psz))
		return nil
	}
	var sp []agSpan
	for i := range a.os.Sites {
		sp = append(sp, a.spansOf(i, &a.os.Sites[i])...)
	}
	agSortSpans(sp)

	// Regions for naming bytes: headers, then sections with contents.
	type region struct {
		lo, hi int64
		name   string
		sec    int
	}
	var regs []region
	regs = append(regs, region{0, 64, "ELF header", -1})
	phoff, phnum, shoff, shnum := agHeaderTables(a.or)
	if phnum > 0 {
		regs = append(regs, region{phoff, phoff + phnum*56, "program headers", -1})
	}
	if shnum > 0 {
		regs = append(regs, region{shoff, shoff + shnum*64, "section headers", -1})
	}
	for i, s := range of.Sections {
		if s.Type != elf.SHT_NOBITS && s.Size > 0 {
			regs = append(regs, region{int64(s.Offset), int64(s.Offset + s.Size), s.Name, i})
		}
	}
	sort.SliceStable(regs, func(i, j int) bool { return regs[i].lo < regs[j].lo })
	where := func(off int64) agLoc {
		l := agLoc{section: "(between sections)", fileOffset: off, offset: uint64(off)}
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
	err = agDiffRanges(a.or, a.pr, 0, 0, osz, a.opts.ChunkSize, func(lo, hi int64) {
		a.r.Counts.DifferentBytes += hi - lo
		a.attribute(sp, lo, hi, func(lo, hi int64) {
			l := where(lo)
			a.problem(l, fmt.Sprintf("%d byte(s) changed outside any patch site: %s -> %s",
				hi-lo, agHex(a.or, lo, hi-lo), agHex(a.pr, lo, hi-lo)))
		})
	})
	a.r.Counts.BytesCompared = osz
	if err != nil {
		return fmt.Errorf("comparing %s with %s: %w", a.r.Orig, a.r.File, err)
	}
	return nil
}

func agFileSize(r io.ReaderAt) (int64, error) {
	if f, ok := r.(*os.File); ok {
		st, err := f.Stat()
		if err != nil {
			return 0, err
		}
		return st.Size(), nil
	}
	return 0, fmt.Errorf("cannot size %T", r)
}

// agHeaderTables reads e_phoff, e_phnum, e_shoff, e_shnum of an ELF64 LE file.
func agHeaderTables(r io.ReaderAt) (phoff, phnum, shoff, shnum int64) {
	var h [64]byte
	if agReadFull(r, h[:], 0) != nil {
		return
	}
	le := binary.LittleEndian
	return int64(le.Uint64(h[32:])), int64(le.Uint16(h[56:])), int64(le.Uint64(h[40:])), int64(le.Uint16(h[60:]))
}

// agFunc is a function symbol for naming places outside sites.
type agFunc struct {
	sec    int
	lo, hi uint64
	name   string
}

// funcAt names the function holding addr (ET_REL: the offset in section
// sec), or "".
func (a *against) funcAt(sec int, addr uint64) string {
	if !a.fdone {
		a.fdone = true
		syms, _ := elfscan.Symbols(a.of)
		for _, s := range syms {
			if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Section == elf.SHN_UNDEF || s.Section >= elf.SHN_LORESERVE {
				continue
			}
			fs := agFunc{lo: s.Value, hi: s.Value + max(s.Size, 1), name: s.Name}
			if a.rel {
				fs.sec = int(s.Section)
			}
			a.funcs = append(a.funcs, fs)
		}
	}
	if !a.rel {
		sec = 0
	}
	best := ""
	for _, f := range a.funcs {
		if f.sec == sec && f.lo <= addr && addr < f.hi {
			best = f.name
		}
	}
	return best
}

// ---- ET_REL ----

// agSym is an Elf64_Sym with its name resolved.
type agSym struct {
	name  string
	info  byte
	other byte
	shndx uint16
	value uint64
	size  uint64
}

func agReadSymtab(f *elf.File) (syms []agSym, idx int, err error) {
	idx = -1
	for i, s := range f.Sections {
		if s.Type == elf.SHT_SYMTAB {
			idx = i
		}
	}
	if idx < 0 {
		return nil, -1, nil
	}
	s := f.Sections[idx]
	b, err := elfscan.SafeData(s)
	if err != nil {
		return nil, idx, err
	}
	if int(s.Link) >= len(f.Sections) {
		return nil, idx, fmt.Errorf("%w: section %q: sh_link %d out of range", elfscan.ErrMalformed, s.Name, s.Link)
	}
	str, err := elfscan.SafeData(f.Sections[s.Link])
	if err != nil {
		return nil, idx, err
	}
	le := binary.LittleEndian
	for o := 0; o+24 <= len(b); o += 24 {
		e := b[o:]
		n := le.Uint32(e)
		name := ""
		if int(n) < len(str) {
			name = string(str[n:])
			if z := strings.IndexByte(name, 0); z >= 0 {
				name = name[:z]
			}
		}
		syms = append(syms, agSym{name, e[4], e[5], le.Uint16(e[6:]), le.Uint64(e[8:]), le.Uint64(e[16:])})
	}
	return syms, idx, nil
}

// agRelKey is a relocation compared across the files: with existing symbols
// unchanged and added ones appended, equal indices mean equal symbols.
type agRelKey struct {
	off    uint64
	typ    elf.R_AARCH64
	sym    uint32
	addend int64
}

func (a *against) relocatable() error {
	of, pf := a.of, a.pf
	osyms, osymIdx, err := agReadSymtab(of)
	if err != nil {
		return fmt.Errorf("file %s: %w", a.r.Orig, err)
	}
	psyms, _, err := agReadSymtab(pf)
	if err != nil {
		return fmt.Errorf("file %s: %w", a.r.File, err)
	}
	hdr := agLoc{section: "ELF header"}
	// The header may change only where sections are: e_shoff and e_shnum.
	var oh, ph [64]byte
	if err := agReadFull(a.or, oh[:], 0); err != nil {
		return fmt.Errorf("file %s: ELF header: %w", a.r.Orig, err)
	}
	if err := agReadFull(a.pr, ph[:], 0); err != nil {
		return fmt.Errorf("file %s: ELF header: %w", a.r.File, err)
	}
	for _, r := range [][2]int{{0, 40}, {48, 60}, {62, 64}} {
		if !bytes.Equal(oh[r[0]:r[1]], ph[r[0]:r[1]]) {
			a.problem(agLoc{section: "ELF header", offset: uint64(r[0]), addr: uint64(r[0]), fileOffset: int64(r[0])},
				fmt.Sprintf("ELF header bytes %#x..%#x changed: %x -> %x", r[0], r[1], oh[r[0]:r[1]], ph[r[0]:r[1]]))
		}
	}
	if len(pf.Sections) < len(of.Sections) {
		a.problem(hdr, fmt.Sprintf("section count dropped from %d to %d", len(of.Sections), len(pf.Sections)))
		return nil
	}

	// Site words by section, for bytes and relocations.
	spans := map[int][]agSpan{}
	sitePos := map[agRelPos]struct {
		site int
		bit  uint8
	}{}
	for i := range a.os.Sites {
		s := &a.os.Sites[i]
		for _, p := range a.spansOf(i, s) {
			spans[s.SectionIndex] = append(spans[s.SectionIndex], p)
			sitePos[agRelPos{s.SectionIndex, uint64(p.lo)}] = struct {
				site int
				bit  uint8
			}{i, p.bit}
		}
	}
	secLoc := func(sec int, s *elf.Section, off uint64) agLoc {
		l := agLoc{section: s.Name, secIndex: sec, offset: off, addr: off, fileOffset: int64(s.Offset + off)}
		if s.Flags&elf.SHF_EXECINSTR != 0 {
			l.fn = a.funcAt(sec, off)
		}
		return l
	}

	// Section headers and bytes.
	for i, os_ := range of.Sections {
		ps := pf.Sections[i]
		l := agLoc{section: os_.Name, secIndex: i, fileOffset: int64(os_.Offset)}
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
		if os_.Size != ps.Size {
			a.problem(l, fmt.Sprintf("size changed from %#x to %#x", os_.Size, ps.Size))
			continue
		}
		sp := spans[i]
		agSortSpans(sp)
		err := agDiffRanges(a.or, a.pr, int64(os_.Offset), int64(ps.Offset), int64(os_.Size), a.opts.ChunkSize, func(lo, hi int64) {
			a.r.Counts.DifferentBytes += hi - lo
			a.attribute(sp, lo, hi, func(lo, hi int64) {
				a.problem(secLoc(i, os_, uint64(lo)), fmt.Sprintf("%d byte(s) changed outside any patch site: %s -> %s",
					hi-lo, agHex(a.or, int64(os_.Offset)+lo, hi-lo), agHex(a.pr, int64(ps.Offset)+lo, hi-lo)))
			})
		})
		a.r.Counts.BytesCompared += int64(os_.Size)
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
		l := agLoc{section: s.Name, secIndex: i, fileOffset: int64(s.Offset)}
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
		a.problem(agLoc{section: symtabName}, fmt.Sprintf("symbol count dropped from %d to %d", len(osyms), len(psyms)))
		return nil
	}
	names := map[string]bool{}
	for k, s := range osyms {
		p := psyms[k]
		if s != p {
			a.problem(agLoc{section: symtabName, offset: uint64(k * 24), addr: uint64(k * 24)},
				fmt.Sprintf("symbol %d %q changed (info %#x shndx %d value %#x size %#x -> %q info %#x shndx %d value %#x size %#x)",
					k, s.name, s.info, s.shndx, s.value, s.size, p.name, p.info, p.shndx, p.value, p.size))
		}
		if elf.ST_BIND(s.info) != elf.STB_LOCAL {
			names[s.name] = true
		}
	}
	for k := len(osyms); k < len(psyms); k++ {
		p := psyms[k]
		a.r.Counts.SymbolsAdded++
		bad := ""
		switch {
		case p.name == "":
			bad = "has no name"
		case elf.ST_BIND(p.info) != elf.STB_GLOBAL:
			bad = fmt.Sprintf("is %v, not GLOBAL", elf.ST_BIND(p.info))
		case p.shndx != uint16(elf.SHN_UNDEF) || p.value != 0 || p.size != 0:
			bad = fmt.Sprintf("is defined (shndx %d value %#x size %#x), not undefined", p.shndx, p.value, p.size)
		case names[p.name]:
			bad = "duplicates an existing global symbol"
		}
		names[p.name] = true
		if bad != "" {
			a.problem(agLoc{section: symtabName, offset: uint64(k * 24), addr: uint64(k * 24)}, fmt.Sprintf("added symbol %d %q %s", k, p.name, bad))
		}
	}
	symName := func(i uint32) string {
		if int(i) < len(psyms) {
			p := psyms[i]
			if elf.ST_TYPE(p.info) == elf.STT_SECTION && int(p.shndx) < len(pf.Sections) {
				return pf.Sections[p.shndx].Name
			}
			return p.name
		}
		return fmt.Sprintf("symbol#%d", i)
	}

	// Relocations, as multisets per target section.
	orels, err := agRelasByTarget(of)
	if err != nil {
		return fmt.Errorf("file %s: %w", a.r.Orig, err)
	}
	prels, err := agRelasByTarget(pf)
	if err != nil {
		return fmt.Errorf("file %s: %w", a.r.File, err)
	}
	a.oRel, a.pRel = map[agRelPos]string{}, map[agRelPos]string{}
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
		count := map[agRelKey]int{}
		for _, r := range orels[t] {
			count[agRelKey{r.Off, r.Type, r.Sym, r.Addend}]++
			if _, ok := sitePos[agRelPos{t, r.Off}]; ok {
				a.oRel[agRelPos{t, r.Off}] = relText(r)
			}
		}
		for _, r := range prels[t] {
			count[agRelKey{r.Off, r.Type, r.Sym, r.Addend}]--
			if _, ok := sitePos[agRelPos{t, r.Off}]; ok {
				a.pRel[agRelPos{t, r.Off}] = relText(r)
			}
		}
		var keys []agRelKey
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
			sp, ok := sitePos[agRelPos{t, k.off}]
			if ok && n == 1 && (sp.bit == agLiteral && k.typ == elf.R_AARCH64_ABS64 || sp.bit == agSlot2 && k.typ == elf.R_AARCH64_CALL26) {
				a.touched[sp.site] |= sp.bit
				continue
			}
			var s *elf.Section
			name := fmt.Sprintf("section#%d", t)
			if t < len(pf.Sections) {
				s, name = pf.Sections[t], pf.Sections[t].Name
			}
			l := agLoc{section: name, secIndex: t, offset: k.off, addr: k.off}
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

// agRelasByTarget loads every SHT_RELA section, grouped by the section it
// relocates (sh_info).
func agRelasByTarget(f *elf.File) (map[int][]elfscan.Rela, error) {
	out := map[int][]elfscan.Rela{}
	for _, s := range f.Sections {
		if s.Type != elf.SHT_RELA {
			continue
		}
		rs, err := elfscan.ReadRela(s)
		if err != nil {
			return nil, err
		}
		out[int(s.Info)] = append(out[int(s.Info)], rs...)
	}
	return out, nil
}

// ---- per-site classification ----

func (a *against) classifySites() {
	for i := range a.os.Sites {
		if a.touched[i] != 0 {
			a.classify(i)
		}
	}
}

func (a *against) classify(i int) {
	o := &a.os.Sites[i]
	t := a.touched[i]
	a.r.Counts.SitesChanged++
	var p *elfscan.Site
	if k, ok := a.patched[agSiteKey{o.SectionIndex, o.Record}]; ok {
		p = &a.ps.Sites[k]
	}
	// where returns the location of a site word at address (section offset in ET_REL).
	where := func(addr uint64, fileOff int64) agLoc {
		l := agLoc{section: o.Section, secIndex: o.SectionIndex, addr: addr, fn: o.Func, fileOffset: fileOff}
		l.offset = addr
		if !a.rel && o.SectionIndex > 0 && o.SectionIndex < len(a.of.Sections) {
			l.offset = addr - a.of.Sections[o.SectionIndex].Addr
		}
		if a.rel && o.SectionIndex > 0 && o.SectionIndex < len(a.of.Sections) {
			l.fileOffset = int64(a.of.Sections[o.SectionIndex].Offset + addr)
		}
		return l
	}
	change := func(l agLoc, kind ChangeKind, old, new string, safe bool, why string) {
		a.r.Changes = append(a.r.Changes, Change{Section: l.section, Offset: Addr(l.offset), Address: Addr(l.addr), FileOffset: l.fileOffset,
			Func: l.fn, Kind: kind, Old: old, New: new, LiveSafe: safe, Why: why})
		a.r.Counts.Changes[kind]++
		if safe {
			a.r.Counts.LiveSafe++
		} else {
			a.r.Counts.NotLiveSafe++
		}
	}
	if p == nil {
		a.problem(where(o.Entry, o.Slot1Off), "the patched file has no patch site here (its entries table changed?)")
		return
	}
	// The words are read from the patched file where ORIG has them: a
	// changed BTI can make the patched scan place the slots elsewhere.
	pv := a.patchedView(o, p)
	if p.CallSite != o.CallSite || p.Layout != o.Layout {
		pv.State = elfscan.StateUnknown
	}
	p = &pv
	bad := false
	if t&agBTI != 0 {
		bti := o.Entry
		off := o.Slot1Off - 4
		l := where(bti, off)
		old, new := "?", "?"
		if a.rel {
			old, new = a.relWord(a.or, o.SectionIndex, a.of, bti), a.relWord(a.pr, o.SectionIndex, a.pf, bti)
		} else {
			old, new = a.fileWord(a.or, off, bti), a.fileWord(a.pr, off, bti)
		}
		a.problem(l, fmt.Sprintf("the BTI at the function entry changed: %s -> %s", old, new))
		bad = true
	}
	relOf := func(m map[agRelPos]string, addr uint64) string {
		if !a.rel {
			return ""
		}
		return m[agRelPos{o.SectionIndex, addr}]
	}
	// Literal.
	if o.Layout == elfscan.LayoutCallOps && o.LiteralOff != elfscan.NoOffset {
		oldRel, newRel := relOf(a.oRel, o.Literal), relOf(a.pRel, o.Literal)
		if o.LiteralWord != p.LiteralWord || oldRel != newRel {
			l := where(o.Literal, o.LiteralOff)
			old, new := agLitText(o.LiteralWord, oldRel), agLitText(p.LiteralWord, newRel)
			if o.Literal%8 != 0 || o.HasProblem(elfscan.CodeMisalignedLiteral) {
				a.problem(l, fmt.Sprintf("literal changed (%s -> %s) but it is not 8-byte aligned, so no single-copy-atomic store can write it", old, new))
				bad = true
			} else {
				change(l, KindLiteral, old, new, true, "")
			}
		}
	}
	// Slot1.
	if o.Slot1Word != p.Slot1Word {
		l := where(o.CallSite-4, o.Slot1Off)
		old, new := encode.Disasm(o.Slot1Word, o.CallSite-4), encode.Disasm(p.Slot1Word, o.CallSite-4)
		switch {
		case o.Slot1Word == encode.NOP && p.Slot1Word == encode.MovX9X30:
			change(l, KindMov, old, new, false, "NOP -> MOV X9,X30 is an init-time change: not allowed under a running CPU")
		case o.Slot1Word == encode.MovX9X30 && p.Slot1Word == encode.NOP:
			change(l, KindUnmov, old, new, false, "MOV X9,X30 -> NOP is not allowed under a running CPU")
		default:
			a.problem(l, fmt.Sprintf("slot1 changed from %s to %s; only NOP <-> MOV X9,X30 is allowed", old, new))
			bad = true
		}
	}
	// Slot2.
	oldRel, newRel := relOf(a.oRel, o.CallSite), relOf(a.pRel, o.CallSite)
	if o.Slot2Word != p.Slot2Word || oldRel != newRel {
		l := where(o.CallSite, o.Slot2Off)
		old, new := a.slot2Text(o.Slot2Word, o.CallSite, oldRel), a.slot2Text(p.Slot2Word, o.CallSite, newRel)
		isCall := func(w uint32, rel string) bool {
			return encode.IsBL(w) && (!a.rel || strings.HasPrefix(rel, "CALL26 ") || strings.HasPrefix(rel, "JUMP26 "))
		}
		isNop := func(w uint32, rel string) bool { return w == encode.NOP && rel == "" }
		switch {
		case a.rel && encode.IsBL(p.Slot2Word) && newRel == "":
			a.problem(l, fmt.Sprintf("slot2 is now %s without an R_AARCH64_CALL26 relocation: it would call itself", new))
			bad = true
		case a.rel && p.Slot2Word == encode.NOP && newRel != "":
			a.problem(l, fmt.Sprintf("slot2 is NOP but carries relocation %s: the linker would make it a branch", newRel))
			bad = true
		case isNop(o.Slot2Word, oldRel) && isCall(p.Slot2Word, newRel):
			change(l, KindCall, old, new, true, "")
		case isCall(o.Slot2Word, oldRel) && isNop(p.Slot2Word, newRel):
			change(l, KindUncall, old, new, true, "")
		case isCall(o.Slot2Word, oldRel) && isCall(p.Slot2Word, newRel):
			change(l, KindRetarget, old, new, true, "")
		default:
			a.problem(l, fmt.Sprintf("slot2 changed from %s to %s; only NOP <-> BL and BL <-> BL are allowed", old, new))
			bad = true
		}
	}
	if !bad && p.State == elfscan.StateUnknown {
		a.problem(where(o.Entry, o.Slot1Off), fmt.Sprintf("the patched site is in no known state (slot1 %s, slot2 %s)",
			encode.Disasm(p.Slot1Word, o.CallSite-4), encode.Disasm(p.Slot2Word, o.CallSite)))
	}
	if in, ok := IntermediateWords(*o, *p); ok {
		a.r.Counts.Intermediates++
		like := "new"
		if in.LikeOld {
			like = "old"
		}
		if !in.Proven {
			a.r.Counts.Unproven++
		}
		a.r.Intermediates = append(a.r.Intermediates, IntermediateCheck{Section: o.Section, Address: Addr(o.Entry), Func: o.Func,
			Order: in.Order, Like: like, Proven: in.Proven, Detail: in.Detail})
	}
}

// patchedView is o with the words the patched file holds at o's places,
// and the patched scan's state, ops and target.
func (a *against) patchedView(o, p *elfscan.Site) elfscan.Site {
	v := *o
	v.State, v.Ops, v.Target, v.Problems = p.State, p.Ops, p.Target, p.Problems
	off := func(origOff int64) int64 {
		if a.rel && o.SectionIndex > 0 && o.SectionIndex < len(a.of.Sections) && o.SectionIndex < len(a.pf.Sections) {
			return origOff - int64(a.of.Sections[o.SectionIndex].Offset) + int64(a.pf.Sections[o.SectionIndex].Offset)
		}
		return origOff
	}
	var b [8]byte
	if o.LiteralOff != elfscan.NoOffset && agReadFull(a.pr, b[:8], off(o.LiteralOff)) == nil {
		v.LiteralWord = binary.LittleEndian.Uint64(b[:])
	}
	if o.Slot1Off != elfscan.NoOffset && agReadFull(a.pr, b[:4], off(o.Slot1Off)) == nil {
		v.Slot1Word = binary.LittleEndian.Uint32(b[:])
	}
	if o.Slot2Off != elfscan.NoOffset && agReadFull(a.pr, b[:4], off(o.Slot2Off)) == nil {
		v.Slot2Word = binary.LittleEndian.Uint32(b[:])
	}
	return v
}

func agLitText(v uint64, rel string) string {
	s := fmt.Sprintf("%#016x", v)
	if v == uint64(encode.NOP)|uint64(encode.NOP)<<32 {
		s = "nop; nop"
	}
	if rel != "" {
		s += " + " + rel
	}
	return s
}

func (a *against) slot2Text(w uint32, pc uint64, rel string) string {
	if rel != "" {
		return fmt.Sprintf("%#08x %s", w, rel)
	}
	if a.rel && encode.IsBL(w) {
		return fmt.Sprintf("%#08x bl (no relocation)", w)
	}
	return encode.Disasm(w, pc)
}

func (a *against) fileWord(r io.ReaderAt, off int64, pc uint64) string {
	var b [4]byte
	if off < 0 || agReadFull(r, b[:], off) != nil {
		return "?"
	}
	return encode.Disasm(binary.LittleEndian.Uint32(b[:]), pc)
}

func (a *against) relWord(r io.ReaderAt, sec int, f *elf.File, off uint64) string {
	if sec <= 0 || sec >= len(f.Sections) {
		return "?"
	}
	return a.fileWord(r, int64(f.Sections[sec].Offset+off), off)
}
