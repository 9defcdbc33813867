// SPDX-License-Identifier: Apache-2.0

package encode

// Placed is a word at an address, as a report lists a site's words: an
// instruction, a 64-bit literal, or an address with nothing mapped. The
// data packages (verify's failures, livesafe's intermediate runs) carry
// these; package report turns them into text with Disasm.
type Placed struct {
	Addr uint64
	Bits uint64 // the instruction (low 32 bits) or the literal
	Kind PlacedKind
}

// PlacedKind says what a Placed word is.
type PlacedKind uint8

const (
	PlacedInsn     PlacedKind = iota // an instruction
	PlacedSpare                      // an instruction word a layout keeps spare (a 5,3 site's pre-entry NOP)
	PlacedLiteral                    // an 8-byte literal
	PlacedUnmapped                   // nothing is mapped at Addr
)
