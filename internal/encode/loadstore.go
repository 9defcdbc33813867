// SPDX-License-Identifier: Apache-2.0

package encode

import "fmt"

// IndexMode selects the addressing form of a load/store pair.
type IndexMode uint8

const (
	Offset    IndexMode = iota // [Rn, #imm]      no writeback
	PreIndex                   // [Rn, #imm]!     Rn += imm, then access
	PostIndex                  // [Rn], #imm      access, then Rn += imm
)

// STP stores the pair Rt, Rt2 (64-bit) at Rn+Imm.
//
//	31 30 29   27 26 25  23 22 21    15 14  10 9  5 4  0
//	 1  0  1 0 1   0  mode  L   imm7     Rt2    Rn   Rt     L=0 store, 1 load
//	mode: 01 post-index, 10 signed offset, 11 pre-index; imm7 = Imm/8
//
// Rn 31 is SP; Rt and Rt2 31 are XZR. Imm is a multiple of 8 in
// [-512, 504]. With writeback, Rn equal to Rt or Rt2 (other than SP) is
// CONSTRAINED UNPREDICTABLE in the Arm ARM and is refused.
type STP struct {
	Rt, Rt2, Rn Reg
	Imm         int64
	Mode        IndexMode
}

// LDP loads the pair Rt, Rt2 (64-bit) from Rn+Imm; see STP for the layout.
// Rt == Rt2 is CONSTRAINED UNPREDICTABLE and refused.
type LDP STP

func (i STP) Encode() (uint32, error) { return encodePair("stp", 0, i) }
func (i LDP) Encode() (uint32, error) { return encodePair("ldp", 1, STP(i)) }

func encodePair(insn string, load uint32, i STP) (uint32, error) {
	if err := checkRegs(insn, "Rt", i.Rt, "Rt2", i.Rt2, "Rn", i.Rn); err != nil {
		return 0, err
	}
	var mode uint32
	switch i.Mode {
	case PostIndex:
		mode = 1
	case Offset:
		mode = 2
	case PreIndex:
		mode = 3
	default:
		return 0, fmt.Errorf("%s: unknown index mode %d", insn, i.Mode)
	}
	if load == 1 && i.Rt == i.Rt2 {
		return 0, fmt.Errorf("%s: Rt = Rt2 = %v is unpredictable: %w", insn, i.Rt, ErrBadRegister)
	}
	if i.Mode != Offset && i.Rn != 31 && (i.Rn == i.Rt || i.Rn == i.Rt2) {
		return 0, fmt.Errorf("%s: writeback base %v is also a transfer register: %w", insn, i.Rn, ErrBadRegister)
	}
	if i.Imm%8 != 0 || i.Imm < -512 || i.Imm > 504 {
		return 0, fmt.Errorf("%s: offset %d is not a multiple of 8 in [-512, 504]: %w", insn, i.Imm, ErrBadImmediate)
	}
	return 0xa8000000 | mode<<23 | load<<22 | fieldBits(i.Imm/8, 7)<<15 |
		uint32(i.Rt2)<<10 | uint32(i.Rn)<<5 | uint32(i.Rt), nil
}

// STR stores the 64-bit Rt at Rn+Imm (unsigned offset form).
//
//	31 30 29   27 26 25 24 23 22 21          10 9  5 4  0
//	 1  1  1 1 1   0  0  1  0  L      imm12       Rn   Rt     imm12 = Imm/8
//
// Rn 31 is SP; Rt 31 is XZR. Imm is a multiple of 8 in [0, 32760]; use
// STUR/LDUR for negative or unscaled offsets.
type STR struct {
	Rt, Rn Reg
	Imm    int64
}

// LDR loads the 64-bit Rt from Rn+Imm (unsigned offset form); see STR.
type LDR STR

func (i STR) Encode() (uint32, error) { return encodeUnsigned("str", 0, i) }
func (i LDR) Encode() (uint32, error) { return encodeUnsigned("ldr", 1, STR(i)) }

func encodeUnsigned(insn string, load uint32, i STR) (uint32, error) {
	if err := checkRegs(insn, "Rt", i.Rt, "Rn", i.Rn); err != nil {
		return 0, err
	}
	if i.Imm%8 != 0 || i.Imm < 0 || i.Imm > 4095*8 {
		return 0, fmt.Errorf("%s: offset %d is not a multiple of 8 in [0, 32760]: %w", insn, i.Imm, ErrBadImmediate)
	}
	return 0xf9000000 | load<<22 | uint32(i.Imm/8)<<10 | uint32(i.Rn)<<5 | uint32(i.Rt), nil
}

// STUR stores the 64-bit Rt at Rn+Imm with an unscaled signed offset.
//
//	31 30 29   27 26 25 24 23 22 21 20      12 11 10 9  5 4  0
//	 1  1  1 1 1   0  0  0  0  L  0    imm9     0  0   Rn   Rt
//
// Rn 31 is SP; Rt 31 is XZR. Imm is in [-256, 255].
type STUR struct {
	Rt, Rn Reg
	Imm    int64
}

// LDUR loads the 64-bit Rt from Rn+Imm, unscaled signed offset; see STUR.
type LDUR STUR

func (i STUR) Encode() (uint32, error) { return encodeUnscaled("stur", 0, i) }
func (i LDUR) Encode() (uint32, error) { return encodeUnscaled("ldur", 1, STUR(i)) }

func encodeUnscaled(insn string, load uint32, i STUR) (uint32, error) {
	if err := checkRegs(insn, "Rt", i.Rt, "Rn", i.Rn); err != nil {
		return 0, err
	}
	if i.Imm < -256 || i.Imm > 255 {
		return 0, fmt.Errorf("%s: offset %d is outside [-256, 255]: %w", insn, i.Imm, ErrBadImmediate)
	}
	return 0xf8000000 | load<<22 | fieldBits(i.Imm, 9)<<12 | uint32(i.Rn)<<5 | uint32(i.Rt), nil
}
