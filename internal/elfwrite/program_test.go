// SPDX-License-Identifier: Apache-2.0

package elfwrite

import (
	"bytes"
	"debug/elf"
	"errors"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ftpatch/ftpatch/internal/encode"
)

func objectRun(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("%s %s wrote to stderr:\n%s", name, strings.Join(args, " "), stderr.String())
	}
	return stdout.String()
}

var objectVariants = []struct {
	name string
	opts encode.TrampolineOptions
}{
	{"call-ops", encode.TrampolineOptions{}},
	{"classic", encode.TrampolineOptions{Name: "ftrace_caller_classic", Classic: true, OpsSym: "classic_ops"}},
}

func writeObject(t *testing.T, dir string, opts encode.TrampolineOptions) (string, encode.Program) {
	t.Helper()
	p, err := encode.Trampoline(opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := BuildObject(p)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, p.Name+".o")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, p
}

// TestBuildObjectReadelf: readelf -a reads the object with no warning, and
// debug/elf sees the promised symbols, relocations and BTI note.
func TestBuildObjectReadelf(t *testing.T) {
	readelf := testutil.NeedTool(t, "aarch64-linux-gnu-readelf")
	for _, v := range objectVariants {
		t.Run(v.name, func(t *testing.T) {
			dir := t.TempDir()
			o, p := writeObject(t, dir, v.opts)
			out := objectRun(t, dir, readelf, "-a", "-W", o)
			if regexp.MustCompile(`(?i)warning|error|corrupt`).MatchString(out) {
				t.Errorf("readelf complains:\n%s", out)
			}
			if !strings.Contains(out, "AArch64 feature: BTI, PAC") {
				t.Errorf("no BTI, PAC property note:\n%s", out)
			}
			f, err := elf.Open(o)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Type != elf.ET_REL || f.Machine != elf.EM_AARCH64 {
				t.Errorf("type %v machine %v", f.Type, f.Machine)
			}
			globals := testutil.GlobalSymbols(t, f)
			want := []string{p.Name}
			for _, e := range p.Entries {
				want = append(want, e.Name)
			}
			if v.opts.Classic {
				want = append(want, v.opts.OpsSym)
			}
			if d := cmp.Diff(want, globals); d != "" {
				t.Errorf("global symbols (-want +got):\n%s", d)
			}
			text := f.Section(".text")
			if text.Addralign != 8 || text.Flags != elf.SHF_ALLOC|elf.SHF_EXECINSTR {
				t.Errorf(".text align %d flags %v", text.Addralign, text.Flags)
			}
			if f.Section(".note.GNU-stack") == nil {
				t.Error("no .note.GNU-stack")
			}
		})
	}
}

// TestBuildObjectObjdump: objdump -dr of the built object is the same as
// objdump -dr of what GNU as makes of Program.Asm().
func TestBuildObjectObjdump(t *testing.T) {
	objdump := testutil.NeedTool(t, "aarch64-linux-gnu-objdump")
	as := testutil.NeedTool(t, "aarch64-linux-gnu-as")
	for _, v := range objectVariants {
		t.Run(v.name, func(t *testing.T) {
			dir := t.TempDir()
			o, p := writeObject(t, dir, v.opts)
			src, err := p.Asm()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "asm.s"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			objectRun(t, dir, as, "-o", "asm.o", "asm.s")
			body := func(s string) string { _, after, _ := strings.Cut(s, "Disassembly"); return after }
			ours := body(objectRun(t, dir, objdump, "-dr", o))
			theirs := body(objectRun(t, dir, objdump, "-dr", "asm.o"))
			if d := cmp.Diff(theirs, ours); d != "" {
				t.Errorf("objdump differs (-as +ours):\n%s", d)
			}
			if !strings.Contains(ours, "bti\tc") {
				t.Errorf("objdump shows no bti c:\n%s", ours)
			}
		})
	}
}

// TestBuildObjectLdRelocatable: a partial link (ld -r) with a BTI-marked GCC
// object keeps the BTI, PAC property; with an unmarked one it is dropped,
// showing the note is what carries the marking.
func TestBuildObjectLdRelocatable(t *testing.T) {
	gcc := testutil.NeedTool(t, "aarch64-linux-gnu-gcc")
	ld := testutil.NeedTool(t, "aarch64-linux-gnu-ld")
	readelf := testutil.NeedTool(t, "aarch64-linux-gnu-readelf")
	dir := t.TempDir()
	o, _ := writeObject(t, dir, encode.TrampolineOptions{})
	if err := os.WriteFile(filepath.Join(dir, "c.c"), []byte("int f(int x) { return x + 1; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flag string
		bti  bool
	}{{"-mbranch-protection=standard", true}, {"-mbranch-protection=none", false}} {
		objectRun(t, dir, gcc, "-c", "-O2", tc.flag, "c.c", "-o", "c.o")
		objectRun(t, dir, ld, "-r", "-o", "r.o", "c.o", o)
		got := strings.Contains(objectRun(t, dir, readelf, "-n", "r.o"), "AArch64 feature: BTI, PAC")
		if got != tc.bti {
			t.Errorf("%s: BTI, PAC marked = %v, want %v", tc.flag, got, tc.bti)
		}
	}
}

// TestTrampolineRunsUnderQemu links both trampolines with hand-written call
// sites in the 4,2 layout and a C callback, with GNU ld and with ld.lld,
// and runs the result under qemu-aarch64. The C side knows the expected
// ip, parent_ip, op, arguments and callee-saved registers independently
// of the trampoline, and prints "ok NAME" per site.
func TestTrampolineRunsUnderQemu(t *testing.T) {
	gcc := testutil.NeedTool(t, "aarch64-linux-gnu-gcc")
	clang := testutil.NeedTool(t, "clang")
	testutil.NeedTool(t, "ld.lld")
	qemu := testutil.NeedTool(t, "qemu-aarch64")
	dir := t.TempDir()
	var objs []string
	for _, v := range objectVariants {
		o, _ := writeObject(t, dir, v.opts)
		objs = append(objs, o)
	}
	readelf := testutil.NeedTool(t, "aarch64-linux-gnu-readelf")
	for name, src := range map[string]string{"main.c": qemuMainC, "sites.S": qemuSitesS, "start.S": qemuStartS, "neg.S": qemuNegativeS} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// -nostartfiles: Debian's crt files carry no BTI note, and the program
	// must be BTI-marked so that qemu enforces BTI (guarded pages).
	flags := []string{"-O2", "-fno-omit-frame-pointer", "-mbranch-protection=standard", "-no-pie", "-nostartfiles"}
	links := []struct {
		name string
		cmd  []string
	}{
		{"gnu-ld", append([]string{gcc}, flags...)},
		{"ld.lld", append([]string{clang, "--target=aarch64-linux-gnu", "-fuse-ld=lld"}, flags...)},
	}
	want := "ok traced_bti\nok traced_nobti\nok traced_other\nok traced_null\nok traced_classic\nok traced_veneer\nall ok\n"
	for _, l := range links {
		t.Run(l.name, func(t *testing.T) {
			exe := filepath.Join(dir, "prog-"+l.name)
			args := append(append(l.cmd[1:], "main.c", "sites.S", "start.S", "-o", exe), objs...)
			objectRun(t, dir, l.cmd[0], args...)
			if !strings.Contains(objectRun(t, dir, readelf, "-n", exe), "AArch64 feature: BTI, PAC") {
				t.Fatalf("%s is not BTI-marked; qemu would not enforce BTI", exe)
			}
			// Negative control: the same setup runs a BR into a function
			// without a landing pad, which must die with SIGILL, so BTI is
			// really enforced in the run below.
			neg := filepath.Join(dir, "neg-"+l.name)
			objectRun(t, dir, l.cmd[0], append(l.cmd[1:], "neg.S", "start.S", "-o", neg)...)
			if out, err := exec.Command(qemu, "-L", "/usr/aarch64-linux-gnu", neg).CombinedOutput(); err == nil {
				t.Fatalf("negative control ran without a BTI fault:\n%s", out)
			} else if ws, ok := err.(*exec.ExitError); !ok || !strings.Contains(ws.String(), "illegal instruction") {
				t.Fatalf("negative control: %v, want SIGILL\n%s", err, out)
			}
			cmd := exec.Command(qemu, "-L", "/usr/aarch64-linux-gnu", exe)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatal(err)
			}
			if err != nil || string(out) != want {
				t.Errorf("qemu: %v\n%s\nwant:\n%s", err, out, want)
			}
		})
	}
}

// qemuMainC: the callback and the checks. Expected values come from the C
// side (args, label addresses), never from the trampoline's encoding.
const qemuMainC = `
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct ftrace_regs { uint64_t x[9], unused, fp, lr, sp, pc; };  /* Linux arm64 layout */
struct ftrace_ops;
typedef void (*ftrace_func_t)(uint64_t ip, uint64_t parent_ip, struct ftrace_ops *op, struct ftrace_regs *regs);
struct ftrace_ops { ftrace_func_t func; uint64_t id; };

uint64_t args[9] = {0x1111, 0x2222000000000003, 0x3333, 0x4444000000000005, 0x5555, 0x6666, 0x7777, 0x8888, 0x9999};
uint64_t callee_pattern[10] = {0x19a, 0x20b, 0x21c, 0x22d, 0x23e, 0x24f, 0x250, 0x261, 0x272, 0x283};
uint64_t callee_after[10], harness_sp, harness_fp, body_sp, body_fp;

static int calls;
static uint64_t seen_ip, seen_parent, seen_tramp_lr, seen_site_fp, seen_site_lr;
static struct ftrace_ops *seen_op;
static struct ftrace_regs seen_regs;

__attribute__((noinline)) static void callback(uint64_t ip, uint64_t parent, struct ftrace_ops *op, struct ftrace_regs *regs) {
	calls++;
	seen_ip = ip, seen_parent = parent, seen_op = op, seen_regs = *regs;
	uint64_t *fp = __builtin_frame_address(0);   /* our record: {trampoline's x29, lr} */
	uint64_t *tramp = (uint64_t *)fp[0];          /* trampoline's record: {&site record, BL+4} */
	uint64_t *site = (uint64_t *)tramp[0];        /* call site's record: {caller's x29, parent} */
	seen_tramp_lr = tramp[1], seen_site_fp = site[0], seen_site_lr = site[1];
	/* A tracer may use every caller-saved register. */
	__asm__ volatile("mov x0, #0xbad\n mov x1, x0\n mov x2, x0\n mov x3, x0\n mov x4, x0\n mov x5, x0\n"
	                 "mov x6, x0\n mov x7, x0\n mov x8, x0\n mov x9, x0\n mov x10, x0\n mov x11, x0\n"
	                 "mov x12, x0\n mov x13, x0\n mov x14, x0\n mov x15, x0\n mov x16, x0\n mov x17, x0\n"
	                 ::: "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11",
	                     "x12", "x13", "x14", "x15", "x16", "x17");
}

struct ftrace_ops test_ops = {callback, 1}, other_ops = {callback, 2}, classic_ops = {callback, 3};

extern char traced_bti_bl[], traced_nobti_bl[], traced_other_bl[], traced_null_bl[], traced_classic_bl[], traced_veneer_bl[];
extern char traced_bti_ret[], traced_nobti_ret[], traced_other_ret[], traced_null_ret[], traced_classic_ret[], traced_veneer_ret[];
uint64_t harness_traced_bti(void), harness_traced_nobti(void), harness_traced_other(void),
	harness_traced_null(void), harness_traced_classic(void), harness_traced_veneer(void);

static int failures;
#define CHECK(c) do { if (!(c)) { failures++; bad++; printf("FAIL %s: %s\n", name, #c); } } while (0)

static void run(const char *name, uint64_t (*harness)(void), char *bl, char *ret, struct ftrace_ops *op) {
	int bad = 0;
	calls = 0, seen_ip = seen_parent = 0, seen_op = 0;
	memset(&seen_regs, 0, sizeof seen_regs);
	memset(callee_after, 0, sizeof callee_after);
	uint64_t want = 0;
	for (int i = 0; i < 9; i++) want += (uint64_t)(i + 1) * args[i];
	uint64_t got = harness();
	CHECK(got == want);
	CHECK(memcmp(callee_after, callee_pattern, sizeof callee_pattern) == 0);
	CHECK(body_sp == harness_sp);
	CHECK(body_fp == harness_fp);
	if (!op) {
		CHECK(calls == 0);
	} else {
		CHECK(calls == 1);
		CHECK(seen_ip == (uint64_t)bl);
		CHECK(seen_parent == (uint64_t)ret);
		CHECK(seen_op == op);
		for (int i = 0; i < 9; i++) CHECK(seen_regs.x[i] == args[i]);
		CHECK(seen_regs.fp == harness_fp);
		CHECK(seen_regs.lr == (uint64_t)ret);
		CHECK(seen_regs.sp == harness_sp);
		CHECK(seen_regs.pc == (uint64_t)bl + 4);
		CHECK(seen_tramp_lr == (uint64_t)bl + 4);
		CHECK(seen_site_fp == harness_fp);
		CHECK(seen_site_lr == (uint64_t)ret);
	}
	printf("%s %s\n", bad ? "FAIL" : "ok", name);
}

int main(void) {
	run("traced_bti", harness_traced_bti, traced_bti_bl, traced_bti_ret, &test_ops);
	run("traced_nobti", harness_traced_nobti, traced_nobti_bl, traced_nobti_ret, &test_ops);
	run("traced_other", harness_traced_other, traced_other_bl, traced_other_ret, &other_ops);
	run("traced_null", harness_traced_null, traced_null_bl, traced_null_ret, 0);
	run("traced_classic", harness_traced_classic, traced_classic_bl, traced_classic_ret, &classic_ops);
	run("traced_veneer", harness_traced_veneer, traced_veneer_bl, traced_veneer_ret, &test_ops);
	printf(failures ? "%d failures\n" : "all ok\n", failures);
	return failures != 0;
}
`

// qemuSitesS: call sites as -fpatchable-function-entry=4,2 leaves them
// after init + enable (literal at func-8, [BTI C], MOV X9,X30, BL), a
// classic site (=2), and harnesses that load x0-x8 and x19-x28 with known
// values, record SP and x29, call the site directly, and record x19-x28
// after it returns.
const qemuSitesS = `
	.macro BODY            // x0 += 2*x1 + 3*x2 + ... + 9*x8; record sp, x29
	mov	x16, sp
	adrp	x17, body_sp
	str	x16, [x17, :lo12:body_sp]
	adrp	x17, body_fp
	str	x29, [x17, :lo12:body_fp]
	.irp	n, 1, 2, 3, 4, 5, 6, 7, 8
	mov	x10, #(\n + 1)
	madd	x0, x\n, x10, x0
	.endr
	ret
	.endm

	.macro SITE name, literal, bti, tramp
	.p2align 3
	.ifnb	\literal
	.quad	\literal
	.endif
	.globl	\name
	.type	\name, %function
\name:
	.if	\bti
	bti	c
	.endif
	mov	x9, x30
	.globl	\name\()_bl
\name\()_bl:
	bl	\tramp
	BODY
	.size	\name, .-\name
	.endm

	.macro HARNESS fn
	.globl	harness_\fn
	.type	harness_\fn, %function
	.p2align 2
harness_\fn:
	bti	c
	stp	x29, x30, [sp, #-96]!
	mov	x29, sp
	stp	x19, x20, [sp, #16]
	stp	x21, x22, [sp, #32]
	stp	x23, x24, [sp, #48]
	stp	x25, x26, [sp, #64]
	stp	x27, x28, [sp, #80]
	adrp	x17, callee_pattern
	add	x17, x17, :lo12:callee_pattern
	ldp	x19, x20, [x17]
	ldp	x21, x22, [x17, #16]
	ldp	x23, x24, [x17, #32]
	ldp	x25, x26, [x17, #48]
	ldp	x27, x28, [x17, #64]
	mov	x16, sp
	adrp	x17, harness_sp
	str	x16, [x17, :lo12:harness_sp]
	adrp	x17, harness_fp
	str	x29, [x17, :lo12:harness_fp]
	adrp	x17, args
	add	x17, x17, :lo12:args
	ldp	x0, x1, [x17]
	ldp	x2, x3, [x17, #16]
	ldp	x4, x5, [x17, #32]
	ldp	x6, x7, [x17, #48]
	ldr	x8, [x17, #64]
	bl	\fn
	.globl	\fn\()_ret
\fn\()_ret:
	adrp	x17, callee_after
	add	x17, x17, :lo12:callee_after
	stp	x19, x20, [x17]
	stp	x21, x22, [x17, #16]
	stp	x23, x24, [x17, #32]
	stp	x25, x26, [x17, #48]
	stp	x27, x28, [x17, #64]
	ldp	x19, x20, [sp, #16]
	ldp	x21, x22, [sp, #32]
	ldp	x23, x24, [sp, #48]
	ldp	x25, x26, [sp, #64]
	ldp	x27, x28, [sp, #80]
	ldp	x29, x30, [sp], #96
	ret
	.size	harness_\fn, .-harness_\fn
	.endm

	.text
	SITE	traced_bti, test_ops, 1, ftrace_caller
	SITE	traced_nobti, test_ops, 0, ftrace_caller
	SITE	traced_other, other_ops, 1, ftrace_caller
	SITE	traced_null, 0, 1, ftrace_caller
	SITE	traced_classic, , 1, ftrace_caller_classic
	SITE	traced_veneer, test_ops, 1, tramp_veneer
	HARNESS	traced_bti
	HARNESS	traced_nobti
	HARNESS	traced_other
	HARNESS	traced_null
	HARNESS	traced_classic
	HARNESS	traced_veneer

	// A linker range-extension veneer: reaches the trampoline with BR x16,
	// which under BTI needs the trampoline's BTI C.
tramp_veneer:
	adrp	x16, ftrace_caller
	add	x16, x16, :lo12:ftrace_caller
	br	x16

` + qemuBTINote

// qemuBTINote marks a hand-written object BTI | PAC, as GCC marks its own.
const qemuBTINote = `
	.section .note.GNU-stack, "", %progbits
	.pushsection .note.gnu.property, "a"
	.p2align 3
	.word	4, 16, 5
	.asciz	"GNU"
	.word	0xc0000000, 4, 3, 0
	.popsection
`

// qemuStartS replaces crt1.o (whose lack of a BTI note would unmark the
// program): ld.so jumps here with BR, hence BTI JC.
const qemuStartS = `
	.text
	.globl	_start
	.type	_start, %function
_start:
	bti	jc
	mov	x29, #0
	mov	x30, #0
	bl	main
	bl	exit
` + qemuBTINote

// qemuNegativeS: main reaches a function without a landing pad via BR.
const qemuNegativeS = `
	.text
	.globl	main
	.type	main, %function
main:
	bti	c
	adrp	x16, no_pad
	add	x16, x16, :lo12:no_pad
	br	x16
no_pad:
	mov	x0, #0
	ret
` + qemuBTINote

func TestBuildObjectErrors(t *testing.T) {
	ok := encode.Program{Name: "f", Words: []uint32{encode.NOP}}
	tests := []struct {
		name string
		mod  func(p *encode.Program)
		msg  string // in the error
	}{
		{"no name", func(p *encode.Program) { p.Name = "" }, `bad name ""`},
		{"NUL in name", func(p *encode.Program) { p.Name = "a\x00b" }, `bad name "a\x00b"`},
		{"no words", func(p *encode.Program) { p.Words = nil }, "f has no instructions"},
		{"fixup past the end", func(p *encode.Program) { p.Fixups = []encode.Fixup{{Index: 1, Kind: encode.FixupAddLo12, Sym: "s"}} }, "fixup 0: word 1 of 1"},
		{"negative fixup index", func(p *encode.Program) { p.Fixups = []encode.Fixup{{Index: -1, Kind: encode.FixupAddLo12, Sym: "s"}} }, "fixup 0: word -1 of 1"},
		{"unknown fixup kind", func(p *encode.Program) { p.Fixups = []encode.Fixup{{Kind: 99, Sym: "s"}} }, "unknown kind FixupKind(99)"},
		{"fixup without symbol", func(p *encode.Program) { p.Fixups = []encode.Fixup{{Kind: encode.FixupAdrpPage}} }, `fixup 0: bad symbol ""`},
	}
	if _, err := BuildObject(ok); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			tt.mod(&p)
			b, err := BuildObject(p)
			if !errors.Is(err, ErrProgram) || b != nil {
				t.Errorf("BuildObject = %d bytes, %v; want ErrProgram", len(b), err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

// TestBuildObjectNoBTI: a program that does not claim BTI gets no property
// note (it must not mark a linked program BTI-compatible).
func TestBuildObjectNoBTI(t *testing.T) {
	b, err := BuildObject(encode.Program{Name: "f", Words: []uint32{encode.NOP, 0xd65f03c0}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if f.Section(".note.gnu.property") != nil || f.Section(".rela.text") != nil {
		t.Errorf("sections: %v", f.Sections)
	}
}
