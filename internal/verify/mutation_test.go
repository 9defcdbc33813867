// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package verify

// Mutation tests (issue 4, Deliver 6): defects are planted into correctly
// patched files, systematically (every kind × a spread of sites), and each
// must be caught by verify (File) or verify --against (Against, then
// RunIntermediates), with the function named. Survivors fail the test
// unless mutAllow lists them with a reason.

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// mutAllow lists equivalent mutants, by "kind" or "kind/fixture", with why
// they cannot be told from a correct patch.
var mutAllow = map[string]string{}

// mutant is one planted defect. Exactly one of bytes, relEdit and tramp
// says how it is planted.
type mutant struct {
	kind string
	fn   string // the function the failure must name ("" for stray bytes outside functions)
	// linked and ET_REL: words written into the good file at file offsets
	writes []mutWrite
	// ET_REL: an edit of the object before it is written
	relEdit func(o *agObj)
	// a trampoline clobbering a register: words replacing verify's own
	clobber uint32
	// stray byte: where the problem must be reported
	strayOff int64
}

type mutWrite struct {
	off int64
	b   []byte
}

func le32(w uint32) []byte { return binary.LittleEndian.AppendUint32(nil, w) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func mustBL(t testing.TB, from, to uint64) uint32 {
	w, err := encode.BL{From: from, To: to}.Encode()
	if err != nil {
		t.Fatalf("BL %#x -> %#x: %v", from, to, err)
	}
	return w
}

// movz returns MOVZ Xd, #imm16 (d = 31 is XZR, so never used for SP).
func movz(d int, imm uint16) uint32 { return 0xd2800000 | uint32(imm)<<5 | uint32(d) }

const (
	subSP16  = 0xd10043ff // SUB SP, SP, #16
	movX10   = 0xaa1e03ea // MOV X10, X30
	movX9X29 = 0xaa1d03e9 // MOV X9, X29
	btiJ     = 0xd503249f
	brX16    = 0xd61f0200
	blrX9    = 0xd63f0120
	hlt      = 0xd4400000
)

// mutSpread picks up to n sites spread over the eligible ones.
func mutSpread(f *elfscan.File, n int, need func(*elfscan.Site) bool) []*elfscan.Site {
	var all []*elfscan.Site
	for i := range f.Sites {
		if s := &f.Sites[i]; agEligible(s) && (need == nil || need(s)) {
			all = append(all, s)
		}
	}
	if len(all) <= n {
		return all
	}
	out := make([]*elfscan.Site, 0, n)
	for k := 0; k < n; k++ {
		out = append(out, all[k*len(all)/n])
	}
	return out
}

// mutLinked makes the mutants of a linked, enabled file.
func mutLinked(t testing.TB, src string, f *elfscan.File, tramp, ops uint64, good []byte) []mutant {
	var ms []mutant
	sites := mutSpread(f, 6, nil)
	other := func(s *elfscan.Site) *elfscan.Site {
		for i := range f.Sites {
			if o := &f.Sites[i]; o.Func != s.Func && o.Entry() != s.Entry() {
				return o
			}
		}
		return s
	}
	for _, s := range sites {
		right := tramp
		if agAltSite(s) {
			right = testutil.SymbolAddr(t, src, "ftrace_caller_lit24")
		}
		bl := func(kind string, to uint64) {
			if to == right {
				return // not a defect: the trampoline's second entry may lie there
			}
			ms = append(ms, mutant{kind: kind, fn: s.Func, writes: []mutWrite{{s.Slot2Off(), le32(mustBL(t, s.CallSite(), to))}}})
		}
		bl("bl-tramp+4", tramp+4)
		bl("bl-tramp-4", tramp-4)
		bl("bl-tramp+8", tramp+8)
		bl("bl-other-func", other(s).Entry())
		bl("bl-own-entry", s.Entry())
		bl("bl-self", s.CallSite())
		bl("bl-next", s.CallSite()+4)
		bl("bl-unmapped", s.CallSite()+0x4000000)
		bl("bl-unmapped-back", s.CallSite()-0x4000000)
		w := func(kind string, off int64, b []byte) {
			ms = append(ms, mutant{kind: kind, fn: s.Func, writes: []mutWrite{{off, b}}})
		}
		if s.Layout.HasLiteral() {
			bl("bl-literal", s.Literal())
			w("lit-junk", s.LiteralOff(), le64(0x0bad_cafe_dead_beef))
			w("lit-ops+8", s.LiteralOff(), le64(ops+8))
			w("lit-self", s.LiteralOff(), le64(s.Literal()))
			w("lit-code", s.LiteralOff(), le64(s.Entry()))
			w("lit-zero", s.LiteralOff(), le64(0))
			w("lit-nop-nop", s.LiteralOff(), le64(uint64(encode.NOP)|uint64(encode.NOP)<<32))
			w("lit-misaligned-ops", s.LiteralOff(), le64(ops+1))
		}
		if s.Layout == elfscan.LayoutCallOps53 {
			// The other trampoline entry: it loads the wrong word pair.
			if agAltSite(s) {
				bl("bl-wrong-entry", tramp)
			} else {
				bl("bl-wrong-entry", testutil.SymbolAddr(t, src, "ftrace_caller_lit24"))
			}
			// The literal written into the other pair: the spare word
			// gets half of it and the aligned pair a NOP and the rest.
			wrong := s.Literal() - 4
			if s.Spare() > s.Literal() {
				wrong = s.Literal() + 4
			}
			wrongOff := s.LiteralOff() + int64(wrong) - int64(s.Literal())
			w("lit-wrong-pair", wrongOff, le64(ops))
			ms = append(ms, mutant{kind: "lit-wrong-pair-spare-nop", fn: s.Func, writes: []mutWrite{
				{s.LiteralOff(), le64(uint64(encode.NOP) | uint64(encode.NOP)<<32)}, {wrongOff, le64(ops)}, {s.SpareOff(), le32(encode.NOP)}}})
			w("spare-zero", s.SpareOff(), le32(0))
			w("spare-mov", s.SpareOff(), le32(encode.MovX9X30))
			w("spare-bti", s.SpareOff(), le32(encode.BTIC))
		}
		if s.CFIHashOff() != elfscan.NoOffset {
			w("cfi-hash-nop", s.CFIHashOff(), le32(encode.NOP))
			w("cfi-hash-flip", s.CFIHashOff(), le32(s.CFIHash()^1))
		}
		w("no-mov", s.Slot1Off(), le32(encode.NOP))
		w("mov-x10-x30", s.Slot1Off(), le32(movX10))
		w("mov-x9-x29", s.Slot1Off(), le32(movX9X29))
		w("slot1-hlt", s.Slot1Off(), le32(hlt))
		w("slot2-b", s.Slot2Off(), le32(mustBL(t, s.CallSite(), tramp)&^0x80000000))
		w("slot2-br", s.Slot2Off(), le32(brX16))
		w("slot2-blr", s.Slot2Off(), le32(blrX9))
		w("slot2-mov", s.Slot2Off(), le32(encode.MovX9X30))
		if s.BTI {
			w("bti-nop", s.Slot1Off()-4, le32(encode.NOP))
			w("bti-j", s.Slot1Off()-4, le32(btiJ))
		}
	}
	for _, d := range []int{19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30} {
		ms = append(ms, mutant{kind: fmt.Sprintf("tramp-clobber-x%d", d), clobber: movz(d, 0x5a5a)})
	}
	ms = append(ms, mutant{kind: "tramp-clobber-sp", clobber: subSP16})
	// Stray bytes: seeded offsets in headers, text and data, outside site words.
	ms = append(ms, mutStrays(t, src, f, int64(len(good)))...)
	return ms
}

// mutStrays picks stray-byte offsets outside every site word.
func mutStrays(t testing.TB, src string, f *elfscan.File, size int64) []mutant {
	ef, err := elf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	siteByte := map[int64]bool{}
	for i := range f.Sites {
		s := &f.Sites[i]
		for _, w := range [][2]int64{{s.LiteralOff(), 8}, {s.Slot1Off() - 4, 4}, {s.Slot1Off(), 4}, {s.Slot2Off(), 4}, {s.SpareOff(), 4}, {s.CFIHashOff(), 4}} {
			if w[0] >= 0 {
				for k := w[0]; k < w[0]+w[1]; k++ {
					siteByte[k] = true
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(7, uint64(size)))
	var ms []mutant
	add := func(kind string, lo, hi int64, n int) {
		for k := 0; k < n && hi > lo; {
			off := lo + rng.Int64N(hi-lo)
			if siteByte[off] {
				continue
			}
			k++
			ms = append(ms, mutant{kind: kind, strayOff: off, writes: []mutWrite{{off, nil}}})
		}
	}
	add("stray-header", 0, 64, 2)
	for _, s := range ef.Sections {
		switch {
		case s.Name == ".text":
			add("stray-text", int64(s.Offset), int64(s.Offset+s.Size), 4)
		case s.Name == ".data" || s.Name == ".rodata":
			add("stray-data", int64(s.Offset), int64(s.Offset+s.Size), 2)
		}
	}
	add("stray-anywhere", 64, size, 4)
	return ms
}

// mutRel makes the mutants of an ET_REL file enabled by agRelEnable.
func mutRel(t testing.TB, src string, f *elfscan.File) []mutant {
	var ms []mutant
	rela := func(o *agObj, sec int, off uint64) []byte {
		for i, sh := range o.Sh {
			if sh.Type == uint32(elf.SHT_RELA) && int(sh.Info) == sec {
				for k := 0; k+24 <= len(o.Data[i]); k += 24 {
					if binary.LittleEndian.Uint64(o.Data[i][k:]) == off {
						return o.Data[i][k : k+24]
					}
				}
			}
		}
		t.Fatalf("no relocation at section %d offset %#x", sec, off)
		return nil
	}
	setSym := func(e []byte, sym uint32) {
		info := binary.LittleEndian.Uint64(e[8:])
		binary.LittleEndian.PutUint64(e[8:], uint64(sym)<<32|info&0xffffffff)
	}
	for _, s := range mutSpread(f, 4, nil) {
		s := s
		ed := func(kind string, e func(o *agObj)) {
			ms = append(ms, mutant{kind: kind, fn: s.Func, relEdit: e})
		}
		ed("rel-bl-addend+4", func(o *agObj) {
			e := rela(o, s.SectionIndex(), s.CallSite())
			binary.LittleEndian.PutUint64(e[16:], 4)
		})
		ed("rel-bl-other-func", func(o *agObj) {
			for i := range f.Sites {
				if f.Sites[i].Func != s.Func && f.Sites[i].Func != "" {
					setSym(rela(o, s.SectionIndex(), s.CallSite()), o.Sym(t, f.Sites[i].Func))
					return
				}
			}
		})
		ed("rel-bl-undefined", func(o *agObj) {
			setSym(rela(o, s.SectionIndex(), s.CallSite()), o.AddSym(t, "not_a_trampoline"))
		})
		ed("rel-bl-jump26", func(o *agObj) {
			e := rela(o, s.SectionIndex(), s.CallSite())
			binary.LittleEndian.PutUint64(e[8:], binary.LittleEndian.Uint64(e[8:])&^0xffffffff|uint64(elf.R_AARCH64_JUMP26))
			o.Put32(s.SectionIndex(), s.CallSite(), 0x14000000)
		})
		ed("rel-bl-none", func(o *agObj) {
			e := rela(o, s.SectionIndex(), s.CallSite())
			binary.LittleEndian.PutUint64(e[8:], binary.LittleEndian.Uint64(e[8:])&^0xffffffff)
		})
		ed("no-mov", func(o *agObj) { o.Put32(s.SectionIndex(), s.CallSite()-4, encode.NOP) })
		ed("mov-x10-x30", func(o *agObj) { o.Put32(s.SectionIndex(), s.CallSite()-4, movX10) })
		ed("slot2-br", func(o *agObj) { o.Put32(s.SectionIndex(), s.CallSite(), brX16) })
		if s.BTI {
			ed("bti-nop", func(o *agObj) { o.Put32(s.SectionIndex(), s.Entry(), encode.NOP) })
		}
		if s.Layout.HasLiteral() {
			ed("rel-lit-addend+8", func(o *agObj) {
				binary.LittleEndian.PutUint64(rela(o, s.SectionIndex(), s.Literal())[16:], 8)
			})
			ed("rel-lit-func", func(o *agObj) { setSym(rela(o, s.SectionIndex(), s.Literal()), mutDefined(t, o, s.Func)) })
			ed("rel-lit-abs32", func(o *agObj) {
				e := rela(o, s.SectionIndex(), s.Literal())
				binary.LittleEndian.PutUint64(e[8:], binary.LittleEndian.Uint64(e[8:])&^0xffffffff|uint64(elf.R_AARCH64_ABS32))
			})
			ed("rel-lit-none", func(o *agObj) {
				e := rela(o, s.SectionIndex(), s.Literal())
				binary.LittleEndian.PutUint64(e[8:], binary.LittleEndian.Uint64(e[8:])&^0xffffffff)
			})
		}
		if s.Layout == elfscan.LayoutCallOps53 {
			wrong := s.Literal() - 4
			if s.Spare() > s.Literal() {
				wrong = s.Literal() + 4
			}
			ed("rel-lit-wrong-pair", func(o *agObj) {
				binary.LittleEndian.PutUint64(rela(o, s.SectionIndex(), s.Literal()), wrong)
				o.Put32(s.SectionIndex(), s.Literal(), encode.NOP)
				o.Put32(s.SectionIndex(), s.Literal()+4, encode.NOP)
				o.Put32(s.SectionIndex(), wrong, 0)
				o.Put32(s.SectionIndex(), wrong+4, 0)
			})
			ed("spare-zero", func(o *agObj) { o.Put32(s.SectionIndex(), s.Spare(), 0) })
		}
		if s.CFIHashOff() != elfscan.NoOffset {
			ed("cfi-hash-nop", func(o *agObj) { o.Put32(s.SectionIndex(), s.CFIHashAddr(), encode.NOP) })
		}
		ed("stray-text", func(o *agObj) { o.Data[s.SectionIndex()][s.CallSite()+4] ^= 0x10 })
	}
	return ms
}

// mutDefined returns the index of the defined symbol name, local or not.
func mutDefined(t testing.TB, o *agObj, name string) uint32 {
	st := o.Index(t, elf.SHT_SYMTAB)
	str := o.Sh[st].Link
	for k := 1; k < len(o.Data[st])/24; k++ {
		e := o.Data[st][k*24:]
		if binary.LittleEndian.Uint16(e[6:]) != uint16(elf.SHN_UNDEF) && agCString(o.Data[str], binary.LittleEndian.Uint32(e)) == name {
			return uint32(k)
		}
	}
	t.Fatalf("no defined symbol %s", name)
	return 0
}

type mutResult struct {
	kind, file, how string
	killed          bool
}

// mutKilled plants m into a copy of good and reports whether a check caught
// it naming m.fn (or, for stray bytes, the place).
func mutKilled(t testing.TB, orig, good string, rel bool, m mutant) (bool, string) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mutant")
	switch {
	case m.relEdit != nil:
		o := agReadObj(t, orig)
		f := agScan(t, orig)
		agRelEnable(t, o, f, nil)
		m.relEdit(o)
		o.Write(t, p)
	default:
		b, err := os.ReadFile(good)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range m.writes {
			if w.b == nil {
				b[w.off] ^= 0x41
				continue
			}
			copy(b[w.off:], w.b)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := Options{Jobs: 1}
	if m.clobber != 0 {
		img, err := Load(p, opts)
		if err != nil {
			return true, "load error: " + err.Error()
		}
		defer img.Close()
		mutPlantTrampoline(t, img, m.clobber)
		rep, err := Check(img, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range rep.Failures {
			if f.Func != "" && !strings.HasPrefix(f.Func, "<") {
				return true, "verify: " + f.Func + ": " + f.Observed
			}
		}
		return false, ""
	}
	// verify FILE.
	if rep, err := File(p, opts); err != nil {
		if m.fn == "" {
			return true, "verify: input error: " + err.Error()
		}
	} else {
		for _, f := range rep.Failures {
			if m.fn != "" && f.Func == m.fn {
				return true, "verify: " + f.Observed
			}
		}
	}
	// verify --against ORIG FILE.
	r, err := compareRun(orig, p, opts)
	if err != nil {
		return m.fn == "", "against: input error: " + err.Error()
	}
	for _, pr := range r.Problems {
		switch {
		case m.fn != "" && pr.Func == m.fn:
			return true, "against: " + pr.Detail
		case m.fn == "" && !rel && pr.FileOffset <= m.strayOff && m.strayOff < pr.FileOffset+16:
			return true, "against: " + ProblemText(pr)
		}
	}
	return false, ""
}

// mutPlantTrampoline replaces verify's own trampolines in img with ones
// that first execute w (a clobber), before any engine maps the image.
func mutPlantTrampoline(t testing.TB, img *Image, w uint32) {
	for _, c := range []struct {
		addr    uint64
		room    uint64
		classic bool
	}{{img.ourTramp, offClassic - offTramp, false}, {img.ourClassic, offOps - offClassic, true}} {
		o := encode.TrampolineOptions{}
		if c.classic {
			o = encode.TrampolineOptions{Classic: true, OpsSym: "verify_standin_ops"}
		}
		p, err := encode.Trampoline(o)
		if err != nil {
			t.Fatal(err)
		}
		// After the BTI: PC-relative branches inside move together.
		p.Words = append([]uint32{p.Words[0], w}, p.Words[1:]...)
		for i := range p.Fixups {
			if p.Fixups[i].Index >= 1 {
				p.Fixups[i].Index++
			}
		}
		if err := img.place(c.addr, p, c.room); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMutants(t *testing.T) {
	type base struct {
		orig, good string
		rel        bool
		ms         []mutant
	}
	var bases []base
	for _, name := range []string{"gcc-callops-bti-static.elf", "clang-callops-pie.elf", "gcc-callops-kimage.elf",
		"clang-callops-bti-kimage-relr.elf", "clang-classic-bti-static.elf", "gcc-classic-pie-noapply.elf",
		"gcc-callops53-os-static.elf", "clang16-kcfi-callops53-bti-kimage.elf"} {
		src := testutil.Fixtures(t, name)[0]
		f := agScan(t, src)
		ops, tramp := testutil.SymbolAddr(t, src, "ops"), testutil.SymbolAddr(t, src, "ftrace_caller")
		good := agLinked(t, src, "good", elfscan.StateEnabled, ops, tramp)
		b, err := os.ReadFile(good)
		if err != nil {
			t.Fatal(err)
		}
		bases = append(bases, base{src, good, false, mutLinked(t, src, f, tramp, ops, b)})
	}
	for _, name := range []string{"gcc-callops-bti-obj.o", "clang-callops-module.ko", "clang-classic-fsobj.o",
		"clang-callops53-bti-module.ko", "clang16-kcfi-callops53-bti-obj.o"} {
		src := testutil.Fixtures(t, name)[0]
		bases = append(bases, base{src, "", true, mutRel(t, src, agScan(t, src))})
	}
	// The good files themselves pass both checks.
	for _, b := range bases {
		good := b.good
		if b.rel {
			o := agReadObj(t, b.orig)
			agRelEnable(t, o, agScan(t, b.orig), nil)
			good = filepath.Join(t.TempDir(), "good.o")
			o.Write(t, good)
		}
		if rep, err := File(good, Options{Jobs: 1}); err != nil || rep.Failed != 0 {
			t.Fatalf("%s: good file fails verify: %+v %v", b.orig, rep, err)
		}
		if r := interAgainst(t, b.orig, good); r.Failed() {
			agDump(t, r)
			t.Fatalf("%s: good file fails --against", b.orig)
		}
	}

	// Each mutant is a parallel subtest, so a helper's t.Fatal stops only
	// that mutant, on its own test goroutine.
	var mu sync.Mutex
	var results []mutResult
	t.Run("mutants", func(t *testing.T) {
		for _, b := range bases {
			for _, m := range b.ms {
				t.Run(m.kind+"/"+filepath.Base(b.orig), func(t *testing.T) {
					t.Parallel()
					killed, how := mutKilled(t, b.orig, b.good, b.rel, m)
					mu.Lock()
					results = append(results, mutResult{m.kind, filepath.Base(b.orig), how, killed})
					mu.Unlock()
				})
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	type tally struct{ killed, total, allowed int }
	byKind := map[string]*tally{}
	var total, killed, allowed int
	for _, r := range results {
		tl := byKind[r.kind]
		if tl == nil {
			tl = &tally{}
			byKind[r.kind] = tl
		}
		tl.total++
		total++
		switch {
		case r.killed:
			tl.killed++
			killed++
		case mutAllow[r.kind] != "" || mutAllow[r.kind+"/"+r.file] != "":
			tl.allowed++
			allowed++
		default:
			t.Errorf("mutant %s in %s survived", r.kind, r.file)
		}
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s %7s %6s %8s\n", "kind", "killed", "total", "allowed")
	for _, k := range kinds {
		tl := byKind[k]
		fmt.Fprintf(&b, "%-22s %7d %6d %8d\n", k, tl.killed, tl.total, tl.allowed)
	}
	fmt.Fprintf(&b, "%-22s %7d %6d %8d  kill rate %.1f%%\n", "all", killed, total, allowed, 100*float64(killed)/float64(max(total, 1)))
	t.Logf("mutation kill rate:\n%s", b.String())
	if testing.Verbose() {
		for _, r := range results {
			if r.kind == "bl-next" || strings.HasPrefix(r.kind, "stray-h") {
				t.Logf("%s %s: %s", r.file, r.kind, r.how)
			}
		}
	}
}
