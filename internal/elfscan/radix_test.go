// SPDX-License-Identifier: Apache-2.0

package elfscan

import (
	"cmp"
	"math/rand"
	"slices"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// TestRadixSortProperty compares radixSort with the standard library's
// stable sort on random inputs shaped like its real ones: kernel addresses
// sharing their high bytes, symbols with small values among them, values
// differing only in their high bits, few and many section keys, runs
// already sorted, many equal values, and sizes on both sides of the
// insertion-sort cutoff.
// Elements carry their input position in idx, so stability is checked too.
func TestRadixSortProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	values := []func() uint64{
		func() uint64 { return rng.Uint64() },
		func() uint64 { return 0xffff800080000000 + uint64(rng.Intn(1<<24))*4 }, // a kernel's text
		func() uint64 { return uint64(rng.Intn(8)) },                            // many ties
		func() uint64 { // a kernel's symbols: text, and a few small SHN_ABS values
			if rng.Intn(50) == 0 {
				return uint64(rng.Intn(1 << 12))
			}
			return 0xffff800080000000 + uint64(rng.Intn(1<<26))
		},
		func() uint64 { return uint64(rng.Intn(1<<12)) << 40 }, // only high bits differ
		func() uint64 { // a few apart: sortApart
			if rng.Intn(1000) == 0 {
				return rng.Uint64()
			}
			return 0xffff800080000000 + uint64(rng.Intn(1<<26))
		},
	}
	keys := []func() uint32{
		func() uint32 { return 0 },
		func() uint32 { return uint32(rng.Intn(40)) },
		func() uint32 { return rng.Uint32() },
		func() uint32 { return uint32(rng.Intn(2000)) / 1999 }, // a few keys apart
	}
	var scratch []keyed
	for it := 0; it < 1200; it++ {
		n := []int{0, 1, 2, 63, 64, 65, 200, 5000, 20000}[it%9]
		v, k := values[rng.Intn(len(values))], keys[rng.Intn(len(keys))]
		a := make([]keyed, n)
		for i := range a {
			a[i] = keyed{value: v(), key: k(), idx: int32(i)}
		}
		if rng.Intn(4) == 0 { // nearly sorted: sorted, then a few swaps
			slices.SortStableFunc(a, cmpKeyed)
			for i := range a {
				a[i].idx = int32(i)
			}
			for s := 0; s < 3 && n > 1; s++ {
				i, j := rng.Intn(n), rng.Intn(n)
				a[i].value, a[j].value = a[j].value, a[i].value
			}
		}
		want := slices.Clone(a)
		slices.SortStableFunc(want, cmpKeyed)
		radixSort(a, &scratch)
		if !slices.Equal(a, want) {
			i := 0
			for i < n && a[i] == want[i] {
				i++
			}
			t.Fatalf("iteration %d (n=%d): first difference at %d: got %+v, want %+v", it, n, i, a[i], want[i])
		}
	}
}

// cmpKeyed orders by (key, value); equal elements keep their order under a
// stable sort, which idx records.
func cmpKeyed(x, y keyed) int {
	if c := cmp.Compare(x.key, y.key); c != 0 {
		return c
	}
	return cmp.Compare(x.value, y.value)
}

// TestSortSites: sites come out by (section index, entry), stably, and
// sorted ones stay as they are.
func TestSortSites(t *testing.T) {
	mk := func(sec int32, rec uint64, fn string) Site {
		return Site{Func: fn, secIndex: sec, Record: rec, Layout: LayoutCallOps}
	}
	sorted := []Site{mk(1, 0x10, "a"), mk(1, 0x20, "b"), mk(1, 0x20, "b2"), mk(2, 0x8, "c")}
	for _, c := range []struct {
		in   []Site
		want []string
	}{
		{sorted, []string{"a", "b", "b2", "c"}},
		{[]Site{mk(2, 0x8, "c"), mk(1, 0x20, "b"), mk(1, 0x10, "a"), mk(1, 0x20, "b2")}, []string{"a", "b", "b2", "c"}},
		{[]Site{mk(1, 0x10, "a"), mk(1, 0x30, "d"), mk(1, 0x20, "b")}, []string{"a", "b", "d"}},
		{[]Site{mk(1, 0x20, "b"), mk(1, 0x10, "a")}, []string{"a", "b"}},
		{nil, nil},
	} {
		s := slices.Clone(c.in)
		sortSites(s)
		var got []string
		for _, x := range s {
			got = append(got, x.Func)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("sortSites: %q, want %q", got, c.want)
		}
	}
}

// sites reports whether the sites it built are in (section index, entry)
// order, checked as each is built and across the parallel builders'
// bounds: records given in order, reversed, and (more than two builders'
// worth) each half in order but the halves swapped.
func TestSitesOrdered(t *testing.T) {
	o, err := Open(testutil.Fixtures(t, "gcc-callops-kimage.elf")[0])
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	sc, recs, _, err := o.prepare()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 2 {
		t.Fatalf("%d records: the fixture needs two", len(recs))
	}
	halves := func(n int) []record { // recs[1] then recs[0], n of each
		out := make([]record, 0, 2*n)
		for _, r := range []record{recs[1], recs[0]} {
			for range n {
				out = append(out, r)
			}
		}
		return out
	}
	for _, c := range []struct {
		name string
		recs []record
		want bool
	}{
		{"in order", recs, true},
		{"reversed", reversed(recs), false},
		{"halves swapped", halves(parallelSites + 1), false},
		{"one record repeated", halves(parallelSites + 1)[:parallelSites+1], true},
	} {
		out := newSites(len(c.recs))
		got, err := sc.sites(out, c.recs, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if sorted := slices.IsSortedFunc(out, func(a, b Site) int { return cmpSite(&a, &b) }); got != c.want || got != sorted {
			t.Errorf("%s: sites reports ordered %v, want %v (the sites are sorted: %v)", c.name, got, c.want, sorted)
		}
	}
}

func reversed[T any](s []T) []T {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}
