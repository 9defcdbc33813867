// SPDX-License-Identifier: Apache-2.0

package patch_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/patch"
	"github.com/ftpatch/ftpatch/internal/report"
	"github.com/ftpatch/ftpatch/internal/safefile"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/testutil/scantest"
)

// apply plans req on path and writes the result to out.
func apply(t *testing.T, path, out string, req patch.Request) *patch.Changes {
	t.Helper()
	in, err := patch.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer in.Close()
	c, err := patch.Plan(in, req)
	if err != nil {
		t.Fatalf("plan %s on %s: %v", req.Op, filepath.Base(path), err)
	}
	target, err := safefile.Lock(out, safefile.Options{})
	if err != nil {
		t.Fatalf("lock %s: %v", out, err)
	}
	defer target.Close()
	if err := patch.Apply(in, c, target); err != nil {
		t.Fatalf("apply %s on %s: %v", req.Op, filepath.Base(path), err)
	}
	return c
}

func scan(t *testing.T, path string) *elfscan.File {
	t.Helper()
	f, err := scantest.File(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func classic(path string) bool { return strings.Contains(filepath.Base(path), "-classic") }

// enableReq is the enable request used over the fixture matrix.
func enableReq(path string, funcs ...string) patch.Request {
	req := patch.Request{Op: patch.OpEnable, Funcs: funcs, SkipMisaligned: true, AllowAbsolute: true}
	if !classic(path) {
		req.Ops = &patch.Value{Sym: "ops"}
	}
	return req
}

// siteBytes marks the bytes of every patch site's words in the file.
func siteBytes(sites []elfscan.Site) map[int64]bool {
	m := map[int64]bool{}
	for _, s := range sites {
		for _, w := range []struct {
			off int64
			n   int64
		}{{s.LiteralOff(), 8}, {s.Slot1Off(), 4}, {s.Slot2Off(), 4}} {
			if w.off == elfscan.NoOffset {
				continue
			}
			for k := int64(0); k < w.n; k++ {
				m[w.off+k] = true
			}
		}
	}
	return m
}

type relaSet map[elfscan.Rela]int

// compareOutside checks that after differs from before only in patch-site
// words and, for ET_REL, in relocations at patch-site words and in
// undefined symbols appended to .symtab (and their names).
func compareOutside(t *testing.T, before, after string, sites []elfscan.Site) {
	t.Helper()
	fb, err := elf.Open(before)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	fa, err := elf.Open(after)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	if len(fa.Sections) < len(fb.Sections) {
		t.Fatalf("%s: %d sections, had %d", after, len(fa.Sections), len(fb.Sections))
	}
	inSite := siteBytes(sites)
	siteAddr := map[[2]uint64]bool{} // ET_REL (section, offset) of site words
	has53 := map[int]bool{}          // ET_REL sections holding 5,3 sites
	for _, s := range sites {
		has53[s.SectionIndex()] = has53[s.SectionIndex()] || s.Layout == elfscan.LayoutCallOps53
		siteAddr[[2]uint64{uint64(s.SectionIndex()), s.Literal()}] = s.Layout.HasLiteral()
		siteAddr[[2]uint64{uint64(s.SectionIndex()), s.CallSite()}] = true
	}
	for i, sb := range fb.Sections {
		sa := fa.Sections[i]
		hb, ha := sb.SectionHeader, sa.SectionHeader
		hb.Offset, ha.Offset, hb.Size, ha.Size, hb.FileSize, ha.FileSize = 0, 0, 0, 0, 0, 0
		if fb.Type == elf.ET_REL && has53[i] && hb.Addralign < 8 && ha.Addralign == 8 {
			hb.Addralign = 8 // raised so 5,3 literals stay aligned when linked
		}
		if hb != ha {
			t.Errorf("section %d %q: header changed: %+v -> %+v", i, sb.Name, sb.SectionHeader, sa.SectionHeader)
		}
		db, _ := sb.Data()
		da, _ := sa.Data()
		switch {
		case fb.Type == elf.ET_REL && sb.Type == elf.SHT_SYMTAB:
			if !bytes.Equal(da[:min(len(da), len(db))], db) || (len(da)-len(db))%24 != 0 {
				t.Errorf(".symtab: existing entries changed")
			}
			for k := len(db); k+24 <= len(da); k += 24 {
				if da[k+4] != byte(elf.STB_GLOBAL)<<4 || da[k+6] != 0 || da[k+7] != 0 {
					t.Errorf(".symtab: appended entry %d is not an undefined global", k/24)
				}
			}
		case fb.Type == elf.ET_REL && sb.Type == elf.SHT_STRTAB:
			if !bytes.HasPrefix(da, db) {
				t.Errorf("%s: existing strings changed", sb.Name)
			}
		case fb.Type == elf.ET_REL && sb.Type == elf.SHT_RELA:
			rb, ra := relas(t, sb.Name, db), relas(t, sa.Name, da)
			diffRelas(t, sb.Name, int(sb.Info), rb, ra, siteAddr)
		case sb.Type == elf.SHT_NOBITS:
		default:
			if len(da) != len(db) {
				t.Errorf("section %q: size %d -> %d", sb.Name, len(db), len(da))
				continue
			}
			for k := range db {
				if db[k] != da[k] && !inSite[int64(sb.Offset)+int64(k)] {
					t.Errorf("section %q: byte %#x changed outside any patch site", sb.Name, k)
					break
				}
			}
		}
	}
	for _, sa := range fa.Sections[len(fb.Sections):] {
		if sa.Type != elf.SHT_RELA || sa.Flags&elf.SHF_INFO_LINK == 0 || sa.Name != ".rela"+fa.Sections[sa.Info].Name {
			t.Errorf("new section %q (%v, info %d) is not the .rela of a text section", sa.Name, sa.Type, sa.Info)
		}
		da, _ := sa.Data()
		ra := relas(t, sa.Name, da)
		diffRelas(t, sa.Name, int(sa.Info), nil, ra, siteAddr)
	}
}

// relas decodes the Elf64_Rela entries of section name with
// encoding/binary (the test checks what patch wrote, not elfscan's view).
func relas(t *testing.T, name string, b []byte) []elfscan.Rela {
	t.Helper()
	es := make([]elf.Rela64, len(b)/24)
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, es); err != nil || len(b)%24 != 0 {
		t.Errorf("%s: %d bytes are not Elf64_Rela entries: %v", name, len(b), err)
	}
	out := make([]elfscan.Rela, len(es))
	for i, e := range es {
		out[i] = elfscan.Rela{Off: e.Off, Type: elf.R_AARCH64(elf.R_TYPE64(e.Info)), Sym: elf.R_SYM64(e.Info), Addend: e.Addend}
	}
	return out
}

func diffRelas(t *testing.T, name string, sec int, before, after []elfscan.Rela, siteAddr map[[2]uint64]bool) {
	t.Helper()
	count := relaSet{}
	for _, r := range before {
		count[r]++
	}
	for _, r := range after {
		count[r]--
	}
	for r, n := range count {
		if n != 0 && !siteAddr[[2]uint64{uint64(sec), r.Off}] {
			t.Errorf("%s: relocation %+v changed outside any patch site", name, r)
		}
	}
}

// TestFixtureProperties runs init, enable and disable over every fixture:
// init is idempotent, enable reaches the enabled state, disable gives the
// init file back, and nothing outside patch sites changes.
func TestFixtureProperties(t *testing.T) {
	for _, path := range testutil.Fixtures(t, "*") {
		if strings.HasSuffix(path, ".md") {
			continue
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			dir := t.TempDir()
			orig := scan(t, path)
			initf, enf, disf := filepath.Join(dir, "init"), filepath.Join(dir, "enabled"), filepath.Join(dir, "disabled")
			ci := apply(t, path, initf, patch.Request{Op: patch.OpInit, SkipMisaligned: true})
			compareOutside(t, path, initf, orig.Sites)
			// A misaligned literal is left alone by init as by enable.
			initSkipped := map[string]bool{}
			for _, s := range ci.Skipped {
				initSkipped[s.Section+s.Where] = true
			}
			placeOf := func(s *elfscan.Site) string {
				if orig.Type == elf.ET_REL {
					return s.Section + fmt.Sprintf("%s+%#x", s.Section, s.Entry())
				}
				return s.Section + fmt.Sprintf("%#x", s.Entry())
			}
			for _, s := range scan(t, initf).Sites {
				want := elfscan.StateInit
				if initSkipped[placeOf(&s)] {
					want = elfscan.StateNop
				}
				if s.State != want {
					t.Errorf("after init: %s at %#x is %s, want %s", s.Func, s.Entry(), s.State, want)
				}
			}
			in, err := patch.Open(initf)
			if err != nil {
				t.Fatal(err)
			}
			c, err := patch.Plan(in, patch.Request{Op: patch.OpInit, SkipMisaligned: true})
			in.Close()
			if err != nil || !c.Empty() {
				t.Errorf("init of init: %v, plan %+v; want no writes", err, c)
			}

			c = apply(t, initf, enf, enableReq(path))
			compareOutside(t, initf, enf, scan(t, initf).Sites) // init may raise an ET_REL section's alignment, moving it
			skipped := map[string]bool{}
			for _, s := range c.Skipped {
				skipped[s.Section+s.Where] = true
			}
			opsAddr := uint64(0)
			if orig.Type != elf.ET_REL && !classic(path) {
				opsAddr = testutil.SymbolAddr(t, path, "ops")
			}
			for _, s := range scan(t, enf).Sites {
				want := elfscan.StateEnabled
				where := fmt.Sprintf("%#x", s.Entry())
				if orig.Type == elf.ET_REL {
					where = fmt.Sprintf("%s+%#x", s.Section, s.Entry())
				}
				if skipped[s.Section+where] {
					want = elfscan.StateInit
					if initSkipped[s.Section+where] {
						want = elfscan.StateNop
					}
				}
				if s.State != want {
					t.Errorf("after enable: %s at %#x is %s, want %s", s.Func, s.Entry(), s.State, want)
				}
				// 5,3 with BTI at 4 mod 8: literal at entry-12, BL at
				// entry+8, X30-24: the trampoline's second entry.
				tramp := "ftrace_caller"
				if s.Layout == elfscan.LayoutCallOps53 && s.BTI && s.Entry()%8 == 4 {
					tramp = "ftrace_caller_lit24"
				}
				if s.State == elfscan.StateEnabled && (s.Target() == nil || s.Target().Sym != tramp) {
					t.Errorf("after enable: %s BL target %+v, want %s", s.Func, s.Target(), tramp)
				}
				if s.State == elfscan.StateEnabled && s.Layout.HasLiteral() && (s.Ops() == nil || orig.Type == elf.ET_REL && s.Ops().Sym != "ops" || orig.Type != elf.ET_REL && s.Ops().Addr != opsAddr) {
					t.Errorf("after enable: %s literal %+v, want ops", s.Func, s.Ops())
				}
			}

			apply(t, enf, disf, patch.Request{Op: patch.OpDisable})
			if orig.Type != elf.ET_REL {
				a, _ := os.ReadFile(initf)
				b, _ := os.ReadFile(disf)
				if !bytes.Equal(a, b) {
					t.Errorf("disable after enable does not give the init bytes back")
				}
			} else {
				compareOutside(t, initf, disf, nil) // no site word differs
			}
		})
	}
}

// TestEnableFuncOnlyMatching checks that --func and --exclude select sites
// by function name and nothing else is touched.
func TestEnableFuncOnlyMatching(t *testing.T) {
	for _, path := range testutil.Fixtures(t, "*-callops-bti-*") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			dir := t.TempDir()
			initf, out := filepath.Join(dir, "init"), filepath.Join(dir, "out")
			apply(t, path, initf, patch.Request{Op: patch.OpInit, SkipMisaligned: true})
			req := enableReq(path, "fx_*")
			req.Exclude = []string{"fx_m*", "fx_add"}
			apply(t, initf, out, req)
			var selected []elfscan.Site
			for _, s := range scan(t, out).Sites {
				match := strings.HasPrefix(s.Func, "fx_") && !strings.HasPrefix(s.Func, "fx_m") && s.Func != "fx_add"
				if match {
					selected = append(selected, s)
				}
				untouched := elfscan.StateInit
				if s.HasProblem(elfscan.CodeMisalignedLiteral) {
					untouched = elfscan.StateNop // init left it alone too
				}
				if !match && s.State != untouched {
					t.Errorf("%s is %s; it was not selected", s.Func, s.State)
				}
			}
			if len(selected) == 0 {
				t.Fatal("no site selected")
			}
			compareOutside(t, initf, out, selected)
		})
	}
}

// TestObjectsWithBinutils checks patched objects against tools nobody here
// wrote: readelf -a reads them without a warning, GNU ld and ld.lld link
// them, and the linked files scan to enabled sites that branch to the
// trampoline and carry the ops address.
func TestObjectsWithBinutils(t *testing.T) {
	readelf := testutil.NeedTool(t, "aarch64-linux-gnu-readelf")
	linkers := map[string]string{"ld": testutil.NeedTool(t, "aarch64-linux-gnu-ld"), "lld": testutil.NeedTool(t, "ld.lld")}
	objs := append(testutil.Fixtures(t, "*.o"), testutil.Fixtures(t, "*.ko")...)
	for _, path := range objs {
		t.Run(filepath.Base(path), func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "x.o")
			req := enableReq(path)
			req.InitToo = true
			req.Ops = nil
			if !classic(path) {
				// A symbol the object lacks: added as an undefined global.
				req.Ops = &patch.Value{Sym: "extern_ops"}
			}
			apply(t, path, out, req)
			cmd := exec.Command(readelf, "-a", "-W", out)
			var so, se bytes.Buffer
			cmd.Stdout, cmd.Stderr = &so, &se
			if err := cmd.Run(); err != nil || se.Len() > 0 || strings.Contains(so.String(), "Warning") {
				t.Fatalf("readelf -a: %v\n%s", err, se.String())
			}
			for name, ld := range linkers {
				exe := filepath.Join(dir, name+".elf")
				args := []string{"-o", exe, "-e", "0", "--defsym=extern_ops=0x123450", out}
				if b, err := exec.Command(ld, args...).CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", name, err, b)
				}
				f := scan(t, exe)
				tramp := testutil.SymbolAddr(t, exe, "ftrace_caller")
				n := 0
				for _, s := range f.Sites {
					if s.State != elfscan.StateEnabled {
						continue
					}
					n++
					want := tramp
					if s.Layout == elfscan.LayoutCallOps53 && s.BTI && s.Entry()%8 == 4 {
						want = testutil.SymbolAddr(t, exe, "ftrace_caller_lit24") // literal at X30-24
					}
					if s.Target() == nil || s.Target().Addr != want {
						t.Errorf("%s: %s BL target %+v, want %#x", name, s.Func, s.Target(), want)
					}
					if s.Layout.HasLiteral() && (s.Literal()%8 != 0 || len(s.Problems()) > 0) {
						t.Errorf("%s: %s literal at %#x after linking: %v", name, s.Func, s.Literal(), s.Problems())
					}
					if s.Layout.HasLiteral() && s.LiteralWord != 0x123450 {
						t.Errorf("%s: %s literal %#x, want 0x123450", name, s.Func, s.LiteralWord)
					}
				}
				if n == 0 {
					t.Errorf("%s: no enabled site after linking", name)
				}
			}
		})
	}
}

// TestPlanDeterministic plans twice and prints the same lines; enable
// writes the literal before the BL of each site.
func TestPlanDeterministic(t *testing.T) {
	path := testutil.Fixtures(t, "gcc-callops-bti-static.elf")[0]
	print := func() string {
		in, err := patch.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		req := enableReq(path)
		req.InitToo = true
		c, err := patch.Plan(in, req)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		report.PlanText(&b, c)
		return b.String()
	}
	a, b := print(), print()
	if a != b {
		t.Fatalf("plans differ:\n%s\n%s", a, b)
	}
	last := map[string]string{}
	order := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(a), "\n") {
		f := strings.Fields(l)
		order[f[0]] = append(order[f[0]], f[2])
		last[f[0]] = f[2]
	}
	for fn, slots := range order {
		if want := []string{"literal", "slot1", "slot2"}; strings.Join(slots, ",") != strings.Join(want, ",") {
			t.Errorf("%s: writes in order %v, want %v", fn, slots, want)
		}
	}
	keys := make([]string, 0, len(order))
	for k := range order {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		t.Fatal("empty plan")
	}
}
