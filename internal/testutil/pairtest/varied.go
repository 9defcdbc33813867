// SPDX-License-Identifier: Apache-2.0

package pairtest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/testutil/scantest"
)

// Varied returns scans of varied files, for tests of what is made of a
// scan (the --json encoders): every ELF fixture as it is; a copy of each
// with its sites put in a patched state (linked files: init or enabled,
// the ops literal the "ops" object, the BL aimed at a function;
// objects: init + enable with relocations, as RelEnable writes); and that
// copy again with random words at some sites (unknown states, odd spare
// words and kCFI hashes, unexpected instructions, edge literal values and
// relocation addends) and its symbol names
// overwritten with bytes JSON must escape (quotes, control bytes, <>&,
// U+2028, invalid and truncated UTF-8). Every site is one a scan made:
// nothing is built by hand. The same seed gives the same files.
func Varied(t testing.TB) []*elfscan.File {
	t.Helper()
	r := rand.New(rand.NewPCG(5, 3))
	var out []*elfscan.File
	for i, src := range testutil.Fixtures(t, "*-*-*.*") {
		if strings.HasSuffix(src, ".md") {
			continue
		}
		f := Scan(t, src)
		out = append(out, f)
		patched := patchedCopy(t, src, f, i)
		b, err := os.ReadFile(patched)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, scanBytes(t, b, patched))
		g := out[len(out)-1]
		mutateWords(r, b, g)
		if g.Type == elf.ET_REL {
			mutateAddends(t, r, b)
		}
		hostileNames(t, r, b)
		out = append(out, scanBytes(t, b, patched+"~"))
	}
	return out
}

// scanBytes scans b or fails the test.
func scanBytes(t testing.TB, b []byte, path string) *elfscan.File {
	t.Helper()
	f, err := scantest.Bytes(b, path)
	if err != nil {
		t.Fatalf("scan %s: %v", path, err)
	}
	return f
}

// patchedCopy returns a copy of src (scanned as f) with its sites in a
// patched state: enabled (objects, and every other linked file) or init.
func patchedCopy(t testing.TB, src string, f *elfscan.File, i int) string {
	t.Helper()
	if f.Type == elf.ET_REL {
		o := ReadObj(t, src)
		RelEnable(t, o, f, nil)
		dst := filepath.Join(t.TempDir(), filepath.Base(src))
		o.Write(t, dst)
		return dst
	}
	if i%2 == 0 {
		return Linked(t, src, filepath.Base(src), elfscan.StateInit, 0, 0)
	}
	return Linked(t, src, filepath.Base(src), elfscan.StateEnabled, opsAddr(t, src, f), 0)
}

// opsAddr is the address of src's "ops" object, or else of its last
// site's function.
func opsAddr(t testing.TB, src string, f *elfscan.File) uint64 {
	t.Helper()
	ef, err := elf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	syms, _ := ef.Symbols()
	for _, s := range syms {
		if s.Name == "ops" && s.Section != elf.SHN_UNDEF {
			return s.Value
		}
	}
	if len(f.Sites) == 0 {
		return 0
	}
	return f.Sites[len(f.Sites)-1].Entry()
}

// mutateWords writes random words over some of f's site words in b (f
// being b's scan): slot1, slot2, the 5,3 spare word, the word where a
// kCFI hash goes.
func mutateWords(r *rand.Rand, b []byte, f *elfscan.File) {
	words := []uint32{encode.NOP, encode.MovX9X30, encode.BLZero + 4, 0, 0xffffffff}
	word := func() uint32 {
		if r.IntN(2) == 0 {
			return r.Uint32()
		}
		return words[r.IntN(len(words))]
	}
	put := func(off int64) {
		if off != elfscan.NoOffset && off >= 0 && off+4 <= int64(len(b)) && r.IntN(4) == 0 {
			binary.LittleEndian.PutUint32(b[off:], word())
		}
	}
	for i := range f.Sites {
		s := &f.Sites[i]
		if off := s.LiteralOff(); off != elfscan.NoOffset && off+8 <= int64(len(b)) && r.IntN(4) == 0 {
			binary.LittleEndian.PutUint64(b[off:], value(r))
		}
		put(s.Slot1Off())
		put(s.Slot2Off())
		put(s.SpareOff())
		put(s.CFIHashOff())
	}
}

// value is a literal or an addend: one of the edge values, or random.
func value(r *rand.Rand) uint64 {
	values := []uint64{0, 1, 0x10, math.MaxUint64, 1 << 63, math.MaxInt64, uint64(1<<64 - 8)}
	if r.IntN(3) == 0 {
		return r.Uint64()
	}
	return values[r.IntN(len(values))]
}

// mutateAddends gives about half the relocations against code in b (an
// ET_REL file: among them those of the sites' literals and BLs) an addend
// from value.
func mutateAddends(t testing.TB, r *rand.Rand, b []byte) {
	t.Helper()
	ef, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ef.Sections {
		if s.Type != elf.SHT_RELA || int(s.Info) >= len(ef.Sections) || ef.Sections[s.Info].Flags&elf.SHF_EXECINSTR == 0 {
			continue
		}
		for off := s.Offset; off+24 <= s.Offset+s.Size; off += 24 {
			if r.IntN(2) == 0 {
				binary.LittleEndian.PutUint64(b[off+16:], value(r))
			}
		}
	}
}

// hostileRunes are bytes a name may hold (anything but NUL) that JSON
// must escape or that are not valid UTF-8 on their own.
const hostileRunes = "ab_.$<>&\"\\\x01\x1f\x7f\xc3\xa9\xe2\x80\xa8\xa9\xff\xf0\x9f\x98\x80"

// hostileNames overwrites the bytes of about half the names in b's
// .strtab (symbol names: functions, ops, trampolines) with hostileRunes,
// keeping each name's length and NUL.
func hostileNames(t testing.TB, r *rand.Rand, b []byte) {
	t.Helper()
	ef, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	s := ef.Section(".strtab")
	if s == nil || s.Type == elf.SHT_NOBITS {
		return
	}
	names := b[s.Offset : s.Offset+s.Size]
	for start := 0; start < len(names); {
		end := start + bytes.IndexByte(names[start:], 0)
		if end < start {
			break
		}
		if r.IntN(2) == 0 {
			for k := start; k < end; k++ {
				names[k] = hostileRunes[r.IntN(len(hostileRunes))]
			}
		}
		start = end + 1
	}
}
