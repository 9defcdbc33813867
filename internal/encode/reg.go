// SPDX-License-Identifier: Apache-2.0

package encode

import (
	"errors"
	"fmt"
)

// Errors returned by the operand checks of every encoder; test with errors.Is.
var (
	// ErrBadRegister: a register number above 31, or a register the
	// instruction cannot use meaningfully (branch to XZR, a writeback base
	// that is also a transfer register, ...).
	ErrBadRegister = errors.New("bad register")
	// ErrBadImmediate: an immediate that is misaligned for its scale, out of
	// its field's range, or (logical immediates) not a bitmask pattern.
	ErrBadImmediate = errors.New("immediate not encodable")
)

// Reg is a 64-bit general-purpose register number, 0..31. What 31 means
// depends on the operand: each encoder says whether it is SP or XZR there.
type Reg uint8

// Register numbers. SP and XZR share number 31.
const (
	X0 Reg = iota
	X1
	X2
	X3
	X4
	X5
	X6
	X7
	X8
	X9
	X10
	X11
	X12
	X13
	X14
	X15
	X16
	X17
	X18
	X19
	X20
	X21
	X22
	X23
	X24
	X25
	X26
	X27
	X28
	X29     // frame pointer
	X30     // link register
	SP  Reg = 31
	XZR Reg = 31
)

// name renders r as GNU syntax would in an operand where 31 means SP
// (sp31) or XZR.
func (r Reg) name(sp31 bool) string {
	switch {
	case r == 31 && sp31:
		return "sp"
	case r == 31:
		return "xzr"
	}
	return fmt.Sprintf("x%d", r)
}

func (r Reg) String() string { return r.name(false) }

// checkRegs returns ErrBadRegister for the first register above 31;
// field names the operand (Rd, Rn, ...).
func checkRegs(insn string, regs ...any) error {
	for i := 0; i+1 < len(regs); i += 2 {
		field, r := regs[i].(string), regs[i+1].(Reg)
		if r > 31 {
			return fmt.Errorf("%s: %s = %d: %w", insn, field, r, ErrBadRegister)
		}
	}
	return nil
}

// fieldBits returns v as an unsigned field of width bits (two's complement
// for negatives); the caller has range-checked v.
func fieldBits(v int64, width uint) uint32 { return uint32(v) & (1<<width - 1) }
