// SPDX-License-Identifier: Apache-2.0

package encode

import (
	"fmt"
	"math/bits"
)

// ADD adds an immediate: Rd = Rn + Imm (64-bit).
//
//	31 30 29 28    23 22 21          10 9  5 4  0
//	sf op  S  1 0 0 0 1 0 sh    imm12     Rn   Rd     sf=1, op=0 ADD / 1 SUB, S=0
//
// Rd 31 and Rn 31 are both SP. Imm is in [0, 4095], or a multiple of 4096
// up to 4095<<12 (encoded with sh=1, LSL #12).
type ADD struct {
	Rd, Rn Reg
	Imm    int64
}

// SUB subtracts an immediate: Rd = Rn - Imm; see ADD.
type SUB ADD

func (i ADD) Encode() (uint32, error) { return encodeAddSub("add", 0, i) }
func (i SUB) Encode() (uint32, error) { return encodeAddSub("sub", 1, ADD(i)) }

func encodeAddSub(insn string, op uint32, i ADD) (uint32, error) {
	if err := checkRegs(insn, "Rd", i.Rd, "Rn", i.Rn); err != nil {
		return 0, err
	}
	var sh, imm12 uint32
	switch {
	case i.Imm >= 0 && i.Imm <= 4095:
		imm12 = uint32(i.Imm)
	case i.Imm > 0 && i.Imm%4096 == 0 && i.Imm>>12 <= 4095:
		sh, imm12 = 1, uint32(i.Imm>>12)
	default:
		return 0, fmt.Errorf("%s: immediate %d is not imm12 or imm12<<12: %w", insn, i.Imm, ErrBadImmediate)
	}
	return 0x91000000 | op<<30 | sh<<22 | imm12<<10 | uint32(i.Rn)<<5 | uint32(i.Rd), nil
}

// AddLo12 is the ADD that completes an ADRP: Rd = Rn + (addr & 0xfff).
func AddLo12(rd, rn Reg, addr uint64) ADD { return ADD{Rd: rd, Rn: rn, Imm: int64(addr & 0xfff)} }

// MOVSP is MOV to or from SP, the alias of ADD Rd, Rn, #0. Register 31 is
// SP in both operands, and at least one of them must be SP (otherwise the
// word is a plain ADD, which is MOVReg's job).
type MOVSP struct{ Rd, Rn Reg }

func (i MOVSP) Encode() (uint32, error) {
	if i.Rd != SP && i.Rn != SP {
		return 0, fmt.Errorf("mov: neither %v nor %v is sp (use MOVReg): %w", i.Rd, i.Rn, ErrBadRegister)
	}
	return ADD{Rd: i.Rd, Rn: i.Rn}.Encode()
}

// MOVReg copies a register: MOV Rd, Rm, the alias of ORR Rd, XZR, Rm.
//
//	31 30 29 28   24 23 22 21 20  16 15    10 9  5 4  0
//	sf  0  1  0 1 0 1 0  0  0   Rm     imm6    Rn   Rd     sf=1, shift=0, imm6=0, Rn=XZR
//
// Register 31 is XZR in both operands (so MOVReg cannot touch SP; use MOVSP).
type MOVReg struct{ Rd, Rm Reg }

func (i MOVReg) Encode() (uint32, error) {
	if err := checkRegs("mov", "Rd", i.Rd, "Rm", i.Rm); err != nil {
		return 0, err
	}
	return 0xaa0003e0 | uint32(i.Rm)<<16 | uint32(i.Rd), nil
}

// AND is the 64-bit logical AND with a bitmask immediate: Rd = Rn & Imm.
//
//	31 30 29 28    23 22 21  16 15  10 9  5 4  0
//	sf opc=00 1 0 0 1 0 0  N  immr   imms   Rn   Rd     sf=1
//
// Rd 31 is SP (AND immediate, unlike ANDS, may write SP); Rn 31 is XZR.
// Imm must be a bitmask immediate (see EncodeBitmask).
type AND struct {
	Rd, Rn Reg
	Imm    uint64
}

func (i AND) Encode() (uint32, error) {
	if err := checkRegs("and", "Rd", i.Rd, "Rn", i.Rn); err != nil {
		return 0, err
	}
	n, immr, imms, ok := EncodeBitmask(i.Imm)
	if !ok {
		return 0, fmt.Errorf("and: %#x is not a bitmask immediate: %w", i.Imm, ErrBadImmediate)
	}
	return 0x92000000 | n<<22 | immr<<16 | imms<<10 | uint32(i.Rn)<<5 | uint32(i.Rd), nil
}

// BIC clears bits: Rd = Rn & ^Imm. The immediate form is an assembler alias
// of AND with the inverted mask (so BIC{X11, X30, 7} computes x30 & ~7), and
// disassembles as AND.
type BIC AND

func (i BIC) Encode() (uint32, error) {
	w, err := AND{Rd: i.Rd, Rn: i.Rn, Imm: ^i.Imm}.Encode()
	if err != nil {
		return 0, fmt.Errorf("bic #%#x: %w", i.Imm, err)
	}
	return w, nil
}

// EncodeBitmask returns the N:immr:imms fields encoding the 64-bit logical
// immediate v, or ok=false when v is not one. A bitmask immediate is a
// element of 2, 4, 8, 16, 32 or 64 bits, replicated across 64 bits, whose
// value is a run of 1..size-1 ones rotated right by immr; all-zeros and
// all-ones are not encodable.
//
//	size  N  imms
//	 64   1  xxxxxx      x = ones-1
//	 32   0  0xxxxx
//	 16   0  10xxxx
//	  8   0  110xxx
//	  4   0  1110xx
//	  2   0  11110x
func EncodeBitmask(v uint64) (n, immr, imms uint32, ok bool) {
	if v == 0 || v == ^uint64(0) {
		return 0, 0, 0, false
	}
	// The smallest element size whose replication gives v.
	size := uint(64)
	for size > 2 {
		half := size / 2
		m := uint64(1)<<half - 1
		if v&m != (v>>half)&m {
			break
		}
		size = half
	}
	mask := ^uint64(0) >> (64 - size)
	elt := v & mask
	ones := bits.OnesCount64(elt)
	run := uint64(1)<<ones - 1
	// Find r with rotr(elt, r) == run; then elt == ROR(run, size-r).
	for r := uint(0); r < size; r++ {
		rot := (elt>>r | elt<<(size-r)) & mask
		if rot == run {
			immr = uint32((size - r) % size)
			imms = uint32(^(size*2-1))&0x3f | uint32(ones-1)
			if size == 64 {
				n = 1
			}
			return n, immr, imms, true
		}
	}
	return 0, 0, 0, false // ones not contiguous under any rotation
}
