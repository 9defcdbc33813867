// SPDX-License-Identifier: Apache-2.0

package report

// verify --against: the live-safety report (livesafe.Report) as its JSON
// line and as text.

import (
	"fmt"
	"io"
	"strings"

	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/livesafe"
	"github.com/ftpatch/ftpatch/internal/render"
)

// AgainstReport is the `verify --against --json` line (docs/json.md,
// object against).
type AgainstReport struct {
	Orig          string                `json:"orig"`
	File          string                `json:"file"`
	Type          string                `json:"elf_type"`
	Changes       []AgainstChange       `json:"changes"`       // never null
	Intermediates []AgainstIntermediate `json:"intermediates"` // never null
	Problems      []AgainstProblem      `json:"problems"`      // never null
	Counts        AgainstCounts         `json:"counts"`
	LiveSafe      bool                  `json:"live_safe"`
}

// AgainstChange is one changed word of a patch site (object change).
type AgainstChange struct {
	Section    string     `json:"section"`
	Offset     render.Hex `json:"offset"`
	Address    render.Hex `json:"address"`
	FileOffset int64      `json:"file_offset"`
	Func       string     `json:"func"`
	Kind       string     `json:"kind"`
	Old        string     `json:"old"`
	New        string     `json:"new"`
	LiveSafe   bool       `json:"live_safe"`
	Why        string     `json:"why,omitempty"`
}

// AgainstProblem is one difference that is not an allowed patch (object
// againstproblem).
type AgainstProblem struct {
	Section    string     `json:"section"`
	Offset     render.Hex `json:"offset"`
	Address    render.Hex `json:"address"`
	FileOffset int64      `json:"file_offset"`
	Func       string     `json:"func,omitempty"`
	Detail     string     `json:"detail"`
}

// AgainstIntermediate is one site's intermediate state (object
// intermediate).
type AgainstIntermediate struct {
	Section string     `json:"section"`
	Address render.Hex `json:"address"`
	Func    string     `json:"func"`
	Order   string     `json:"order"`
	Like    string     `json:"like"`
	Proven  bool       `json:"proven"`
	Detail  string     `json:"detail"`
	Ran     bool       `json:"ran"`
	Behaves bool       `json:"behaves"`
	Run     string     `json:"run,omitempty"`
}

// AgainstCounts sums up the report (object counts).
type AgainstCounts struct {
	Sites          int            `json:"sites"`
	SitesChanged   int            `json:"sites_changed"`
	Changes        map[string]int `json:"changes"` // never null
	LiveSafe       int            `json:"live_safe"`
	NotLiveSafe    int            `json:"not_live_safe"`
	Intermediates  int            `json:"intermediates"`
	Unproven       int            `json:"intermediates_unproven"`
	Ran            int            `json:"intermediates_ran"`
	RunFailed      int            `json:"intermediates_failed"`
	RelocsAdded    int            `json:"relocs_added"`
	RelocsRemoved  int            `json:"relocs_removed"`
	SymbolsAdded   int            `json:"symbols_added"`
	SectionsAdded  int            `json:"sections_added"`
	BytesCompared  int64          `json:"bytes_compared"`
	Problems       int            `json:"problems"`
	ProblemsKept   int            `json:"problems_kept"`
	DifferentBytes int64          `json:"different_bytes"`
}

// Against is r's --json object.
func Against(r *livesafe.Report) AgainstReport {
	c := &r.Counts
	j := AgainstReport{Orig: r.Orig, File: r.File, Type: ELFType(r.Type), LiveSafe: r.LiveSafe,
		Changes:       make([]AgainstChange, len(r.Changes)),
		Intermediates: make([]AgainstIntermediate, len(r.Intermediates)),
		Problems:      make([]AgainstProblem, len(r.Problems)),
		Counts: AgainstCounts{Sites: c.Sites, SitesChanged: c.SitesChanged, Changes: make(map[string]int, len(c.Changes)),
			LiveSafe: c.LiveSafe, NotLiveSafe: c.NotLiveSafe, Intermediates: c.Intermediates, Unproven: c.Unproven,
			Ran: c.Ran, RunFailed: c.RunFailed, RelocsAdded: c.RelocsAdded, RelocsRemoved: c.RelocsRemoved,
			SymbolsAdded: c.SymbolsAdded, SectionsAdded: c.SectionsAdded, BytesCompared: c.BytesCompared,
			Problems: c.Problems, ProblemsKept: c.ProblemsKept, DifferentBytes: c.DifferentBytes}}
	for k, n := range c.Changes {
		j.Counts.Changes[string(k)] = n
	}
	for i, ch := range r.Changes {
		j.Changes[i] = AgainstChange{Section: ch.Section, Offset: render.Hex(ch.Offset), Address: render.Hex(ch.Address),
			FileOffset: ch.FileOffset, Func: ch.Func, Kind: string(ch.Kind), Old: valueText(ch, ch.Old), New: valueText(ch, ch.New),
			LiveSafe: ch.LiveSafe, Why: ch.Why}
	}
	for i, ic := range r.Intermediates {
		j.Intermediates[i] = AgainstIntermediate{Section: ic.Section, Address: render.Hex(ic.Address), Func: ic.Func,
			Order: ic.Order, Like: ic.Like, Proven: ic.Proven, Detail: intermediateDetail(ic), Ran: ic.Ran, Behaves: ic.Behaves, Run: runText(ic)}
	}
	for i, p := range r.Problems {
		j.Problems[i] = AgainstProblem{Section: p.Section, Offset: render.Hex(p.Offset), Address: render.Hex(p.Address),
			FileOffset: p.FileOffset, Func: p.Func, Detail: problemDetail(p)}
	}
	return j
}

// listLimit is how many lines of each list AgainstText prints.
const listLimit = 20

// changeKinds is the order AgainstText lists kinds in.
var changeKinds = []livesafe.Kind{livesafe.KindLiteral, livesafe.KindCall, livesafe.KindUncall,
	livesafe.KindRetarget, livesafe.KindMov, livesafe.KindUnmov}

// AgainstText writes the report for people: a verdict, the problems, the
// changes that are not live-safe, unproven intermediates, then a sample
// of changes.
func AgainstText(w io.Writer, r *livesafe.Report) error {
	var b strings.Builder
	c := &r.Counts
	verdict := "ok"
	if r.Failed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "%s: against %s (%s): %s\n", r.File, r.Orig, ELFType(r.Type), verdict)
	var parts []string
	for _, k := range changeKinds {
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
	fmt.Fprintf(&b, "  live-safe: %s (%s live-safe, %d not; %s, %d unproven)\n",
		live, render.Count(c.LiveSafe, "change"), c.NotLiveSafe, render.Count(c.Intermediates, "intermediate state"), c.Unproven)
	if c.Ran > 0 || c.RunFailed > 0 {
		fmt.Fprintf(&b, "  intermediate states run on the CPU: %d, %d behave as required, %d failed\n", c.Ran, c.Ran-c.RunFailed, c.RunFailed)
	}
	if c.Problems > 0 {
		fmt.Fprintf(&b, "  problems: %d\n", c.Problems)
		for i, p := range r.Problems {
			if i == listLimit {
				fmt.Fprintf(&b, "    ... %d more (--json lists %d)\n", c.Problems-listLimit, c.ProblemsKept)
				break
			}
			fmt.Fprintf(&b, "    %s\n", ProblemText(p))
		}
	}
	whys := map[livesafe.Kind]string{}
	counts := map[livesafe.Kind]int{}
	for _, ch := range r.Changes {
		if !ch.LiveSafe {
			whys[ch.Kind] = ch.Why
			counts[ch.Kind]++
		}
	}
	for _, k := range changeKinds {
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
		if n++; n > listLimit {
			b.WriteString("    ...\n")
			break
		}
		fmt.Fprintf(&b, "    %s %s %s (%s): %s\n", ic.Section, render.Hex(ic.Address), funcName(ic.Func), ic.Order, intermediateDetail(ic))
	}
	writeChanges(&b, "  changes (! = not live-safe):", r.Changes)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeChanges lists up to listLimit changes under title.
func writeChanges(b *strings.Builder, title string, cs []livesafe.Change) {
	if len(cs) == 0 {
		return
	}
	b.WriteString(title + "\n")
	for i, ch := range cs {
		if i == listLimit {
			fmt.Fprintf(b, "    ... %d more (--json lists them all)\n", len(cs)-listLimit)
			return
		}
		mark := " "
		if !ch.LiveSafe {
			mark = "!"
		}
		fmt.Fprintf(b, "  %s %s+%s (%s) %s: %s: %s -> %s\n", mark, ch.Section, render.Hex(ch.Offset), render.Hex(ch.Address), funcName(ch.Func), ch.Kind, valueText(ch, ch.Old), valueText(ch, ch.New))
	}
}

// valueText says one side v of change ch as its slot shows: a literal as
// its value, slot1 as its instruction, slot2 as slot2Text says.
func valueText(ch livesafe.Change, v livesafe.Value) string {
	switch ch.Kind {
	case livesafe.KindLiteral:
		return literalValueText(v)
	case livesafe.KindMov, livesafe.KindUnmov:
		return encode.Disasm(uint32(v.Bits), ch.Address)
	}
	return slot2Text(v, ch.Address)
}

// literalValueText says a literal's value ("nop; nop" while it holds its
// compiled NOPs), and its relocation in ET_REL files.
func literalValueText(v livesafe.Value) string {
	s := fmt.Sprintf("%#016x", v.Bits)
	if v.Bits == uint64(encode.NOP)|uint64(encode.NOP)<<32 {
		s = "nop; nop"
	}
	if v.Rel != "" {
		s += " + " + v.Rel
	}
	return s
}

// slot2Text says a slot2 word at pc: with its relocation in ET_REL files
// (a BL without one would call itself), else as its instruction.
func slot2Text(v livesafe.Value, pc uint64) string {
	w := uint32(v.Bits)
	switch {
	case v.Rel != "":
		return fmt.Sprintf("%#08x %s", w, v.Rel)
	case v.Unrelocated:
		return fmt.Sprintf("%#08x bl (no relocation)", w)
	}
	return encode.Disasm(w, pc)
}

// fileWordText says a word read from a file at pc as its instruction,
// "?" when it could not be read.
func fileWordText(v livesafe.Value, pc uint64) string {
	if v.Unread {
		return "?"
	}
	return encode.Disasm(uint32(v.Bits), pc)
}

// funcName is f, or says there is none.
func funcName(f string) string {
	if f == "" {
		return "(no function)"
	}
	return f
}

// ProblemText names where the problem is and what it is.
func ProblemText(p livesafe.Problem) string {
	where := fmt.Sprintf("%s+%s", p.Section, render.Hex(p.Offset))
	if p.Address != p.Offset && p.Address != 0 {
		where += fmt.Sprintf(" (%s)", render.Hex(p.Address))
	}
	where += fmt.Sprintf(" file offset %#x", p.FileOffset)
	if p.Func != "" {
		where += " in " + p.Func
	}
	return where + ": " + problemDetail(p)
}

// problemDetail says what is wrong: the problem of a site's words its
// code names, said with the words, the run of an intermediate state that
// misbehaved, or else p's detail.
func problemDetail(p livesafe.Problem) string {
	if p.Run != nil {
		return runProblem(p.Run)
	}
	word := func(v livesafe.Value) string { return fileWordText(v, p.Address) }
	switch p.Code {
	case livesafe.ProblemNoSite:
		return "the patched file has no patch site here (its entries table changed?)"
	case livesafe.ProblemUnknownState:
		var ws [2]string
		for i := 0; i < len(p.Words) && i < 2; i++ {
			ws[i] = encode.Disasm(uint32(p.Words[i].Bits), p.Words[i].Addr)
		}
		return fmt.Sprintf("the patched site is in no known state (slot1 %s, slot2 %s)", ws[0], ws[1])
	case livesafe.ProblemBTI:
		return fmt.Sprintf("the BTI at the function entry changed: %s -> %s", word(p.Old), word(p.New))
	case livesafe.ProblemSpare:
		return fmt.Sprintf("the spare word of this 5,3 site (the literal is at %#x) changed: %s -> %s; it must never change", p.LiteralAt, word(p.Old), word(p.New))
	case livesafe.ProblemCFI:
		return fmt.Sprintf("the kCFI type hash before the NOPs changed (indirect calls to the function would trap): %s -> %s; it must never change", word(p.Old), word(p.New))
	case livesafe.ProblemMisalignedLiteral:
		return fmt.Sprintf("literal changed (%s -> %s) but it is not 8-byte aligned, so no single-copy-atomic store can write it", literalValueText(p.Old), literalValueText(p.New))
	case livesafe.ProblemSlot1:
		return fmt.Sprintf("slot1 changed from %s to %s; only NOP <-> MOV X9,X30 is allowed", word(p.Old), word(p.New))
	case livesafe.ProblemSlot2Unrelocated:
		return fmt.Sprintf("slot2 is now %s without an R_AARCH64_CALL26 relocation: it would call itself", slot2Text(p.New, p.Address))
	case livesafe.ProblemSlot2Relocated:
		return fmt.Sprintf("slot2 is NOP but carries relocation %s: the linker would make it a branch", p.New.Rel)
	case livesafe.ProblemSlot2:
		return fmt.Sprintf("slot2 changed from %s to %s; only NOP <-> BL and BL <-> BL are allowed", slot2Text(p.Old, p.Address), slot2Text(p.New, p.Address))
	}
	return p.Detail
}

// runProblem says an intermediate state's run that misbehaved.
func runProblem(f *livesafe.RunFailure) string {
	return fmt.Sprintf("intermediate state (%s, between the two writes) does not behave as the %s state %s: expected %s; observed %s; site: %s",
		f.Order, f.Like, f.State, f.Expected, f.Observed, strings.Join(wordsText(f.Words), "; "))
}

// intermediateDetail says how intermediate ic was shown: slot2 still NOP
// (the literal is unreachable), or what slot2 holds while the literal is
// new, then how its run proved it, if it did.
func intermediateDetail(ic livesafe.Intermediate) string {
	d := fmt.Sprintf("slot2 holds %s while the literal is new: the old call reads the new ops", encode.Disasm(ic.Words.Slot2, ic.CallSite))
	if ic.Words.Slot2 == encode.NOP {
		d = fmt.Sprintf("slot2 is still NOP after the first write, so the literal is unreachable: behaves as the %s state", ic.Like)
	}
	switch ic.ProvenBy {
	case livesafe.ProofThroughDirectCall:
		d += fmt.Sprintf("; the old call reaches direct trampoline %#x through op->direct_call, as the new BL does", ic.Direct)
	case livesafe.ProofStraightToDirect:
		d += fmt.Sprintf("; the old BL goes straight to direct trampoline %#x, which reads no literal", ic.Direct)
	}
	return d
}

// runText says what running intermediate ic on the CPU showed, "not run"
// when RunIntermediates took it but did not run it, "" when nothing
// took it.
func runText(ic livesafe.Intermediate) string {
	switch {
	case ic.Ran && ic.Fail != nil:
		return fmt.Sprintf("ran on the CPU: does not behave as the %s state (%s): expected %s; observed %s", ic.Like, ic.State, ic.Fail.Expected, ic.Fail.Observed)
	case ic.Ran:
		return fmt.Sprintf("ran on the CPU: behaves as the %s state (%s)", ic.Like, ic.State)
	case ic.RunWanted:
		return "not run"
	}
	return ""
}
