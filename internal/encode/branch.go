// SPDX-License-Identifier: Apache-2.0

package encode

import "fmt"

// CBZ branches to PC+Offset when the 64-bit Rt is zero.
//
//	31 30   25 24 23                 5 4  0
//	sf 0 1 1 0 1 op        imm19          Rt     sf=1, op=0 CBZ / 1 CBNZ; imm19 = Offset/4
//
// Rt 31 is XZR. Offset is relative to the CBZ itself, a multiple of 4 in
// [-1 MiB, 1 MiB-4].
type CBZ struct {
	Rt     Reg
	Offset int64
}

// CBNZ branches to PC+Offset when the 64-bit Rt is not zero; see CBZ.
type CBNZ CBZ

func (i CBZ) Encode() (uint32, error)  { return encodeCB("cbz", 0, i) }
func (i CBNZ) Encode() (uint32, error) { return encodeCB("cbnz", 1, CBZ(i)) }

func encodeCB(insn string, op uint32, i CBZ) (uint32, error) {
	if err := checkRegs(insn, "Rt", i.Rt); err != nil {
		return 0, err
	}
	if i.Offset%4 != 0 {
		return 0, fmt.Errorf("%s: offset %d: %w", insn, i.Offset, ErrMisaligned)
	}
	if i.Offset < -1<<20 || i.Offset >= 1<<20 {
		return 0, fmt.Errorf("%s: offset %d (reach ±1 MiB): %w", insn, i.Offset, ErrOutOfRange)
	}
	return 0xb4000000 | op<<24 | fieldBits(i.Offset/4, 19)<<5 | uint32(i.Rt), nil
}

// BLR calls the address in Rn, setting X30; BR jumps to it; RET returns to
// it (a hint to the return predictor, otherwise as BR).
//
//	31      25 24 23 22 21 20    16 15    10 9  5 4   0
//	 1 1 0 1 0 1 1  0  opc  1 1 1 1 1  0 0 0 0 0 0  Rn  0 0 0 0 0    opc: 00 BR, 01 BLR, 10 RET
//
// Rn 31 would be XZR, a branch to address 0; it is refused.
type BLR struct{ Rn Reg }

// BR jumps to Rn; see BLR.
type BR struct{ Rn Reg }

// RET returns to Rn (GNU syntax omits Rn when it is X30); see BLR.
type RET struct{ Rn Reg }

func (i BLR) Encode() (uint32, error) { return encodeBranchReg("blr", 1, i.Rn) }
func (i BR) Encode() (uint32, error)  { return encodeBranchReg("br", 0, i.Rn) }
func (i RET) Encode() (uint32, error) { return encodeBranchReg("ret", 2, i.Rn) }

func encodeBranchReg(insn string, opc uint32, rn Reg) (uint32, error) {
	if rn >= 31 {
		return 0, fmt.Errorf("%s: Rn = %d (31 is XZR, a branch to 0): %w", insn, rn, ErrBadRegister)
	}
	return 0xd61f0000 | opc<<21 | uint32(rn)<<5, nil
}

// ADRP sets Rd to the 4 KiB page of To, computed relative to the page of
// the ADRP at From.
//
//	31 30 29 28   24 23                 5 4  0
//	 1 immlo  1 0 0 0 0      immhi          Rd     immhi:immlo = page(To) - page(From)
//
// Rd 31 is XZR. The page distance is within ±4 GiB (21 signed bits).
type ADRP struct {
	Rd       Reg
	From, To uint64
}

func (i ADRP) Encode() (uint32, error) {
	if err := checkRegs("adrp", "Rd", i.Rd); err != nil {
		return 0, err
	}
	d := int64(i.To>>12 - i.From>>12)
	if d < -1<<20 || d >= 1<<20 {
		return 0, fmt.Errorf("adrp from %#x to %#x (%d pages, reach ±4 GiB): %w", i.From, i.To, d, ErrOutOfRange)
	}
	imm := fieldBits(d, 21)
	return 0x90000000 | (imm&3)<<29 | (imm>>2)<<5 | uint32(i.Rd), nil
}
