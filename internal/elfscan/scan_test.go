// SPDX-License-Identifier: Apache-2.0

package elfscan_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/report"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

func elfFixtures(t testing.TB) []string {
	var out []string
	for _, p := range testutil.Fixtures(t, "*-*-*.*") {
		if !strings.HasSuffix(p, ".md") {
			out = append(out, p)
		}
	}
	return out
}

// fixtureLayout is the layout a fixture's name promises (see
// testdata/fixtures/README.md).
func fixtureLayout(name string) elfscan.Layout {
	switch {
	case strings.Contains(name, "-classic"):
		return elfscan.LayoutClassic
	case strings.Contains(name, "callops53"):
		return elfscan.LayoutCallOps53
	}
	return elfscan.LayoutCallOps
}

// Facts from testdata/src/fixtures: notrace functions have no site; GCC
// puts cold functions in .text.unlikely aligned to 4, so in its 4,2
// objects exactly those are flagged; Clang keeps them aligned; kCFI's hash
// puts 4,2 literals at 4 mod 8 (flagged with the kCFI advice); 5,3 sites are
// never misaligned, their literal is the aligned pair and the spare word a
// NOP.
func TestFixtureFacts(t *testing.T) {
	noSite := map[string]bool{"fx_nosite": true, "ops_callback": true, "ftrace_stub": true, "ftrace_caller": true, "_start": true}
	for _, path := range elfFixtures(t) {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			sf, err := elfscan.ScanFile(path)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			relObj := strings.HasSuffix(name, ".o") || strings.HasSuffix(name, ".ko") // ET_REL
			for _, s := range sf.Sites {
				if noSite[s.Func] || s.Func == "" {
					t.Errorf("site %#x in function %q, which has none", s.Entry(), s.Func)
				}
				layout := fixtureLayout(name)
				if s.Layout != layout {
					t.Errorf("%s: layout %s, want %s", s.Func, s.Layout, layout)
				}
				wantMis := relObj && strings.HasPrefix(name, "gcc-callops-") && strings.HasPrefix(s.Section, ".text.unlikely")
				if layout == elfscan.LayoutCallOps && s.Literal()%8 != 0 {
					wantMis = true // linked: whatever the linker did, the address decides; kCFI objects: the offset
				}
				if got := s.HasProblem(elfscan.CodeMisalignedLiteral); got != wantMis {
					t.Errorf("%s %s %#x: misaligned-literal = %v, want %v (%v)", s.Func, s.Section, s.Literal(), got, wantMis, s.Problems())
				}
				if wantMis && strings.Contains(name, "kcfi") && !strings.Contains(fmt.Sprint(s.Problems()), "-fpatchable-function-entry=5,3") {
					t.Errorf("%s: kCFI misaligned literal without the 5,3 advice: %v", s.Func, s.Problems())
				}
				if layout == elfscan.LayoutCallOps53 {
					if s.Literal()%8 != 0 || s.Entry() != s.Record+12 || !(s.Literal() == s.Record && s.Spare() == s.Record+8 || s.Literal() == s.Record+4 && s.Spare() == s.Record) {
						t.Errorf("%s: record %#x entry %#x literal %#x spare %#x", s.Func, s.Record, s.Entry(), s.Literal(), s.Spare())
					}
					if got := binary.LittleEndian.Uint32(raw[s.SpareOff():]); got != s.SpareWord() || got != encode.NOP {
						t.Errorf("%s: spare word at %#x is %#x, site says %#x", s.Func, s.SpareOff(), got, s.SpareWord())
					}
				} else if s.SpareOff() != elfscan.NoOffset {
					t.Errorf("%s: %s site has a spare word", s.Func, s.Layout)
				}
				if s.CFIHashOff() != elfscan.NoOffset && (!strings.Contains(name, "kcfi") || binary.LittleEndian.Uint32(raw[s.CFIHashOff():]) != s.CFIHash()) {
					t.Errorf("%s: kCFI hash %#x at %#x in %s", s.Func, s.CFIHash(), s.CFIHashOff(), name)
				}
				// The file offsets point at the words the site reports.
				if got := binary.LittleEndian.Uint32(raw[s.Slot1Off():]); got != s.Slot1Word {
					t.Errorf("%s: word at Slot1Off %#x is %#x, site says %#x", s.Func, s.Slot1Off(), got, s.Slot1Word)
				}
				if got := binary.LittleEndian.Uint32(raw[s.Slot2Off():]); got != s.Slot2Word {
					t.Errorf("%s: word at Slot2Off %#x is %#x, site says %#x", s.Func, s.Slot2Off(), got, s.Slot2Word)
				}
				if s.Layout.HasLiteral() {
					if got := binary.LittleEndian.Uint64(raw[s.LiteralOff():]); got != s.LiteralWord {
						t.Errorf("%s: literal at %#x is %#x, site says %#x", s.Func, s.LiteralOff(), got, s.LiteralWord)
					}
				} else if s.LiteralOff() != elfscan.NoOffset {
					t.Errorf("%s: classic site has LiteralOff %#x", s.Func, s.LiteralOff())
				}
				if s.Slot2Off()-s.Slot1Off() != 4 || s.CallSite()-s.Slot1() != 4 {
					t.Errorf("%s: slots not adjacent", s.Func)
				}
			}
			switch zeroed := strings.HasSuffix(name, "-zeroed.elf"); {
			case zeroed && (len(sf.Sites) != 0 || len(sf.FileProblems()) != 1):
				t.Errorf("zeroed image: %d sites, file problems %+v", len(sf.Sites), sf.FileProblems())
			case !zeroed && len(sf.Sites) == 0:
				t.Error("no sites")
			}
		})
	}
}

func TestFileOffsetAgreesWithSites(t *testing.T) {
	for _, path := range testutil.Fixtures(t, "*.elf") {
		fd, err := elfscan.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		f := fd.ELF()
		sf, err := fd.Scan()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sf.Sites {
			if off, err := fd.FileOffset(s.CallSite()); err != nil || off != s.Slot2Off() {
				t.Errorf("%s %s: FileOffset(%#x) = %#x, %v; want %#x", filepath.Base(path), s.Func, s.CallSite(), off, err, s.Slot2Off())
			}
			if sec := elfscan.SectionAt(f, s.Entry()); sec == nil || sec.Name != s.Section {
				t.Errorf("%s %s: SectionAt(%#x) = %v, want %q", filepath.Base(path), s.Func, s.Entry(), sec, s.Section)
			}
		}
		fd.Close()
	}
}

// mutate returns a copy of the fixture with fn applied to its bytes, given
// the section header of the first section named sec.
func mutate(t *testing.T, path, sec string, fn func(b []byte, sh int)) []byte {
	t.Helper()
	b, f := testutil.ReadELF(t, path)
	shoff := int(binary.LittleEndian.Uint64(b[0x28:]))
	for i, s := range f.Sections {
		if s.Name == sec {
			out := append([]byte(nil), b...)
			fn(out, shoff+i*64)
			return out
		}
	}
	t.Fatalf("%s has no section %q", path, sec)
	return nil
}

func TestScanMalformed(t *testing.T) {
	obj := testutil.Fixtures(t, "gcc-callops-bti-obj.o")[0]
	static := testutil.Fixtures(t, "gcc-callops-static.elf")[0]
	pie := testutil.Fixtures(t, "clang-callops-pie-noapply.elf")[0]
	read := func(p string) []byte { b, _ := os.ReadFile(p); return b }
	put64 := func(off int, v uint64) func([]byte, int) {
		return func(b []byte, sh int) { binary.LittleEndian.PutUint64(b[sh+off:], v) }
	}
	tests := []struct {
		name    string
		data    []byte
		is      error  // errors.Is
		message string // substring of the error
	}{
		{"empty", nil, elfscan.ErrTruncated, "the file is 0 bytes"},
		// A little-endian file marked big-endian: its fields read swapped.
		{"big-endian", func() []byte { b := read(obj); b[5] = 2; return b }(), elfscan.ErrMalformed, "ELF version"},
		{"32-bit", func() []byte { b := read(obj); b[4] = 1; return b }(), elfscan.ErrNotAArch64, "ELFCLASS32"},
		{"not-aarch64", func() []byte { b := read(obj); b[18] = 62; return b }(), elfscan.ErrNotAArch64, "EM_X86_64"},
		{"core-file", func() []byte { b := read(obj); b[16] = 4; return b }(), elfscan.ErrMalformed, "type"},
		{"entries-offset-past-eof", mutate(t, obj, "__patchable_function_entries", put64(24, 1<<40)), elfscan.ErrMalformed, "__patchable_function_entries"},
		{"entries-odd-size-rel", mutate(t, obj, "__patchable_function_entries", put64(32, 12)), elfscan.ErrMalformed, "multiple of 8"},
		{"entries-odd-size-linked", mutate(t, static, "__patchable_function_entries", put64(32, 20)), elfscan.ErrMalformed, "multiple of 8"},
		{"entries-huge-linked", mutate(t, static, "__patchable_function_entries", put64(32, 1<<39)), elfscan.ErrMalformed, "__patchable_function_entries"},
		{"text-offset-past-eof", mutate(t, obj, ".text", put64(24, 1<<40)), elfscan.ErrMalformed, ".text"},
		{"rela-dyn-truncated", mutate(t, pie, ".rela.dyn", put64(24, uint64(len(read(pie))-24))), elfscan.ErrMalformed, ".rela.dyn"},
		{"symtab-odd-size", mutate(t, obj, ".symtab", put64(32, 25)), elfscan.ErrMalformed, ".symtab"},
		{"other-reloc-type", mutate(t, obj, ".rela__patchable_function_entries", func(b []byte, sh int) {
			off := binary.LittleEndian.Uint64(b[sh+24:])
			binary.LittleEndian.PutUint32(b[off+8:], uint32(elf.R_AARCH64_PREL64))
		}), elfscan.ErrUnsupportedReloc, `section "__patchable_function_entries" entry 0 at 0x0`},
		{"reloc-symbol-out-of-range", mutate(t, obj, ".rela__patchable_function_entries", func(b []byte, sh int) {
			off := binary.LittleEndian.Uint64(b[sh+24:])
			binary.LittleEndian.PutUint32(b[off+12:], 1<<30)
		}), elfscan.ErrMalformed, "symbol index"},
		// The code's relocations, which a scan reads in place: the last
		// entry names a symbol past the table.
		{"text-reloc-symbol-out-of-range", mutate(t, obj, ".rela.text", func(b []byte, sh int) {
			off, size := binary.LittleEndian.Uint64(b[sh+24:]), binary.LittleEndian.Uint64(b[sh+32:])
			binary.LittleEndian.PutUint32(b[off+size-24+12:], 1<<30)
		}), elfscan.ErrMalformed, "symbol index 1073741824 out of range"},
		{"reloc-offset-outside", mutate(t, obj, ".rela__patchable_function_entries", func(b []byte, sh int) {
			off := binary.LittleEndian.Uint64(b[sh+24:])
			binary.LittleEndian.PutUint64(b[off:], 0x1001)
		}), elfscan.ErrMalformed, "not an entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := elfscan.Scan(bytes.NewReader(tt.data), tt.name)
			if err == nil {
				t.Fatalf("no error; %d sites", len(f.Sites))
			}
			if f != nil {
				t.Errorf("error %v with a result", err)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %q", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not mention %q", err, tt.message)
			}
		})
	}
}

// A code relocation table out of offset order (compilers write them in
// order; a scan reads an ordered one in place) scans as the ordered one.
func TestScanUnorderedRelocations(t *testing.T) {
	obj := testutil.Fixtures(t, "gcc-callops-bti-obj.o")[0]
	orig, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	swapped := mutate(t, obj, ".rela.text", func(b []byte, sh int) {
		off, size := binary.LittleEndian.Uint64(b[sh+24:]), binary.LittleEndian.Uint64(b[sh+32:])
		first, last := b[off:off+24], b[off+size-24:off+size]
		tmp := slices.Clone(first)
		copy(first, last)
		copy(last, tmp)
	})
	if bytes.Equal(swapped, orig) {
		t.Fatal("the swap changed nothing")
	}
	want, err := elfscan.Scan(bytes.NewReader(orig), "x")
	if err != nil {
		t.Fatal(err)
	}
	got, err := elfscan.Scan(bytes.NewReader(swapped), "x")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("unordered table:\n%+v\nordered:\n%+v", got.Sites, want.Sites)
	}
}

func TestScanTruncated(t *testing.T) {
	for _, path := range []string{testutil.Fixtures(t, "gcc-callops-bti-module.ko")[0], testutil.Fixtures(t, "clang-callops-bti-kimage.elf")[0]} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(b); n += 7 {
			f, err := elfscan.Scan(bytes.NewReader(b[:n]), path)
			// Section headers sit at the end of these files: any cut loses some.
			if err == nil || f != nil {
				t.Fatalf("%s cut at %d: err %v, result %v", filepath.Base(path), n, err, f != nil)
			}
			if !errors.Is(err, elfscan.ErrMalformed) {
				t.Fatalf("%s cut at %d: error %v is not ErrMalformed", filepath.Base(path), n, err)
			}
		}
	}
}

func TestScanX86Object(t *testing.T) {
	gcc := testutil.NeedTool(t, "gcc")
	dir := t.TempDir()
	src := filepath.Join(dir, "a.c")
	os.WriteFile(src, []byte("int f(void) { return 1; }\n"), 0o644)
	obj := filepath.Join(dir, "a.o")
	if out, err := exec.Command(gcc, "-c", "-fpatchable-function-entry=2", "-o", obj, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	if _, err := elfscan.ScanFile(obj); !errors.Is(err, elfscan.ErrNotAArch64) {
		t.Fatalf("x86-64 object: error %v, want ErrNotAArch64", err)
	}
}

func TestScanBigEndianObject(t *testing.T) {
	clang := testutil.NeedTool(t, "clang")
	dir := t.TempDir()
	src := filepath.Join(dir, "a.c")
	os.WriteFile(src, []byte("int f(void) { return 1; }\n"), 0o644)
	obj := filepath.Join(dir, "a.o")
	if out, err := exec.Command(clang, "--target=aarch64_be-linux-gnu", "-c", "-fpatchable-function-entry=2", "-o", obj, src).CombinedOutput(); err != nil {
		t.Fatalf("clang: %v\n%s", err, out)
	}
	if _, err := elfscan.ScanFile(obj); !errors.Is(err, elfscan.ErrNotAArch64) {
		t.Fatalf("big-endian object: error %v, want ErrNotAArch64", err)
	}
}

func FuzzScan(f *testing.F) {
	testutil.AddFixtures(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, err := elfscan.Scan(bytes.NewReader(b), "fuzz")
		if err != nil && sf != nil {
			t.Fatalf("error %v with a result", err)
		}
		if err == nil {
			report.AppendScan(nil, sf) // renders whatever the scan accepted
		}
	})
}

func BenchmarkScan(b *testing.B) {
	var best string
	var size int64
	for _, p := range elfFixtures(b) {
		if st, err := os.Stat(p); err == nil && st.Size() > size {
			best, size = p, st.Size()
		}
	}
	if big := os.Getenv("FTPATCH_BENCH_FILE"); big != "" {
		best = big
	}
	raw, err := os.ReadFile(best)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := elfscan.Scan(bytes.NewReader(raw), best); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanJSON is what `scan --json` does per file: scan and encode.
func BenchmarkScanJSON(b *testing.B) {
	path := os.Getenv("FTPATCH_BENCH_FILE")
	if path == "" {
		b.Skip("set FTPATCH_BENCH_FILE (make bench builds build/bench/vmlinux.elf)")
	}
	b.ReportAllocs()
	for b.Loop() {
		f, err := elfscan.ScanFile(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := report.WriteScan(io.Discard, f); err != nil {
			b.Fatal(err)
		}
	}
}
