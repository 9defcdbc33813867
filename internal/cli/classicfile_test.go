// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// classicKernelProg links testdata/src/e2e/prog.c, compiled classic
// (-fpatchable-function-entry=2), with the classic-kernel-style
// ftrace_caller of testdata/src/classic, then init and enable.
func classicKernelProg(t *testing.T) (dir, enabled string) {
	t.Helper()
	cc := testutil.NeedTool(t, "aarch64-linux-gnu-gcc")
	root := testutil.RepoRoot(t)
	dir = t.TempDir()
	run(t, dir, cc, "-O2", "-fpatchable-function-entry=2", "-mbranch-protection=standard", "-c", filepath.Join(root, "testdata", "src", "e2e", "prog.c"), "-o", "prog.o")
	run(t, dir, cc, "-O2", "-c", filepath.Join(root, "testdata", "src", "e2e", "counter.c"), "-o", "counter.o")
	run(t, dir, cc, "-c", filepath.Join(root, "testdata", "src", "classic", "caller.S"), "-o", "caller.o")
	run(t, dir, cc, "-no-pie", "-o", "prog", "prog.o", "caller.o", "counter.o")
	mustFtp(t, "init", "-o", filepath.Join(dir, "prog.init"), filepath.Join(dir, "prog"))
	enabled = filepath.Join(dir, "prog.en")
	mustFtp(t, "enable", "-o", enabled, filepath.Join(dir, "prog.init"))
	return dir, enabled
}

// replaceInFunc rewrites the one occurrence of word old in the first 64
// words of function fn, found through the section headers (debug/elf).
func replaceInFunc(t *testing.T, path, fn string, old, new uint32) {
	t.Helper()
	a := testutil.SymbolAddr(t, path, fn)
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var off int64 = -1
	for _, s := range f.Sections {
		if s.Type == elf.SHT_PROGBITS && a >= s.Addr && a < s.Addr+s.Size {
			off = int64(s.Offset + (a - s.Addr))
		}
	}
	f.Close()
	if off < 0 {
		t.Fatalf("%s at %#x is in no section", fn, a)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	code := b[off : off+256]
	var ow, nw [4]byte
	binary.LittleEndian.PutUint32(ow[:], old)
	binary.LittleEndian.PutUint32(nw[:], new)
	i := bytes.Index(code, ow[:])
	if i < 0 || i%4 != 0 || bytes.Count(code, ow[:]) != 1 {
		t.Fatalf("word %#08x not once in %s", old, fn)
	}
	copy(code[i:], nw[:])
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// verify --run-file-trampoline on a classic image runs the file's own
// ftrace_caller, with verify's op in function_trace_op and the callback
// caught at ftrace_call (issue 11.3).
func TestClassicFileTrampoline(t *testing.T) {
	dir, enabled := classicKernelProg(t)
	out, errs, code := ftp(t, "verify", "--run-file-trampoline", enabled)
	if code != 0 || !strings.HasPrefix(out, "ok:") || !strings.Contains(out, "enabled 8") {
		t.Fatalf("verify --run-file-trampoline: exit %d\n%s%s", code, out, errs)
	}

	// The file's trampoline restores X30 from the wrong slot (the return
	// into the function, not the parent): every site must fail.
	bad := filepath.Join(dir, "prog.bad")
	b, _ := os.ReadFile(enabled)
	os.WriteFile(bad, b, 0o755)
	replaceInFunc(t, bad, "ftrace_caller", 0xf94027fe /* ldr x30, [sp, #72] */, 0xf9402ffe /* ldr x30, [sp, #88] */)
	out, errs, code = ftp(t, "verify", "--run-file-trampoline", bad)
	if code != 1 || !strings.Contains(out, "0 passed, 8 failed") || !strings.Contains(out, "X30 = ") {
		t.Errorf("planted wrong X30 restore: exit %d, want every site failing on X30\n%s%s", code, out, errs)
	}
	// The tool's own trampoline does not run the file's: the same file passes.
	if out, errs, code := ftp(t, "verify", bad); code != 0 {
		t.Errorf("verify (tool's trampoline) of the planted file: exit %d\n%s%s", code, out, errs)
	}

	// The trampoline passes the return into the function as parent_ip.
	bad2 := filepath.Join(dir, "prog.bad2")
	os.WriteFile(bad2, b, 0o755)
	replaceInFunc(t, bad2, "ftrace_caller", 0xaa0903e1 /* mov x1, x9 */, 0xaa1e03e1 /* mov x1, x30 */)
	out, _, code = ftp(t, "verify", "--run-file-trampoline", bad2)
	if code != 1 || !strings.Contains(out, "wrong parent_ip") {
		t.Errorf("planted wrong parent_ip: exit %d\n%s", code, out)
	}

	// Without function_trace_op the trampoline's op cannot be supplied: a
	// clear failure naming the symbol.
	objcopy := testutil.NeedTool(t, "aarch64-linux-gnu-objcopy")
	stripped := filepath.Join(dir, "prog.noop")
	run(t, dir, objcopy, "--strip-symbol=function_trace_op", enabled, stripped)
	out, errs, code = ftp(t, "verify", "--run-file-trampoline", stripped)
	if code != 2 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "function_trace_op") {
		t.Errorf("no function_trace_op: exit %d, want 2 and one message naming it\n%s%s", code, out, errs)
	}
}

// A classic site whose function is 12 bytes long (NOP, NOP, BRK), right
// before another function, as Debian 12's 6.1 has abort before
// bitmap_copy: the record starts a function, so it is that function's
// classic site, not a 5,3 site of the next one.
func TestClassicTinyFunctionBeforeAnother(t *testing.T) {
	cc := testutil.NeedTool(t, "aarch64-linux-gnu-gcc")
	dir := t.TempDir()
	src := `	.text
	.globl	_start
	.type	_start, %function
	.p2align 3
_start:
	ret
	.size	_start, .-_start
	.p2align 3
	.globl	tiny
	.type	tiny, %function
tiny:
1:	nop
	nop
	brk	#0x800
	.size	tiny, .-tiny
	.type	next, %function
next:
	paciasp
	add	w2, w2, #0x3f
	autiasp
	ret
	.size	next, .-next
	.section __patchable_function_entries,"aw",@progbits
	.p2align 3
	.8byte	1b
	.section .note.GNU-stack,"",%progbits
`
	if err := os.WriteFile(filepath.Join(dir, "t.S"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dir, cc, "-nostdlib", "-static", "-o", "t", "t.S")
	out := mustFtp(t, "scan", "--check", filepath.Join(dir, "t"))
	if !strings.Contains(out, "1 site (1 nop), 0 problems") || !regexp.MustCompile(`(?m)^tiny\s.*\sclassic\s`).MatchString(out) {
		t.Errorf("want tiny's classic nop site and no problem:\n%s", out)
	}
}
