// SPDX-License-Identifier: Apache-2.0

package elfscan_test

// Cross-check of every fixture against binutils: the records come from
// readelf -r (relocations) and objdump -s (stored values), the words, BTI
// and function names from objdump -d. Nothing here calls the scanner's
// helpers to compute an expectation.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

func run(t *testing.T, tool string, args ...string) string {
	t.Helper()
	out, err := exec.Command(testutil.NeedTool(t, tool), args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", tool, strings.Join(args, " "), err)
	}
	return string(out)
}

func hexU(t *testing.T, s string) uint64 {
	t.Helper()
	neg := strings.HasPrefix(s, "-")
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(s, "-"), "0x"), 16, 64)
	if err != nil {
		t.Fatalf("parsing %q: %v", s, err)
	}
	if neg {
		v = -v
	}
	return v
}

// binSection is a row of readelf -SW.
type binSection struct {
	name       string
	addr, size uint64
}

func readSections(t *testing.T, path string) map[int]binSection {
	out := map[int]binSection{}
	for _, l := range strings.Split(run(t, "aarch64-linux-gnu-readelf", "-SW", path), "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "[") || strings.HasPrefix(l, "[Nr]") {
			continue
		}
		i := strings.Index(l, "]")
		idx, err := strconv.Atoi(strings.TrimSpace(l[1:i]))
		if err != nil || idx == 0 {
			continue
		}
		f := strings.Fields(l[i+1:])
		// Name Type Address Off Size ...
		out[idx] = binSection{f[0], hexU(t, f[2]), hexU(t, f[4])}
	}
	return out
}

// readSymbols maps symbol names to (value, section index) from readelf -sW.
func readSymbols(t *testing.T, path string) map[string][2]uint64 {
	out := map[string][2]uint64{}
	for _, l := range strings.Split(run(t, "aarch64-linux-gnu-readelf", "-sW", path), "\n") {
		f := strings.Fields(l)
		// Num: Value Size Type Bind Vis Ndx Name
		if len(f) < 8 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		ndx, err := strconv.Atoi(f[6])
		if err != nil {
			continue
		}
		if _, dup := out[f[7]]; !dup {
			out[f[7]] = [2]uint64{hexU(t, f[1]), uint64(ndx)}
		}
	}
	return out
}

// binReloc is a row of readelf -rW.
type binReloc struct {
	section string // the relocation section
	off     uint64
	typ     string
	sym     string
	addend  uint64
}

func readRelocs(t *testing.T, path string) []binReloc {
	var out []binReloc
	sec := ""
	for _, l := range strings.Split(run(t, "aarch64-linux-gnu-readelf", "-rW", path), "\n") {
		if strings.HasPrefix(l, "Relocation section '") {
			sec = strings.Split(l, "'")[1]
			continue
		}
		f := strings.Fields(l)
		if len(f) < 3 || !strings.HasPrefix(f[2], "R_AARCH64_") {
			continue
		}
		r := binReloc{section: sec, off: hexU(t, f[0]), typ: f[2]}
		switch {
		case len(f) == 4: // no symbol: Offset Info Type Addend
			r.addend = hexU(t, f[3])
		case len(f) >= 7: // Offset Info Type Value Name +|- Addend
			r.sym = f[4]
			r.addend = hexU(t, f[6])
			if f[5] == "-" {
				r.addend = -r.addend
			}
		}
		out = append(out, r)
	}
	return out
}

// readStored returns the 8-byte values objdump -s shows for a section.
func readStored(t *testing.T, path, section string, extra ...string) (vals []uint64) {
	var b []byte
	in := false
	for _, l := range strings.Split(run(t, "aarch64-linux-gnu-objdump", append([]string{"-s", "-j", section, path}, extra...)...), "\n") {
		if strings.HasPrefix(l, "Contents of section ") {
			in = true
			continue
		}
		if !in || !strings.HasPrefix(l, " ") {
			continue
		}
		// " addr w0 w1 w2 w3  ascii": two spaces end the hex groups.
		hexPart := l[1:]
		if i := strings.Index(hexPart, "  "); i >= 0 {
			hexPart = hexPart[:i]
		}
		f := strings.Fields(hexPart)
		for _, g := range f[1:] {
			for i := 0; i+2 <= len(g); i += 2 {
				v, _ := strconv.ParseUint(g[i:i+2], 16, 8)
				b = append(b, byte(v))
			}
		}
	}
	for i := 0; i+8 <= len(b); i += 8 {
		vals = append(vals, binary.LittleEndian.Uint64(b[i:]))
	}
	return vals
}

type insn struct {
	word uint32
	mnem string
}

// disasm is objdump -d: per section, the words and labels by address.
type disasm struct {
	words  map[string]map[uint64]insn
	labels map[string]map[uint64]string
}

func readDisasm(t *testing.T, path string) disasm {
	d := disasm{map[string]map[uint64]insn{}, map[string]map[uint64]string{}}
	sec := ""
	sc := bufio.NewScanner(strings.NewReader(run(t, "aarch64-linux-gnu-objdump", "-d", "-z", path)))
	for sc.Scan() {
		l := sc.Text()
		if s, ok := strings.CutPrefix(l, "Disassembly of section "); ok {
			sec = strings.TrimSuffix(s, ":")
			d.words[sec], d.labels[sec] = map[uint64]insn{}, map[uint64]string{}
			continue
		}
		if i := strings.Index(l, " <"); i > 0 && strings.HasSuffix(l, ">:") && !strings.HasPrefix(l, " ") {
			d.labels[sec][hexU(t, l[:i])] = l[i+2 : len(l)-2]
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) < 3 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		w, err := strconv.ParseUint(strings.TrimSpace(f[1]), 16, 32)
		if err != nil {
			continue
		}
		d.words[sec][hexU(t, strings.TrimSpace(strings.TrimSuffix(f[0], ":")))] = insn{uint32(w), strings.Join(strings.Fields(strings.Join(f[2:], " ")), " ")}
	}
	return d
}

// siteFacts is what binutils and the fixture's name say about one site.
type siteFacts struct {
	Section      string
	Record       uint64
	Entry        uint64
	Func         string
	Layout       elfscan.Layout
	BTI          bool
	State        elfscan.State
	Slot1, Slot2 uint32
	CFIHash      bool // objdump shows data (.word), not code, just before the NOPs
}

func TestScanMatchesBinutils(t *testing.T) {
	for _, path := range testutil.Fixtures(t, "*-*-*.*") {
		name := filepath.Base(path)
		if strings.HasSuffix(name, ".md") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			layout := fixtureLayout(name)
			secs := readSections(t, path)
			type rec struct {
				sec  string
				addr uint64
			}
			var recs []rec
			relocs := readRelocs(t, path)
			isRel := strings.HasSuffix(name, ".o") || strings.HasSuffix(name, ".ko")
			if isRel {
				syms := readSymbols(t, path)
				secNames := map[string]bool{}
				for _, s := range secs {
					secNames[s.name] = true
				}
				for _, r := range relocs {
					if r.section != ".rela__patchable_function_entries" {
						continue
					}
					if r.typ != "R_AARCH64_ABS64" {
						t.Fatalf("unexpected %s in %s", r.typ, r.section)
					}
					if secNames[r.sym] {
						recs = append(recs, rec{r.sym, r.addend})
					} else {
						s := syms[r.sym]
						recs = append(recs, rec{secs[int(s[1])].name, s[0] + r.addend})
					}
				}
			} else {
				// Linked: stored values, else RELATIVE addends in the range.
				var lo, hi uint64
				var stored []uint64
				for _, s := range secs {
					if s.name == "__patchable_function_entries" {
						lo, hi = s.addr, s.addr+s.size
						stored = readStored(t, path, s.name)
					}
				}
				if hi == 0 {
					syms := readSymbols(t, path)
					lo, hi = syms["__start_mcount_loc"][0], syms["__stop_mcount_loc"][0]
					in := secs[int(syms["__start_mcount_loc"][1])].name
					stored = readStored(t, path, in, fmt.Sprintf("--start-address=%#x", lo), fmt.Sprintf("--stop-address=%#x", hi))
				}
				if hi <= lo {
					t.Fatalf("no entries range found by readelf")
				}
				for _, r := range relocs {
					if r.typ == "R_AARCH64_RELATIVE" && r.off >= lo && r.off < hi && stored[(r.off-lo)/8] == 0 {
						stored[(r.off-lo)/8] = r.addend
					}
				}
				for _, v := range stored {
					if v == 0 {
						continue
					}
					for _, s := range secs {
						if v >= s.addr && v < s.addr+s.size && s.name != "" && s.addr != 0 {
							recs = append(recs, rec{s.name, v})
							break
						}
					}
				}
			}
			d := readDisasm(t, path)
			var want []siteFacts
			for _, r := range recs {
				words := d.words[r.sec]
				f := siteFacts{Section: r.sec, Record: r.addr, Layout: layout, Entry: r.addr}
				slot1 := r.addr
				if layout != elfscan.LayoutClassic {
					f.Entry = r.addr + 8
					if layout == elfscan.LayoutCallOps53 {
						f.Entry = r.addr + 12
					}
					f.CFIHash = strings.HasPrefix(words[r.addr-4].mnem, ".word")
					f.BTI = words[f.Entry].mnem == "bti c"
					slot1 = f.Entry
					if f.BTI {
						slot1 += 4
					}
				} else if words[r.addr-4].mnem == "bti c" && d.labels[r.sec][r.addr] == "" {
					f.Entry, f.BTI = r.addr-4, true
				}
				f.Func = d.labels[r.sec][f.Entry]
				f.Slot1, f.Slot2 = words[slot1].word, words[slot1+4].word
				if words[slot1].mnem == "nop" && words[slot1+4].mnem == "nop" {
					f.State = elfscan.StateNop
				}
				want = append(want, f)
			}
			sf, err := elfscan.ScanFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var got []siteFacts
			for _, s := range sf.Sites {
				got = append(got, siteFacts{s.Section, s.Record, s.Entry(), s.Func, s.Layout, s.BTI, s.State, s.Slot1Word, s.Slot2Word, s.CFIHashOff() != elfscan.NoOffset})
			}
			key := func(f siteFacts) string { return fmt.Sprintf("%s %016x", f.Section, f.Record) }
			if diff := cmp.Diff(want, got, cmpSortBy(key)); diff != "" {
				t.Errorf("sites differ from binutils (-binutils +scan):\n%s", diff)
			}
			// binutils finds no record in an image whose entries were all
			// zeroed (kimage-zeroed): scan must agree and say why.
			zeroed := strings.HasSuffix(name, "-zeroed.elf")
			switch {
			case zeroed && (len(sf.FileProblems()) != 1 || sf.FileProblems()[0].Code != elfscan.CodeZeroedEntries):
				t.Errorf("zeroed image: file problems %+v, want zeroed-entries", sf.FileProblems())
			case !zeroed && len(want) == 0:
				t.Errorf("binutils found no sites")
			}
		})
	}
}

func cmpSortBy(key func(siteFacts) string) cmp.Option {
	return cmp.Transformer("sort", func(in []siteFacts) []string {
		out := make([]string, len(in))
		for i, f := range in {
			out[i] = fmt.Sprintf("%s %+v", key(f), f)
		}
		sortStrings(out)
		return out
	})
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
