// SPDX-License-Identifier: Apache-2.0

package livesafe

// The report Compare returns: plain values, printed by package report
// (report.Against, report.AgainstText).

import (
	"debug/elf"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
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
	Section    string
	Offset     uint64 // in Section
	Address    uint64 // linked: virtual address; ET_REL: = Offset
	FileOffset int64  // in ORIG
	Func       string
	Kind       Kind
	Old        Value // the word in ORIG (report says it as Kind's slot shows)
	New        Value // the word in the patched file
	LiveSafe   bool
	Why        string // why not live-safe
}

// Value is one side of a changed site word: its bits (a literal's 8
// bytes, an instruction's 4) and, in an ET_REL file, the relocation that
// completes it ("TYPE expr", "" when none).
type Value struct {
	Bits uint64
	Rel  string
	// Unrelocated: a BL in slot2 of an ET_REL file with no relocation (it
	// would call itself). Unread: the word could not be read.
	Unrelocated, Unread bool
}

// ProblemCode says what is wrong with a site's words; report says it from
// the Problem's values. ProblemOther is said by the Problem's Detail.
type ProblemCode uint8

const (
	ProblemOther             ProblemCode = iota // Detail says it
	ProblemNoSite                               // the patched file has no patch site here
	ProblemUnknownState                         // the patched site (Words: slot1, slot2) is in no known state
	ProblemBTI                                  // the BTI at the function entry changed (Old, New)
	ProblemSpare                                // a 5,3 site's spare word changed (Old, New; LiteralAt)
	ProblemCFI                                  // the kCFI type hash before the NOPs changed (Old, New)
	ProblemMisalignedLiteral                    // the literal changed (Old, New) but is not 8-byte aligned
	ProblemSlot1                                // slot1 changed (Old, New), not NOP <-> MOV X9,X30
	ProblemSlot2Unrelocated                     // ET_REL: slot2 is now a BL (New) without a relocation
	ProblemSlot2Relocated                       // ET_REL: slot2 is NOP but carries relocation New.Rel
	ProblemSlot2                                // slot2 changed (Old, New), not NOP <-> BL or BL <-> BL
)

// Problem is one difference that is not an allowed patch.
type Problem struct {
	Section    string
	Offset     uint64 // in Section
	Address    uint64 // linked: virtual address (0 when not allocated); ET_REL: = Offset
	FileOffset int64
	Func       string
	Code       ProblemCode
	Detail     string // ProblemOther
	// The words of a site's problem (per Code): the word at Address in
	// ORIG and in the patched file, or the patched site's words; where the
	// literal is (ProblemSpare).
	Old, New  Value
	Words     []encode.Placed
	LiteralAt uint64
	// Run, when set, is the intermediate state whose run misbehaved
	// (RecordRun); Detail is then empty and report says it from Run.
	Run *RunFailure
}

// RunFailure is an intermediate state that did not behave on the CPU as
// the state it stands for: what was expected and observed, and the site's
// words in that state (verify.RunIntermediates).
type RunFailure struct {
	Order    string // the intermediate's
	Like     string
	State    elfscan.State // the state it must behave as
	Expected string
	Observed string
	Words    []encode.Placed
}

// Intermediate is the static verdict on one site's intermediate state and,
// once verify.RunIntermediates has run it (RecordRun), what the CPU showed.
type Intermediate struct {
	Section string
	Address uint64 // the site's entry
	Func    string
	Order   string
	Like    string // "old" or "new": the state it must behave as
	Proven  bool   // shown statically (slot2 is NOP, so the literal is unreachable), or by its run (ProvenBy)
	// CallSite is the site's slot2, where Words.Slot2 is (for report's
	// detail: what the old call does while the literal is new).
	CallSite uint64
	// ProvenBy says how the run proved it, to the direct trampoline at
	// Direct (ProveByRun).
	ProvenBy RunProof
	Direct   uint64
	// Set by RunIntermediates: it took the state to run (RunWanted), the
	// state was run on the emulator (Ran) and behaved as Like says
	// (Behaves), or did not (Fail says how); report says what it showed.
	RunWanted bool
	Ran       bool
	Behaves   bool
	Fail      *RunFailure

	// For the run, not shown: the index of the site in ORIG's scan, the
	// words of the intermediate state and the scan state it must behave as.
	Site  int
	Words Words
	Next  Words // the patched (new) state's words
	State elfscan.State
	at    loc // where a failed run is reported
}

// Counts sums up a report.
type Counts struct {
	Sites          int
	SitesChanged   int
	Changes        map[Kind]int
	LiveSafe       int
	NotLiveSafe    int
	Intermediates  int
	Unproven       int
	Ran            int // RunIntermediates
	RunFailed      int // RunIntermediates: each also a problem
	RelocsAdded    int
	RelocsRemoved  int
	SymbolsAdded   int
	SectionsAdded  int
	BytesCompared  int64
	Problems       int // all, including those not kept
	ProblemsKept   int
	DifferentBytes int64
}

// Report is the result of Compare.
type Report struct {
	Orig          string
	File          string
	Type          elf.Type // ORIG's
	Changes       []Change
	Intermediates []Intermediate
	Problems      []Problem
	Counts        Counts
	LiveSafe      bool // no problem, every change live-safe, every intermediate proven

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

// RecordRun records what running intermediate i on the CPU showed: fail
// is nil when it behaved; a state that does not behave is also a problem
// at the site, so the report fails and is not live-safe.
func (r *Report) RecordRun(i int, fail *RunFailure) {
	ic := &r.Intermediates[i]
	ic.Ran, ic.Behaves = true, fail == nil
	r.Counts.Ran++
	if fail != nil {
		fail.Order, fail.Like, fail.State = ic.Order, ic.Like, ic.State
		ic.Fail = fail
		r.Counts.RunFailed++
		p := ic.at.problem("")
		p.Run = fail
		r.add(p)
		r.LiveSafe = false
	}
}

// ProveByRun marks intermediate i proven by its run: the CPU showed that
// the old call reading the new literal does what the new state does. One
// case (verify.RunIntermediates): the old BL goes to the common trampoline,
// the new one to a direct trampoline, and the new ops' direct_call sends
// the common trampoline there (Linux switches a site to a direct ops this
// way: ProofThroughDirectCall), or the old BL goes straight to the direct
// trampoline, which reads no literal (ProofStraightToDirect); direct is
// that trampoline's address. ProofNone changes nothing. A report left with
// no unproven state and nothing else against it becomes live-safe.
func (r *Report) ProveByRun(i int, proof RunProof, direct uint64) {
	ic := &r.Intermediates[i]
	if proof == ProofNone || ic.Proven || !ic.Ran || !ic.Behaves {
		return
	}
	ic.Proven, ic.ProvenBy, ic.Direct = true, proof, direct
	r.Counts.Unproven--
	r.LiveSafe = !r.Failed() && r.Counts.NotLiveSafe == 0 && r.Counts.Unproven == 0
}

// RunProof says how a run proved an intermediate state (ProveByRun).
type RunProof uint8

const (
	ProofNone RunProof = iota
	// ProofThroughDirectCall: the old call reaches the direct trampoline
	// through op->direct_call, as the new BL does.
	ProofThroughDirectCall
	// ProofStraightToDirect: the old BL goes straight to the direct
	// trampoline, which reads no literal.
	ProofStraightToDirect
)

// Failed reports whether some difference is not an allowed patch.
func (r *Report) Failed() bool { return r.Counts.Problems > 0 }
