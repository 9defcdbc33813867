// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// directProg builds testdata/src/direct: prog.c with patch sites, the
// direct trampolines and ops of direct.S, and ftpatch's trampoline with the
// direct-call path, linked into one program; then init.
func directProg(t *testing.T) (dir, initProg string) {
	t.Helper()
	return directProgLayout(t, "-fpatchable-function-entry=4,2", "-falign-functions=8")
}

// directProgLayout is directProg with prog.c's patch-site flags.
func directProgLayout(t *testing.T, flags ...string) (dir, initProg string) {
	t.Helper()
	cc := testutil.NeedTool(t, "aarch64-linux-gnu-gcc")
	src := filepath.Join(testutil.RepoRoot(t), "testdata", "src", "direct")
	dir = t.TempDir()
	run(t, dir, cc, append(append([]string{"-O2"}, flags...), "-c", filepath.Join(src, "prog.c"), "-o", "prog.o")...)
	run(t, dir, cc, "-c", filepath.Join(src, "direct.S"), "-o", "direct.o")
	mustFtp(t, "trampoline", "--direct-calls", "-o", filepath.Join(dir, "tramp.o"))
	run(t, dir, cc, "-no-pie", "-o", "prog", "prog.o", "direct.o", "tramp.o")
	initProg = filepath.Join(dir, "prog.init")
	mustFtp(t, "init", "-o", initProg, filepath.Join(dir, "prog"))
	return dir, initProg
}

// directSite is the part of a scan --json site these tests read.
type directSite struct {
	Func      string  `json:"func"`
	Entry     string  `json:"entry"`
	CallSite  string  `json:"call_site"`
	Layout    string  `json:"layout"`
	BTI       bool    `json:"bti"`
	Target    *string `json:"target"`
	TargetSym string  `json:"target_sym"`
}

// directScan scans one file with scan --json and returns its sites by
// function.
func directScan(t *testing.T, path string) map[string]directSite {
	t.Helper()
	var f struct {
		Sites []directSite `json:"sites"`
	}
	out := mustFtp(t, "scan", "--json", path)
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &f); err != nil {
		t.Fatalf("scan --json %s: %v\n%s", path, err, out)
	}
	sites := map[string]directSite{}
	for _, s := range f.Sites {
		sites[s.Func] = s
	}
	return sites
}

// objdumpBLs maps each BL's address to its target symbol, from objdump.
func objdumpBLs(t *testing.T, prog string) map[uint64]string {
	t.Helper()
	objdump := testutil.NeedTool(t, "aarch64-linux-gnu-objdump")
	out, err := exec.Command(objdump, "-d", prog).Output()
	if err != nil {
		t.Fatalf("objdump: %v", err)
	}
	bls := map[uint64]string{}
	re := regexp.MustCompile(`(?m)^\s*([0-9a-f]+):\s+[0-9a-f]{8}\s+bl\s+[0-9a-f]+ <([^>+]+)>`)
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		a, _ := strconv.ParseUint(m[1], 16, 64)
		bls[a] = m[2]
	}
	return bls
}

// Each traced call reaches the direct trampoline with X9 = the parent's
// return address (just after a BL to the traced function, says objdump)
// and X30 = the return into the traced function (its call site + 4, says
// scan), straight (f_add: BL to my_direct_tramp) or through ftrace_caller
// (f_mul: BL ftrace_caller, ops_direct's direct_call); and the program
// computes what it computes unpatched.
func TestDirectCallsUnderQemu(t *testing.T) {
	for _, layout := range []struct {
		name  string
		flags []string
	}{
		{"4,2", []string{"-fpatchable-function-entry=4,2", "-falign-functions=8"}},
		// 5,3 with BTI: GCC puts f_add and f_mul at 4 mod 8, so the
		// common trampoline is reached at its second entry (_lit24).
		{"5,3 bti", []string{"-fpatchable-function-entry=5,3", "-mbranch-protection=standard"}},
	} {
		t.Run(layout.name, func(t *testing.T) { directCallsUnderQemu(t, layout.flags) })
	}
}

func directCallsUnderQemu(t *testing.T, flags []string) {
	qemu := testutil.NeedTool(t, "qemu-aarch64")
	dir, initProg := directProgLayout(t, flags...)
	traced := filepath.Join(dir, "prog.traced")
	mustFtp(t, "enable", "--ops", "ops_plain", "--direct", "my_direct_tramp", "--func", "f_add", "-o", filepath.Join(dir, "prog.1"), initProg)
	mustFtp(t, "enable", "--ops", "ops_direct", "--func", "f_mul", "-o", traced, filepath.Join(dir, "prog.1"))

	sites := directScan(t, traced)
	if got := sites["f_add"].TargetSym; got != "my_direct_tramp" {
		t.Fatalf("f_add's BL goes to %q, want my_direct_tramp", got)
	}
	wantCommon := "ftrace_caller"
	if e, _ := strconv.ParseUint(strings.TrimPrefix(sites["f_mul"].Entry, "0x"), 16, 64); sites["f_mul"].Layout == "call-ops-5-3" && sites["f_mul"].BTI && e%8 == 4 {
		wantCommon = "ftrace_caller_lit24"
	}
	if got := sites["f_mul"].TargetSym; got != wantCommon {
		t.Fatalf("f_mul's BL goes to %q, want %s", got, wantCommon)
	}
	// verify maps the program read-only, so it runs the same patch with
	// the direct trampoline that writes no log.
	quiet := filepath.Join(dir, "prog.quiet")
	mustFtp(t, "enable", "--ops", "ops_plain", "--direct", "quiet_direct_tramp", "--func", "f_add", "-o", filepath.Join(dir, "prog.2"), initProg)
	mustFtp(t, "enable", "--ops", "ops_quiet", "--func", "f_mul", "-o", quiet, filepath.Join(dir, "prog.2"))
	if out := mustFtp(t, "verify", "--direct", "quiet_direct_tramp", quiet); !strings.HasPrefix(out, "ok:") {
		t.Errorf("verify --direct: %s", out)
	}
	if out := mustFtp(t, "verify", "--direct", "quiet_direct_tramp", "--run-file-trampoline", quiet); !strings.HasPrefix(out, "ok:") {
		t.Errorf("verify --direct --run-file-trampoline: %s", out)
	}

	plain := runQemuPlain(t, qemu, filepath.Join(dir, "prog"))
	out := runQemuPlain(t, qemu, traced)
	if !strings.Contains(plain, "sum 39\nlog 0\n") {
		t.Fatalf("unpatched program: %q", plain)
	}
	if !strings.HasPrefix(out, "sum 39\nlog 5\n") {
		t.Fatalf("traced program: want the same sum and 5 direct entries, got %q", out)
	}
	bls := objdumpBLs(t, traced)
	retInto := map[uint64]string{}
	for _, fn := range []string{"f_add", "f_mul"} {
		cs, err := strconv.ParseUint(strings.TrimPrefix(sites[fn].CallSite, "0x"), 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		retInto[cs+4] = fn
	}
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[2:] {
		var x9, x30 uint64
		f := strings.Fields(l)
		if len(f) != 4 || f[0] != "x9" || f[2] != "x30" {
			t.Fatalf("bad log line %q", l)
		}
		x9, _ = strconv.ParseUint(f[1], 0, 64)
		x30, _ = strconv.ParseUint(f[3], 0, 64)
		fn, ok := retInto[x30]
		if !ok {
			t.Errorf("X30 = %#x is not the return into a traced function (call site + 4)", x30)
			continue
		}
		if bls[x9-4] != fn {
			t.Errorf("%s: X9 = %#x, but the word before it is not a BL to %s (objdump: %q)", fn, x9, fn, bls[x9-4])
		}
		seen[fn]++
	}
	if seen["f_add"] != 3 || seen["f_mul"] != 2 {
		t.Errorf("direct entries per function %v, want f_add 3 (straight), f_mul 2 (through ftrace_caller)", seen)
	}
}

func runQemuPlain(t *testing.T, qemu, prog string) string {
	t.Helper()
	out, err := exec.Command(qemu, "-L", "/usr/aarch64-linux-gnu", prog).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-aarch64 %s: %v\n%s", prog, err, out)
	}
	return string(out)
}

// Mutations verify --direct must catch.
func TestDirectCallsVerifyCatches(t *testing.T) {
	dir, initProg := directProg(t)
	for _, tc := range []struct {
		name   string
		enable []string
		want   string
	}{
		{"direct trampoline returns without the parent", []string{"--ops", "ops_plain", "--direct", "bad_direct_tramp", "--func", "f_add"}, "X30 = "},
		{"BL to a function that is no direct trampoline", []string{"--ops", "ops_plain", "--trampoline", "cb", "--func", "f_add"}, "or a direct trampoline: "},
		{"direct_call pointing at data", []string{"--ops", "ops_junk", "--func", "f_mul"}, "a direct trampoline named by --direct\n    observed: op->direct_call = "},
		{"direct ops but BL to a function that is no trampoline", []string{"--ops", "ops_quiet", "--trampoline", "cb", "--func", "f_mul"}, "or a direct trampoline: "},
		{"ops without direct_call: a plain op->func call", []string{"--ops", "ops_plain", "--func", "f_mul"}, ""},
		{"ops with direct_call through the common trampoline", []string{"--ops", "ops_quiet", "--func", "f_mul"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, "m.elf")
			os.Remove(out)
			mustFtp(t, append(append([]string{"enable"}, tc.enable...), "-o", out, initProg)...)
			// bad_direct_tramp is named legal too: its run must fail.
			stdout, stderr, code := ftp(t, "verify", "--direct", "quiet_direct_tramp", "--direct", "bad_direct_tramp", out)
			if tc.want == "" {
				if code != 0 {
					t.Fatalf("verify: exit %d, want 0 (a plain op->func call)\n%s%s", code, stdout, stderr)
				}
				return
			}
			if code != 1 || !strings.Contains(stdout, tc.want) {
				t.Fatalf("verify: exit %d, want 1 with %q\n%s%s", code, tc.want, stdout, stderr)
			}
		})
	}
}

// enable --direct out of BL range needs an ops whose direct_call is set;
// disable and init handle direct sites.
func TestDirectEnableDisable(t *testing.T) {
	dir, initProg := directProg(t)
	far := "0x" + strconv.FormatUint(testutil.SymbolAddr(t, initProg, "f_add")+1<<30, 16) // 1 GiB away
	out := filepath.Join(dir, "far.elf")
	_, stderr, code := ftp(t, "enable", "--ops", "ops_plain", "--direct", far, "--func", "f_add", "-o", out, initProg)
	if code != 2 || !strings.Contains(stderr, "out of BL range") || !strings.Contains(stderr, "direct_call (offset 208) is 0") {
		t.Fatalf("enable --direct out of range with ops_plain: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a refused enable wrote its output")
	}
	mustFtp(t, "enable", "--ops", "ops_direct", "--direct", far, "--func", "f_add", "-o", out, initProg)
	if s := directScan(t, out)["f_add"]; s.TargetSym != "ftrace_caller" {
		t.Errorf("out of range: f_add's BL goes to %q, want ftrace_caller", s.TargetSym)
	}
	direct := filepath.Join(dir, "d.elf")
	mustFtp(t, "enable", "--ops", "ops_plain", "--direct", "quiet_direct_tramp", "-o", direct, initProg)
	off := filepath.Join(dir, "off.elf")
	mustFtp(t, "disable", "-o", off, direct)
	a, _ := os.ReadFile(off)
	b, _ := os.ReadFile(initProg)
	if string(a) != string(b) {
		t.Error("disable of direct sites does not give init's bytes back")
	}
	if _, stderr, code := ftp(t, "init", "-o", filepath.Join(dir, "x.elf"), direct); code != 2 || !strings.Contains(stderr, "init never touches an enabled site") {
		t.Errorf("init of a direct site: exit %d, stderr %q (want the enabled-site refusal)", code, stderr)
	}
	if stdout, stderr, code := ftp(t, "verify", "--direct", "quiet_direct_tramp", "--against", initProg, direct); code != 0 {
		t.Errorf("verify --against init -> direct: exit %d\n%s%s", code, stdout, stderr)
	}
	// Common trampoline -> direct trampoline and back: BL <-> BL, one
	// 4-byte write each, live-safe (the literal stays).
	common := filepath.Join(dir, "common.elf")
	mustFtp(t, "enable", "--ops", "ops_plain", "-o", common, initProg)
	for _, pair := range [][2]string{{common, direct}, {direct, common}} {
		stdout, stderr, code := ftp(t, "verify", "--direct", "quiet_direct_tramp", "--against", pair[0], pair[1])
		if code != 0 || !strings.Contains(stdout, "3 retarget") || !strings.Contains(stdout, "live-safe: yes") {
			t.Errorf("verify --against %s -> %s: exit %d, want 3 live-safe retargets\n%s%s", filepath.Base(pair[0]), filepath.Base(pair[1]), code, stdout, stderr)
		}
	}
}

// Direct sites in an object (a module: CALL26 against the direct
// trampoline's symbol, undefined until load, so verify runs its stand-in)
// and at an address with no code in a linked file (a stand-in there).
func TestDirectStandins(t *testing.T) {
	cc := testutil.NeedTool(t, "aarch64-linux-gnu-gcc")
	dir, initProg := directProg(t)
	src := filepath.Join(testutil.RepoRoot(t), "testdata", "src", "direct", "prog.c")
	run(t, dir, cc, "-O2", "-fpatchable-function-entry=4,2", "-falign-functions=8", "-c", src, "-o", "mod.o")
	mustFtp(t, "init", "--default-ops", "ftrace_nop_ops", "-o", filepath.Join(dir, "mod.init.o"), filepath.Join(dir, "mod.o"))
	en := filepath.Join(dir, "mod.en.o")
	mustFtp(t, "enable", "--ops", "ops_plain", "--direct", "some_direct_tramp", "--func", "f_*", "-o", en, filepath.Join(dir, "mod.init.o"))
	for fn, s := range directScan(t, en) {
		if strings.HasPrefix(fn, "f_") && (s.Target == nil || *s.Target != "some_direct_tramp") {
			t.Errorf("%s: BL target %v, want a CALL26 against some_direct_tramp", fn, s.Target)
		}
	}
	if out := mustFtp(t, "verify", "--direct", "some_direct_tramp", en); !strings.Contains(out, "2 enabled") && !strings.Contains(out, "enabled 2") {
		t.Errorf("verify --direct of the object: %s", out)
	}
	if out, _, code := ftp(t, "verify", en); code != 1 || !strings.Contains(out, "BL to undefined some_direct_tramp") {
		t.Errorf("verify without --direct must refuse the direct BL: exit %d\n%s", code, out)
	}
	if out, _, code := ftp(t, "verify", "--direct", "some_direct_tramp", "--against", filepath.Join(dir, "mod.init.o"), en); code != 0 {
		t.Errorf("verify --against init -> direct (object): exit %d\n%s", code, out)
	}

	// 32 MiB from the text: in BL range, mapped by nothing.
	near := "0x" + strconv.FormatUint(testutil.SymbolAddr(t, initProg, "f_add")+32<<20&^0xfff, 16)
	p := filepath.Join(dir, "near.elf")
	mustFtp(t, "enable", "--ops", "ops_plain", "--direct", near, "--func", "f_add", "-o", p, initProg)
	for _, rf := range []string{"--run-file-trampoline=false", "--run-file-trampoline"} {
		if out, errs, code := ftp(t, "verify", rf, "--direct", near, p); code != 0 {
			t.Errorf("verify %s --direct %s (stand-in): exit %d\n%s%s", rf, near, code, out, errs)
		}
	}
}

// Flag errors of the direct-call options: usage errors, exit 2.
func TestDirectFlagErrors(t *testing.T) {
	fixture := testutil.Fixtures(t, "gcc-callops-bti-pie.elf")[0]
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"trampoline", "--asm", "--direct-calls", "--classic", "--ops", "o"}, "--direct-calls is for call-ops sites"},
		{[]string{"trampoline", "--asm", "--direct-calls", "--direct-call-offset", "12"}, "direct-call offset 12"},
		{[]string{"verify", "--direct-call-offset", "64", fixture}, "--direct-call-offset needs --direct"},
		{[]string{"verify", "--direct", "x", "--direct-call-offset", "4", fixture}, "--direct-call-offset 4"},
		{[]string{"enable", "--ops", "0x0", "--direct-call-offset", "64", "--dry-run", fixture}, "--direct-call-offset needs --direct"},
		{[]string{"enable", "--ops", "0x0", "--init", "--direct", "0x1000", "--direct-call-offset", "12", "--dry-run", fixture}, "--direct-call-offset 12"},
	} {
		if out, errs, code := ftp(t, tc.args...); code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("ftpatch %s: exit %d, want 2 with %q\n%s%s", strings.Join(tc.args, " "), code, tc.want, out, errs)
		}
	}
}

// Switching a site between a plain ops on the common trampoline and a
// direct ops on its direct trampoline, literal and BL both changing, as
// Linux does: the intermediate state (new literal, old BL) is run and
// proven by its run, both ways, so the change is live-safe; with an ops
// whose direct_call is junk the intermediate fails.
func TestDirectSwitchLiveSafe(t *testing.T) {
	dir, initProg := directProg(t)
	common := filepath.Join(dir, "c.elf")
	direct := filepath.Join(dir, "d.elf")
	junk := filepath.Join(dir, "j.elf")
	mustFtp(t, "enable", "--ops", "ops_plain", "-o", common, initProg)
	mustFtp(t, "enable", "--ops", "ops_quiet", "--direct", "quiet_direct_tramp", "-o", direct, common)
	mustFtp(t, "enable", "--ops", "ops_junk", "--direct", "quiet_direct_tramp", "-o", junk, common)
	for _, pair := range [][2]string{{common, direct}, {direct, common}} {
		out, errs, code := ftp(t, "verify", "--direct", "quiet_direct_tramp", "--against", pair[0], pair[1])
		if code != 0 || !strings.Contains(out, "live-safe: yes") || !strings.Contains(out, "3 intermediate states, 0 unproven") {
			t.Errorf("%s -> %s: exit %d, want live-safe with every intermediate proven by its run\n%s%s", filepath.Base(pair[0]), filepath.Base(pair[1]), code, out, errs)
		}
	}
	// Without --direct the same switch cannot be proven.
	if out, _, _ := ftp(t, "verify", "--against", common, direct); strings.Contains(out, "live-safe: yes") {
		t.Errorf("without --direct the direct switch was accepted:\n%s", out)
	}
	out, _, code := ftp(t, "verify", "--direct", "quiet_direct_tramp", "--against", common, junk)
	if code != 1 || !strings.Contains(out, "3 failed") || strings.Contains(out, "live-safe: yes") {
		t.Errorf("switch to an ops with a junk direct_call: exit %d\n%s", code, out)
	}
}
