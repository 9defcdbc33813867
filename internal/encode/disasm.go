// SPDX-License-Identifier: Apache-2.0

package encode

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/arch/arm64/arm64asm"
)

// Words the tool checks or writes besides the patch-site words.
const (
	RetX30  uint32 = 0xd65f03c0 // RET (X30)
	BLZero  uint32 = 0x94000000 // BL . (imm26 = 0): what an R_AARCH64_CALL26 relocation completes
	BSelf   uint32 = 0x14000000 // B . (imm26 = 0): a one-instruction loop
	hintOp  uint32 = 0xd503201f // HINT #0; CRm:op2 in bits 11..5
	hintMsk uint32 = 0xfffff01f
)

// IsB reports whether w is an unconditional B (imm26).
func IsB(w uint32) bool { return w&0xfc000000 == BSelf }

// IsHint reports whether w is in the HINT space (NOP, BTI, PAC*, AUT*, …).
func IsHint(w uint32) bool { return w&hintMsk == hintOp }

// hintNames names the HINT immediates (CRm:op2) that assemblers write by
// name. arm64asm prints most of them as "hint #n"; these are the names GNU
// objdump (binutils 2.40, disasm_test's oracle) prints.
var hintNames = map[uint32]string{
	0: "nop", 1: "yield", 2: "wfe", 3: "wfi", 4: "sev", 5: "sevl",
	7: "xpaclri", 8: "pacia1716", 10: "pacib1716", 12: "autia1716", 14: "autib1716",
	16: "esb", 17: "psb csync", 18: "tsb csync", 20: "csdb", 22: "clearbhb",
	24: "paciaz", 25: "paciasp", 26: "pacibz", 27: "pacibsp",
	28: "autiaz", 29: "autiasp", 30: "autibz", 31: "autibsp",
	32: "bti", 34: "bti c", 36: "bti j", 38: "bti jc",
}

// HintName returns the name of the hint w ("bti c", "paciasp", …) when w
// is a HINT with one.
func HintName(w uint32) (string, bool) {
	if !IsHint(w) {
		return "", false
	}
	n, ok := hintNames[(w>>5)&0x7f]
	return n, ok
}

// Disasm renders the word w at pc in GNU syntax: named hints (BTI, PAC and
// AUT, …) by name, B and BL with their absolute target, RETAA/RETAB, and
// everything else as golang.org/x/arch's arm64asm prints it; ".inst 0x…"
// for a word it cannot decode. It is the one disassembler of the tool:
// show, verify's failure reports and the trampoline's assembler text use it.
// It is safe for concurrent use.
func Disasm(w uint32, pc uint64) string {
	switch {
	case IsBL(w):
		return fmt.Sprintf("bl %#x", BLTarget(w, pc))
	case IsB(w):
		return fmt.Sprintf("b %#x", BLTarget(w, pc))
	}
	if s, ok := decode(w); ok {
		return s
	}
	return fmt.Sprintf(".inst %#08x", w)
}

// decode is Disasm without the PC-relative forms: B and BL come out as
// arm64asm writes them (".+0x40").
func decode(w uint32) (string, bool) {
	if n, ok := HintName(w); ok {
		return n, true
	}
	switch w {
	case 0xd65f0bff:
		return "retaa", true
	case 0xd65f0fff:
		return "retab", true
	}
	in, err := decodeInst(w)
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(arm64asm.GNUSyntax(in)), true
}

// decodeMu serialises arm64asm.Decode, which records coverage in a global
// table on every call: verify renders failures and classifies sites on many
// goroutines, and unserialised calls are a data race (go test -race).
var decodeMu sync.Mutex

// decodeInst is arm64asm.Decode of the little-endian word w, safe for
// concurrent use.
func decodeInst(w uint32) (arm64asm.Inst, error) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], w)
	decodeMu.Lock()
	defer decodeMu.Unlock()
	return arm64asm.Decode(b[:])
}
