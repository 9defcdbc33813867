// SPDX-License-Identifier: Apache-2.0

package elfscan

import "slices"

// keyed is a value placed in a section: the element of radixSort, 16
// bytes. It is a symbol in the sorted index (idx its symbol index) or an
// entries-table record (key its section index, value its address).
type keyed struct {
	value uint64
	key   uint32 // section: compared first
	idx   int32
}

// radixSort sorts a by (key, value), stably, with an LSD radix sort on
// bytes: a kernel's symbols and entries are large and only nearly sorted,
// where a comparison sort spends most of a scan. Bytes that are the same
// in every element (the high bytes of kernel addresses, the key of linked
// files) are neither counted nor passed over. *scratch is grown as needed
// and kept for the next sort.
func radixSort(a []keyed, scratch *[]keyed) {
	const small = 64
	if len(a) <= small {
		insertionSort(a)
		return
	}
	if isSorted(a) {
		return
	}
	// Digits 0..7 are value's bytes, 8..11 key's, least significant first.
	digit := func(e *keyed, d int) byte {
		if d < 8 {
			return byte(e.value >> (8 * d))
		}
		return byte(e.key >> (8 * (d - 8)))
	}
	// Only the bytes that differ somewhere are counted and passed over. A
	// count of a byte every element shares adds one to the same counter
	// each time, each add waiting for the last one's store: counting all
	// twelve was ~30% of radixSort on a kernel's symbols (perf annotate),
	// where eight bytes (the high ones of addresses, the key) are the same.
	vd, kd := differing(a) // the bytes of value and of key that differ
	var counts [12][256]int
	for i := range a {
		e := &a[i]
		for _, d := range vd {
			counts[d][byte(e.value>>(8*d))]++
		}
		for _, d := range kd {
			counts[d][byte(e.key>>(8*(d-8)))]++
		}
	}
	if cap(*scratch) < len(a) {
		*scratch = make([]keyed, len(a))
	}
	tmp := (*scratch)[:len(a)]
	src, dst := a, tmp
	for _, d := range slices.Concat(vd, kd) {
		c := &counts[d]
		pos := 0
		for b := range c {
			c[b], pos = pos, pos+c[b]
		}
		for i := range src {
			k := digit(&src[i], d)
			dst[c[k]] = src[i]
			c[k]++
		}
		src, dst = dst, src
	}
	if &src[0] != &a[0] {
		copy(a, src)
	}
}

// differing returns the digits of radixSort (0..7: value's bytes, 8..11:
// key's) that are not the same in every element of a (not empty), least
// significant first: those of value, then those of key.
func differing(a []keyed) (vd, kd []int) {
	v0, k0 := a[0].value, a[0].key
	var vdiff uint64
	var kdiff uint32
	for i := range a {
		vdiff |= a[i].value ^ v0
		kdiff |= a[i].key ^ k0
	}
	for d := range 8 {
		if byte(vdiff>>(8*d)) != 0 {
			vd = append(vd, d)
		}
	}
	for d := range 4 {
		if byte(kdiff>>(8*d)) != 0 {
			kd = append(kd, 8+d)
		}
	}
	return vd, kd
}

func keyedLess(x, y *keyed) bool {
	return x.key < y.key || x.key == y.key && x.value < y.value
}

func isSorted(a []keyed) bool {
	for i := 1; i < len(a); i++ {
		if keyedLess(&a[i], &a[i-1]) {
			return false
		}
	}
	return true
}

// insertionSort is stable, for short slices.
func insertionSort(a []keyed) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && keyedLess(&a[j], &a[j-1]); j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}
