// SPDX-License-Identifier: Apache-2.0

package patch_test

import (
	"bytes"
	"debug/elf"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/patch"
	"github.com/ftpatch/ftpatch/internal/report"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// A kCFI build in 4,2 has its literals at 4 mod 8: enable refuses, naming
// kCFI as the cause and 5,3 as the fix.
func TestKCFIMisalignedAdvice(t *testing.T) {
	path := testutil.Fixtures(t, "clang16-kcfi-callops-bti-static.elf")[0]
	in, err := patch.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	req := patch.Request{Op: patch.OpEnable, InitToo: true, Ops: &patch.Value{Sym: "ops"}}
	_, err = patch.Plan(in, req)
	if !errors.Is(err, patch.ErrMisaligned) || !strings.Contains(err.Error(), "kCFI") || !strings.Contains(err.Error(), "-fpatchable-function-entry=5,3") {
		t.Fatalf("err = %v; want ErrMisaligned naming kCFI and 5,3", err)
	}
}

// 5,3 sites with BTI at 4 mod 8 call the trampoline's second entry, which
// only a symbol can name: an address --trampoline is refused for them.
func TestAltEntryNeedsSymbol(t *testing.T) {
	path := testutil.Fixtures(t, "clang-callops53-bti-static.elf")[0]
	in, err := patch.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	tramp := testutil.SymbolAddr(t, path, "ftrace_caller")
	req := patch.Request{Op: patch.OpEnable, InitToo: true, Ops: &patch.Value{Sym: "ops"}, Trampoline: patch.Value{Addr: tramp}}
	if _, err := patch.Plan(in, req); !errors.Is(err, patch.ErrSymbol) || !strings.Contains(err.Error(), "_lit24") {
		t.Fatalf("err = %v; want ErrSymbol naming the second entry", err)
	}
}

// In an object whose text section is aligned to 4 only, writing a 5,3
// literal raises sh_addralign to 8 (planned, printed, applied); nothing
// else in the section header changes, and a disable keeps it.
func TestRaiseAlignment(t *testing.T) {
	path := testutil.Fixtures(t, "clang-callops53-obj.o")[0]
	before, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	text := before.Section(".text")
	if text == nil || text.Addralign != 4 {
		t.Fatalf("fixture .text %+v: want sh_addralign 4", text)
	}
	out := filepath.Join(t.TempDir(), "init.o")
	c := apply(t, path, out, patch.Request{Op: patch.OpInit, SkipMisaligned: true})
	var printed bytes.Buffer
	if err := report.PlanText(&printed, c); err != nil {
		t.Fatal(err)
	}
	if len(c.Aligns) == 0 || !strings.Contains(printed.String(), ".text\tsh_addralign\t4 -> 8") {
		t.Errorf("plan %+v, printed:\n%s", c.Aligns, printed.String())
	}
	after, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	for i, s := range after.Sections {
		want := before.Sections[i].Addralign
		if s.Flags&elf.SHF_EXECINSTR != 0 && want < 8 {
			want = 8
		}
		if s.Addralign != want {
			t.Errorf("section %q: sh_addralign %d, want %d", s.Name, s.Addralign, want)
		}
	}
	for _, s := range scan(t, out).Sites {
		if s.Layout != elfscan.LayoutCallOps53 || s.State != elfscan.StateInit || len(s.Problems()) > 0 {
			t.Errorf("%s: %s %s %v", s.Func, s.Layout, s.State, s.Problems())
		}
	}
}
