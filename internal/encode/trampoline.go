// SPDX-License-Identifier: Apache-2.0

package encode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/arch/arm64/arm64asm"
)

// FixupKind says how a symbol's address is patched into a Program word.
// encode knows no ELF numbers: the object builder maps kinds to relocation
// types.
type FixupKind uint8

const (
	// FixupAdrpPage: an ADRP's immhi:immlo := page(Sym+Addend) - page(P)
	// (R_AARCH64_ADR_PREL_PG_HI21).
	FixupAdrpPage FixupKind = iota + 1
	// FixupAddLo12: an ADD immediate's imm12 := (Sym+Addend) & 0xfff
	// (R_AARCH64_ADD_ABS_LO12_NC).
	FixupAddLo12
)

func (k FixupKind) String() string {
	switch k {
	case FixupAdrpPage:
		return "adrp-page"
	case FixupAddLo12:
		return "add-lo12"
	}
	return fmt.Sprintf("FixupKind(%d)", k)
}

// Fixup asks for Words[Index] to be completed with the address of Sym+Addend.
type Fixup struct {
	Index  int
	Kind   FixupKind
	Sym    string
	Addend int64
}

// Program is a position-independent function as data: its words, the
// symbol references still to resolve, and how it wants to be marked.
type Program struct {
	Name   string   // global function symbol
	Words  []uint32 // instructions, little-endian when written out
	Fixups []Fixup
	// BTI is true when every indirect entry point starts with a BTI landing
	// pad, so an object holding the program may claim BTI compatibility.
	BTI bool
	// Labels names word indices that are branch targets, for Asm.
	Labels map[int]string
	// Comments annotate words, for Asm.
	Comments map[int]string
	// Entries are further global function symbols inside the program, in
	// word order after Name (which is at word 0).
	Entries []Entry
}

// Entry is a second way into a Program: a global function symbol at word
// Index.
type Entry struct {
	Name  string
	Index int
}

// Bytes returns the program's words as little-endian bytes.
func (p Program) Bytes() []byte {
	b := make([]byte, 0, 4*len(p.Words))
	for _, w := range p.Words {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	return b
}

// Layout of the regs area the trampoline passes to op->func in x3: Linux's
// arm64 struct ftrace_regs (9 argument registers, a spare slot, then the
// call site's fp, lr, sp and the pc to return to).
const (
	RegsX0   = 0   // x0..x8 at RegsX0 + 8*n
	RegsFP   = 80  // x29 at the call site
	RegsLR   = 88  // x9: the traced function's return address (parent_ip)
	RegsSP   = 96  // SP at the call site
	RegsPC   = 104 // X30 on entry: the instruction after the BL
	RegsSize = 112
	// The trampoline's frame: the regs area, then two frame records (the
	// trampoline's at RegsSize, the call site's at RegsSize+16).
	TrampolineFrame = RegsSize + 32
)

// LiteralOffset is where the ops literal sits relative to (X30 &^ 7) on
// entry: the BL is at literal+12 (no BTI) or literal+16 (BTI), so X30 is
// literal+16 or literal+20, and aligning down to 8 gives literal+16.
const LiteralOffset = -16

// The 5,3 layout (three words before the entry; the 8-aligned pair holds the
// literal, the other word is spare). X30 = BL+4 = entry+8 (no BTI) or
// entry+12 (BTI); the literal is at entry-8 when the entry is 0 mod 8 and
// at entry-12 when it is 4 mod 8:
//
//	entry mod 8  BTI  X30       X30 mod 8  literal   (X30&^7)-16
//	0            no   entry+8   0          X30-16    X30-16  ok
//	0            yes  entry+12  4          X30-20    X30-20  ok
//	4            no   entry+8   4          X30-20    X30-20  ok
//	4            yes  entry+12  0          X30-24    X30-16  wrong
//
// The first and last rows have the same X30 mod 8 but different literal
// offsets, so no computation on X30 alone finds the literal in every case:
// the missing bit has to come from memory (reading the code word at X30-12
// to test for BTI: a load, a compare and a branch on every traced call) or
// from the BL target, which the patcher chooses knowing the site. ftpatch
// uses the BL target: the trampoline has a second entry, AltEntryName(name),
// that loads the literal at X30-24 and joins the common path; every other
// site, 4,2 or 5,3, calls the first entry, whose code is unchanged.
const LiteralOffsetAlt = -24

// AltEntryName is the symbol of the trampoline's second entry, for 5,3
// sites with BTI whose entry is 4 mod 8.
func AltEntryName(name string) string { return name + "_lit24" }

// TrampolineEntry says which entry of the call-ops trampoline finds the
// literal at literal for a BL whose X30 (the BL's address + 4) is x30: the
// first (alt false) when (x30 &^ 7) - 16 == literal, the second (alt true)
// when x30 - 24 == literal, and ok false when neither.
func TrampolineEntry(x30, literal uint64) (alt, ok bool) {
	switch literal {
	case x30&^7 - 16:
		return false, true
	case x30 - 24:
		return true, literal%8 == 0
	}
	return false, false
}

// TrampolineOptions selects the variant of the common trampoline.
type TrampolineOptions struct {
	Name string // symbol name; default "ftrace_caller"
	// Classic builds the variant for sites without a literal
	// (-fpatchable-function-entry=2): op is &OpsSym, reached through
	// ADRP+ADD fixups, and is never NULL.
	Classic bool
	OpsSym  string
	// DirectCalls adds the direct-call path of Linux's ftrace_caller
	// (DYNAMIC_FTRACE_WITH_DIRECT_CALLS, Linux 6.4+): after loading a
	// non-NULL op, load op->direct_call at DirectCallOffset (0: the
	// default, DefaultDirectCallOffset) and, when it is non-zero, branch to
	// it with X9 = the parent's return address and X30 = the return into
	// the traced function, untouched; the direct trampoline returns to X30
	// with X30 = X9 itself. Call-ops only.
	DirectCalls      bool
	DirectCallOffset int64
}

// DefaultDirectCallOffset is where struct ftrace_ops holds direct_call in
// Linux 6.12 on arm64 as Debian 13 builds it (asm-offsets
// FTRACE_OPS_DIRECT_CALL; its ftrace_caller loads it with
// ldr x17, [x11, #208]). The offset depends on the kernel's configuration
// (the ops' hash locks grow with lock debugging): take the value from the
// kernel's own ftrace_caller or asm-offsets.h when they differ.
const DefaultDirectCallOffset = 208

// MaxDirectCallOffset is the farthest op->direct_call the trampoline's
// LDR X17, [X11, #off] reaches: its unsigned 12-bit offset, scaled by 8.
const MaxDirectCallOffset = 4095 * 8

// DirectCallOffsetError is a direct-call offset the trampoline cannot load
// op->direct_call from.
type DirectCallOffsetError struct{ Off int64 }

func (e *DirectCallOffsetError) Error() string {
	return fmt.Sprintf("direct-call offset %d: %s", e.Off, e.Rule())
}

// Rule says which offsets are allowed.
func (e *DirectCallOffsetError) Rule() string {
	return fmt.Sprintf("must be a multiple of 8 from 8 (op->func is at 0) to %d", MaxDirectCallOffset)
}

// DirectCallOffset is the one rule for the offset of op->direct_call in
// struct ftrace_ops, for every command that takes one (the trampoline's
// LDR, enable reading --ops' direct_call, verify): 0 means
// DefaultDirectCallOffset; otherwise a multiple of 8 (the field is a
// pointer, op->func at 0) from 8 to MaxDirectCallOffset. Errors are
// *DirectCallOffsetError.
func DirectCallOffset(off int64) (int64, error) {
	switch {
	case off == 0:
		return DefaultDirectCallOffset, nil
	case off < 8 || off%8 != 0 || off > MaxDirectCallOffset:
		return 0, &DirectCallOffsetError{Off: off}
	}
	return off, nil
}

// ErrTrampoline reports bad trampoline options.
var ErrTrampoline = errors.New("bad trampoline options")

// Trampoline builds the common trampoline, after Linux's ftrace_caller in
// arch/arm64/kernel/entry-ftrace.S with DYNAMIC_FTRACE_WITH_CALL_OPS.
//
// It is reached by `BL` from a patch site after `MOV X9, X30`, so on entry
// X30 is the instruction after the BL and X9 the traced function's own
// return address. x0-x8 (arguments, indirect result) and x19-x29 are live;
// x9-x17 are free. It loads op from the literal at (X30 &^ 7) - 16 (at its
// second entry, AltEntryName, from X30 - 24: see LiteralOffsetAlt); a NULL
// op returns at once (touching only x10, x11 and X30); otherwise it saves
// x0-x8 and the call site's fp/lr/sp/pc in a struct ftrace_regs, builds
// frame records for the call site and for itself, calls
// op->func(ip = X30-4, parent_ip = X9, op, regs) through the pointer at
// offset 0 of op, restores x0-x8 and x29, sets X30 to the parent and
// returns into the traced function. SP stays 16-byte aligned throughout.
func Trampoline(opts TrampolineOptions) (Program, error) {
	if opts.Name == "" {
		opts.Name = "ftrace_caller"
	}
	if opts.Classic && opts.OpsSym == "" {
		return Program{}, fmt.Errorf("%w: the classic trampoline needs an ops symbol", ErrTrampoline)
	}
	if opts.DirectCalls && opts.Classic {
		return Program{}, fmt.Errorf("%w: direct calls need call-ops sites (the op comes from the literal)", ErrTrampoline)
	}
	directOff, err := DirectCallOffset(opts.DirectCallOffset)
	if err != nil && opts.DirectCalls {
		return Program{}, fmt.Errorf("%w: %w", ErrTrampoline, err)
	}
	if !opts.Classic && opts.OpsSym != "" {
		return Program{}, fmt.Errorf("%w: an ops symbol is only for the classic trampoline (call-ops sites carry their own)", ErrTrampoline)
	}
	b := builder{p: Program{Name: opts.Name, BTI: true, Labels: map[int]string{}, Comments: map[int]string{}}}
	b.word(BTIC, "landing pad for BR x16/x17 veneers")
	if opts.Classic {
		b.fixup(ADRP{Rd: X11}, Fixup{Kind: FixupAdrpPage, Sym: opts.OpsSym}, "op = &"+opts.OpsSym)
		b.fixup(ADD{Rd: X11, Rn: X11}, Fixup{Kind: FixupAddLo12, Sym: opts.OpsSym}, "")
	} else {
		b.add(BIC{Rd: X11, Rn: X30, Imm: 7}, "x11 = literal + 16")
		b.add(LDUR{Rt: X11, Rn: X11, Imm: LiteralOffset}, "op")
		b.label("have_op") // the second entry joins here with op in x11
		b.branch("null", func(off int64) encoder { return CBZ{Rt: X11, Offset: off} }, "no op: straight back")
		if opts.DirectCalls {
			b.add(LDR{Rt: X17, Rn: X11, Imm: directOff}, "op->direct_call")
			b.branch("direct", func(off int64) encoder { return CBNZ{Rt: X17, Offset: off} }, "direct trampoline: X9, X30 as on entry")
		}
	}
	b.add(MOVSP{Rd: X10, Rn: SP}, "call site's SP")
	b.add(SUB{Rd: SP, Rn: SP, Imm: TrampolineFrame}, "regs area + two frame records")
	for r := X0; r < X8; r += 2 {
		b.add(STP{Rt: r, Rt2: r + 1, Rn: SP, Imm: RegsX0 + 8*int64(r)}, "")
	}
	b.add(STR{Rt: X8, Rn: SP, Imm: RegsX0 + 8*8}, "")
	b.add(STR{Rt: X29, Rn: SP, Imm: RegsFP}, "regs->fp")
	b.add(STR{Rt: X9, Rn: SP, Imm: RegsLR}, "regs->lr = parent")
	b.add(STR{Rt: X10, Rn: SP, Imm: RegsSP}, "regs->sp")
	b.add(STR{Rt: X30, Rn: SP, Imm: RegsPC}, "regs->pc = after the BL")
	b.add(STP{Rt: X29, Rt2: X9, Rn: SP, Imm: RegsSize + 16}, "frame record of the call site")
	b.add(ADD{Rd: X29, Rn: SP, Imm: RegsSize + 16}, "")
	b.add(STP{Rt: X29, Rt2: X30, Rn: SP, Imm: RegsSize}, "our frame record")
	b.add(ADD{Rd: X29, Rn: SP, Imm: RegsSize}, "")
	b.add(SUB{Rd: X0, Rn: X30, Imm: 4}, "ip: the BL")
	b.add(MOVReg{Rd: X1, Rm: X9}, "parent_ip")
	b.add(MOVReg{Rd: X2, Rm: X11}, "op")
	b.add(MOVSP{Rd: X3, Rn: SP}, "regs")
	b.add(LDR{Rt: X4, Rn: X2, Imm: 0}, "op->func")
	b.add(BLR{Rn: X4}, "op->func(ip, parent_ip, op, regs)")
	for r := X0; r < X8; r += 2 {
		b.add(LDP{Rt: r, Rt2: r + 1, Rn: SP, Imm: RegsX0 + 8*int64(r)}, "")
	}
	b.add(LDR{Rt: X8, Rn: SP, Imm: RegsX0 + 8*8}, "")
	b.add(LDR{Rt: X29, Rn: SP, Imm: RegsFP}, "")
	b.add(LDR{Rt: X30, Rn: SP, Imm: RegsLR}, "X30 = parent")
	b.add(LDR{Rt: X9, Rn: SP, Imm: RegsPC}, "back into the traced function")
	b.add(ADD{Rd: SP, Rn: SP, Imm: TrampolineFrame}, "")
	b.add(RET{Rn: X9}, "")
	if !opts.Classic {
		b.label("null")
		b.backToTraced()
		if opts.DirectCalls {
			b.label("direct")
			b.add(BR{Rn: X17}, "x17: a BTI c landing pad accepts it")
		}

		// Second entry: 5,3 sites with BTI whose entry is 4 mod 8 (see
		// LiteralOffsetAlt). As many instructions to the join as the first.
		b.entry(AltEntryName(opts.Name))
		b.word(BTIC, "landing pad for BR x16/x17 veneers")
		b.add(LDUR{Rt: X11, Rn: X30, Imm: LiteralOffsetAlt}, "op: the literal at X30-24")
		b.branch("have_op", func(off int64) encoder { return B{From: 0, To: uint64(off)} }, "") // off: relative to the B
	}
	return b.finish()
}

// StubDirectTrampoline is Linux's simplest direct trampoline
// (ftrace_stub_direct_tramp): a BTI C landing pad, then straight back into
// the traced function with X30 = its parent (X9), as the common
// trampoline's no-op path returns. Its operands are fixed, so it fails only
// if an encoder does (trampoline_test decodes every word).
func StubDirectTrampoline() (Program, error) {
	b := builder{p: Program{Name: "ftrace_stub_direct_tramp", BTI: true, Labels: map[int]string{}, Comments: map[int]string{}}}
	b.word(BTIC, "")
	b.backToTraced()
	return b.finish()
}

// backToTraced returns into the traced function with X30 = the parent:
// the return address is in X30, the parent in X9; X10 is clobbered.
func (b *builder) backToTraced() {
	b.add(MOVReg{Rd: X10, Rm: X30}, "")
	b.add(MOVReg{Rd: X30, Rm: X9}, "X30 = parent")
	b.add(RET{Rn: X10}, "")
}

type encoder interface{ Encode() (uint32, error) }

// builder assembles a Program with forward branches to labels.
type builder struct {
	p       Program
	err     error
	pending []pendingBranch
	labels  map[string]int
}

type pendingBranch struct {
	index int
	label string
	make  func(off int64) encoder
}

func (b *builder) word(w uint32, comment string) {
	if comment != "" {
		b.p.Comments[len(b.p.Words)] = comment
	}
	b.p.Words = append(b.p.Words, w)
}

func (b *builder) add(e encoder, comment string) {
	w, err := e.Encode()
	if err != nil && b.err == nil {
		b.err = fmt.Errorf("word %d: %w", len(b.p.Words), err)
	}
	b.word(w, comment)
}

func (b *builder) fixup(e encoder, f Fixup, comment string) {
	f.Index = len(b.p.Words)
	b.p.Fixups = append(b.p.Fixups, f)
	b.add(e, comment)
}

func (b *builder) branch(label string, mk func(off int64) encoder, comment string) {
	b.pending = append(b.pending, pendingBranch{len(b.p.Words), label, mk})
	b.word(0, comment)
}

func (b *builder) label(name string) {
	if b.labels == nil {
		b.labels = map[string]int{}
	}
	b.labels[name] = len(b.p.Words)
	b.p.Labels[len(b.p.Words)] = ".L" + b.p.Name + "_" + name
}

func (b *builder) entry(name string) {
	b.p.Entries = append(b.p.Entries, Entry{Name: name, Index: len(b.p.Words)})
}

func (b *builder) finish() (Program, error) {
	for _, pb := range b.pending {
		to, ok := b.labels[pb.label]
		if !ok {
			return Program{}, fmt.Errorf("label %q undefined", pb.label)
		}
		w, err := pb.make(int64(to-pb.index) * 4).Encode()
		if err != nil {
			return Program{}, fmt.Errorf("word %d: %w", pb.index, err)
		}
		b.p.Words[pb.index] = w
	}
	if b.err != nil {
		return Program{}, b.err
	}
	return b.p, nil
}

// Asm renders the program as GNU assembler text. Each instruction is
// rendered from its word by arm64asm, so the text cannot disagree with
// Words; only named hints such as BTI (which arm64asm shows as "hint #n";
// see HintName) and the operands that fixups complete (a symbol instead of
// the zero placeholder) are written here.
func (p Program) Asm() (string, error) {
	fix := map[int]Fixup{}
	for _, f := range p.Fixups {
		fix[f.Index] = f
	}
	var s strings.Builder
	fmt.Fprintf(&s, "// %s: generated by ftpatch; do not edit.\n", p.Name)
	s.WriteString("\t.text\n")
	fmt.Fprintf(&s, "\t.globl\t%s\n", p.Name)
	fmt.Fprintf(&s, "\t.type\t%s, %%function\n", p.Name)
	s.WriteString("\t.p2align\t3\n")
	fmt.Fprintf(&s, "%s:\n", p.Name)
	entries, cur := map[int]string{}, p.Name
	for _, e := range p.Entries {
		entries[e.Index] = e.Name
	}
	for i, w := range p.Words {
		if e, ok := entries[i]; ok {
			fmt.Fprintf(&s, "\t.size\t%s, .-%s\n", cur, cur)
			cur = e
			fmt.Fprintf(&s, "\t.globl\t%s\n", e)
			fmt.Fprintf(&s, "\t.type\t%s, %%function\n", e)
			fmt.Fprintf(&s, "%s:\n", e)
		}
		if l, ok := p.Labels[i]; ok {
			fmt.Fprintf(&s, "%s:\n", l)
		}
		text, err := p.insnText(i, w, fix)
		if err != nil {
			return "", err
		}
		line := "\t" + text
		if c := p.Comments[i]; c != "" {
			line = fmt.Sprintf("%-40s// %s", line, c)
		}
		s.WriteString(line + "\n")
	}
	fmt.Fprintf(&s, "\t.size\t%s, .-%s\n", cur, cur)
	return s.String(), nil
}

// insnText is word i as an assembler line's instruction: Disasm's text
// (decode: named hints, arm64asm's GNU syntax) with a tab after the
// mnemonic, and a fixup's symbol in place of its placeholder operand.
func (p Program) insnText(i int, w uint32, fix map[int]Fixup) (string, error) {
	f, isFixup := fix[i]
	if !isFixup {
		text, ok := decode(w)
		if !ok {
			return "", fmt.Errorf("word %d (%#08x): not an instruction", i, w)
		}
		if mn, ops, ok := strings.Cut(text, " "); ok {
			return mn + "\t" + ops, nil
		}
		return text, nil
	}
	if n, ok := HintName(w); ok {
		return "", fmt.Errorf("word %d (%s): fixup %v does not apply", i, n, f.Kind)
	}
	in, err := decodeInst(w)
	if err != nil {
		return "", fmt.Errorf("word %d (%#08x): %w", i, w, err)
	}
	text := arm64asm.GNUSyntax(in)
	mn, ops, _ := strings.Cut(text, " ")
	sym := f.Sym
	if f.Addend != 0 {
		sym = fmt.Sprintf("%s%+d", f.Sym, f.Addend)
	}
	// Replace the last operand, the placeholder the fixup completes.
	cut := strings.LastIndex(ops, ", ")
	if cut < 0 {
		return "", fmt.Errorf("word %d (%s): no operand for fixup %v", i, text, f.Kind)
	}
	switch {
	case f.Kind == FixupAdrpPage && in.Op == arm64asm.ADRP:
		ops = ops[:cut] + ", " + sym
	case f.Kind == FixupAddLo12 && in.Op == arm64asm.ADD:
		ops = ops[:cut] + ", #:lo12:" + sym
	default:
		return "", fmt.Errorf("word %d (%s): fixup %v does not apply", i, text, f.Kind)
	}
	return mn + "\t" + ops, nil
}
