// SPDX-License-Identifier: Apache-2.0

package patch_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/patch"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// A plan's memory is 16 bytes per site it changes (which slots, the new
// slot words; the old words are the site's, the literal's value is one per
// plan), not a Write, let alone a slice and a string, per word: a plan of a
// 200k-site kernel changes 600k words. Measured as bytes Plan allocates per
// planned word on a fixture, fixed costs (the issue list, symbol lookups)
// included.
func TestPlanBytesPerWrite(t *testing.T) {
	in, err := patch.Open(testutil.Fixtures(t, "gcc-callops-bti-static.elf")[0])
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ops := patch.Value{Sym: "ops"}
	req := patch.Request{Op: patch.OpEnable, InitToo: true, Ops: &ops}
	c, err := patch.Plan(in, req) // warm: the scan and symbols are cached
	if err != nil {
		t.Fatal(err)
	}
	const runs = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		if c, err = patch.Plan(in, req); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	words := c.Words()
	if words < 3*c.Sites || c.Sites == 0 {
		t.Fatalf("plan of %d sites has %d writes, want 3 per site", c.Sites, words)
	}
	per := float64(after.TotalAlloc-before.TotalAlloc) / runs / float64(words)
	t.Logf("%d sites, %d writes: %.0f bytes allocated per write", c.Sites, words, per)
	if per > 16 {
		t.Errorf("Plan allocates %.0f bytes per written word, want <= 16", per)
	}
}

// What a patch command holds grows with the number of sites: the scan (one
// Site each, 80 bytes), the symbols and records behind it, and the plan (16
// bytes a site). Measured as bytes allocated by Open and an enable --init
// Plan per site of a linked program of 4,000 small functions (compiled
// here, kernel flags), fixed costs included: main's 232-byte Site and
// 32-byte Write per word made 465.
func TestPatchBytesPerSite(t *testing.T) {
	cc := testutil.NeedTool(t, "aarch64-linux-gnu-gcc")
	const funcs = 4000
	dir := t.TempDir()
	var src strings.Builder
	src.WriteString("struct ftrace_ops { void *func; } ops;\n__attribute__((patchable_function_entry(0, 0))) void ftrace_caller(void) {}\n")
	for i := range funcs {
		fmt.Fprintf(&src, "long f%d(long x) { return x * %d + %d; }\n", i, i+3, i)
	}
	src.WriteString("__attribute__((patchable_function_entry(0, 0))) void _start(void) { for (;;); }\n")
	c, exe := filepath.Join(dir, "many.c"), filepath.Join(dir, "many.elf")
	if err := os.WriteFile(c, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cc, "-O2", "-nostdlib", "-static", "-ffreestanding", "-fpatchable-function-entry=4,2",
		"-falign-functions=8", "-mbranch-protection=standard", "-o", exe, c).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cc, err, out)
	}
	ops := patch.Value{Sym: "ops"}
	req := patch.Request{Op: patch.OpEnable, InitToo: true, Ops: &ops}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	in, err := patch.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	plan, err := patch.Plan(in, req)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n := len(in.Scan.Sites); n < funcs || plan.Sites < funcs || plan.Words() != 3*plan.Sites {
		t.Fatalf("%d sites, plan changes %d with %d words; want >= %d sites, 3 words each", n, plan.Sites, plan.Words(), funcs)
	}
	per := float64(after.TotalAlloc-before.TotalAlloc) / float64(len(in.Scan.Sites))
	t.Logf("%d sites: %.0f bytes allocated per site (open, scan, plan)", len(in.Scan.Sites), per)
	if per > 256 {
		t.Errorf("open + scan + plan allocate %.0f bytes per site, want <= 256", per)
	}
}
