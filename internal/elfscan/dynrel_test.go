// SPDX-License-Identifier: Apache-2.0

package elfscan

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestDynSeek checks seek and at, as linkedRecords uses them (each call
// starting where the last one ended, addresses increasing, and afresh from
// 0), against a linear walk of the same relocations: relocation addresses
// with gaps and repeats, queried at, between, before and past them.
func TestDynSeek(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		d := &DynRelocs{}
		off := uint64(rnd.IntN(64))
		for n := rnd.IntN(300); len(d.rels) < n; {
			off += uint64(rnd.IntN(3)) * 8 // 0: a repeated address
			d.rels = append(d.rels, DynReloc{Off: off, Value: uint64(len(d.rels))})
		}
		next := 0
		for a := uint64(0); a < off+64; a += uint64(1 + rnd.IntN(24)) {
			first, last := len(d.rels), -1 // the oracle: first at or above a, last at a
			for i := len(d.rels) - 1; i >= 0; i-- {
				if d.rels[i].Off >= a {
					first = i
				}
				if d.rels[i].Off == a && last < 0 {
					last = i
				}
			}
			for _, from := range []int{next, 0} {
				i := d.seek(a, from)
				if i != first {
					t.Fatalf("round %d: seek(%#x, %d) = %d, want %d", round, a, from, i, first)
				}
				r, ok := d.at(a, i)
				if ok != (last >= 0) || ok && r.Value != uint64(last) {
					t.Fatalf("round %d: at(%#x) = %v, %v; want relocation %d", round, a, r, ok, last)
				}
				if r2, ok2 := d.At(a); r2 != r || ok2 != ok {
					t.Fatalf("round %d: At(%#x) = %v, %v; at = %v, %v", round, a, r2, ok2, r, ok)
				}
			}
			next = first
		}
	}
}

// TestDynUnresolved checks Unresolved, found from readDynTable's list of
// the relocations it could not resolve, against a walk over All: the last
// relocation at an address decides it, repeats of an address and of a
// listed address count once.
func TestDynUnresolved(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 300; round++ {
		d := &DynRelocs{}
		off := uint64(0)
		for n := rnd.IntN(200); len(d.rels) < n; {
			off += uint64(rnd.IntN(3)) * 8 // 0: a repeated address
			r := DynReloc{Off: off, Resolved: rnd.IntN(4) != 0}
			if !r.Resolved {
				d.unresolved = append(d.unresolved, off)
			}
			d.rels = append(d.rels, r)
		}
		rnd.Shuffle(len(d.unresolved), func(i, j int) { d.unresolved[i], d.unresolved[j] = d.unresolved[j], d.unresolved[i] })
		var want []DynReloc // the oracle: the last relocation at each address, when unresolved
		for i, r := range d.rels {
			if (i+1 == len(d.rels) || d.rels[i+1].Off != r.Off) && !r.Resolved {
				want = append(want, r)
			}
		}
		if got := d.Unresolved(); !slices.Equal(got, want) {
			t.Fatalf("round %d: Unresolved() = %v, want %v", round, got, want)
		}
	}
}

// TestDynOverlaps checks Overlaps against a walk: a relocation's 8-byte
// word overlaps [lo, hi) when it starts before hi and ends after lo.
func TestDynOverlaps(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 300; round++ {
		d := &DynRelocs{}
		off := uint64(rnd.IntN(16))
		for n := rnd.IntN(40); len(d.rels) < n; {
			off += uint64(rnd.IntN(24))
			d.rels = append(d.rels, DynReloc{Off: off})
		}
		for lo := uint64(0); lo < off+16; lo++ {
			hi := lo + uint64(1+rnd.IntN(8))
			want := slices.ContainsFunc(d.rels, func(r DynReloc) bool { return r.Off < hi && r.Off+8 > lo })
			if got := d.Overlaps(lo, hi); got != want {
				t.Fatalf("round %d: Overlaps(%#x, %#x) = %v, want %v (relocations at %v)", round, lo, hi, got, want, d.rels)
			}
		}
	}
}
