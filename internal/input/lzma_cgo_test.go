//go:build cgo

package input

import (
	"bytes"
	"debug/elf"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// A library that does not load is an error naming it, and leaves the
// decoder working (through the library loaded before, or the Go decoder).
func TestLzmaLoadFailure(t *testing.T) {
	err := loadLzmaFrom("libftpatch-no-such-lzma.so.5")
	if err == nil || !strings.Contains(err.Error(), "libftpatch-no-such-lzma.so.5") {
		t.Fatalf("loadLzmaFrom(missing) = %v, want an error naming it", err)
	}
	want := append(bytes.Clone(elfMagic), bytes.Repeat([]byte("module"), 1000)...)
	f, err := openBytes(goCompress(t, XZ, want), DefaultMaxDecompressed)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, f); !bytes.Equal(got, want) {
		t.Error("decoded bytes differ after a failed load")
	}
}

// The ftpatch binary does not link liblzma (it is dlopened on first use),
// so it starts on a machine without it: no DT_NEEDED entry names it.
func TestBinaryDoesNotNeedLiblzma(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	exe := filepath.Join(t.TempDir(), "ftpatch")
	cmd := exec.Command(gobin, "build", "-o", exe, "./cmd/ftpatch")
	cmd.Dir = testutil.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range libs {
		if strings.Contains(l, "lzma") {
			t.Errorf("ftpatch needs %s (DT_NEEDED %q): it must be dlopened", l, libs)
		}
	}
}
