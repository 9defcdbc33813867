// SPDX-License-Identifier: Apache-2.0

package input

import (
	"encoding/binary"
	"io"
)

// sizeHint returns the decompressed size that a compressed file of size
// bytes, in format c, says it has in its own headers, or -1 when it says
// none: a zstd frame's content size (first frame), gzip's ISIZE (last
// member, modulo 2^32), an xz stream's index (last stream). The output is
// decoded into one buffer of that size; a hint that is wrong (a lie, or
// concatenated streams) costs a second buffer, never a wrong result, so
// none of these is trusted beyond sizing that buffer. Reads the few bytes
// it needs with ReadAt.
func sizeHint(c string, r io.ReaderAt, size int64) int64 {
	var h int64 = -1
	switch c {
	case Zstd:
		h = zstdContentSize(r)
	case Gzip:
		var b [4]byte
		if size >= 18 { // a gzip member is at least 18 bytes
			if n, _ := r.ReadAt(b[:], size-4); n == 4 {
				h = int64(binary.LittleEndian.Uint32(b[:]))
			}
		}
	case XZ:
		h = xzIndexSize(r, size)
	}
	return h
}

// zstdContentSize reads the Frame_Content_Size of the zstd frame at the
// start of r (RFC 8878 section 3.1.1.1), or -1.
func zstdContentSize(r io.ReaderAt) int64 {
	var b [4 + 1 + 1 + 4 + 8]byte // magic, descriptor, window, dictionary ID, content size
	n, _ := r.ReadAt(b[:], 0)
	if n < 6 {
		return -1
	}
	fhd := b[4]
	single := fhd>>5&1 == 1
	p := 5
	if !single {
		p++ // Window_Descriptor
	}
	p += []int{0, 1, 2, 4}[fhd&3] // Dictionary_ID
	var fcs int
	switch fhd >> 6 {
	case 0:
		if single {
			fcs = 1
		}
	case 1:
		fcs = 2
	case 2:
		fcs = 4
	case 3:
		fcs = 8
	}
	if fcs == 0 || p+fcs > n {
		return -1
	}
	var v uint64
	for i := fcs - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[p+i])
	}
	if fcs == 2 {
		v += 256
	}
	if v > 1<<62 {
		return -1
	}
	return int64(v)
}

// xzIndexSize sums the uncompressed sizes in the index of the xz stream
// that ends r (xz file format 1.1.0, sections 2.1.2 and 4), or -1. Stream
// padding (zeros after the footer) is skipped.
func xzIndexSize(r io.ReaderAt, size int64) int64 {
	// The footer and, for the few blocks of a module, the whole index.
	var tail [512]byte
	t := tail[:min(size, int64(len(tail)))]
	base := size - int64(len(t))
	if n, _ := r.ReadAt(t, base); n != len(t) {
		return -1
	}
	for len(t) >= 4 && binary.LittleEndian.Uint32(t[len(t)-4:]) == 0 {
		t = t[:len(t)-4]
	}
	const footer = 12
	if len(t) < footer || string(t[len(t)-2:]) != "YZ" {
		return -1
	}
	backward := (int64(binary.LittleEndian.Uint32(t[len(t)-8:])) + 1) * 4
	if backward > int64(len(t)-footer) {
		return -1 // an index longer than what was read: many blocks; no hint
	}
	idx := t[len(t)-footer-int(backward) : len(t)-footer]
	varint := func() (v uint64, ok bool) {
		v, idx, ok = xzVarint(idx)
		return v, ok
	}
	if len(idx) == 0 || idx[0] != 0 { // Index Indicator
		return -1
	}
	idx = idx[1:]
	records, ok := varint()
	if !ok {
		return -1
	}
	var total uint64
	for range records {
		_, ok1 := varint() // Unpadded Size
		u, ok2 := varint() // Uncompressed Size
		if !ok1 || !ok2 || total+u < total || total+u > 1<<62 {
			return -1
		}
		total += u
	}
	return int64(total)
}

// xzVarint reads one of xz's multibyte integers (7 bits a byte, low first,
// at most 9 bytes) from the front of b and returns the rest of b; ok is
// false, with b unchanged, when b ends first or the number is too long.
func xzVarint(b []byte) (v uint64, rest []byte, ok bool) {
	for i := 0; i < 9 && i < len(b); i++ {
		v |= uint64(b[i]&0x7F) << (7 * i)
		if b[i] < 0x80 {
			return v, b[i+1:], true
		}
	}
	return 0, b, false
}
