// SPDX-License-Identifier: Apache-2.0

// Package encode knows AArch64 instructions and nothing of ELF. Every
// instruction the tool writes is a typed value whose Encode checks its
// operands and returns an error instead of panicking. Words the tool only
// checks (NOP, BTI, RET, …) are named constants here, and Disasm is the
// tool's one disassembler.
//
// Instructions are always little-endian 32-bit words, whatever the data
// byte order of the file that holds them.
package encode

import (
	"errors"
	"fmt"
)

// Fixed words the patch sites use.
const (
	NOP      uint32 = 0xd503201f // HINT #0
	BTIC     uint32 = 0xd503245f // HINT #34: BTI C
	BTIJ     uint32 = 0xd503249f // HINT #36: BTI J
	BTIJC    uint32 = 0xd50324df // HINT #38: BTI JC
	MovX9X30 uint32 = 0xaa1e03e9 // ORR X9, XZR, X30 (MOV X9, X30)
)

// Errors returned by branch encoders; test with errors.Is.
var (
	ErrMisaligned = errors.New("misaligned branch")
	ErrOutOfRange = errors.New("branch out of range")
)

// BLRange is the reach of BL in either direction: imm26 words, ±128 MiB.
const BLRange = 1 << 27

// BL is a branch with link from the instruction at From to To.
//
//	31 30   26 25                       0
//	 1  0 0101 |          imm26          |   imm26 = (To - From) / 4
type BL struct{ From, To uint64 }

// Encode checks that both addresses are word aligned and To is within
// ±128 MiB of From.
func (b BL) Encode() (uint32, error) { return encodeImm26("BL", BLZero, b.From, b.To) }

// B is a branch (without link) from the instruction at From to To: BL's
// encoding with bit 31 clear; X30 is left alone.
//
//	31 30   26 25                       0
//	 0  0 0101 |          imm26          |   imm26 = (To - From) / 4
type B struct{ From, To uint64 }

// Encode checks as BL.Encode does.
func (b B) Encode() (uint32, error) { return encodeImm26("B", BSelf, b.From, b.To) }

func encodeImm26(insn string, op uint32, from, to uint64) (uint32, error) {
	if from%4 != 0 || to%4 != 0 {
		return 0, fmt.Errorf("%s from %#x to %#x: %w", insn, from, to, ErrMisaligned)
	}
	d := int64(to - from)
	if d < -BLRange || d >= BLRange {
		return 0, fmt.Errorf("%s from %#x to %#x (distance %d bytes, reach ±128 MiB): %w", insn, from, to, d, ErrOutOfRange)
	}
	return op | uint32(d>>2)&0x03ffffff, nil
}

// BRK is a breakpoint instruction: it raises a debug exception with imm16
// in its syndrome, and does nothing else (verify plants it where a run must
// stop: Unicorn reports it to a UC_HOOK_INTR hook with PC at the BRK).
//
//	31         21 20            5 4     0
//	 11010100001 |     imm16     | 00000 |
type BRK struct{ Imm16 uint16 }

// Encode never fails: every imm16 is valid.
func (b BRK) Encode() (uint32, error) { return 0xd4200000 | uint32(b.Imm16)<<5, nil }

// IsBL reports whether w is a BL instruction.
func IsBL(w uint32) bool { return w&0xfc000000 == BLZero }

// IsBTI reports whether w is any BTI hint (C, J or JC; also plain BTI).
func IsBTI(w uint32) bool { return w&0xffffff3f == 0xd503241f }

// BLTarget returns the destination of the BL (or B) instruction w placed
// at pc.
func BLTarget(w uint32, pc uint64) uint64 {
	imm := int64(int32(w<<6) >> 6) // sign-extend imm26
	return pc + uint64(imm*4)
}
