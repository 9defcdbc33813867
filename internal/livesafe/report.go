package livesafe

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/render"
)

// DefaultMaxProblems is how many problems a report keeps unless
// Options.MaxProblems says otherwise.
const DefaultMaxProblems = 1000

// Options control Compare.
type Options struct {
	ChunkSize   int // bytes read from each file at a time; default 4 MiB
	MaxProblems int // problems kept in the report (all are counted); default 1000
}

// Kind names one allowed change of a site word.
type Kind string

const (
	KindLiteral  Kind = "literal"  // the 8-byte ops literal (live-safe)
	KindCall     Kind = "call"     // slot2 NOP -> BL (live-safe)
	KindUncall   Kind = "uncall"   // slot2 BL -> NOP (live-safe)
	KindRetarget Kind = "retarget" // slot2 BL -> another BL (live-safe)
	KindMov      Kind = "mov"      // slot1 NOP -> MOV X9,X30 (init only)
	KindUnmov    Kind = "unmov"    // slot1 MOV X9,X30 -> NOP (not live-safe)
)

// Intermediate orders: which of a site's two live writes comes first.
const (
	OrderLiteralFirst = "literal-first" // enable: literal, then BL (ftrace_make_call)
	OrderCallFirst    = "call-first"    // disable: BL := NOP, then literal
)

// Change is one changed word of a patch site.
type Change struct {
	Section    string     `json:"section"`
	Offset     render.Hex `json:"offset"`      // in Section
	Address    render.Hex `json:"address"`     // linked: virtual address; ET_REL: = Offset
	FileOffset int64      `json:"file_offset"` // in ORIG
	Func       string     `json:"func"`
	Kind       Kind       `json:"kind"`
	Old        string     `json:"old"`
	New        string     `json:"new"`
	LiveSafe   bool       `json:"live_safe"`
	Why        string     `json:"why,omitempty"` // why not live-safe
}

// Problem is one difference that is not an allowed patch.
type Problem struct {
	Section    string     `json:"section"`
	Offset     render.Hex `json:"offset"`  // in Section
	Address    render.Hex `json:"address"` // linked: virtual address (0 when not allocated); ET_REL: = Offset
	FileOffset int64      `json:"file_offset"`
	Func       string     `json:"func,omitempty"`
	Detail     string     `json:"detail"`
}

// Intermediate is the static verdict on one site's intermediate state and,
// once verify.RunIntermediates has run it (RecordRun), what the CPU showed.
type Intermediate struct {
	Section string     `json:"section"`
	Address render.Hex `json:"address"` // the site's entry
	Func    string     `json:"func"`
	Order   string     `json:"order"`
	Like    string     `json:"like"`   // "old" or "new": the state it must behave as
	Proven  bool       `json:"proven"` // shown statically: slot2 is NOP, so the literal is unreachable
	Detail  string     `json:"detail"`
	// Set by RunIntermediates: the state was run on the emulator (Ran) and
	// behaved as Like says (Behaves); Run says what it showed, or why no
	// run happened.
	Ran     bool   `json:"ran"`
	Behaves bool   `json:"behaves"`
	Run     string `json:"run,omitempty"`

	// For the run, not in JSON: the index of the site in ORIG's scan, the
	// words of the intermediate state and the scan state it must behave as.
	Site  int           `json:"-"`
	Words Words         `json:"-"`
	Next  Words         `json:"-"` // the patched (new) state's words
	State elfscan.State `json:"-"`
	at    loc           // where a failed run is reported
}

// Counts sums up a report.
type Counts struct {
	Sites          int          `json:"sites"`
	SitesChanged   int          `json:"sites_changed"`
	Changes        map[Kind]int `json:"changes"`
	LiveSafe       int          `json:"live_safe"`
	NotLiveSafe    int          `json:"not_live_safe"`
	Intermediates  int          `json:"intermediates"`
	Unproven       int          `json:"intermediates_unproven"`
	Ran            int          `json:"intermediates_ran"`    // RunIntermediates
	RunFailed      int          `json:"intermediates_failed"` // RunIntermediates: each also a problem
	RelocsAdded    int          `json:"relocs_added"`
	RelocsRemoved  int          `json:"relocs_removed"`
	SymbolsAdded   int          `json:"symbols_added"`
	SectionsAdded  int          `json:"sections_added"`
	BytesCompared  int64        `json:"bytes_compared"`
	Problems       int          `json:"problems"` // all, including those not kept
	ProblemsKept   int          `json:"problems_kept"`
	DifferentBytes int64        `json:"different_bytes"`
}

// Report is the result of Compare.
type Report struct {
	Orig          string         `json:"orig"`
	File          string         `json:"file"`
	Type          string         `json:"elf_type"`
	Changes       []Change       `json:"changes"`
	Intermediates []Intermediate `json:"intermediates"`
	Problems      []Problem      `json:"problems"`
	Counts        Counts         `json:"counts"`
	LiveSafe      bool           `json:"live_safe"` // no problem, every change live-safe, every intermediate proven

	maxProblems int // Options.MaxProblems of the run that made it
}

// add records a problem, keeping at most maxProblems of them.
func (r *Report) add(p Problem) {
	r.Counts.Problems++
	limit := r.maxProblems
	if limit <= 0 {
		limit = DefaultMaxProblems
	}
	if len(r.Problems) < limit {
		r.Problems = append(r.Problems, p)
	}
	r.Counts.ProblemsKept = len(r.Problems)
}

// RecordRun records what running intermediate i on the CPU showed: run
// says so for people; a state that does not behave is also a problem, with
// detail, at the site, so the report fails and is not live-safe.
func (r *Report) RecordRun(i int, behaves bool, run, detail string) {
	ic := &r.Intermediates[i]
	ic.Ran, ic.Behaves, ic.Run = true, behaves, run
	r.Counts.Ran++
	if !behaves {
		r.Counts.RunFailed++
		r.add(ic.at.problem(detail))
		r.LiveSafe = false
	}
}

// ProveByRun marks intermediate i proven by its run: the CPU showed that
// the old call reading the new literal does what the new state does. One
// case (verify.RunIntermediates): the old BL goes to the common trampoline,
// the new one to a direct trampoline, and the new ops' direct_call sends
// the common trampoline there (Linux switches a site to a direct ops this
// way). A report left with no unproven state and nothing else against it
// becomes live-safe.
func (r *Report) ProveByRun(i int, why string) {
	ic := &r.Intermediates[i]
	if ic.Proven || !ic.Ran || !ic.Behaves {
		return
	}
	ic.Proven = true
	ic.Detail += "; " + why
	r.Counts.Unproven--
	r.LiveSafe = !r.Failed() && r.Counts.NotLiveSafe == 0 && r.Counts.Unproven == 0
}

// Failed reports whether some difference is not an allowed patch.
func (r *Report) Failed() bool { return r.Counts.Problems > 0 }

// JSON writes the report as one line of JSON.
func (r *Report) JSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// writeLimit is how many lines of each list Write prints.
const writeLimit = 20

// Write renders the report for people: a verdict, the problems, the changes
// that are not live-safe, unproven intermediates, then a sample of changes.
func (r *Report) Write(w io.Writer) error {
	var b strings.Builder
	c := &r.Counts
	verdict := "ok"
	if r.Failed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "%s: against %s (%s): %s\n", r.File, r.Orig, r.Type, verdict)
	kinds := []Kind{KindLiteral, KindCall, KindUncall, KindRetarget, KindMov, KindUnmov}
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
			if i == writeLimit {
				fmt.Fprintf(&b, "    ... %d more (--json lists %d)\n", c.Problems-writeLimit, c.ProblemsKept)
				break
			}
			fmt.Fprintf(&b, "    %s\n", p.String())
		}
	}
	whys := map[Kind]string{}
	counts := map[Kind]int{}
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
		if n++; n > writeLimit {
			b.WriteString("    ...\n")
			break
		}
		fmt.Fprintf(&b, "    %s %s %s (%s): %s\n", ic.Section, ic.Address, funcName(ic.Func), ic.Order, ic.Detail)
	}
	writeChanges(&b, "  changes (! = not live-safe):", r.Changes)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeChanges lists up to writeLimit changes under title.
func writeChanges(b *strings.Builder, title string, cs []Change) {
	if len(cs) == 0 {
		return
	}
	b.WriteString(title + "\n")
	for i, ch := range cs {
		if i == writeLimit {
			fmt.Fprintf(b, "    ... %d more (--json lists them all)\n", len(cs)-writeLimit)
			return
		}
		mark := " "
		if !ch.LiveSafe {
			mark = "!"
		}
		fmt.Fprintf(b, "  %s %s+%s (%s) %s: %s: %s -> %s\n", mark, ch.Section, ch.Offset, ch.Address, funcName(ch.Func), ch.Kind, ch.Old, ch.New)
	}
}

// funcName is f, or says there is none.
func funcName(f string) string {
	if f == "" {
		return "(no function)"
	}
	return f
}

// String names where the problem is and what it is.
func (p Problem) String() string {
	where := fmt.Sprintf("%s+%s", p.Section, p.Offset)
	if p.Address != p.Offset && p.Address != 0 {
		where += fmt.Sprintf(" (%s)", p.Address)
	}
	where += fmt.Sprintf(" file offset %#x", p.FileOffset)
	if p.Func != "" {
		where += " in " + p.Func
	}
	return where + ": " + p.Detail
}

// Words are a site's words in one state. In ET_REL files the literal
// and the BL get their values from relocations: Ops and Target (as the
