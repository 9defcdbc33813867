// SPDX-License-Identifier: Apache-2.0
package elfscan_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// mcountRelas returns the file offsets of the addends of the
// R_AARCH64_RELATIVE relocations in .rela.dyn that apply to the words
// between __start_mcount_loc and __stop_mcount_loc of a kernel-like image.
func mcountRelas(t *testing.T, f *elf.File) []int {
	t.Helper()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	var start, stop uint64
	for _, s := range syms {
		switch s.Name {
		case elfscan.StartMcountLoc:
			start = s.Value
		case elfscan.StopMcountLoc:
			stop = s.Value
		}
	}
	rela := f.Section(".rela.dyn")
	if rela == nil || start == 0 || stop <= start {
		t.Fatalf("no .rela.dyn or mcount_loc range (%#x..%#x)", start, stop)
	}
	data, err := rela.Data()
	if err != nil {
		t.Fatal(err)
	}
	var addends []int
	for i := 0; i+24 <= len(data); i += 24 {
		off := binary.LittleEndian.Uint64(data[i:])
		typ := elf.R_AARCH64(binary.LittleEndian.Uint64(data[i+8:]) & 0xffffffff)
		if typ == elf.R_AARCH64_RELATIVE && off >= start && off < stop {
			addends = append(addends, int(rela.Offset)+i+16)
		}
	}
	return addends
}

// zeroAddends writes 0 over the 8-byte addends at offs of a copy of b.
func zeroAddends(b []byte, offs []int) []byte {
	c := bytes.Clone(b)
	for _, o := range offs {
		clear(c[o : o+8])
	}
	return c
}

// An image whose every entry was zeroed at build time (Linux 6.12's
// sorttable on a 5,3 vmlinux) is a finding that names the cause, not "no
// sites"; zeroing done here byte for byte as sorttable does gives the
// committed fixture that scripts/fixtures.sh makes with readelf and dd.
func TestZeroedEntries(t *testing.T) {
	orig, f := testutil.ReadELF(t, fixture(t, "gcc-callops53-bti-kimage.elf"))
	offs := mcountRelas(t, f)
	zeroed := zeroAddends(orig, offs)
	want, _ := testutil.ReadELF(t, fixture(t, "gcc-callops53-bti-kimage-zeroed.elf"))
	if !bytes.Equal(zeroed, want) {
		t.Fatalf("zeroing the %d mcount_loc addends here differs from the committed fixture", len(offs))
	}

	sf, err := elfscan.Scan(bytes.NewReader(zeroed), "vmlinux")
	if err != nil {
		t.Fatal(err)
	}
	if len(sf.Sites) != 0 || sf.Problems() != 1 {
		t.Fatalf("zeroed image: %d sites, %d problems; want 0 sites and 1 problem", len(sf.Sites), sf.Problems())
	}
	ps := sf.FileProblems()
	if len(ps) != 1 || ps[0].Code != elfscan.CodeZeroedEntries {
		t.Fatalf("file problems %+v, want one %s", ps, elfscan.CodeZeroedEntries)
	}
	for _, want := range []string{"(.init.data, 14 entries) holds only zeros", "scripts/sorttable",
		"-fpatchable-function-entry=5,3", "before_func = 8"} {
		if !strings.Contains(ps[0].Detail, want) {
			t.Errorf("detail lacks %q: %s", want, ps[0].Detail)
		}
	}
	n := 0
	for p := range sf.AllProblems {
		if p.Code != elfscan.CodeZeroedEntries {
			t.Errorf("unexpected problem %s", p.Code)
		}
		n++
	}
	if n != 1 {
		t.Errorf("AllProblems yielded %d, want 1", n)
	}
}

// Some zero entries among real ones are normal (weak functions overridden
// at link time): skipped, no finding.
func TestSomeZeroEntries(t *testing.T) {
	orig, f := testutil.ReadELF(t, fixture(t, "gcc-callops53-bti-kimage.elf"))
	offs := mcountRelas(t, f)
	full, err := elfscan.Scan(bytes.NewReader(orig), "vmlinux")
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range []int{1, len(offs) - 1} {
		sf, err := elfscan.Scan(bytes.NewReader(zeroAddends(orig, offs[keep:])), "vmlinux")
		if err != nil {
			t.Fatal(err)
		}
		if len(sf.FileProblems()) != 0 || sf.Problems() != 0 {
			t.Fatalf("%d of %d entries zeroed: problems %d %+v, want none", len(offs)-keep, len(offs), sf.Problems(), sf.FileProblems())
		}
		if len(sf.Sites) != keep || keep > len(full.Sites) {
			t.Fatalf("%d entries kept: %d sites (of %d)", keep, len(sf.Sites), len(full.Sites))
		}
	}
}

// A zeroed 4,2 image gets the finding without the 5,3 diagnosis; an
// object's records are relocations and never give it.
func TestZeroedEntriesLayouts(t *testing.T) {
	orig, f := testutil.ReadELF(t, fixture(t, "gcc-callops-bti-kimage.elf"))
	sf, err := elfscan.Scan(bytes.NewReader(zeroAddends(orig, mcountRelas(t, f))), "vmlinux")
	if err != nil {
		t.Fatal(err)
	}
	ps := sf.FileProblems()
	if len(ps) != 1 || ps[0].Code != elfscan.CodeZeroedEntries {
		t.Fatalf("zeroed 4,2 image: file problems %+v", ps)
	}
	if strings.Contains(ps[0].Detail, "5,3") || !strings.Contains(ps[0].Detail, "zeroed at build time") {
		t.Errorf("4,2 image named as 5,3, or no cause: %s", ps[0].Detail)
	}
	for _, fx := range []string{"gcc-callops53-bti-obj.o", "gcc-callops53-bti-kimage.elf", "clang16-kcfi-callops53-bti-kimage.elf"} {
		sf, err := elfscan.ScanFile(fixture(t, fx))
		if err != nil {
			t.Fatal(err)
		}
		if len(sf.FileProblems()) != 0 {
			t.Errorf("%s: file problems %+v", fx, sf.FileProblems())
		}
	}
}

// fixture is the path of the committed fixture name.
func fixture(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(testutil.RepoRoot(t), "testdata", "fixtures", name)
}

// kCFI hashes are recognised in files Clang may have built (its name in
// .comment, or no .comment at all), not in GCC's, where a word before the
// NOPs that no symbol covers is code (Linux's assembly functions).
func TestCFIHashToolchain(t *testing.T) {
	orig, _ := testutil.ReadELF(t, fixture(t, "clang16-kcfi-callops53-bti-kimage.elf"))
	hashes := func(b []byte) int {
		t.Helper()
		sf, err := elfscan.Scan(bytes.NewReader(b), "k")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for i := range sf.Sites {
			if sf.Sites[i].CFIHashOff() != elfscan.NoOffset {
				n++
			}
		}
		return n
	}
	all := hashes(orig)
	if all == 0 {
		t.Fatal("no kCFI hash in the clang16-kcfi fixture")
	}
	if !bytes.Contains(orig, []byte("clang")) || !bytes.Contains(orig, []byte(".comment")) {
		t.Fatal("fixture has no .comment naming clang")
	}
	notClang := bytes.ReplaceAll(orig, []byte("clang"), []byte("xxxxx"))
	if n := hashes(notClang); n != 0 {
		t.Errorf(".comment without clang: %d hashes, want 0", n)
	}
	noComment := bytes.ReplaceAll(notClang, []byte(".comment\x00"), []byte(".xomment\x00"))
	if n := hashes(noComment); n != all {
		t.Errorf("no .comment: %d hashes, want %d", n, all)
	}
}
