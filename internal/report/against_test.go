// SPDX-License-Identifier: Apache-2.0

package report

import (
	"bytes"
	"debug/elf"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/livesafe"
)

// sampleAgainst has every field of every against object set somewhere.
func sampleAgainst() *livesafe.Report {
	return &livesafe.Report{Orig: "o", File: "f", Type: elf.ET_EXEC,
		Changes: []livesafe.Change{
			{Section: ".text", Offset: 0x10, Address: 0x400010, FileOffset: 0x10010, Func: "fn", Kind: livesafe.KindMov,
				Old: livesafe.Value{Bits: uint64(encode.NOP)}, New: livesafe.Value{Bits: uint64(encode.MovX9X30)}, Why: "w<&>"},
			{Section: ".text", Offset: 0x18, Address: 0x400018, Kind: livesafe.KindCall, LiveSafe: true,
				Old: livesafe.Value{Bits: uint64(encode.NOP)}, New: livesafe.Value{Bits: 0x94000002}}},
		Intermediates: []livesafe.Intermediate{
			{Section: ".text", Address: 0x400008, Func: "fn", Order: livesafe.OrderLiteralFirst, Like: "old", RunWanted: true, Ran: true, Behaves: true, State: elfscan.StateNop,
				Words: livesafe.Words{Slot2: 0x94000002}, CallSite: 0x400010},
			{Section: ".text", Address: 0x400028, Like: "new", Proven: true, Words: livesafe.Words{Slot2: encode.NOP}}},
		Problems: []livesafe.Problem{
			{Section: ".data", Offset: 0x8, Address: 0x410008, FileOffset: 0x1008, Detail: "changed"},
			{Section: ".x", Func: "g", Detail: "d2"}},
		Counts: livesafe.Counts{Sites: 9, SitesChanged: 2, Changes: map[livesafe.Kind]int{livesafe.KindMov: 1, livesafe.KindCall: 1},
			LiveSafe: 1, NotLiveSafe: 1, Intermediates: 2, Unproven: 1, Ran: 1, RunFailed: 1, RelocsAdded: 2, RelocsRemoved: 3,
			SymbolsAdded: 4, SectionsAdded: 5, BytesCompared: 6, Problems: 7, ProblemsKept: 2, DifferentBytes: 8}}
}

// The oracle is the report's rendering before it moved here: what
// livesafe.Report.JSON and Write printed for the same report at main
// b2e5fb9 (json.Marshal over the tagged livesafe types), but for the call
// change's words and the intermediates' run and detail, which livesafe now
// carries as values, not text: their sentences are those livesafe and
// verify wrote.
const (
	againstJSONBefore = "{\"orig\":\"o\",\"file\":\"f\",\"elf_type\":\"EXEC\",\"changes\":[{\"section\":\".text\",\"offset\":\"0x10\",\"address\":\"0x400010\",\"file_offset\":65552,\"func\":\"fn\",\"kind\":\"mov\",\"old\":\"nop\",\"new\":\"mov x9, x30\",\"live_safe\":false,\"why\":\"w\\u003c\\u0026\\u003e\"},{\"section\":\".text\",\"offset\":\"0x18\",\"address\":\"0x400018\",\"file_offset\":0,\"func\":\"\",\"kind\":\"call\",\"old\":\"nop\",\"new\":\"bl 0x400020\",\"live_safe\":true}],\"intermediates\":[{\"section\":\".text\",\"address\":\"0x400008\",\"func\":\"fn\",\"order\":\"literal-first\",\"like\":\"old\",\"proven\":false,\"detail\":\"slot2 holds bl 0x400018 while the literal is new: the old call reads the new ops\",\"ran\":true,\"behaves\":true,\"run\":\"ran on the CPU: behaves as the old state (nop)\"},{\"section\":\".text\",\"address\":\"0x400028\",\"func\":\"\",\"order\":\"\",\"like\":\"new\",\"proven\":true,\"detail\":\"slot2 is still NOP after the first write, so the literal is unreachable: behaves as the new state\",\"ran\":false,\"behaves\":false}],\"problems\":[{\"section\":\".data\",\"offset\":\"0x8\",\"address\":\"0x410008\",\"file_offset\":4104,\"detail\":\"changed\"},{\"section\":\".x\",\"offset\":\"0x0\",\"address\":\"0x0\",\"file_offset\":0,\"func\":\"g\",\"detail\":\"d2\"}],\"counts\":{\"sites\":9,\"sites_changed\":2,\"changes\":{\"call\":1,\"mov\":1},\"live_safe\":1,\"not_live_safe\":1,\"intermediates\":2,\"intermediates_unproven\":1,\"intermediates_ran\":1,\"intermediates_failed\":1,\"relocs_added\":2,\"relocs_removed\":3,\"symbols_added\":4,\"sections_added\":5,\"bytes_compared\":6,\"problems\":7,\"problems_kept\":2,\"different_bytes\":8},\"live_safe\":false}\n"
	againstTextBefore = "f: against o (EXEC): FAIL\n  sites 9, changed 2; changes: 1 call, 1 mov\n  relocations +2 -3, symbols +4, sections +5\n  live-safe: no (1 change live-safe, 1 not; 2 intermediate states, 1 unproven)\n  intermediate states run on the CPU: 1, 0 behave as required, 1 failed\n  problems: 7\n    .data+0x8 (0x410008) file offset 0x1008: changed\n    .x+0x0 file offset 0x0 in g: d2\n  not live-safe: 1 mov: w<&>\n  intermediate states not proven:\n    .text 0x400008 fn (literal-first): slot2 holds bl 0x400018 while the literal is new: the old call reads the new ops\n  changes (! = not live-safe):\n  ! .text+0x10 (0x400010) fn: mov: nop -> mov x9, x30\n    .text+0x18 (0x400018) (no function): call: nop -> bl 0x400020\n"
)

func TestAgainstSameAsBefore(t *testing.T) {
	r := sampleAgainst()
	var b bytes.Buffer
	if err := WriteLine(&b, Against(r)); err != nil {
		t.Fatal(err)
	}
	if b.String() != againstJSONBefore {
		t.Errorf("JSON:\n got %s\nwant %s", b.String(), againstJSONBefore)
	}
	b.Reset()
	if err := AgainstText(&b, r); err != nil {
		t.Fatal(err)
	}
	if b.String() != againstTextBefore {
		t.Errorf("text:\n got %q\nwant %q", b.String(), againstTextBefore)
	}
}

// Addresses show as 0x… text: render.Hex is a Stringer, so %#x would
// hex-encode its text ("0x3078…").
func TestAgainstTextShowsAddresses(t *testing.T) {
	var b strings.Builder
	if err := AgainstText(&b, sampleAgainst()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".text+0x10 (0x400010) fn", ".text 0x400008 fn", ".data+0x8 (0x410008) file offset 0x1008"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, b.String())
		}
	}
}

// A report with nothing in it still has [] and {}, never null.
func TestAgainstEmptyLists(t *testing.T) {
	var b bytes.Buffer
	if err := WriteLine(&b, Against(&livesafe.Report{})); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"changes":[]`, `"intermediates":[]`, `"problems":[]`, `"changes":{}`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("empty report lacks %s: %s", want, b.String())
		}
	}
}

// An intermediate state whose run misbehaved: its run text and its
// problem, said from the words and values livesafe carries (the sentences
// verify.RunIntermediates wrote before they moved here).
func TestAgainstRunFailure(t *testing.T) {
	r := &livesafe.Report{Intermediates: []livesafe.Intermediate{
		{Section: ".text", Address: 0x400008, Func: "fn", Order: livesafe.OrderCallFirst, Like: "new", State: elfscan.StateInit},
		{Order: livesafe.OrderLiteralFirst, Like: "old", RunWanted: true}}}
	r.RecordRun(0, &livesafe.RunFailure{Expected: "1 call of op->func", Observed: "0 calls of op->func",
		Words: []encode.Placed{{Addr: 0x400000, Bits: 0x400100, Kind: encode.PlacedLiteral}, {Addr: 0x40000c, Bits: 0xaa1e03e9}}})
	j := Against(r)
	if got, want := j.Intermediates[0].Run, "ran on the CPU: does not behave as the new state (init): expected 1 call of op->func; observed 0 calls of op->func"; got != want {
		t.Errorf("run:\n got %q\nwant %q", got, want)
	}
	if got := j.Intermediates[1].Run; got != "not run" {
		t.Errorf("run of a state not run: %q", got)
	}
	if len(j.Problems) != 1 || !r.Failed() {
		t.Fatalf("problems %+v", j.Problems)
	}
	want := "intermediate state (call-first, between the two writes) does not behave as the new state init: expected 1 call of op->func; observed 0 calls of op->func; site: 0x400000: 0000000000400100  .quad 0x400100; 0x40000c: aa1e03e9  mov x9, x30"
	if got := j.Problems[0].Detail; got != want {
		t.Errorf("problem:\n got %q\nwant %q", got, want)
	}
	if got := ProblemText(r.Problems[0]); !strings.HasSuffix(got, ": "+want) {
		t.Errorf("problem text %q", got)
	}
}

// Each slot's words said as livesafe said them before they became values:
// a literal's value (and relocation), slot1's instruction, slot2's
// instruction or, in an object, its relocation.
func TestAgainstValueText(t *testing.T) {
	nops := uint64(encode.NOP) | uint64(encode.NOP)<<32
	for _, tc := range []struct {
		kind livesafe.Kind
		v    livesafe.Value
		want string
	}{
		{livesafe.KindLiteral, livesafe.Value{Bits: nops}, "nop; nop"},
		{livesafe.KindLiteral, livesafe.Value{Bits: 0x410000}, "0x0000000000410000"},
		{livesafe.KindLiteral, livesafe.Value{Bits: 0, Rel: "ABS64 ops+0x8"}, "0x0000000000000000 + ABS64 ops+0x8"},
		{livesafe.KindUnmov, livesafe.Value{Bits: uint64(encode.MovX9X30)}, "mov x9, x30"},
		{livesafe.KindCall, livesafe.Value{Bits: 0x94000000, Rel: "CALL26 ftrace_caller"}, "0x94000000 CALL26 ftrace_caller"},
		{livesafe.KindRetarget, livesafe.Value{Bits: 0x94000000, Unrelocated: true}, "0x94000000 bl (no relocation)"},
		{livesafe.KindCall, livesafe.Value{Bits: 0x94000002}, "bl 0x400020"},
	} {
		ch := livesafe.Change{Kind: tc.kind, Address: 0x400018}
		if got := valueText(ch, tc.v); got != tc.want {
			t.Errorf("%s %+v: %q, want %q", tc.kind, tc.v, got, tc.want)
		}
	}
}

// Each problem of a site's words, said from the values livesafe carries as
// livesafe said it before (its format strings, with its word texts).
func TestAgainstSiteProblems(t *testing.T) {
	bti := livesafe.Value{Bits: uint64(encode.BTIC)}
	for _, tc := range []struct {
		p    livesafe.Problem
		want string
	}{
		{livesafe.Problem{Code: livesafe.ProblemNoSite}, "the patched file has no patch site here (its entries table changed?)"},
		{livesafe.Problem{Code: livesafe.ProblemUnknownState, Words: []encode.Placed{{Addr: 0x400014, Bits: uint64(encode.NOP)}, {Addr: 0x400018, Bits: 0x94000002}}},
			"the patched site is in no known state (slot1 nop, slot2 bl 0x400020)"},
		{livesafe.Problem{Code: livesafe.ProblemBTI, Address: 0x400010, Old: bti, New: livesafe.Value{Unread: true}},
			"the BTI at the function entry changed: bti c -> ?"},
		{livesafe.Problem{Code: livesafe.ProblemSpare, Address: 0x400004, LiteralAt: 0x400008, Old: livesafe.Value{Bits: uint64(encode.NOP)}, New: bti},
			"the spare word of this 5,3 site (the literal is at 0x400008) changed: nop -> bti c; it must never change"},
		{livesafe.Problem{Code: livesafe.ProblemCFI, Address: 0x400000, Old: livesafe.Value{Bits: uint64(encode.NOP)}, New: livesafe.Value{Bits: 0x94000002}},
			"the kCFI type hash before the NOPs changed (indirect calls to the function would trap): nop -> bl 0x400008; it must never change"},
		{livesafe.Problem{Code: livesafe.ProblemMisalignedLiteral, Old: livesafe.Value{Bits: uint64(encode.NOP) | uint64(encode.NOP)<<32}, New: livesafe.Value{Bits: 0x410000, Rel: "ABS64 ops"}},
			"literal changed (nop; nop -> 0x0000000000410000 + ABS64 ops) but it is not 8-byte aligned, so no single-copy-atomic store can write it"},
		{livesafe.Problem{Code: livesafe.ProblemSlot1, Address: 0x400014, Old: livesafe.Value{Bits: uint64(encode.NOP)}, New: bti},
			"slot1 changed from nop to bti c; only NOP <-> MOV X9,X30 is allowed"},
		{livesafe.Problem{Code: livesafe.ProblemSlot2Unrelocated, Address: 0x18, New: livesafe.Value{Bits: 0x94000000, Unrelocated: true}},
			"slot2 is now 0x94000000 bl (no relocation) without an R_AARCH64_CALL26 relocation: it would call itself"},
		{livesafe.Problem{Code: livesafe.ProblemSlot2Relocated, Address: 0x18, New: livesafe.Value{Bits: uint64(encode.NOP), Rel: "CALL26 f"}},
			"slot2 is NOP but carries relocation CALL26 f: the linker would make it a branch"},
		{livesafe.Problem{Code: livesafe.ProblemSlot2, Address: 0x400018, Old: livesafe.Value{Bits: uint64(encode.NOP)}, New: livesafe.Value{Bits: 0x14000002}},
			"slot2 changed from nop to b 0x400020; only NOP <-> BL and BL <-> BL are allowed"},
		{livesafe.Problem{Detail: "file type changed from ET_EXEC to ET_DYN"}, "file type changed from ET_EXEC to ET_DYN"},
	} {
		if got := problemDetail(tc.p); got != tc.want {
			t.Errorf("code %d:\n got %q\nwant %q", tc.p.Code, got, tc.want)
		}
	}
}

// An intermediate proven by its run says how, after what slot2 holds.
func TestAgainstProvenByRun(t *testing.T) {
	r := &livesafe.Report{Intermediates: []livesafe.Intermediate{
		{Order: livesafe.OrderLiteralFirst, Like: "old", Words: livesafe.Words{Slot2: 0x94000002}, CallSite: 0x400010},
		{Order: livesafe.OrderLiteralFirst, Like: "old", Words: livesafe.Words{Slot2: 0x94000002}, CallSite: 0x400010}},
		Counts: livesafe.Counts{Intermediates: 2, Unproven: 2}}
	r.RecordRun(0, nil)
	r.RecordRun(1, nil)
	r.ProveByRun(0, livesafe.ProofThroughDirectCall, 0x500000)
	r.ProveByRun(1, livesafe.ProofStraightToDirect, 0x400018)
	j := Against(r)
	for i, want := range []string{
		"slot2 holds bl 0x400018 while the literal is new: the old call reads the new ops; the old call reaches direct trampoline 0x500000 through op->direct_call, as the new BL does",
		"slot2 holds bl 0x400018 while the literal is new: the old call reads the new ops; the old BL goes straight to direct trampoline 0x400018, which reads no literal",
	} {
		if got := j.Intermediates[i].Detail; got != want || !j.Intermediates[i].Proven {
			t.Errorf("intermediate %d: proven %v, detail\n got %q\nwant %q", i, j.Intermediates[i].Proven, got, want)
		}
	}
	if !r.LiveSafe || r.Counts.Unproven != 0 {
		t.Errorf("live-safe %v, unproven %d", r.LiveSafe, r.Counts.Unproven)
	}
}
