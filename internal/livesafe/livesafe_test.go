// SPDX-License-Identifier: Apache-2.0

package livesafe

import (
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/testutil/pairtest"
)

// Pairs are made by pairtest, not by the patch commands, so Compare is
// checked independently of the patcher.

var openELF = pairtest.OpenELF

// compare opens both files and compares them.
func compare(orig, patched string, opts Options) (*Report, error) {
	o, p, done, err := pairtest.Open(orig, patched)
	if err != nil {
		return nil, err
	}
	defer done()
	return Compare(o, p, opts)
}

func compareFiles(t testing.TB, orig, patched string) *Report {
	t.Helper()
	r, err := compare(orig, patched, Options{ChunkSize: 4096})
	if err != nil {
		t.Fatalf("Against(%s, %s): %v", orig, patched, err)
	}
	// Every report renders and round-trips through JSON.
	Render(t, r)
	return r
}

func dump(t testing.TB, r *Report) {
	t.Helper()
	t.Log("\n" + Render(t, r))
}

func TestAgainstLinkedStates(t *testing.T) {
	for _, src := range testutil.Fixtures(t, "*.elf") {
		if strings.HasSuffix(src, "-zeroed.elf") {
			continue // no site: its entries table is all zeros (elfscan's zeroed-entries)
		}
		t.Run(filepath.Base(src), func(t *testing.T) {
			f := pairtest.Scan(t, src)
			n, lit := pairtest.EligibleCount(f)
			if n == 0 {
				t.Fatalf("no eligible sites")
			}
			init := pairtest.Linked(t, src, "init", elfscan.StateInit, 0, 0)
			enabled := pairtest.Linked(t, src, "enabled", elfscan.StateEnabled, pairtest.Ops, 0)
			other := pairtest.Linked(t, src, "other", elfscan.StateEnabled, pairtest.Ops+8, f.Sites[len(f.Sites)-1].Entry())

			if r := compareFiles(t, src, src); r.Failed() || len(r.Changes) != 0 || !r.LiveSafe {
				dump(t, r)
				t.Fatal("identical files")
			}
			// nop -> init: MOV (and literal := 0) everywhere, allowed but not live-safe.
			r := compareFiles(t, src, init)
			if r.Failed() || r.LiveSafe || r.Counts.Changes[KindMov] != n || r.Counts.Changes[KindLiteral] != lit {
				dump(t, r)
				t.Fatalf("nop -> init: want %d mov, %d literal, not live-safe", n, lit)
			}
			// init -> enabled: literal + BL, live-safe, each intermediate proven like the old state.
			r = compareFiles(t, init, enabled)
			if r.Failed() || !r.LiveSafe || r.Counts.Changes[KindCall] != n || r.Counts.Changes[KindLiteral] != lit ||
				r.Counts.Intermediates != lit || r.Counts.Unproven != 0 {
				dump(t, r)
				t.Fatalf("init -> enabled: want %d call, %d literal, live-safe", n, lit)
			}
			for _, ic := range r.Intermediates {
				if ic.Order != OrderLiteralFirst || ic.Like != "old" || !ic.Proven || ic.Func == "" {
					t.Errorf("intermediate %+v", ic)
				}
			}
			// enabled -> init (disable): BL removed first, literal back.
			r = compareFiles(t, enabled, init)
			if r.Failed() || !r.LiveSafe || r.Counts.Changes[KindUncall] != n || r.Counts.Intermediates != lit {
				dump(t, r)
				t.Fatal("enabled -> init")
			}
			for _, ic := range r.Intermediates {
				if ic.Order != OrderCallFirst || ic.Like != "new" || !ic.Proven {
					t.Errorf("intermediate %+v", ic)
				}
			}
			// enabled -> other trampoline and ops: BL -> BL is allowed, but the
			// old BL reading the new literal cannot be proven.
			r = compareFiles(t, enabled, other)
			if r.Failed() || r.Counts.Changes[KindRetarget] == 0 || (lit > 0) != (r.Counts.Unproven > 0) || (lit > 0) == r.LiveSafe {
				dump(t, r)
				t.Fatal("enabled -> other")
			}
			// nop -> enabled in one go: every change allowed, the MOVs not live-safe.
			r = compareFiles(t, src, enabled)
			if r.Failed() || r.LiveSafe || r.Counts.Changes[KindMov] != n || r.Counts.Changes[KindCall] != n {
				dump(t, r)
				t.Fatal("nop -> enabled")
			}
		})
	}
}

// want is what a planted defect must produce: a problem naming section,
// offset and function (when inside one).
type want struct {
	section string
	offset  uint64
	fn      string
	detail  string
}

func expect(t *testing.T, r *Report, w want) {
	t.Helper()
	if !r.Failed() {
		dump(t, r)
		t.Fatalf("defect not caught, want %+v", w)
	}
	for _, p := range r.Problems {
		if p.Section == w.section && uint64(p.Offset) == w.offset && p.Func == w.fn && strings.Contains(ProblemText(p), w.detail) {
			return
		}
	}
	dump(t, r)
	t.Fatalf("no problem %+v among %+v", w, r.Problems)
}

func TestAgainstLinkedDefects(t *testing.T) {
	files := append(testutil.Fixtures(t, "*-callops-bti-static.elf"), testutil.Fixtures(t, "*-classic-bti-pie.elf")...)
	files = append(files, testutil.Fixtures(t, "clang-callops-bti-kimage-relr.elf")...)
	for _, src := range files {
		f := pairtest.Scan(t, src)
		ef, err := openELF(t, src)
		if err != nil {
			t.Fatal(err)
		}
		s := pairtest.Pick(t, f, true)
		sec := ef.Sections[s.SectionIndex()]
		secOff := func(addr uint64) uint64 { return addr - sec.Addr }
		enabled := pairtest.Linked(t, src, "enabled", elfscan.StateEnabled, pairtest.Ops, 0)
		var data *elf.Section
		for _, c := range ef.Sections {
			if c.Type == elf.SHT_PROGBITS && c.Flags&elf.SHF_EXECINSTR == 0 && c.Size > 0 && c.Name != elfscan.EntriesSection {
				data = c
				break
			}
		}
		cases := []struct {
			name  string
			plant func(p string)
			want  want
		}{
			{"stray byte in a function body", func(p string) {
				pairtest.PatchBytes(t, p, s.Slot2Off()+4, []byte{0xff})
			}, want{sec.Name, secOff(s.CallSite() + 4), s.Func, "outside any patch site"}},
			{"stray byte in data", func(p string) {
				pairtest.PatchBytes(t, p, int64(data.Offset)+1, []byte{0xa5})
			}, want{data.Name, 1, "", "outside any patch site"}},
			{"BTI changed", func(p string) {
				pairtest.PatchBytes(t, p, s.Slot1Off()-4, binary.LittleEndian.AppendUint32(nil, encode.NOP))
			}, want{sec.Name, secOff(s.Entry()), s.Func, "BTI"}},
			{"slot2 to another instruction", func(p string) {
				pairtest.PatchBytes(t, p, s.Slot2Off(), binary.LittleEndian.AppendUint32(nil, 0x91000400)) // add x0, x0, #1
			}, want{sec.Name, secOff(s.CallSite()), s.Func, "slot2 changed"}},
			{"slot2 to B (no link)", func(p string) {
				pairtest.PatchBytes(t, p, s.Slot2Off(), binary.LittleEndian.AppendUint32(nil, 0x14000010))
			}, want{sec.Name, secOff(s.CallSite()), s.Func, "slot2 changed"}},
			{"slot1 to another instruction", func(p string) {
				pairtest.PatchBytes(t, p, s.Slot1Off(), binary.LittleEndian.AppendUint32(nil, 0xaa1e03ea)) // mov x10, x30
			}, want{sec.Name, secOff(s.CallSite() - 4), s.Func, "slot1 changed"}},
			{"ELF header", func(p string) {
				pairtest.PatchBytes(t, p, 24, []byte{0x44}) // e_entry
			}, want{"ELF header", 24, "", "outside any patch site"}},
		}
		for _, c := range cases {
			t.Run(filepath.Base(src)+"/"+c.name, func(t *testing.T) {
				p := pairtest.Copy(t, enabled, "defect")
				c.plant(p)
				expect(t, compareFiles(t, src, p), c.want)
			})
		}
		t.Run(filepath.Base(src)+"/size", func(t *testing.T) {
			p := pairtest.Copy(t, enabled, "defect")
			fd, _ := os.OpenFile(p, os.O_RDWR|os.O_APPEND, 0)
			fd.Write([]byte{0})
			fd.Close()
			expect(t, compareFiles(t, src, p), want{"ELF header", 0, "", "size changed"})
		})
	}
}

func TestAgainstMisalignedLiteral(t *testing.T) {
	src := testutil.Fixtures(t, "gcc-callops-static.elf")[0]
	f := pairtest.Scan(t, src)
	ef, err := openELF(t, src)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range f.Sites {
		if !s.HasProblem(elfscan.CodeMisalignedLiteral) {
			continue
		}
		p := pairtest.Copy(t, src, "misaligned")
		pairtest.PatchBytes(t, p, s.LiteralOff(), binary.LittleEndian.AppendUint64(nil, pairtest.Ops))
		sec := ef.Sections[s.SectionIndex()]
		expect(t, compareFiles(t, src, p), want{sec.Name, s.Literal() - sec.Addr, s.Func, "not 8-byte aligned"})
		return
	}
	t.Fatal("gcc-callops-static.elf has no misaligned literal any more; pick another fixture")
}

// TestAgainstUnknownState: a BL in slot2 without the MOV would clobber X30.
func TestAgainstUnknownState(t *testing.T) {
	src := testutil.Fixtures(t, "clang-callops-static.elf")[0]
	f := pairtest.Scan(t, src)
	s := pairtest.Pick(t, f, false)
	p := pairtest.Copy(t, src, "nomov")
	w, err := (encode.BL{From: s.CallSite(), To: s.Entry()}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	pairtest.PatchBytes(t, p, s.Slot2Off(), binary.LittleEndian.AppendUint32(nil, w))
	r := compareFiles(t, src, p)
	ef, _ := openELF(t, src)
	sec := ef.Sections[s.SectionIndex()]
	expect(t, r, want{sec.Name, s.Entry() - sec.Addr, s.Func, "no known state"})
}

func TestIntermediateOf(t *testing.T) {
	bl := uint32(0x94000010)
	// A scanned call-ops site (its literal read) with the words of each case.
	base := *pairtest.Pick(t, pairtest.Scan(t, testutil.Fixtures(t, "clang-callops-static.elf")[0]), false)
	site := func(lit uint64, s1, s2 uint32) elfscan.Site {
		s := base
		s.LiteralWord, s.Slot1Word, s.Slot2Word = lit, s1, s2
		return s
	}
	tests := []struct {
		name          string
		orig, patched elfscan.Site
		ok            bool
		want          IntermediateState
	}{
		{"enable", site(0, encode.MovX9X30, encode.NOP), site(pairtest.Ops, encode.MovX9X30, bl), true,
			IntermediateState{Words: WordsOf(site(pairtest.Ops, encode.MovX9X30, encode.NOP)), Order: OrderLiteralFirst, LikeOld: true, Proven: true}},
		{"enable with init", site(0, encode.NOP, encode.NOP), site(pairtest.Ops, encode.MovX9X30, bl), true,
			IntermediateState{Words: WordsOf(site(pairtest.Ops, encode.NOP, encode.NOP)), Order: OrderLiteralFirst, LikeOld: true, Proven: true}},
		{"disable", site(pairtest.Ops, encode.MovX9X30, bl), site(0, encode.MovX9X30, encode.NOP), true,
			IntermediateState{Words: WordsOf(site(pairtest.Ops, encode.MovX9X30, encode.NOP)), Order: OrderCallFirst, Proven: true}},
		{"retarget with new ops", site(pairtest.Ops, encode.MovX9X30, bl), site(pairtest.Ops+8, encode.MovX9X30, bl+1), true,
			IntermediateState{Words: WordsOf(site(pairtest.Ops+8, encode.MovX9X30, bl)), Order: OrderLiteralFirst, LikeOld: true}},
		{"literal only", site(0, encode.MovX9X30, bl), site(pairtest.Ops, encode.MovX9X30, bl), false, IntermediateState{}},
		{"call only", site(0, encode.MovX9X30, encode.NOP), site(0, encode.MovX9X30, bl), false, IntermediateState{}},
		{"classic", elfscan.Site{Layout: elfscan.LayoutClassic, Slot2Word: encode.NOP},
			elfscan.Site{Layout: elfscan.LayoutClassic, Slot2Word: bl}, false, IntermediateState{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := IntermediateOf(tt.orig, tt.patched)
			if ok != tt.ok || got.Words != tt.want.Words || got.Order != tt.want.Order || got.LikeOld != tt.want.LikeOld || got.Proven != tt.want.Proven {
				t.Fatalf("got %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// ---- ET_REL ----

func TestAgainstRelocatable(t *testing.T) {
	files := append(testutil.Fixtures(t, "*.o"), testutil.Fixtures(t, "*.ko")...)
	for _, src := range files {
		t.Run(filepath.Base(src), func(t *testing.T) {
			f := pairtest.Scan(t, src)
			n, lit := pairtest.EligibleCount(f)
			if r := compareFiles(t, src, src); r.Failed() || len(r.Changes) != 0 {
				dump(t, r)
				t.Fatal("identical files")
			}
			// A rewrite with a new layout but nothing patched is no change.
			same := filepath.Join(t.TempDir(), "same.o")
			pairtest.ReadObj(t, src).Write(t, same)
			if r := compareFiles(t, src, same); r.Failed() || len(r.Changes) != 0 {
				dump(t, r)
				t.Fatal("relaid-out file")
			}
			o := pairtest.ReadObj(t, src)
			nsyms := len(o.Data[o.Index(t, elf.SHT_SYMTAB)])
			pairtest.RelEnable(t, o, f, nil)
			added := (len(o.Data[o.Index(t, elf.SHT_SYMTAB)]) - nsyms) / 24
			enabled := filepath.Join(t.TempDir(), "enabled.o")
			o.Write(t, enabled)
			if pf := pairtest.Scan(t, enabled); func() bool {
				for _, s := range pf.Sites {
					if pairtest.Eligible(&s) && s.State != elfscan.StateEnabled {
						return true
					}
				}
				return false
			}() {
				t.Fatal("the test's rewrite does not scan as enabled")
			}
			r := compareFiles(t, src, enabled)
			if r.Failed() || r.Counts.Changes[KindCall] != n || r.Counts.Changes[KindMov] != n || r.Counts.Changes[KindLiteral] != lit ||
				r.Counts.RelocsAdded != n+lit || r.Counts.SymbolsAdded != added || r.Counts.Unproven != 0 {
				dump(t, r)
				t.Fatalf("nop -> enabled: want %d call/mov, %d literal", n, lit)
			}
			// And back: disable removes the relocations; the symbols stay.
			if r := compareFiles(t, enabled, same); !r.Failed() {
				dump(t, r)
				t.Fatal("enabled -> fewer symbols must fail: symbols may only be added")
			}
		})
	}
}

func TestAgainstRelocatableDefects(t *testing.T) {
	for _, src := range append(testutil.Fixtures(t, "gcc-callops-bti-obj.o"), testutil.Fixtures(t, "clang-classic-bti-fsobj.o")...) {
		f := pairtest.Scan(t, src)
		s := pairtest.Pick(t, f, true)
		f0, err := openELF(t, src)
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name  string
			plant func(o *pairtest.Obj)
			want  want
		}{
			{"extra relocation in a body", func(o *pairtest.Obj) {
				o.AddRela(t, s.SectionIndex(), elfscan.Rela{Off: s.CallSite() + 4, Type: elf.R_AARCH64_CALL26, Sym: o.AddSym(t, "evil")})
			}, want{s.Section, s.CallSite() + 4, s.Func, "relocation added"}},
			{"CALL26 at slot1", func(o *pairtest.Obj) {
				o.AddRela(t, s.SectionIndex(), elfscan.Rela{Off: s.CallSite() - 4, Type: elf.R_AARCH64_CALL26, Sym: 1})
			}, want{s.Section, s.CallSite() - 4, s.Func, "relocation added"}},
			{"ABS64 at slot2", func(o *pairtest.Obj) {
				o.AddRela(t, s.SectionIndex(), elfscan.Rela{Off: s.CallSite(), Type: elf.R_AARCH64_ABS64, Sym: 1})
			}, want{s.Section, s.CallSite(), s.Func, "relocation added"}},
			{"changed addend", func(o *pairtest.Obj) {
				for i, sh := range o.Sh[:len(f0.Sections)] {
					if sh.Type == uint32(elf.SHT_RELA) && o.Names[sh.Info] != elfscan.EntriesSection && len(o.Data[i]) >= 24 {
						binary.LittleEndian.PutUint64(o.Data[i][16:], binary.LittleEndian.Uint64(o.Data[i][16:])+4)
						return
					}
				}
				t.Fatal("no relocation to change")
			}, want{detail: "relocation removed"}},
			{"BL without relocation", func(o *pairtest.Obj) {
				o.Put32(s.SectionIndex(), s.CallSite()-4, encode.MovX9X30)
				o.Put32(s.SectionIndex(), s.CallSite(), 0x94000000)
			}, want{s.Section, s.CallSite(), s.Func, "without an R_AARCH64_CALL26"}},
			{"stray byte in a body", func(o *pairtest.Obj) {
				o.Data[s.SectionIndex()][s.CallSite()+5] ^= 1
			}, want{s.Section, s.CallSite() + 5, s.Func, "outside any patch site"}},
			{"BTI changed", func(o *pairtest.Obj) {
				o.Put32(s.SectionIndex(), s.Entry(), encode.NOP)
			}, want{s.Section, s.Entry(), s.Func, "BTI"}},
			{"defined symbol added", func(o *pairtest.Obj) {
				i := o.AddSym(t, "sneaky")
				st := o.Index(t, elf.SHT_SYMTAB)
				binary.LittleEndian.PutUint16(o.Data[st][i*24+6:], uint16(s.SectionIndex()))
			}, want{".symtab", 0, "", "not undefined"}},
			{"existing symbol changed", func(o *pairtest.Obj) {
				st := o.Index(t, elf.SHT_SYMTAB)
				e := o.Data[st][24:]
				binary.LittleEndian.PutUint64(e[8:], binary.LittleEndian.Uint64(e[8:])+4)
			}, want{".symtab", 0, "", "changed"}},
			{"existing symbol's visibility changed", func(o *pairtest.Obj) {
				st := o.Index(t, elf.SHT_SYMTAB)
				o.Data[st][24+5] ^= byte(elf.STV_HIDDEN)
			}, want{".symtab", 0, "", "other"}},
			{"added symbol hidden", func(o *pairtest.Obj) {
				i := o.AddSym(t, "hidden_ops")
				st := o.Index(t, elf.SHT_SYMTAB)
				o.Data[st][i*24+5] = byte(elf.STV_HIDDEN)
			}, want{".symtab", 0, "", "visibility STV_HIDDEN"}},
			{"section added", func(o *pairtest.Obj) {
				o.AddRela(t, o.Index(t, elf.SHT_SYMTAB), elfscan.Rela{})
			}, want{".rela.symtab", 0, "", "added section"}},
		}
		for _, c := range cases {
			t.Run(filepath.Base(src)+"/"+c.name, func(t *testing.T) {
				o := pairtest.ReadObj(t, src)
				var skip *elfscan.Site
				if c.name == "BL without relocation" { // s is left out of the enable
					skip = s
				}
				pairtest.RelEnable(t, o, f, skip)
				c.plant(o)
				p := filepath.Join(t.TempDir(), "defect.o")
				o.Write(t, p)
				r := compareFiles(t, src, p)
				if c.want.section == "" || c.want.section == ".symtab" || c.want.section == ".rela.symtab" {
					// The place is a table entry: check the words only.
					if !r.Failed() {
						dump(t, r)
						t.Fatal("defect not caught")
					}
					for _, p := range r.Problems {
						if strings.Contains(ProblemText(p), c.want.detail) && (c.want.section == "" || p.Section == c.want.section) {
							return
						}
					}
					dump(t, r)
					t.Fatalf("no problem %+v", c.want)
				}
				expect(t, r, c.want)
			})
		}
	}
}

// fixed amount (chunk buffers, the sites), not the file size.
func TestAgainstMemoryBounded(t *testing.T) {
	dir := t.TempDir()
	orig, n := pairtest.Synth(t, dir, 64<<20, 32<<10, false)
	patched, _ := pairtest.Synth(t, dir, 64<<20, 32<<10, true)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := compare(orig, patched, Options{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if r.Failed() || r.Counts.Changes[KindCall] != n || r.Counts.Changes[KindLiteral] != n {
		dump(t, r)
		t.Fatalf("want %d sites enabled", n)
	}
	t.Logf("allocated %d KiB comparing 64 MiB files", (after.TotalAlloc-before.TotalAlloc)>>10)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Fatalf("allocated %d MiB comparing 64 MiB files", alloc>>20)
	}
}

func BenchmarkAgainst(b *testing.B) {
	dir := b.TempDir()
	const size = 256 << 20
	orig, n := pairtest.Synth(b, dir, size, 64<<10, false)
	patched, _ := pairtest.Synth(b, dir, size, 64<<10, true)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		r, err := compare(orig, patched, Options{})
		if err != nil || r.Failed() || r.Counts.SitesChanged != n {
			b.Fatalf("%v %+v", err, r.Counts)
		}
	}
	b.ReportMetric(float64(n), "sites")
}
