// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/testutil/scantest"
)

// ftp runs the ftpatch command line in-process, as Main does, and returns
// its output and exit code.
func ftp(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	io := &IO{In: strings.NewReader(""), Out: &out, Err: &errb}
	root := NewRoot(io)
	root.SetArgs(args)
	_, err := root.ExecuteC()
	if err != nil && !errors.Is(err, ErrFindings) {
		fmt.Fprintf(&errb, "ftpatch: %v\n", err)
	}
	return out.String(), errb.String(), int(exitCode(err))
}

// mustFtp runs ftpatch and fails the test unless it exits 0.
func mustFtp(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := ftp(t, args...)
	if code != 0 {
		t.Fatalf("ftpatch %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// e2eCalls is how often prog.c calls each function (see its header).
var e2eCalls = map[string]uint64{
	"main": 1, "e2e_add": 12, "e2e_mul": 6, "e2e_fib": 177, "e2e_sum8": 3,
	"e2e_square": 5, "e2e_weak": 2, "e2e_struct": 4,
}

// e2eCC describes one compiler of the matrix.
type e2eCC struct {
	name string
	cc   []string // compile driver and its target flags
	link []string // link driver and flags
}

func e2eCompilers(t *testing.T) []e2eCC {
	gcc := testutil.NeedTool(t, "aarch64-linux-gnu-gcc")
	clang := testutil.NeedTool(t, "clang")
	testutil.NeedTool(t, "ld.lld")
	return []e2eCC{
		{"gcc", []string{gcc}, []string{gcc, "-no-pie"}},
		{"clang", []string{clang, "--target=aarch64-linux-gnu"}, []string{clang, "--target=aarch64-linux-gnu", "-fuse-ld=lld", "-no-pie"}},
	}
}

// runQemu runs prog and splits its stdout from the counter's report.
func runQemu(t *testing.T, qemu, prog string) (stdout string, counts map[uint64]uint64, bad uint64) {
	t.Helper()
	cmd := exec.Command(qemu, "-L", "/usr/aarch64-linux-gnu", prog)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("qemu-aarch64 %s: %v\nstdout:\n%s\nstderr:\n%s", prog, err, out.String(), errb.String())
	}
	counts = map[uint64]uint64{}
	bad = ^uint64(0)
	for _, line := range strings.Split(errb.String(), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "ftrace-count":
			ip, err1 := strconv.ParseUint(f[1], 0, 64)
			n, err2 := strconv.ParseUint(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("bad counter line %q", line)
			}
			counts[ip] = n
		case len(f) == 2 && f[0] == "ftrace-bad":
			bad, _ = strconv.ParseUint(f[1], 10, 64)
		case len(f) > 0:
			t.Fatalf("unexpected stderr line %q", line)
		}
	}
	if bad == ^uint64(0) {
		t.Fatalf("no ftrace-bad line: the counter's report did not run\n%s", errb.String())
	}
	return out.String(), counts, bad
}

// checkCounts maps each counted ip to its function through the scan of the
// linked program (ip = the BL's address = the site's call_site) and
// compares with e2eCalls; want false means no call may be counted.
func checkCounts(t *testing.T, prog string, counts map[uint64]uint64, want bool) {
	t.Helper()
	f, err := scantest.File(prog)
	if err != nil {
		t.Fatal(err)
	}
	byIP := map[uint64]string{}
	for _, s := range f.Sites {
		byIP[s.CallSite()] = s.Func
	}
	got := map[string]uint64{}
	for ip, n := range counts {
		fn, ok := byIP[ip]
		if !ok {
			t.Errorf("call counted at %#x, which is no site's call site", ip)
			continue
		}
		got[fn] = n
	}
	if !want {
		if len(got) > 0 {
			t.Errorf("calls counted with tracing off: %v", got)
		}
		return
	}
	for fn, n := range e2eCalls {
		if got[fn] != n {
			t.Errorf("%s: counted %d calls, want %d", fn, got[fn], n)
		}
	}
	for fn, n := range got {
		if _, ok := e2eCalls[fn]; !ok {
			t.Errorf("%s: counted %d calls of a function prog.c does not trace", fn, n)
		}
	}
}

// e2eVariant is one build of prog.c: a compiler and its patch-site flags.
type e2eVariant struct {
	name  string
	cc    e2eCC
	flags []string
}

// e2eVariants: 4,2 with both compilers, and the 5,3 layout with entries at
// both 0 and 4 mod 8, with and without BTI (so both pairs and both
// trampoline entries run), at -Os, and under clang-16's kCFI.
func e2eVariants(t *testing.T) []e2eVariant {
	ccs := e2eCompilers(t)
	gcc, clang := ccs[0], ccs[1]
	clang16 := e2eCC{"clang16", []string{testutil.NeedTool(t, "clang-16"), "--target=aarch64-linux-gnu"}, clang.link}
	bti := "-mbranch-protection=standard"
	return []e2eVariant{
		{"gcc", gcc, []string{"-O2", bti, "-fpatchable-function-entry=4,2", "-falign-functions=8"}},
		{"clang", clang, []string{"-O2", bti, "-fpatchable-function-entry=4,2", "-falign-functions=8"}},
		{"gcc-53-align4", gcc, []string{"-O2", "-fpatchable-function-entry=5,3", "-falign-functions=4"}},
		{"gcc-53-os-bti", gcc, []string{"-Os", bti, "-fpatchable-function-entry=5,3"}},
		{"clang-53-bti", clang, []string{"-O2", bti, "-fpatchable-function-entry=5,3"}},
		{"clang16-kcfi-53-bti", clang16, []string{"-O2", bti, "-fsanitize=kcfi", "-fpatchable-function-entry=5,3"}},
	}
}

// checkLayout checks that an enabled build of variant v has the layout its
// flags ask for, and that a 5,3 build with BTI exercises both trampoline
// entries (its sites' entries fall at 0 and at 4 mod 8).
func checkLayout(t *testing.T, v e2eVariant, path string) {
	t.Helper()
	f, err := scantest.File(path)
	if err != nil {
		t.Fatal(err)
	}
	want := elfscan.LayoutCallOps
	if strings.Contains(v.name, "-53") {
		want = elfscan.LayoutCallOps53
	}
	entries := map[string]int{}
	for _, s := range f.Sites {
		if s.Layout != want || s.State != elfscan.StateEnabled || s.Target() == nil {
			t.Errorf("%s: %s %s %s, want %s enabled", path, s.Func, s.Layout, s.State, want)
			continue
		}
		entries[s.Target().Sym]++
	}
	if want == elfscan.LayoutCallOps53 && strings.Contains(v.name, "bti") && (entries["ftrace_caller"] == 0 || entries["ftrace_caller_lit24"] == 0) {
		t.Errorf("%s: BL targets %v: want both trampoline entries used", path, entries)
	}
}

// TestEndToEnd builds prog.c in every e2eVariant, links it with the output
// of `ftpatch trampoline` and counter.o, patches it (a) as a linked
// executable and (b) as an object before linking, and runs it under
// qemu-aarch64.
func TestEndToEnd(t *testing.T) {
	qemu := testutil.NeedTool(t, "qemu-aarch64")
	src := filepath.Join(testutil.RepoRoot(t), "testdata", "src", "e2e")
	for _, v := range e2eVariants(t) {
		cc := v.cc
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			compile := func(out, in string, flags ...string) {
				args := append(append(cc.cc[1:len(cc.cc):len(cc.cc)], flags...), "-c", filepath.Join(src, in), "-o", out)
				run(t, dir, cc.cc[0], args...)
			}
			link := func(out string, objs ...string) {
				run(t, dir, cc.link[0], append(append(cc.link[1:len(cc.link):len(cc.link)], "-o", out), objs...)...)
			}
			compile("prog.o", "prog.c", v.flags...)
			compile("counter.o", "counter.c", "-O2", "-mbranch-protection=standard")
			mustFtp(t, "trampoline", "-o", filepath.Join(dir, "tramp.o"))
			link("plain", "prog.o", "tramp.o", "counter.o")
			want, counts, bad := runQemu(t, qemu, filepath.Join(dir, "plain"))
			if !strings.Contains(want, "fib 55\n") || len(counts) != 0 || bad != 0 {
				t.Fatalf("unpatched program: stdout %q, counts %v, bad %d", want, counts, bad)
			}

			check := func(name string, traced bool) {
				t.Helper()
				got, counts, bad := runQemu(t, qemu, filepath.Join(dir, name))
				if got != want {
					t.Errorf("%s: stdout differs from the unpatched program:\n%s\nwant:\n%s", name, got, want)
				}
				if bad != 0 {
					t.Errorf("%s: %d calls with a wrong op", name, bad)
				}
				checkCounts(t, filepath.Join(dir, name), counts, traced)
			}

			// (a) the linked executable.
			exe := filepath.Join(dir, "linked")
			mustFtp(t, "init", "-o", exe, filepath.Join(dir, "plain"))
			initBytes, _ := os.ReadFile(exe)
			if err := os.WriteFile(exe+".init", initBytes, 0o755); err != nil {
				t.Fatal(err)
			}
			mustFtp(t, "enable", "--ops", "ops", exe)
			check("linked", true)
			checkLayout(t, v, exe)
			// Live-safe from init: only literals and BLs changed, never a
			// spare word or a kCFI hash.
			if out := mustFtp(t, "verify", "--against", exe+".init", exe); !strings.Contains(out, "live-safe: yes") {
				t.Errorf("verify --against the init copy:\n%s", out)
			}
			mustFtp(t, "disable", exe)
			if b, _ := os.ReadFile(exe); !bytes.Equal(b, initBytes) {
				t.Errorf("linked: disable after enable does not give the init bytes back")
			}
			check("linked", false)

			// (b) the object, before linking.
			obj := filepath.Join(dir, "prog-patched.o")
			mustFtp(t, "init", "-o", obj, filepath.Join(dir, "prog.o"))
			mustFtp(t, "enable", "--ops", "ops", obj)
			mustFtp(t, "verify", obj)
			link("objects", "prog-patched.o", "tramp.o", "counter.o")
			check("objects", true)
			checkLayout(t, v, filepath.Join(dir, "objects"))
			mustFtp(t, "disable", obj)
			link("objects-off", "prog-patched.o", "tramp.o", "counter.o")
			check("objects-off", false)
		})
	}
}
