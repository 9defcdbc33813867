// SPDX-License-Identifier: Apache-2.0

package elfscan

import (
	"debug/elf"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// A scan's relocation lookups (relCursor: tables read in place, a cursor
// for increasing offsets) answer what Relocs.In answers from the decoded,
// sorted tables, for lookups in increasing, decreasing and random order,
// on every relocatable fixture, plain and compressed (read from memory),
// and on one whose code relocations are out of order (not read in place).
func TestRelCursorMatchesIn(t *testing.T) {
	xz := testutil.NeedTool(t, "xz")
	paths := append(testutil.Fixtures(t, "*.o"), testutil.Fixtures(t, "*.ko")...)
	if len(paths) == 0 {
		t.Fatal("no relocatable fixtures")
	}
	unordered := unorderedRelaText(t, testutil.Fixtures(t, "gcc-callops-bti-obj.o")[0])
	paths = append(paths, unordered)
	inPlace, sorted := 0, 0
	for _, path := range paths {
		compressed := filepath.Join(t.TempDir(), filepath.Base(path)+".xz")
		if out, err := exec.Command("sh", "-c", xz+" -c "+path+" > "+compressed).CombinedOutput(); err != nil {
			t.Fatalf("xz: %v\n%s", err, out)
		}
		for _, p := range []string{path, compressed} {
			// The plain file through its *os.File, so its sections are
			// read with ReadAt (Open reads a small file whole, into memory).
			var o *Object
			var err error
			if p == compressed {
				o, err = Open(p)
			} else {
				var f *os.File
				if f, err = os.Open(p); err == nil {
					defer f.Close()
					o, err = NewObject(f, p)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if (p == compressed) != (o.mem != nil) {
				t.Fatalf("%s: in memory %v", p, o.mem != nil)
			}
			x, err := o.Relocs()
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			for sec, s := range o.ELF().Sections {
				if len(x.Tables(sec)) == 0 || s.Type == elf.SHT_NOBITS {
					continue
				}
				rs, err := x.For(sec)
				if err != nil {
					t.Fatal(err)
				}
				// Offsets at, between and around the entries.
				var offs []uint64
				for _, r := range rs {
					offs = append(offs, r.Off-1, r.Off, r.Off+1, r.Off+4)
				}
				offs = append(offs, 0, s.Size, s.Size+8)
				down := slices.Clone(offs)
				slices.Reverse(down)
				shuffled := slices.Clone(offs)
				rand.New(rand.NewPCG(1, uint64(sec))).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				c := relCursor{x: x}
				for _, order := range [][]uint64{offs, down, shuffled} {
					for _, lo := range order {
						for _, span := range []uint64{1, 4, 8, 16} {
							want, err := x.In(sec, lo, lo+span)
							if err != nil {
								t.Fatal(err)
							}
							got, err := c.In(sec, lo, lo+span)
							if err != nil {
								t.Fatal(err)
							}
							if !slices.Equal(got, want) {
								t.Fatalf("%s section %d [%#x, %#x): cursor %v, In %v", p, sec, lo, lo+span, got, want)
							}
							checked++
							if c.raw != nil {
								inPlace++
							} else if path == unordered && s.Name == ".text" {
								sorted++
							}
						}
					}
				}
				c.close()
			}
			if checked == 0 {
				t.Errorf("%s: no relocation section", p)
			}
			o.Close()
		}
	}
	if inPlace == 0 || sorted == 0 {
		t.Errorf("%d lookups in place, %d in the unordered table's sorted copy: a path is untested", inPlace, sorted)
	}
}

// unorderedRelaText writes a copy of the object at path with the first and
// last entries of .rela.text swapped, and returns its path.
func unorderedRelaText(t *testing.T, path string) string {
	t.Helper()
	b, f := testutil.ReadELF(t, path)
	s := f.Section(".rela.text")
	if s == nil || s.Size < 2*RelaSize {
		t.Fatalf("%s: no .rela.text with two entries", path)
	}
	first, last := b[s.Offset:s.Offset+RelaSize], b[s.Offset+s.Size-RelaSize:s.Offset+s.Size]
	if rawOff(first, 0) == rawOff(last, 0) {
		t.Fatalf("%s: .rela.text's first and last entries are at one offset", path)
	}
	tmp := slices.Clone(first)
	copy(first, last)
	copy(last, tmp)
	out := filepath.Join(t.TempDir(), "unordered.o")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}
