// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package verify

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/elfwrite"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/input"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/testutil/pairtest"
)

// mustScan scans path, failing the test on error.
var mustScan = pairtest.Scan

const testSrc = `
struct ftrace_ops { void (*func)(unsigned long, unsigned long, void *, void *); };
__attribute__((patchable_function_entry(0, 0))) void cb(unsigned long ip, unsigned long pip, void *op, void *regs) {}
struct ftrace_ops my_ops = { cb };
int g;
__attribute__((noinline)) int f1(int a) { return a + g; }
__attribute__((noinline)) int f2(int a, int b) { return f1(a) * b; }
__attribute__((noinline)) long f3(long a, long b, long c) { return a + b + c + f2(a, b); }
int _start(void) { return f3(1, 2, 3); }
`

// buildProgram compiles testSrc with 4,2 and BTI, links it with the tool's
// trampoline object, and returns the executable, the object and the
// shared library.
func buildProgram(t *testing.T) (exe, obj, so string) {
	gcc := testutil.NeedTool(t, "aarch64-linux-gnu-gcc")
	dir := t.TempDir()
	src := filepath.Join(dir, "prog.c")
	os.WriteFile(src, []byte(testSrc), 0o644)
	prog, err := encode.Trampoline(encode.TrampolineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tobj, err := elfwrite.BuildObject(prog)
	if err != nil {
		t.Fatal(err)
	}
	tramp := filepath.Join(dir, "tramp.o")
	os.WriteFile(tramp, tobj, 0o644)
	obj = filepath.Join(dir, "prog.o")
	exe = filepath.Join(dir, "prog")
	so = filepath.Join(dir, "prog.so")
	flags := []string{"-O2", "-fpatchable-function-entry=4,2", "-mbranch-protection=standard", "-ffunction-sections"}
	for _, args := range [][]string{
		append(flags, "-c", "-o", obj, src),
		{"-nostdlib", "-static", "-o", exe, obj, tramp},
		append(flags, "-fPIC", "-shared", "-nostdlib", "-o", so, src, tramp),
	} {
		if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %q: %v\n%s", args, err, out)
		}
	}
	return exe, obj, so
}

// patchCopy writes a copy of a linked file with every site moved to state
// (init or enabled) by writing words at the site file offsets, and edit,
// if set, applied to the first site.
func patchCopy(t *testing.T, path string, sf *elfscan.File, state elfscan.State, edit func(b []byte, s *elfscan.Site)) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ops, tramp uint64
	if state == elfscan.StateEnabled {
		ops, tramp = testutil.SymbolAddr(t, path, "my_ops"), testutil.SymbolAddr(t, path, "ftrace_caller")
	}
	for i := range sf.Sites {
		s := &sf.Sites[i]
		if state != elfscan.StateNop {
			binary.LittleEndian.PutUint32(b[s.Slot1Off():], encode.MovX9X30)
		}
		if state == elfscan.StateEnabled {
			binary.LittleEndian.PutUint64(b[s.LiteralOff():], ops)
			w, err := encode.BL{From: s.CallSite(), To: tramp}.Encode()
			if err != nil {
				t.Fatal(err)
			}
			binary.LittleEndian.PutUint32(b[s.Slot2Off():], w)
		}
	}
	if edit != nil {
		edit(b, &sf.Sites[0])
	}
	out := filepath.Join(t.TempDir(), filepath.Base(path)+"."+state.String())
	if err := os.WriteFile(out, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// verifyPath verifies path, loaded through its Object.
func verifyPath(t *testing.T, path string, opts Options) *Report {
	t.Helper()
	fd, err := elfscan.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	img, err := LoadObject(fd, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	rep, err := Check(img, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestELFStatesPass(t *testing.T) {
	exe, obj, so := buildProgram(t)
	for _, path := range []string{exe, obj, so} {
		t.Run(filepath.Base(path), func(t *testing.T) { checkAllStates(t, path) })
	}
}

func checkAllStates(t *testing.T, path string) {
	{
		sf := mustScan(t, path)
		if len(sf.Sites) < 4 {
			t.Fatalf("%s: %d sites", path, len(sf.Sites))
		}
		rep := verifyPath(t, path, Options{})
		if rep.Failed != 0 || rep.ByState[elfscan.StateNop] != len(sf.Sites) {
			t.Errorf("%s nop: %+v", filepath.Base(path), rep)
		}
		for _, st := range []elfscan.State{elfscan.StateInit, elfscan.StateEnabled} {
			if sf.Type != elf.ET_EXEC && st == elfscan.StateEnabled {
				// An object needs relocations (patch's job); a DSO, a
				// dynamic relocation for its absolute literal.
				continue
			}
			for _, runFile := range []bool{false, true} {
				p := patchCopy(t, path, sf, st, nil)
				rep := verifyPath(t, p, Options{RunFileTrampoline: runFile})
				if rep.Failed != 0 || rep.ByState[st] != len(sf.Sites) {
					t.Errorf("%s %s runfile=%v: %+v", filepath.Base(path), st, runFile, rep)
				}
			}
		}
	}
}

func TestELFHostile(t *testing.T) {
	exe, _, _ := buildProgram(t)
	sf := mustScan(t, exe)
	put32 := func(off int64, w uint32) func([]byte, *elfscan.Site) {
		return func(b []byte, s *elfscan.Site) { binary.LittleEndian.PutUint32(b[off:], w) }
	}
	trampOff := func(b []byte) int64 {
		// file offset of ftrace_caller: the static executable maps its
		// first PT_LOAD at file offset 0 from the ELF base.
		f, _ := elf.Open(exe)
		defer f.Close()
		a := testutil.SymbolAddr(t, exe, "ftrace_caller")
		for _, p := range f.Progs {
			if p.Type == elf.PT_LOAD && a >= p.Vaddr && a < p.Vaddr+p.Filesz {
				return int64(p.Off + a - p.Vaddr)
			}
		}
		t.Fatal("ftrace_caller not in a segment")
		return 0
	}
	tests := []struct {
		name    string
		state   elfscan.State
		runFile bool
		edit    func(b []byte, s *elfscan.Site)
		want    string
		all     bool // every site fails (a broken trampoline)
	}{
		// A word that is no known state is never run: it fails as unknown.
		{"unknown-state-loop", elfscan.StateNop, false, func(b []byte, s *elfscan.Site) { put32(s.Slot1Off(), 0x14000000)(b, s) }, "state unknown", false},
		{"file-trampoline-loops", elfscan.StateEnabled, true, func(b []byte, s *elfscan.Site) { put32(trampOff(b), 0x14000000)(b, s) }, "instruction limit", true},
		{"file-trampoline-jumps-unmapped", elfscan.StateEnabled, true, func(b []byte, s *elfscan.Site) { put32(trampOff(b), 0xd61f0000)(b, s) }, "UC_ERR_FETCH_UNMAPPED", true},
		{"file-trampoline-clobbers-x19", elfscan.StateEnabled, true, func(b []byte, s *elfscan.Site) { put32(trampOff(b), 0xd2800013)(b, s) }, "X19 =", true},
		{"bl-wrong-target", elfscan.StateEnabled, false, func(b []byte, s *elfscan.Site) {
			w, _ := encode.BL{From: s.CallSite(), To: s.Entry()}.Encode()
			put32(s.Slot2Off(), w)(b, s)
		}, "BL to", false},
		{"literal-junk", elfscan.StateEnabled, false, func(b []byte, s *elfscan.Site) { binary.LittleEndian.PutUint64(b[s.LiteralOff():], 0x8) }, "unmapped", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := patchCopy(t, exe, sf, tc.state, tc.edit)
			rep := verifyPath(t, p, Options{RunFileTrampoline: tc.runFile})
			wantFailed := 1
			if tc.all {
				wantFailed = len(sf.Sites)
			}
			if rep.Failed != wantFailed || rep.Failures[0].Func != sf.Sites[0].Func || !strings.Contains(rep.Failures[0].Observed, tc.want) {
				t.Fatalf("want %d failures, first in %s observing %q; got %+v", wantFailed, sf.Sites[0].Func, tc.want, rep.Failures)
			}
			t.Logf("%s at %#x: %s", rep.Failures[0].Func, rep.Failures[0].Address, rep.Failures[0].Observed)
		})
	}
}

// Every committed fixture, as built (state nop), passes.
func TestFixturesNop(t *testing.T) {
	for _, p := range testutil.Fixtures(t, "*") {
		if input.Identify(p) != nil {
			continue // the fixtures' README
		}
		rep, err := File(p, Options{})
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if rep.Failed != 0 {
			t.Errorf("%s: %d failed: %+v", p, rep.Failed, rep.Failures[0])
		}
	}
}

// An object with sites in every state, ops undefined (bound to the
// stand-in) and defined (its first word relocated to cb), and defects.
func TestELFRelocatable(t *testing.T) {
	as := testutil.NeedTool(t, "aarch64-linux-gnu-as")
	obj := filepath.Join(t.TempDir(), "rel_sites.o")
	if out, err := exec.Command(as, "-o", obj, "testdata/rel_sites.S").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// The object does not define ftrace_caller: its own trampoline
	// cannot run, a mistake said once for the file.
	o, err := elfscan.Open(obj)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := LoadObject(o, Options{RunFileTrampoline: true}); !errors.Is(err, ErrNoFileTrampoline) {
		t.Errorf("RunFileTrampoline on an object without ftrace_caller: %v, want ErrNoFileTrampoline", err)
	}
	for _, runFile := range []bool{false} {
		rep := verifyPath(t, obj, Options{RunFileTrampoline: runFile})
		failed := map[string]string{}
		for _, f := range rep.Failures {
			failed[f.Func] = f.Observed
		}
		want := map[string]string{
			"f_wrong_bl":  "elsewhere",
			"f_bad_reloc": "",
			"f_prel":      "R_AARCH64_PREL32",
		}
		if rep.Sites != 7 || len(failed) != len(want) {
			t.Errorf("runfile=%v: %d sites, failures %v", runFile, rep.Sites, failed)
		}
		for fn, sub := range want {
			if obs, ok := failed[fn]; !ok || !strings.Contains(obs, sub) {
				t.Errorf("runfile=%v: %s: observed %q, want mention of %q", runFile, fn, obs, sub)
			}
		}
		t.Logf("runfile=%v: %v", runFile, failed)
	}
}

// TestDynRelocAtSite: a dynamic relocation verify does not apply, moved
// onto a word of one site of a shared library (its literal, then its call
// slot), fails that site, and only it; placed on no site's words it fails
// none.
func TestDynRelocAtSite(t *testing.T) {
	_, _, so := buildProgram(t)
	sf := mustScan(t, so)
	if len(sf.Sites) < 3 {
		t.Fatalf("%d sites", len(sf.Sites))
	}
	f, err := elf.Open(so)
	if err != nil {
		t.Fatal(err)
	}
	rela := f.Section(".rela.dyn")
	f.Close()
	if rela == nil || rela.Size < 24 {
		t.Fatal("no .rela.dyn entry to move")
	}
	s := &sf.Sites[1]
	for _, c := range []struct {
		name string
		at   uint64
		fail bool
	}{
		{"literal", s.Literal(), true},
		{"call slot", s.CallSite(), true},
		{"between sites", s.Entry() + 16, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := os.ReadFile(so)
			if err != nil {
				t.Fatal(err)
			}
			e := b[rela.Offset:]
			binary.LittleEndian.PutUint64(e, c.at)
			binary.LittleEndian.PutUint64(e[8:], uint64(elf.R_AARCH64_TLS_TPREL64)) // not applied: unresolved
			p := filepath.Join(t.TempDir(), "moved.so")
			if err := os.WriteFile(p, b, 0o755); err != nil {
				t.Fatal(err)
			}
			rep := verifyPath(t, p, Options{})
			switch {
			case !c.fail && rep.Failed != 0:
				t.Errorf("%d failures: %+v", rep.Failed, rep.Failures)
			case c.fail && (rep.Failed != 1 || rep.Failures[0].Address != s.Entry() || !strings.Contains(rep.Failures[0].Observed, "dynamic relocation")):
				t.Errorf("want the site at %#x failed for its relocation; got %+v", s.Entry(), rep.Failures)
			}
		})
	}
}

// callWord gives the word the image holds at each site's call site: the
// scan's copy where the image's bytes there are the file's, the image's own
// where verify wrote there (a redirected trampoline entry) or a piece of
// the image does not map the offset the scan read.
func TestCallWordIsTheImages(t *testing.T) {
	exe, _, _ := buildProgram(t)
	sf := mustScan(t, exe)
	p := patchCopy(t, exe, sf, elfscan.StateEnabled, nil)
	o, err := elfscan.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	img, err := LoadObject(o, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	shortcut := 0
	b := &binder{img: img, fromScan: true}
	for i := range img.sites {
		s := &img.sites[i]
		w, ok := b.callWord(s)
		want, wok := img.read32(s.callSite())
		if w != want || ok != wok {
			t.Fatalf("site %d: callWord %#08x %v, the image holds %#08x %v", i, w, ok, want, wok)
		}
		if img.fileOffset(s.callSite(), 4) == s.Slot2Off() {
			shortcut++
		}
	}
	if shortcut != len(img.sites) || len(img.sites) < 4 {
		t.Errorf("the scan's word serves %d of %d sites, want all", shortcut, len(img.sites))
	}
	s := &img.sites[0]
	a := s.callSite()
	img.write32(a, encode.NOP) // as if verify had redirected a trampoline entry there
	if w, _ := (&binder{img: img}).callWord(s); w != encode.NOP {
		t.Errorf("a binder of an intermediate state (not fromScan): %#08x, want the image's NOP", w)
	}
	img.tramp = a
	if w, _ := b.callWord(s); w != encode.NOP {
		t.Errorf("at a word verify wrote: %#08x, want the image's NOP", w)
	}
	img.tramp = 0
	brk, _ := encode.BRK{Imm16: 1}.Encode()
	img.write32(a, brk)
	for k := range img.pieces {
		img.pieces[k].off++ // the pieces no longer map the offsets the scan read
	}
	if w, _ := b.callWord(s); w == s.Slot2Word {
		t.Errorf("with the file's offset unmapped: the scan's word %#08x", w)
	}
}

// A linked image with no enabled site calls no trampoline: load looks none
// up and redirects nothing (a lookup by name walks the whole symbol
// table). With enabled sites the file's trampoline is redirected to
// verify's with a B, and so it is for intermediate states (whose overlays
// may hold a BL) whatever the sites' state; an object binds its call
// sites' relocations to it whatever their state.
func TestTrampolineOnlyForEnabled(t *testing.T) {
	exe, obj, _ := buildProgram(t)
	sf := mustScan(t, exe)
	at := testutil.SymbolAddr(t, exe, "ftrace_caller")
	load := func(path string, opts Options) *Image {
		t.Helper()
		o, err := elfscan.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { o.Close() })
		img, err := LoadObject(o, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { img.Close() })
		return img
	}
	for _, st := range []elfscan.State{elfscan.StateNop, elfscan.StateInit} {
		p := exe
		if st != elfscan.StateNop {
			p = patchCopy(t, exe, sf, st, nil)
		}
		img := load(p, Options{})
		want := fileWord(t, p, at)
		if got, _ := img.read32(at); img.tramp != 0 || got != want {
			t.Errorf("%s image: trampoline %#x, word at ftrace_caller %#08x, want 0 and the file's %#08x", st, img.tramp, got, want)
		}
		img = load(p, Options{allRelocs: true})
		b, _ := encode.B{From: at, To: img.ourTramp}.Encode()
		if got, _ := img.read32(at); img.tramp != at || got != b {
			t.Errorf("%s image for intermediate states: trampoline %#x, word there %#08x, want %#x and B to verify's (%#08x)", st, img.tramp, got, at, b)
		}
	}
	img := load(patchCopy(t, exe, sf, elfscan.StateEnabled, nil), Options{})
	b, _ := encode.B{From: at, To: img.ourTramp}.Encode()
	if got, _ := img.read32(at); img.tramp != at || got != b {
		t.Errorf("enabled image: trampoline %#x, word there %#08x, want %#x and B to verify's (%#08x)", img.tramp, got, at, b)
	}
	if img := load(obj, Options{}); img.tramp != img.ourTramp {
		t.Errorf("nop object: trampoline %#x, want verify's %#x", img.tramp, img.ourTramp)
	}
}

// fileWord reads the 32-bit word at virtual address addr of a linked file
// through debug/elf's sections.
func fileWord(t *testing.T, path string, addr uint64) uint32 {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, s := range f.Sections {
		if s.Type == elf.SHT_PROGBITS && addr >= s.Addr && addr+4 <= s.Addr+s.Size {
			var b [4]byte
			if _, err := s.ReadAt(b[:], int64(addr-s.Addr)); err != nil {
				t.Fatal(err)
			}
			return binary.LittleEndian.Uint32(b[:])
		}
	}
	t.Fatalf("%s: no section holds %#x", path, addr)
	return 0
}
