// SPDX-License-Identifier: Apache-2.0

package elfscan

import (
	"encoding/binary"
	"fmt"
)

// SHT_RELR is the section type of packed relative relocations (.relr.dyn).
const SHT_RELR = 19

// DecodeRELR expands an SHT_RELR section into the addresses it relocates,
// in order. The value to add the load bias to is stored in place.
//
// Each 64-bit entry is either an address (bit 0 clear: relocate it, and
// continue from the next word) or a bitmap (bit 0 set): bit i (1..63)
// relocates the word at base + (i-1)*8, and base then advances 63 words.
//
//	63                                 1 0
//	| address of the next relocated word | 0 |
//	| bit i: relocate base + (i-1)*8     | 1 |
func DecodeRELR(b []byte, name string) ([]uint64, error) {
	var out []uint64
	err := forEachRELR(b, name, func(a uint64) { out = append(out, a) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// forEachRELR calls fn with each address an SHT_RELR section relocates.
func forEachRELR(b []byte, name string, fn func(uint64)) error {
	if len(b)%8 != 0 {
		return fmt.Errorf("%w: section %q size %d is not a multiple of 8", ErrMalformed, name, len(b))
	}
	var base uint64
	haveBase := false
	for i := 0; i+8 <= len(b); i += 8 {
		e := binary.LittleEndian.Uint64(b[i:])
		if e&1 == 0 {
			fn(e)
			base, haveBase = e+8, true
			continue
		}
		if !haveBase {
			return fmt.Errorf("%w: section %q entry %d at %#x: bitmap before any address", ErrMalformed, name, i/8, i)
		}
		for bit := uint64(1); bit < 64; bit++ {
			if e>>bit&1 != 0 {
				fn(base + (bit-1)*8)
			}
		}
		base += 63 * 8
	}
	return nil
}
