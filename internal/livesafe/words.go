// SPDX-License-Identifier: Apache-2.0

package livesafe

// The words of a patch site, the intermediate state between two live
// writes, and how words are shown in changes and problems.

import (
	"debug/elf"
	"encoding/binary"
	"io"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/elfwrite"
	"github.com/ftpatch/ftpatch/internal/encode"
)

// Words are a site's words in one state. In ET_REL files the literal
// and the BL get their values from relocations: Ops and Target (as the
// scanner reports them) then matter more than the raw words.
type Words struct {
	HasLiteral bool
	Literal    uint64 // raw 8 bytes, little-endian
	Ops        *elfscan.Ref
	Slot1      uint32
	Slot2      uint32
	Target     *elfscan.Ref
}

// WordsOf returns the words a scan found at a site.
func WordsOf(s elfscan.Site) Words {
	return Words{HasLiteral: s.Layout.HasLiteral() && s.LiteralOff() != elfscan.NoOffset,
		Literal: s.LiteralWord, Ops: s.Ops(), Slot1: s.Slot1Word, Slot2: s.Slot2Word, Target: s.Target()}
}

// IntermediateState is the state between a site's two live writes, when both
// its literal and its slot2 change.
type IntermediateState struct {
	Words   Words
	Order   string // OrderLiteralFirst or OrderCallFirst
	LikeOld bool   // it must behave as the old state (else as the new one)
	Proven  bool   // statically: slot2 is NOP there, so no code reads the literal
}

// sameRef reports whether two scanned references name the same place.
func sameRef(a, b *elfscan.Ref) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Addr == b.Addr && a.Sym == b.Sym
}

// IntermediateOf returns the intermediate state between orig and
// patched, the site as it is after the first of two writes, or false when
// the change takes at most one live write (literal and slot2 do not both
// change). Enable (old slot2 not a BL) writes the literal first, as Linux's
// ftrace_make_call: the intermediate is the old words with the new literal
// and must behave as the old state. Disable (new slot2 NOP) removes the BL
// first: the new words with the old literal, behaving as the new state. A
// BL -> other BL with a new literal leaves the old BL reading the new
// literal: reported, never proven.
func IntermediateOf(orig, patched elfscan.Site) (IntermediateState, bool) {
	o, p := WordsOf(orig), WordsOf(patched)
	litChanged := o.HasLiteral && p.HasLiteral && (o.Literal != p.Literal || !sameRef(o.Ops, p.Ops))
	slot2Changed := o.Slot2 != p.Slot2 || !sameRef(o.Target, p.Target)
	if !litChanged || !slot2Changed {
		return IntermediateState{}, false
	}
	var in IntermediateState
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
	in.Proven = in.Words.Slot2 == encode.NOP
	return in, true
}

// slot2Value is a slot2 word w with its relocation rel (ET_REL files),
// marked when it is a BL an object does not relocate (it would call
// itself).
func (a *comparison) slot2Value(w uint32, rel string) Value {
	return Value{Bits: uint64(w), Rel: rel, Unrelocated: a.rel && rel == "" && encode.IsBL(w)}
}

// fileWord is the word at file offset off of r, marked Unread when it
// cannot be read.
func fileWord(r io.ReaderAt, off int64) Value {
	var b [4]byte
	if off < 0 || elfwrite.ReadFull(r, b[:], off) != nil {
		return Value{Unread: true}
	}
	return Value{Bits: uint64(binary.LittleEndian.Uint32(b[:]))}
}

// relWord is fileWord at offset off of ET_REL section sec of f.
func relWord(r io.ReaderAt, sec int, f *elf.File, off uint64) Value {
	if sec <= 0 || sec >= len(f.Sections) {
		return Value{Unread: true}
	}
	return fileWord(r, int64(f.Sections[sec].Offset+off))
}
