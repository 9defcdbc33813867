package cli

import (
	"bytes"
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
