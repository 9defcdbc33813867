// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// weakOverridden links a program in which a weak function is overridden by
// a strong one at link time, as in Debian 12's 6.1 kernel: the weak copy's
// code stays in .text without a symbol, and its patch-site record stays in
// the table. It returns the linked file and the weak copy's record address
// (as "0x…"), found with objdump, not with ftpatch.
func weakOverridden(t *testing.T, layout string) (string, string) {
	t.Helper()
	cc := testutil.NeedTool(t, "aarch64-linux-gnu-gcc")
	objdump := testutil.NeedTool(t, "aarch64-linux-gnu-objdump")
	dir := t.TempDir()
	files := map[string]string{
		// The weak copy computes x + 0x5a5, a constant nothing else uses,
		// so objdump can find its code.
		"weak.c":   "__attribute__((weak)) long hook(long x) { return x + 0x5a5; }\nlong caller(long x) { return hook(x) * 3; }\n",
		"strong.c": "long hook(long x) { return x - 7; }\nlong _start(void) { return caller(5); }\n",
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	flags := []string{"-O2", "-fno-inline", "-fpatchable-function-entry=" + layout, "-falign-functions=8", "-c"}
	run(t, dir, cc, append(flags, "weak.c", "-o", "weak.o")...)
	run(t, dir, cc, append(flags, "strong.c", "-o", "strong.o")...)
	run(t, dir, cc, "-nostdlib", "-static", "-o", "prog", "weak.o", "strong.o")
	dis := run(t, dir, objdump, "-d", "prog")
	m := regexp.MustCompile(`(?m)^\s*([0-9a-f]+):\s+[0-9a-f]{8}\s+add\s+x0, x0, #0x5a5`).FindStringSubmatch(dis)
	if m == nil {
		t.Fatalf("the weak copy's add x0, x0, #0x5a5 is not in the linked program:\n%s", dis)
	}
	return filepath.Join(dir, "prog"), m[1]
}

// Records outside any function (issue 11.4): reported as no-function with
// the likely cause, accepted by scan --check --ignore, skipped with a count
// by init, enable and verify.
func TestNoFunctionRecords(t *testing.T) {
	for _, layout := range []string{"2", "4,2"} {
		t.Run(layout, func(t *testing.T) {
			prog, code := weakOverridden(t, layout)
			out, errs, rc := ftp(t, "scan", "--check", prog)
			if rc != 1 {
				t.Fatalf("scan --check: exit %d, want 1\n%s%s", rc, out, errs)
			}
			var noFunc []string
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "no-function:") {
					noFunc = append(noFunc, l)
				}
			}
			if len(noFunc) != 1 || !strings.Contains(noFunc[0], "weak function overridden at link time") {
				t.Fatalf("want one no-function finding naming the overridden weak function, got %q\n%s", noFunc, out)
			}
			// The finding's entry is the weak copy: its code follows within
			// the site (entry + at most the slots and a BTI).
			entry := regexp.MustCompile(`0x[0-9a-f]+: no-function`).FindString(noFunc[0])
			if entry == "" {
				t.Fatalf("no address in %q", noFunc[0])
			}
			var e, c uint64
			if _, err := sscanHex(strings.TrimSuffix(entry, ": no-function"), &e); err != nil {
				t.Fatal(err)
			}
			if _, err := sscanHex("0x"+code, &c); err != nil {
				t.Fatal(err)
			}
			if c < e || c-e > 16 {
				t.Errorf("no-function entry %#x is not the weak copy at %#x", e, c)
			}

			if out, errs, rc := ftp(t, "scan", "--check", "--ignore", "no-function", prog); rc != 0 {
				t.Errorf("scan --check --ignore no-function: exit %d\n%s%s", rc, out, errs)
			} else if !strings.Contains(errs, "1 problem ignored") {
				t.Errorf("scan --check --ignore: stderr %q does not count the ignored problem", errs)
			}
			if out, errs, rc := ftp(t, "scan", "--check", "--json", "--ignore", "no-function,misaligned-literal", prog); rc != 0 || !strings.Contains(out, `"no-function"`) {
				t.Errorf("scan --check --json --ignore: exit %d, the finding must stay in the JSON\n%s%s", rc, out, errs)
			}
			if _, errs, rc := ftp(t, "scan", "--check", "--ignore", "no-such-code", prog); rc != 2 || !strings.Contains(errs, "unknown problem code") {
				t.Errorf("--ignore no-such-code: exit %d, stderr %q", rc, errs)
			}
			if _, errs, rc := ftp(t, "scan", "--ignore", "no-function", prog); rc != 2 {
				t.Errorf("--ignore without --check: exit %d, stderr %q", rc, errs)
			}

			dir := filepath.Dir(prog)
			initArgs := []string{"init", "-o", filepath.Join(dir, "prog.init"), prog}
			enArgs := []string{"enable", "-o", filepath.Join(dir, "prog.en"), "--trampoline", "caller", filepath.Join(dir, "prog.init")}
			if layout != "2" {
				enArgs = append(enArgs[:1], append([]string{"--ops", "0x0"}, enArgs[1:]...)...)
			}
			for _, args := range [][]string{initArgs, enArgs} {
				out, errs, rc := ftp(t, args...)
				if rc != 0 || !strings.Contains(out, ", 1 skipped") || !strings.Contains(errs, "skipped 1 site in no function") {
					t.Errorf("%s: exit %d; want the weak copy skipped and counted\n%s%s", args[0], rc, out, errs)
				}
			}
			// The weak copy's words are untouched: its site stays nop.
			out = mustFtp(t, "scan", filepath.Join(dir, "prog.en"))
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "?") && !strings.Contains(l, " nop ") {
					t.Errorf("the no-function site was patched: %q", l)
				}
			}
			out, errs, rc = ftp(t, "verify", filepath.Join(dir, "prog.init"))
			if rc != 0 || !strings.Contains(out, "; 1 skipped (no-function)") {
				t.Errorf("verify: exit %d, want the no-function site skipped and counted\n%s%s", rc, out, errs)
			}
			out, errs, rc = ftp(t, "verify", "--json", filepath.Join(dir, "prog.init"))
			if rc != 0 || !strings.Contains(out, `"skipped":1`) {
				t.Errorf("verify --json: exit %d, want \"skipped\":1\n%s%s", rc, out, errs)
			}
		})
	}
}

func sscanHex(s string, v *uint64) (int, error) {
	x, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	*v = x
	return 1, err
}
