package verify

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// Pairs are made here, not by the patch commands: the test writes site
// words itself (and, for ET_REL, rewrites the object with new relocations
// and symbols), so Against is checked independently of the patcher.

const agOps = 0x1234_5678_9abc_def0

func agScan(t testing.TB, path string) *elfscan.File {
	t.Helper()
	f, err := elfscan.ScanFile(path)
	if err != nil {
		t.Fatalf("scan %s: %v", path, err)
	}
	return f
}

func agCopy(t testing.TB, src, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// agEligible is what enable would touch: known state, aligned literal.
func agEligible(s *elfscan.Site) bool {
	return s.State != elfscan.StateUnknown && !s.HasProblem(elfscan.CodeMisalignedLiteral) &&
		s.Slot1Off != elfscan.NoOffset && s.Slot2Off != elfscan.NoOffset
}

// agLinked returns a copy of src with every eligible site put in state
// (nop, init or enabled), ops in the literal and the BL aimed at tramp
// (0: the first site's entry).
func agLinked(t testing.TB, src, name string, state elfscan.State, ops, tramp uint64) string {
	t.Helper()
	f := agScan(t, src)
	dst := agCopy(t, src, name)
	fd, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if tramp == 0 && len(f.Sites) > 0 {
		tramp = f.Sites[0].Entry
	}
	for i := range f.Sites {
		s := &f.Sites[i]
		if !agEligible(s) {
			continue
		}
		lit, s1, s2 := uint64(0), encode.MovX9X30, encode.NOP
		switch state {
		case elfscan.StateNop:
			lit, s1 = uint64(encode.NOP)|uint64(encode.NOP)<<32, encode.NOP
		case elfscan.StateEnabled:
			lit = ops
			if s2, err = (encode.BL{From: s.CallSite, To: tramp}).Encode(); err != nil {
				t.Fatal(err)
			}
		}
		if s.LiteralOff != elfscan.NoOffset {
			agPwrite(t, fd, s.LiteralOff, binary.LittleEndian.AppendUint64(nil, lit))
		}
		agPwrite(t, fd, s.Slot1Off, binary.LittleEndian.AppendUint32(nil, s1))
		agPwrite(t, fd, s.Slot2Off, binary.LittleEndian.AppendUint32(nil, s2))
	}
	return dst
}

func agPwrite(t testing.TB, fd *os.File, off int64, b []byte) {
	t.Helper()
	if _, err := fd.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func agPatchBytes(t testing.TB, path string, off int64, b []byte) {
	t.Helper()
	fd, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	agPwrite(t, fd, off, b)
}

func agAgainst(t testing.TB, orig, patched string) *AgainstReport {
	t.Helper()
	r, err := Against(orig, patched, AgainstOptions{ChunkSize: 4096})
	if err != nil {
		t.Fatalf("Against(%s, %s): %v", orig, patched, err)
	}
	// Every report renders and round-trips through JSON.
	var w bytes.Buffer
	if err := r.Write(&w); err != nil || w.Len() == 0 {
		t.Fatalf("Write: %v", err)
	}
	w.Reset()
	if err := r.JSON(&w); err != nil {
		t.Fatal(err)
	}
	var back AgainstReport
	if err := json.Unmarshal(w.Bytes(), &back); err != nil || back.Counts.Problems != r.Counts.Problems {
		t.Fatalf("JSON round trip: %v", err)
	}
	return r
}

func agDump(t testing.TB, r *AgainstReport) {
	t.Helper()
	var b strings.Builder
	r.Write(&b)
	t.Log("\n" + b.String())
}

// eligibleCount counts sites enable would touch, and those with a literal.
func agEligibleCount(f *elfscan.File) (n, lit int) {
	for i := range f.Sites {
		if agEligible(&f.Sites[i]) {
			n++
			if f.Sites[i].Layout == elfscan.LayoutCallOps {
				lit++
			}
		}
	}
	return n, lit
}

func TestAgainstLinkedStates(t *testing.T) {
	for _, src := range testutil.Fixtures(t, "*.elf") {
		t.Run(filepath.Base(src), func(t *testing.T) {
			f := agScan(t, src)
			n, lit := agEligibleCount(f)
			if n == 0 {
				t.Fatalf("no eligible sites")
			}
			init := agLinked(t, src, "init", elfscan.StateInit, 0, 0)
			enabled := agLinked(t, src, "enabled", elfscan.StateEnabled, agOps, 0)
			other := agLinked(t, src, "other", elfscan.StateEnabled, agOps+8, f.Sites[len(f.Sites)-1].Entry)

			if r := agAgainst(t, src, src); r.Failed() || len(r.Changes) != 0 || !r.LiveSafe {
				agDump(t, r)
				t.Fatal("identical files")
			}
			// nop -> init: MOV (and literal := 0) everywhere, allowed but not live-safe.
			r := agAgainst(t, src, init)
			if r.Failed() || r.LiveSafe || r.Counts.Changes[KindMov] != n || r.Counts.Changes[KindLiteral] != lit {
				agDump(t, r)
				t.Fatalf("nop -> init: want %d mov, %d literal, not live-safe", n, lit)
			}
			// init -> enabled: literal + BL, live-safe, each intermediate proven like the old state.
			r = agAgainst(t, init, enabled)
			if r.Failed() || !r.LiveSafe || r.Counts.Changes[KindCall] != n || r.Counts.Changes[KindLiteral] != lit ||
				r.Counts.Intermediates != lit || r.Counts.Unproven != 0 {
				agDump(t, r)
				t.Fatalf("init -> enabled: want %d call, %d literal, live-safe", n, lit)
			}
			for _, ic := range r.Intermediates {
				if ic.Order != OrderLiteralFirst || ic.Like != "old" || !ic.Proven || ic.Func == "" {
					t.Errorf("intermediate %+v", ic)
				}
			}
			// enabled -> init (disable): BL removed first, literal back.
			r = agAgainst(t, enabled, init)
			if r.Failed() || !r.LiveSafe || r.Counts.Changes[KindUncall] != n || r.Counts.Intermediates != lit {
				agDump(t, r)
				t.Fatal("enabled -> init")
			}
			for _, ic := range r.Intermediates {
				if ic.Order != OrderCallFirst || ic.Like != "new" || !ic.Proven {
					t.Errorf("intermediate %+v", ic)
				}
			}
			// enabled -> other trampoline and ops: BL -> BL is allowed, but the
			// old BL reading the new literal cannot be proven.
			r = agAgainst(t, enabled, other)
			if r.Failed() || r.Counts.Changes[KindRetarget] == 0 || (lit > 0) != (r.Counts.Unproven > 0) || (lit > 0) == r.LiveSafe {
				agDump(t, r)
				t.Fatal("enabled -> other")
			}
			// nop -> enabled in one go: every change allowed, the MOVs not live-safe.
			r = agAgainst(t, src, enabled)
			if r.Failed() || r.LiveSafe || r.Counts.Changes[KindMov] != n || r.Counts.Changes[KindCall] != n {
				agDump(t, r)
				t.Fatal("nop -> enabled")
			}
		})
	}
}

// agWant is what a planted defect must produce: a problem naming section,
// offset and function (when inside one).
type agWant struct {
	section string
	offset  uint64
	fn      string
	detail  string
}

func agExpect(t *testing.T, r *AgainstReport, w agWant) {
	t.Helper()
	if !r.Failed() {
		agDump(t, r)
		t.Fatalf("defect not caught, want %+v", w)
	}
	for _, p := range r.Problems {
		if p.Section == w.section && uint64(p.Offset) == w.offset && p.Func == w.fn && strings.Contains(p.Detail, w.detail) {
			return
		}
	}
	agDump(t, r)
	t.Fatalf("no problem %+v among %+v", w, r.Problems)
}

// agSiteWithLiteral returns the first eligible call-ops site, else the first eligible one.
func agPick(t *testing.T, f *elfscan.File, needBTI bool) *elfscan.Site {
	t.Helper()
	var best *elfscan.Site
	for i := range f.Sites {
		s := &f.Sites[i]
		if !agEligible(s) || s.Func == "" || (needBTI && !s.BTI) {
			continue
		}
		if s.Layout == elfscan.LayoutCallOps {
			return s
		}
		if best == nil {
			best = s
		}
	}
	if best == nil {
		t.Fatal("no site to plant a defect at")
	}
	return best
}

func TestAgainstLinkedDefects(t *testing.T) {
	files := append(testutil.Fixtures(t, "*-callops-bti-static.elf"), testutil.Fixtures(t, "*-classic-bti-pie.elf")...)
	files = append(files, testutil.Fixtures(t, "clang-callops-bti-kimage-relr.elf")...)
	for _, src := range files {
		f := agScan(t, src)
		_, ef, err := elfscan.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		s := agPick(t, f, true)
		sec := ef.Sections[s.SectionIndex]
		secOff := func(addr uint64) uint64 { return addr - sec.Addr }
		enabled := agLinked(t, src, "enabled", elfscan.StateEnabled, agOps, 0)
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
			want  agWant
		}{
			{"stray byte in a function body", func(p string) {
				agPatchBytes(t, p, s.Slot2Off+4, []byte{0xff})
			}, agWant{sec.Name, secOff(s.CallSite + 4), s.Func, "outside any patch site"}},
			{"stray byte in data", func(p string) {
				agPatchBytes(t, p, int64(data.Offset)+1, []byte{0xa5})
			}, agWant{data.Name, 1, "", "outside any patch site"}},
			{"BTI changed", func(p string) {
				agPatchBytes(t, p, s.Slot1Off-4, binary.LittleEndian.AppendUint32(nil, encode.NOP))
			}, agWant{sec.Name, secOff(s.Entry), s.Func, "BTI"}},
			{"slot2 to another instruction", func(p string) {
				agPatchBytes(t, p, s.Slot2Off, binary.LittleEndian.AppendUint32(nil, 0x91000400)) // add x0, x0, #1
			}, agWant{sec.Name, secOff(s.CallSite), s.Func, "slot2 changed"}},
			{"slot2 to B (no link)", func(p string) {
				agPatchBytes(t, p, s.Slot2Off, binary.LittleEndian.AppendUint32(nil, 0x14000010))
			}, agWant{sec.Name, secOff(s.CallSite), s.Func, "slot2 changed"}},
			{"slot1 to another instruction", func(p string) {
				agPatchBytes(t, p, s.Slot1Off, binary.LittleEndian.AppendUint32(nil, 0xaa1e03ea)) // mov x10, x30
			}, agWant{sec.Name, secOff(s.CallSite - 4), s.Func, "slot1 changed"}},
			{"ELF header", func(p string) {
				agPatchBytes(t, p, 24, []byte{0x44}) // e_entry
			}, agWant{"ELF header", 24, "", "outside any patch site"}},
		}
		for _, c := range cases {
			t.Run(filepath.Base(src)+"/"+c.name, func(t *testing.T) {
				p := agCopy(t, enabled, "defect")
				c.plant(p)
				agExpect(t, agAgainst(t, src, p), c.want)
			})
		}
		t.Run(filepath.Base(src)+"/size", func(t *testing.T) {
			p := agCopy(t, enabled, "defect")
			fd, _ := os.OpenFile(p, os.O_RDWR|os.O_APPEND, 0)
			fd.Write([]byte{0})
			fd.Close()
			agExpect(t, agAgainst(t, src, p), agWant{"ELF header", 0, "", "size changed"})
		})
	}
}

func TestAgainstMisalignedLiteral(t *testing.T) {
	src := testutil.Fixtures(t, "gcc-callops-static.elf")[0]
	f := agScan(t, src)
	_, ef, err := elfscan.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range f.Sites {
		if !s.HasProblem(elfscan.CodeMisalignedLiteral) {
			continue
		}
		p := agCopy(t, src, "misaligned")
		agPatchBytes(t, p, s.LiteralOff, binary.LittleEndian.AppendUint64(nil, agOps))
		sec := ef.Sections[s.SectionIndex]
		agExpect(t, agAgainst(t, src, p), agWant{sec.Name, s.Literal - sec.Addr, s.Func, "not 8-byte aligned"})
		return
	}
	t.Fatal("gcc-callops-static.elf has no misaligned literal any more; pick another fixture")
}

// TestAgainstUnknownState: a BL in slot2 without the MOV would clobber X30.
func TestAgainstUnknownState(t *testing.T) {
	src := testutil.Fixtures(t, "clang-callops-static.elf")[0]
	f := agScan(t, src)
	s := agPick(t, f, false)
	p := agCopy(t, src, "nomov")
	w, err := (encode.BL{From: s.CallSite, To: s.Entry}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	agPatchBytes(t, p, s.Slot2Off, binary.LittleEndian.AppendUint32(nil, w))
	r := agAgainst(t, src, p)
	_, ef, _ := elfscan.Open(src)
	sec := ef.Sections[s.SectionIndex]
	agExpect(t, r, agWant{sec.Name, s.Entry - sec.Addr, s.Func, "no known state"})
}

func TestIntermediateWords(t *testing.T) {
	bl := uint32(0x94000010)
	site := func(lit uint64, s1, s2 uint32) elfscan.Site {
		return elfscan.Site{Layout: elfscan.LayoutCallOps, LiteralOff: 0, LiteralWord: lit, Slot1Word: s1, Slot2Word: s2, CallSite: 0x100}
	}
	tests := []struct {
		name          string
		orig, patched elfscan.Site
		ok            bool
		want          Intermediate
	}{
		{"enable", site(0, encode.MovX9X30, encode.NOP), site(agOps, encode.MovX9X30, bl), true,
			Intermediate{Words: WordsOf(site(agOps, encode.MovX9X30, encode.NOP)), Order: OrderLiteralFirst, LikeOld: true, Proven: true}},
		{"enable with init", site(0, encode.NOP, encode.NOP), site(agOps, encode.MovX9X30, bl), true,
			Intermediate{Words: WordsOf(site(agOps, encode.NOP, encode.NOP)), Order: OrderLiteralFirst, LikeOld: true, Proven: true}},
		{"disable", site(agOps, encode.MovX9X30, bl), site(0, encode.MovX9X30, encode.NOP), true,
			Intermediate{Words: WordsOf(site(agOps, encode.MovX9X30, encode.NOP)), Order: OrderCallFirst, Proven: true}},
		{"retarget with new ops", site(agOps, encode.MovX9X30, bl), site(agOps+8, encode.MovX9X30, bl+1), true,
			Intermediate{Words: WordsOf(site(agOps+8, encode.MovX9X30, bl)), Order: OrderLiteralFirst, LikeOld: true}},
		{"literal only", site(0, encode.MovX9X30, bl), site(agOps, encode.MovX9X30, bl), false, Intermediate{}},
		{"call only", site(0, encode.MovX9X30, encode.NOP), site(0, encode.MovX9X30, bl), false, Intermediate{}},
		{"classic", elfscan.Site{Layout: elfscan.LayoutClassic, LiteralOff: elfscan.NoOffset, Slot2Word: encode.NOP},
			elfscan.Site{Layout: elfscan.LayoutClassic, LiteralOff: elfscan.NoOffset, Slot2Word: bl}, false, Intermediate{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := IntermediateWords(tt.orig, tt.patched)
			got.Detail = ""
			if ok != tt.ok || got.Words != tt.want.Words || got.Order != tt.want.Order || got.LikeOld != tt.want.LikeOld || got.Proven != tt.want.Proven {
				t.Fatalf("got %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// ---- ET_REL ----

// agObj is a minimal ET_REL rewriter for tests: it keeps every section's
// bytes in memory, and writes them back with a fresh layout (sections in
// index order, then the header table), as the patch commands do.
type agObj struct {
	hdr   []byte
	sh    []agShdr
	data  [][]byte
	names []string
}

type agShdr struct {
	Name, Type         uint32
	Flags, Addr, Off   uint64
	Size               uint64
	Link, Info         uint32
	Addralign, Entsize uint64
}

func agReadObj(t testing.TB, path string) *agObj {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	o := &agObj{hdr: append([]byte(nil), b[:64]...)}
	shoff, shnum := le.Uint64(b[40:]), int(le.Uint16(b[60:]))
	o.sh = make([]agShdr, shnum)
	if err := binary.Read(bytes.NewReader(b[shoff:]), le, o.sh); err != nil {
		t.Fatal(err)
	}
	for _, s := range o.sh {
		var d []byte
		if s.Type != uint32(elf.SHT_NOBITS) {
			d = append([]byte(nil), b[s.Off:s.Off+s.Size]...)
		}
		o.data = append(o.data, d)
	}
	shstr := o.data[le.Uint16(b[62:])]
	for _, s := range o.sh {
		o.names = append(o.names, agCString(shstr, s.Name))
	}
	return o
}

func agCString(b []byte, off uint32) string {
	s := b[off:]
	return string(s[:bytes.IndexByte(s, 0)])
}

func (o *agObj) index(t testing.TB, typ elf.SectionType) int {
	for i, s := range o.sh {
		if s.Type == uint32(typ) {
			return i
		}
	}
	t.Fatalf("no %v section", typ)
	return -1
}

// sym returns the index of the global symbol name, appending an undefined
// global when there is none (as the patch commands do).
func (o *agObj) sym(t testing.TB, name string) uint32 {
	st := o.index(t, elf.SHT_SYMTAB)
	str := o.sh[st].Link
	for k := 1; k < len(o.data[st])/24; k++ {
		e := o.data[st][k*24:]
		if elf.ST_BIND(e[4]) != elf.STB_LOCAL && agCString(o.data[str], binary.LittleEndian.Uint32(e)) == name {
			return uint32(k)
		}
	}
	return o.addSym(t, name)
}

// addSym appends an undefined global and returns its index.
func (o *agObj) addSym(t testing.TB, name string) uint32 {
	st := o.index(t, elf.SHT_SYMTAB)
	str := o.sh[st].Link
	n := uint32(len(o.data[str]))
	o.data[str] = append(append(o.data[str], name...), 0)
	e := make([]byte, 24)
	binary.LittleEndian.PutUint32(e, n)
	e[4] = byte(elf.ST_INFO(elf.STB_GLOBAL, elf.STT_NOTYPE))
	o.data[st] = append(o.data[st], e...)
	return uint32(len(o.data[st])/24 - 1)
}

// addRela adds r to the RELA section of target, creating .rela<name> at
// the end of the header table when there is none.
func (o *agObj) addRela(t testing.TB, target int, r elfscan.Rela) {
	for i, s := range o.sh {
		if s.Type == uint32(elf.SHT_RELA) && int(s.Info) == target {
			o.data[i] = elfscan.EncodeRela(o.data[i], []elfscan.Rela{r})
			return
		}
	}
	shstr := int(binary.LittleEndian.Uint16(o.hdr[62:]))
	name := ".rela" + o.names[target]
	n := uint32(len(o.data[shstr]))
	o.data[shstr] = append(append(o.data[shstr], name...), 0)
	o.sh = append(o.sh, agShdr{Name: n, Type: uint32(elf.SHT_RELA), Flags: uint64(elf.SHF_INFO_LINK),
		Link: uint32(o.index(t, elf.SHT_SYMTAB)), Info: uint32(target), Addralign: 8, Entsize: 24})
	o.data = append(o.data, elfscan.EncodeRela(nil, []elfscan.Rela{r}))
	o.names = append(o.names, name)
}

func (o *agObj) put32(sec int, off uint64, w uint32) {
	binary.LittleEndian.PutUint32(o.data[sec][off:], w)
}

func (o *agObj) write(t testing.TB, path string) {
	t.Helper()
	out := append([]byte(nil), o.hdr...)
	for i := 1; i < len(o.sh); i++ {
		s := &o.sh[i]
		al := max(s.Addralign, 1)
		for uint64(len(out))%al != 0 {
			out = append(out, 0)
		}
		s.Off = uint64(len(out))
		if s.Type != uint32(elf.SHT_NOBITS) {
			s.Size = uint64(len(o.data[i]))
			out = append(out, o.data[i]...)
		}
	}
	for len(out)%8 != 0 {
		out = append(out, 0)
	}
	binary.LittleEndian.PutUint64(out[40:], uint64(len(out)))
	binary.LittleEndian.PutUint16(out[60:], uint16(len(o.sh)))
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, o.sh)
	if err := os.WriteFile(path, append(out, b.Bytes()...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// agRelEnable writes init + enable into every eligible site of o, as
// `ftpatch enable --init` would: literal := 0 + ABS64 ops, slot1 := MOV,
// slot2 := BL + CALL26 trampoline, new undefined globals for both.
func agRelEnable(t testing.TB, o *agObj, f *elfscan.File, skip *elfscan.Site) {
	ops := o.sym(t, "my_ops")
	tramp := o.sym(t, "ftrace_caller")
	for i := range f.Sites {
		s := &f.Sites[i]
		if !agEligible(s) || s == skip {
			continue
		}
		if s.Layout == elfscan.LayoutCallOps {
			o.put32(s.SectionIndex, s.Literal, 0)
			o.put32(s.SectionIndex, s.Literal+4, 0)
			o.addRela(t, s.SectionIndex, elfscan.Rela{Off: s.Literal, Type: elf.R_AARCH64_ABS64, Sym: ops})
		}
		o.put32(s.SectionIndex, s.CallSite-4, encode.MovX9X30)
		o.put32(s.SectionIndex, s.CallSite, 0x94000000)
		o.addRela(t, s.SectionIndex, elfscan.Rela{Off: s.CallSite, Type: elf.R_AARCH64_CALL26, Sym: tramp})
	}
}

func TestAgainstRelocatable(t *testing.T) {
	files := append(testutil.Fixtures(t, "*.o"), testutil.Fixtures(t, "*.ko")...)
	for _, src := range files {
		t.Run(filepath.Base(src), func(t *testing.T) {
			f := agScan(t, src)
			n, lit := agEligibleCount(f)
			if r := agAgainst(t, src, src); r.Failed() || len(r.Changes) != 0 {
				agDump(t, r)
				t.Fatal("identical files")
			}
			// A rewrite with a new layout but nothing patched is no change.
			same := filepath.Join(t.TempDir(), "same.o")
			agReadObj(t, src).write(t, same)
			if r := agAgainst(t, src, same); r.Failed() || len(r.Changes) != 0 {
				agDump(t, r)
				t.Fatal("relaid-out file")
			}
			o := agReadObj(t, src)
			nsyms := len(o.data[o.index(t, elf.SHT_SYMTAB)])
			agRelEnable(t, o, f, nil)
			added := (len(o.data[o.index(t, elf.SHT_SYMTAB)]) - nsyms) / 24
			enabled := filepath.Join(t.TempDir(), "enabled.o")
			o.write(t, enabled)
			if pf := agScan(t, enabled); func() bool {
				for _, s := range pf.Sites {
					if agEligible(&s) && s.State != elfscan.StateEnabled {
						return true
					}
				}
				return false
			}() {
				t.Fatal("the test's rewrite does not scan as enabled")
			}
			r := agAgainst(t, src, enabled)
			if r.Failed() || r.Counts.Changes[KindCall] != n || r.Counts.Changes[KindMov] != n || r.Counts.Changes[KindLiteral] != lit ||
				r.Counts.RelocsAdded != n+lit || r.Counts.SymbolsAdded != added || r.Counts.Unproven != 0 {
				agDump(t, r)
				t.Fatalf("nop -> enabled: want %d call/mov, %d literal", n, lit)
			}
			// And back: disable removes the relocations; the symbols stay.
			if r := agAgainst(t, enabled, same); !r.Failed() {
				agDump(t, r)
				t.Fatal("enabled -> fewer symbols must fail: symbols may only be added")
			}
		})
	}
}

func TestAgainstRelocatableDefects(t *testing.T) {
	for _, src := range append(testutil.Fixtures(t, "gcc-callops-bti-obj.o"), testutil.Fixtures(t, "clang-classic-bti-fsobj.o")...) {
		f := agScan(t, src)
		s := agPick(t, f, true)
		_, f0, err := elfscan.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name  string
			plant func(o *agObj)
			want  agWant
		}{
			{"extra relocation in a body", func(o *agObj) {
				o.addRela(t, s.SectionIndex, elfscan.Rela{Off: s.CallSite + 4, Type: elf.R_AARCH64_CALL26, Sym: o.addSym(t, "evil")})
			}, agWant{s.Section, s.CallSite + 4, s.Func, "relocation added"}},
			{"CALL26 at slot1", func(o *agObj) {
				o.addRela(t, s.SectionIndex, elfscan.Rela{Off: s.CallSite - 4, Type: elf.R_AARCH64_CALL26, Sym: 1})
			}, agWant{s.Section, s.CallSite - 4, s.Func, "relocation added"}},
			{"ABS64 at slot2", func(o *agObj) {
				o.addRela(t, s.SectionIndex, elfscan.Rela{Off: s.CallSite, Type: elf.R_AARCH64_ABS64, Sym: 1})
			}, agWant{s.Section, s.CallSite, s.Func, "relocation added"}},
			{"changed addend", func(o *agObj) {
				for i, sh := range o.sh[:len(f0.Sections)] {
					if sh.Type == uint32(elf.SHT_RELA) && o.names[sh.Info] != elfscan.EntriesSection && len(o.data[i]) >= 24 {
						binary.LittleEndian.PutUint64(o.data[i][16:], binary.LittleEndian.Uint64(o.data[i][16:])+4)
						return
					}
				}
				t.Fatal("no relocation to change")
			}, agWant{detail: "relocation removed"}},
			{"BL without relocation", func(o *agObj) {
				o.put32(s.SectionIndex, s.CallSite-4, encode.MovX9X30)
				o.put32(s.SectionIndex, s.CallSite, 0x94000000)
			}, agWant{s.Section, s.CallSite, s.Func, "without an R_AARCH64_CALL26"}},
			{"stray byte in a body", func(o *agObj) {
				o.data[s.SectionIndex][s.CallSite+5] ^= 1
			}, agWant{s.Section, s.CallSite + 5, s.Func, "outside any patch site"}},
			{"BTI changed", func(o *agObj) {
				o.put32(s.SectionIndex, s.Entry, encode.NOP)
			}, agWant{s.Section, s.Entry, s.Func, "BTI"}},
			{"defined symbol added", func(o *agObj) {
				i := o.addSym(t, "sneaky")
				st := o.index(t, elf.SHT_SYMTAB)
				binary.LittleEndian.PutUint16(o.data[st][i*24+6:], uint16(s.SectionIndex))
			}, agWant{".symtab", 0, "", "not undefined"}},
			{"existing symbol changed", func(o *agObj) {
				st := o.index(t, elf.SHT_SYMTAB)
				e := o.data[st][24:]
				binary.LittleEndian.PutUint64(e[8:], binary.LittleEndian.Uint64(e[8:])+4)
			}, agWant{".symtab", 0, "", "changed"}},
			{"section added", func(o *agObj) {
				o.addRela(t, o.index(t, elf.SHT_SYMTAB), elfscan.Rela{})
			}, agWant{".rela.symtab", 0, "", "added section"}},
		}
		for _, c := range cases {
			t.Run(filepath.Base(src)+"/"+c.name, func(t *testing.T) {
				o := agReadObj(t, src)
				var skip *elfscan.Site
				if c.name == "BL without relocation" { // s is left out of the enable
					skip = s
				}
				agRelEnable(t, o, f, skip)
				c.plant(o)
				p := filepath.Join(t.TempDir(), "defect.o")
				o.write(t, p)
				r := agAgainst(t, src, p)
				if c.want.section == "" || c.want.section == ".symtab" || c.want.section == ".rela.symtab" {
					// The place is a table entry: check the words only.
					if !r.Failed() {
						agDump(t, r)
						t.Fatal("defect not caught")
					}
					for _, p := range r.Problems {
						if strings.Contains(p.Detail, c.want.detail) && (c.want.section == "" || p.Section == c.want.section) {
							return
						}
					}
					agDump(t, r)
					t.Fatalf("no problem %+v", c.want)
				}
				agExpect(t, r, c.want)
			})
		}
	}
}

// ---- large synthetic pair ----

// agSynth writes an ET_EXEC of size bytes: one .text of call-ops sites, one
// every stride bytes (the rest RET-free filler), and the entries table. It
// returns the path and the number of sites.
func agSynth(t testing.TB, dir string, size, stride int64, enabled bool) (string, int) {
	t.Helper()
	const base = 0x400000
	const textOff = 0x1000
	nsites := int((size - textOff - 0x10000) / stride)
	textSize := int64(nsites) * stride
	entOff := textOff + textSize
	entSize := int64(nsites) * 8
	shstr := []byte("\x00.text\x00__patchable_function_entries\x00.shstrtab\x00")
	strOff := entOff + entSize
	shOff := (strOff + int64(len(shstr)) + 7) &^ 7
	path := filepath.Join(dir, map[bool]string{false: "orig.elf", true: "patched.elf"}[enabled])
	fd, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(fd, 1<<20)
	le := binary.LittleEndian
	h := make([]byte, 0x1000)
	copy(h, "\x7fELF\x02\x01\x01")
	le.PutUint16(h[16:], uint16(elf.ET_EXEC))
	le.PutUint16(h[18:], uint16(elf.EM_AARCH64))
	le.PutUint32(h[20:], 1)
	le.PutUint64(h[24:], base+textOff+8)
	le.PutUint64(h[32:], 64)
	le.PutUint64(h[40:], uint64(shOff))
	le.PutUint16(h[52:], 64)
	le.PutUint16(h[54:], 56)
	le.PutUint16(h[56:], 1)
	le.PutUint16(h[58:], 64)
	le.PutUint16(h[60:], 4)
	le.PutUint16(h[62:], 3)
	ph := h[64:]
	le.PutUint32(ph, uint32(elf.PT_LOAD))
	le.PutUint32(ph[4:], uint32(elf.PF_R|elf.PF_X))
	le.PutUint64(ph[16:], base)
	le.PutUint64(ph[24:], base)
	le.PutUint64(ph[32:], uint64(strOff))
	le.PutUint64(ph[40:], uint64(strOff))
	le.PutUint64(ph[48:], 0x10000)
	w.Write(h)
	fill := make([]byte, stride)
	for i := 0; i < len(fill); i += 4 {
		le.PutUint32(fill[i:], 0x91000400) // add x0, x0, #1
	}
	for k := 0; k < nsites; k++ {
		a := uint64(base + textOff + int64(k)*stride)
		lit, s2 := uint64(encode.NOP)|uint64(encode.NOP)<<32, encode.NOP
		s1 := encode.NOP
		if enabled {
			lit, s1 = agOps, encode.MovX9X30
			// The function's own entry stands in for the trampoline: one
			// trampoline would be out of BL range of a 256 MiB text.
			if s2, err = (encode.BL{From: a + 12, To: a + 8}).Encode(); err != nil {
				t.Fatal(err)
			}
		}
		le.PutUint64(fill, lit)
		le.PutUint32(fill[8:], s1)
		le.PutUint32(fill[12:], s2)
		w.Write(fill)
	}
	e := make([]byte, 8)
	for k := 0; k < nsites; k++ {
		le.PutUint64(e, uint64(base+textOff+int64(k)*stride))
		w.Write(e)
	}
	w.Write(shstr)
	w.Write(make([]byte, shOff-strOff-int64(len(shstr))))
	sh := []agShdr{{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC | elf.SHF_EXECINSTR), Addr: base + textOff, Off: textOff, Size: uint64(textSize), Addralign: 8},
		{Name: 7, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC | elf.SHF_WRITE), Addr: uint64(base + entOff), Off: uint64(entOff), Size: uint64(entSize), Addralign: 8},
		{Name: 36, Type: uint32(elf.SHT_STRTAB), Off: uint64(strOff), Size: uint64(len(shstr)), Addralign: 1},
	}
	binary.Write(w, le, sh)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := fd.Close(); err != nil {
		t.Fatal(err)
	}
	return path, nsites
}

// TestAgainstMemoryBounded: comparing two 64 MiB files allocates a small,
// fixed amount (chunk buffers, the sites), not the file size.
func TestAgainstMemoryBounded(t *testing.T) {
	dir := t.TempDir()
	orig, n := agSynth(t, dir, 64<<20, 32<<10, false)
	patched, _ := agSynth(t, dir, 64<<20, 32<<10, true)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := Against(orig, patched, AgainstOptions{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if r.Failed() || r.Counts.Changes[KindCall] != n || r.Counts.Changes[KindLiteral] != n {
		agDump(t, r)
		t.Fatalf("want %d sites enabled", n)
	}
	limit := uint64(16 << 20)
	if testutil.Race {
		limit += 8 << 20 // pooled chunk buffers are dropped at random
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > limit {
		t.Fatalf("allocated %d MiB comparing 64 MiB files", alloc>>20)
	}
}

func BenchmarkAgainst(b *testing.B) {
	dir := b.TempDir()
	const size = 256 << 20
	orig, n := agSynth(b, dir, size, 64<<10, false)
	patched, _ := agSynth(b, dir, size, 64<<10, true)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		r, err := Against(orig, patched, AgainstOptions{})
		if err != nil || r.Failed() || r.Counts.SitesChanged != n {
			b.Fatalf("%v %+v", err, r.Counts)
		}
	}
	b.ReportMetric(float64(n), "sites")
}
