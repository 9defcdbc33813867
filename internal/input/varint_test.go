// SPDX-License-Identifier: Apache-2.0

package input

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// xzVarint reads what encoding/binary's Uvarint writes (the same 7-bit
// little-endian groups), up to xz's 9-byte limit (values below 2^63), and
// refuses a truncated one.
func TestXzVarint(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []uint64{0, 1, 0x7f, 0x80, 1<<63 - 1}
	for range 1000 {
		vals = append(vals, r.Uint64()>>r.IntN(64)>>1)
	}
	for _, v := range vals {
		b := binary.AppendUvarint(nil, v)
		got, rest, ok := xzVarint(append(b, 0xAA))
		if !ok || got != v || len(rest) != 1 || rest[0] != 0xAA {
			t.Fatalf("%#x (% x): got %#x rest % x ok %v", v, b, got, rest, ok)
		}
		if _, rest, ok := xzVarint(b[:len(b)-1]); ok || len(rest) != len(b)-1 {
			t.Fatalf("%#x truncated to % x: ok %v rest % x", v, b[:len(b)-1], ok, rest)
		}
	}
	if _, _, ok := xzVarint(binary.AppendUvarint(nil, 1<<63)); ok {
		t.Error("a 10-byte number accepted")
	}
}
