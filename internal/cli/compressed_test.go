// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// Scan output on compressed inputs is byte-identical to the output on the
// same files decompressed: every fixture, compressed by the real tools as
// Linux's modules_install does (xz --check=crc32 --lzma2=dict=1MiB, zstd,
// gzip), under the same names in another folder; the folder scanned whole
// (the parallel path) and file by file (the streaming single-file path), in
// --json and text.
func TestScanCompressedIdentical(t *testing.T) {
	var fixtures []string
	for _, glob := range []string{"*.o", "*.ko", "*.elf"} {
		fixtures = append(fixtures, testutil.Fixtures(t, glob)...)
	}
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.Mkdir(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range fixtures {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(plain, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tool := range []struct {
		name string
		args []string
	}{
		{"xz", []string{"--check=crc32", "--lzma2=dict=1MiB"}},
		{"zstd", []string{"-q"}},
		{"gzip", []string{"-n", "-9"}},
	} {
		t.Run(tool.name, func(t *testing.T) {
			path := testutil.NeedTool(t, tool.name)
			dir := filepath.Join(t.TempDir(), tool.name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range fixtures {
				name := filepath.Base(f)
				cmd := exec.Command(path, append(tool.args, "-c", filepath.Join(plain, name))...)
				z, err := cmd.Output()
				if err != nil {
					t.Fatalf("%s: %v", cmd, err)
				}
				if bytes.HasPrefix(z, []byte("\x7fELF")) {
					t.Fatalf("%s did not compress %s", tool.name, name)
				}
				if err := os.WriteFile(filepath.Join(dir, name), z, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, json := range []bool{true, false} {
				same(t, ScanOptions{JSON: json, Files: []string{plain}}, ScanOptions{JSON: json, Files: []string{dir}}, plain, dir)
				for _, f := range fixtures {
					name := filepath.Base(f)
					same(t, ScanOptions{JSON: json, Files: []string{filepath.Join(plain, name)}},
						ScanOptions{JSON: json, Files: []string{filepath.Join(dir, name)}}, plain, dir)
				}
			}
		})
	}
}

// same runs both scans and compares their output, the plain folder's name
// replaced by the compressed one's.
func same(t *testing.T, a, b ScanOptions, plain, dir string) {
	t.Helper()
	outA, errA, eA := scanRun(t, a)
	outB, errB, eB := scanRun(t, b)
	// stderr: at most the run's summary, the same for both.
	if eA != nil || eB != nil || errB != strings.ReplaceAll(errA, plain, dir) || strings.Count(errA, "\n") > 1 {
		t.Fatalf("scan %v: %v %q; scan %v: %v %q", a.Files, eA, errA, b.Files, eB, errB)
	}
	if outA == "" {
		t.Fatalf("scan %v printed nothing", a.Files)
	}
	if want := strings.ReplaceAll(outA, plain, dir); outB != want {
		t.Errorf("scan (json %v) %v differs from the plain files' output:\n%s\nwant\n%s", a.JSON, b.Files, outB, want)
	}
}

// Issue 22.5: one decode-error rule for every format. A folder holding a
// good module and one cut short, compressed by xz, zstd or gzip and cut
// right after its header or in the middle: scan, scan --check and verify
// report the cut one as corrupt (exit 2) and still the good one, in every
// format. A cut .ko.zst (a zstd block comes out whole or not at all) used
// to be skipped silently as "not ELF", exit 0.
func TestTruncatedCompressedInFolder(t *testing.T) {
	bin := testutil.BuildFTPatch(t)
	mod := testutil.Fixtures(t, "gcc-callops-module.ko")[0]
	for _, tool := range []struct{ name, ext string }{{"xz", ".xz"}, {"zstd", ".zst"}, {"gzip", ".gz"}} {
		path := testutil.NeedTool(t, tool.name)
		z, err := exec.Command(path, "-c", mod).Output()
		if err != nil {
			t.Fatalf("%s: %v", tool.name, err)
		}
		for _, cut := range []struct {
			name string
			n    int
		}{{"header", 8}, {"half", len(z) / 2}, {"last-byte", len(z) - 1}} {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "a-good.ko"), readFile(t, mod), 0o644)
			bad := filepath.Join(dir, "b-cut.ko"+tool.ext)
			writeFile(t, bad, z[:cut.n], 0o644)
			for _, args := range [][]string{{"scan"}, {"scan", "--check"}, {"verify"}} {
				cmd := exec.Command(bin, append(args, dir)...)
				var out, errb bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errb
				err := cmd.Run()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				}
				what := fmt.Sprintf("%s %s cut at %s", strings.Join(args, " "), tool.name, cut.name)
				if code != 2 || !strings.Contains(errb.String(), "file "+bad+": corrupt compressed data") {
					t.Errorf("%s: exit %d, stderr %q; want 2 and the file named corrupt", what, code, errb.String())
				}
				if !strings.Contains(out.String(), "a-good.ko") {
					t.Errorf("%s: the good module is not reported: %q", what, out.String())
				}
			}
		}
	}
}
