// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// kernelBuild runs scripts/kernel-build.sh into a new directory.
func kernelBuild(t *testing.T, extra ...string) string {
	t.Helper()
	for _, tool := range []string{"bash", "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-ld", "aarch64-linux-gnu-nm", "aarch64-linux-gnu-readelf"} {
		testutil.NeedTool(t, tool)
	}
	out := t.TempDir()
	cmd := exec.Command("bash", append([]string{filepath.Join(testutil.RepoRoot(t), "scripts", "kernel-build.sh"), out}, extra...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kernel-build.sh: %v\n%s", err, b)
	}
	return out
}

func readelf(t *testing.T, args ...string) string {
	t.Helper()
	b, err := exec.Command("aarch64-linux-gnu-readelf", args...).Output()
	if err != nil {
		t.Fatalf("readelf %v: %v", args, err)
	}
	return string(b)
}

// readelfSymbols maps symbol names to values from readelf -sW.
func readelfSymbols(t *testing.T, path string) map[string]uint64 {
	syms := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(readelf(t, "-sW", path)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		v, err := strconv.ParseUint(f[1], 16, 64)
		if err == nil {
			syms[f[7]] = v
		}
	}
	return syms
}

type readelfReloc struct {
	off    uint64
	typ    string
	addend string
}

// readelfRelocs returns the relocations readelf -rW lists under the
// section named sec.
func readelfRelocs(t *testing.T, path, sec string) []readelfReloc {
	var out []readelfReloc
	in := false
	sc := bufio.NewScanner(strings.NewReader(readelf(t, "-rW", path)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "Relocation section ") {
			in = strings.HasPrefix(line, "Relocation section '"+sec+"'")
			continue
		}
		f := strings.Fields(line)
		if !in || len(f) < 3 || !strings.HasPrefix(f[2], "R_AARCH64_") {
			continue
		}
		off, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			t.Fatalf("readelf -r line %q: %v", line, err)
		}
		out = append(out, readelfReloc{off, f[2], f[len(f)-1]})
	}
	return out
}

func TestKernelBuild(t *testing.T) {
	out := kernelBuild(t)
	vmlinux := filepath.Join(out, "vmlinux")

	t.Run("no entries section in the image", func(t *testing.T) {
		sections := readelf(t, "-SW", vmlinux)
		if strings.Contains(sections, "__patchable_function_entries") {
			t.Errorf("vmlinux has __patchable_function_entries:\n%s", sections)
		}
		for _, want := range []string{".rela.dyn", ".init.data", ".text"} {
			if !strings.Contains(sections, want) {
				t.Errorf("vmlinux has no %s section", want)
			}
		}
		if !strings.Contains(readelf(t, "-hW", vmlinux), "DYN (Shared object file)") {
			t.Error("vmlinux is not ET_DYN")
		}
	})

	syms := readelfSymbols(t, vmlinux)
	start, stop := syms["__start_mcount_loc"], syms["__stop_mcount_loc"]

	t.Run("entries only as RELATIVE relocs in the mcount range", func(t *testing.T) {
		if start == 0 || stop <= start || (stop-start)%8 != 0 {
			t.Fatalf("__start_mcount_loc %#x, __stop_mcount_loc %#x", start, stop)
		}
		f, err := elf.Open(vmlinux)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var text []*elf.Section
		for _, s := range f.Sections {
			if s.Flags&elf.SHF_EXECINSTR != 0 {
				text = append(text, s)
			}
		}
		inRange := map[uint64]bool{}
		for _, r := range readelfRelocs(t, vmlinux, ".rela.dyn") {
			if r.off < start || r.off >= stop {
				continue
			}
			if r.typ != "R_AARCH64_RELATIVE" {
				t.Errorf("reloc at %#x is %s, want R_AARCH64_RELATIVE", r.off, r.typ)
			}
			// readelf prints the addend as a signed offset from zero:
			// "-7ffff7fffe68" is 0xffff800008000198.
			a, err := strconv.ParseInt(r.addend, 16, 64)
			if err != nil {
				t.Fatalf("addend %q: %v", r.addend, err)
			}
			record := uint64(a)
			if !slices.ContainsFunc(text, func(s *elf.Section) bool { return record >= s.Addr && record+16 <= s.Addr+s.Size }) {
				t.Errorf("entry at %#x points at %#x, outside executable sections", r.off, record)
			}
			inRange[r.off] = true
		}
		if n := int((stop - start) / 8); len(inRange) != n {
			t.Errorf("%d RELATIVE relocs in the mcount range, want one per slot (%d)", len(inRange), n)
		}
		// --no-apply-dynamic-relocs: the stored values are zero.
		data := f.Section(".init.data")
		b, err := data.Data()
		if err != nil {
			t.Fatal(err)
		}
		entries := b[start-data.Addr : stop-data.Addr]
		if !bytes.Equal(entries, make([]byte, len(entries))) {
			t.Error("the mcount range holds non-zero values; want them only in .rela.dyn")
		}
	})

	t.Run("cold function literal misaligned", func(t *testing.T) {
		name, err := os.ReadFile(filepath.Join(out, "misaligned.txt"))
		if err != nil {
			t.Fatal(err)
		}
		fn := strings.TrimSpace(string(name))
		entry, ok := syms[fn]
		if !ok {
			t.Fatalf("%s not in vmlinux", fn)
		}
		if (entry-8)%8 != 4 {
			t.Errorf("%s at %#x: literal %#x is not at 4 mod 8", fn, entry, entry-8)
		}
		if !strings.Contains(readelf(t, "-SW", filepath.Join(out, "obj", "cold.o")), ".text.unlikely."+fn) {
			t.Errorf("%s is not in .text.unlikely.%s in cold.o", fn, fn)
		}
	})

	t.Run("subset and symbols", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(out, "subset.txt"))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"sched_fork", "sched_pick_next", "sched_setprio", "sched_tick", "sched_yield"}
		if got := strings.Fields(string(b)); !slices.Equal(got, want) {
			t.Errorf("subset.txt = %q, want %q", got, want)
		}
		for _, s := range []string{"ops", "ftrace_nop_ops", "ftrace_caller", "ops_callback"} {
			if _, ok := syms[s]; !ok {
				t.Errorf("vmlinux lacks %s", s)
			}
		}
	})

	t.Run("module is a partial link with one entries section", func(t *testing.T) {
		ko := filepath.Join(out, "modules", "drv.ko")
		if !strings.Contains(readelf(t, "-hW", ko), "REL (Relocatable file)") {
			t.Fatal("drv.ko is not ET_REL")
		}
		if n := strings.Count(readelf(t, "-SW", ko), " __patchable_function_entries "); n != 1 {
			t.Errorf("drv.ko has %d __patchable_function_entries sections, want 1 (module.lds merges them)", n)
		}
		relocs := readelfRelocs(t, ko, ".rela__patchable_function_entries")
		if len(relocs) < 7 { // every function of drv_main.c and drv_util.c
			t.Errorf("drv.ko: %d entries, want at least 7", len(relocs))
		}
		for _, r := range relocs {
			if r.typ != "R_AARCH64_ABS64" {
				t.Errorf("drv.ko entry at %#x is %s", r.off, r.typ)
			}
		}
		// The script compresses with each tool installed; CI installs
		// them all (scripts/deps.sh), so a missing one fails there.
		var missing []string
		for _, c := range []struct{ file, tool string }{{"drv.ko.xz", "xz"}, {"drv.ko.zst", "zstd"}, {"drv.ko.gz", "gzip"}} {
			if _, err := os.Stat(filepath.Join(out, "modules-compressed", c.file)); err != nil {
				missing = append(missing, fmt.Sprintf("%s (is %s installed?)", c.file, c.tool))
			}
		}
		if len(missing) > 0 {
			testutil.Missing(t, "kernel-build.sh made no %s", strings.Join(missing, ", "))
		}
	})
}

func TestKernelBuildReproducible(t *testing.T) {
	a, b := kernelBuild(t), kernelBuild(t)
	for _, f := range []string{"vmlinux", "modules/drv.ko", "tramp.o"} {
		x, err1 := os.ReadFile(filepath.Join(a, f))
		y, err2 := os.ReadFile(filepath.Join(b, f))
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two builds (%v, %v)", f, err1, err2)
		}
	}
}

// With an FTPATCH argument the script links `FTPATCH trampoline -o tramp.o`;
// a stand-in that assembles the stub checks that contract.
func TestKernelBuildUsesFtpatchTrampoline(t *testing.T) {
	testutil.NeedTool(t, "aarch64-linux-gnu-gcc")
	dir := t.TempDir()
	stub := filepath.Join(testutil.RepoRoot(t), "testdata", "kernel", "ftrace_stub.S")
	fake := filepath.Join(dir, "ftpatch")
	script := "#!/bin/sh\necho \"$@\" >" + filepath.Join(dir, "args") + "\n" +
		"[ \"$1\" = trampoline ] && [ \"$2\" = -o ] || exit 9\n" +
		"exec aarch64-linux-gnu-gcc -c " + stub + " -o \"$3\"\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	out := kernelBuild(t, fake)
	args, err := os.ReadFile(filepath.Join(dir, "args"))
	if err != nil {
		t.Fatalf("the ftpatch stand-in was not run: %v", err)
	}
	if got, want := strings.TrimSpace(string(args)), "trampoline -o "; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "tramp.o") {
		t.Errorf("ftpatch called with %q, want %q…tramp.o", got, want)
	}
	if _, ok := readelfSymbols(t, filepath.Join(out, "vmlinux"))["ftrace_caller"]; !ok {
		t.Error("vmlinux lacks ftrace_caller")
	}
}
