// SPDX-License-Identifier: Apache-2.0

package livesafe

// The byte diff: two files (or sections) streamed side by side in chunks,
// each maximal differing range attributed to site words or reported.

import (
	"bytes"
	"fmt"
	"io"
	"sort"

	"github.com/ftpatch/ftpatch/internal/elfwrite"
)

// sortSpans orders site words by position, for attribute's search.
func sortSpans(sp []span) {
	sort.Slice(sp, func(i, j int) bool { return sp[i].lo < sp[j].lo })
}

// attribute marks the site words that [lo, hi) covers and calls outside for
// each covered-by-nothing part.
func (a *comparison) attribute(sp []span, lo, hi int64, outside func(lo, hi int64)) {
	for cur := lo; cur < hi; {
		k := sort.Search(len(sp), func(k int) bool { return sp[k].hi > cur })
		if k < len(sp) && sp[k].lo <= cur {
			a.touched[sp[k].site] |= sp[k].bit
			cur = min(sp[k].hi, hi)
			continue
		}
		next := hi
		if k < len(sp) {
			next = min(sp[k].lo, hi)
		}
		outside(cur, next)
		cur = next
	}
}

// diffRanges streams n bytes of a (from aOff) and b (from bOff) side by side
// and calls fn with each maximal differing range, relative to the start.
func diffRanges(a, b io.ReaderAt, aOff, bOff, n int64, chunk int, fn func(lo, hi int64)) error {
	const block = 256
	ba, bb := make([]byte, min(int64(chunk), max(n, 1))), make([]byte, min(int64(chunk), max(n, 1)))
	open, start := false, int64(0)
	for pos := int64(0); pos < n; {
		m := min(int64(len(ba)), n-pos)
		if _, err := a.ReadAt(ba[:m], aOff+pos); err != nil && !(err == io.EOF) {
			return err
		}
		if k, err := b.ReadAt(bb[:m], bOff+pos); k < int(m) {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		x, y := ba[:m], bb[:m]
		if bytes.Equal(x, y) {
			if open {
				fn(start, pos)
				open = false
			}
			pos += m
			continue
		}
		for i := int64(0); i < m; i += block {
			j := min(i+block, m)
			if bytes.Equal(x[i:j], y[i:j]) {
				if open {
					fn(start, pos+i)
					open = false
				}
				continue
			}
			for k := i; k < j; k++ {
				d := x[k] != y[k]
				if d && !open {
					open, start = true, pos+k
				} else if !d && open {
					fn(start, pos+k)
					open = false
				}
			}
		}
		pos += m
	}
	if open {
		fn(start, n)
	}
	return nil
}

// hexAt shows up to 16 bytes at off of r in hex, "?" if unreadable.
func hexAt(r io.ReaderAt, off, n int64) string {
	n = min(n, 16)
	b := make([]byte, n)
	if elfwrite.ReadFull(r, b, off) != nil {
		return "?"
	}
	return fmt.Sprintf("%x", b)
}
