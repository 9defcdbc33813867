// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// debugTypes is C whose debug info is mostly long member names (beside the
// fixture's functions, for the sites): its
// .debug_str compresses well, so that compressed its header's size runs
// past the end of the file, as a kernel's with CONFIG_DEBUG_INFO_COMPRESSED
// does.
func debugTypes() string {
	var b strings.Builder
	b.WriteString("#include \"funcs.c\"\n") // and the fixture's functions
	for i := range 400 {
		fmt.Fprintf(&b, "struct fx_t%d {", i)
		for j := range 10 {
			fmt.Fprintf(&b, " long fx_member_with_a_deliberately_long_name_%d_%d;", i, j)
		}
		fmt.Fprintf(&b, " } fx_v%d;\n", i)
	}
	return b.String()
}

// compressedDebugFiles builds, with the real toolchain, modules and
// kernel-like images whose debug sections are compressed (SHF_COMPRESSED)
// in every way binutils and gcc here do it: gcc -gz=zlib, objcopy
// --compress-debug-sections=zlib and =zstd, ld --compress-debug-sections.
// A way the installed binutils does not know is left out, with a note.
func compressedDebugFiles(t *testing.T) map[string]string {
	gcc := testutil.NeedTool(t, "aarch64-linux-gnu-gcc")
	ld := testutil.NeedTool(t, "aarch64-linux-gnu-ld")
	objcopy := testutil.NeedTool(t, "aarch64-linux-gnu-objcopy")
	src := filepath.Join(testutil.RepoRoot(t), "testdata", "src", "fixtures")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "types.c"), []byte(debugTypes()), 0o644)
	flags := strings.Fields("-O2 -g -ffreestanding -fno-builtin -fno-stack-protector -fPIE -fno-asynchronous-unwind-tables -fno-unwind-tables -fpatchable-function-entry=4,2 -falign-functions=8 -I" + src)
	klink := strings.Fields("-nostdlib -Wl,--build-id=none -shared -Wl,-Bsymbolic -Wl,-z,notext -Wl,--no-apply-dynamic-relocs -Wl,-z,max-page-size=4096 -Wl,-T," + filepath.Join(src, "kernel.lds"))
	run := func(name string, args ...string) error {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
	must := func(name string, args ...string) {
		t.Helper()
		if err := run(name, args...); err != nil {
			t.Fatal(err)
		}
	}
	objs := map[string][]string{}
	for _, gz := range []string{"", "-gz=zlib"} {
		for _, c := range []string{filepath.Join(dir, "types.c"), filepath.Join(src, "more.c")} {
			o := filepath.Join(dir, strings.TrimSuffix(filepath.Base(c), ".c")+gz+".o")
			args := flags[:len(flags):len(flags)]
			if gz != "" {
				args = append(args, gz)
			}
			must(gcc, append(args, "-c", c, "-o", o)...)
			objs[gz] = append(objs[gz], o)
		}
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	must(ld, append([]string{"-r", "-o", p("plain.ko")}, objs[""]...)...)
	must(gcc, append(append(flags[:len(flags):len(flags)], klink...), append(objs[""], "-o", p("plain-kimage.elf"))...)...)
	files := map[string]string{"object, gcc -gz=zlib": objs["-gz=zlib"][0]}
	// gcc -gz=zlib at the link passes --compress-debug-sections to ld.
	must(gcc, append([]string{"-gz=zlib", "-nostdlib", "-r", "-o", p("gz.ko")}, objs["-gz=zlib"]...)...)
	files["module, gcc -gz=zlib"] = p("gz.ko")
	must(gcc, append(append(flags[:len(flags):len(flags)], append(klink, "-gz=zlib")...), append(objs["-gz=zlib"], "-o", p("gz-kimage.elf"))...)...)
	files["kimage, gcc -gz=zlib"] = p("gz-kimage.elf")
	for _, c := range []string{"zlib", "zstd"} {
		for _, kind := range []string{"plain.ko", "plain-kimage.elf"} {
			out := p("objcopy-" + c + "-" + kind)
			if err := run(objcopy, "--compress-debug-sections="+c, p(kind), out); err != nil {
				t.Logf("objcopy --compress-debug-sections=%s not supported here: %v", c, err)
				continue
			}
			files[fmt.Sprintf("%s, objcopy --compress-debug-sections=%s", map[string]string{"plain.ko": "module", "plain-kimage.elf": "kimage"}[kind], c)] = out
		}
		out := p("ld-" + c + ".ko")
		if err := run(ld, append([]string{"-r", "--compress-debug-sections=" + c, "-o", out}, objs[""]...)...); err != nil {
			t.Logf("ld --compress-debug-sections=%s not supported here: %v", c, err)
			continue
		}
		files["module, ld --compress-debug-sections="+c] = out
	}
	return files
}

// hasCompressed reports whether the file has an SHF_COMPRESSED section
// whose decompressed size runs past the end of the file.
func hasCompressed(t *testing.T, path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := os.Stat(path)
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_COMPRESSED != 0 && s.Offset+s.Size > uint64(fi.Size()) {
			return true
		}
	}
	return false
}

// Issue 22.6: files with compressed debug sections (SHF_COMPRESSED) scan,
// patch and verify, in every way the toolchain here makes them; they
// used to be refused as "truncated" (the size check used the
// decompressed size). The patched file is whole (readelf -a says nothing),
// its debug info reads the same (readelf --debug-dump=info), and verify
// --against the original proves the change.
func TestCompressedDebugSections(t *testing.T) {
	bin := testutil.BuildFTPatch(t)
	readelf := testutil.NeedTool(t, "aarch64-linux-gnu-readelf")
	for what, path := range compressedDebugFiles(t) {
		t.Run(what, func(t *testing.T) {
			if !hasCompressed(t, path) {
				t.Fatalf("%s: no compressed section running past the end of the file: the test would prove nothing", path)
			}
			ftp := func(args ...string) (string, string, int) {
				cmd := exec.Command(bin, args...)
				var out, errb bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errb
				err := cmd.Run()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				}
				return out.String(), errb.String(), code
			}
			mustFTP := func(args ...string) string {
				t.Helper()
				out, errs, code := ftp(args...)
				if code != 0 {
					t.Fatalf("ftpatch %s: exit %d: %s", strings.Join(args, " "), code, errs)
				}
				return out
			}
			if out := mustFTP("scan", path); !strings.Contains(out, "fx_add") {
				t.Errorf("scan found no fx_add: %s", out)
			}
			patched := filepath.Join(t.TempDir(), filepath.Base(path))
			writeFile(t, patched, readFile(t, path), 0o644)
			mustFTP("enable", "--init", "--skip-misaligned", "--ops", "ops", "--allow-absolute", patched)
			mustFTP("verify", patched)
			mustFTP("verify", "--against", path, "--allow-init", patched)
			if bytes.Equal(readFile(t, patched), readFile(t, path)) {
				t.Fatal("enable changed nothing")
			}
			var a, b, e bytes.Buffer
			for _, c := range []struct {
				file string
				out  *bytes.Buffer
			}{{path, &a}, {patched, &b}} {
				cmd := exec.Command(readelf, "-a", "-W", "--debug-dump=info", c.file)
				cmd.Stdout, cmd.Stderr = c.out, &e
				if err := cmd.Run(); err != nil || e.Len() > 0 {
					t.Fatalf("readelf %s: %v: %s", c.file, err, e.String())
				}
			}
			debugInfo := func(s string) string {
				_, after, _ := strings.Cut(s, "Contents of the .debug_info section")
				return after
			}
			if debugInfo(a.String()) == "" || debugInfo(a.String()) != debugInfo(b.String()) {
				t.Error("the debug info reads differently after the patch")
			}
		})
	}
}
