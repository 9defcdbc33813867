//go:build cgo

package uc

import (
	"debug/elf"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The library is dlopened on first use, never a DT_NEEDED of the binary:
// every command other than verify would pay for loading it at start-up.
func TestBinaryDoesNotNeedUnicorn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/ftpatch")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	bin := filepath.Join(t.TempDir(), "ftpatch")
	if out, err := exec.Command(goTool, "build", "-o", bin, "github.com/ftpatch/ftpatch/cmd/ftpatch").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range libs {
		if strings.Contains(l, "unicorn") {
			t.Errorf("ftpatch has DT_NEEDED %s; want libunicorn loaded lazily (imports %q)", l, libs)
		}
	}
}

func TestLoadFailure(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // from dlerror
	}{
		{"libunicorn-missing.so.9", "cannot open shared object file"},
		{"libc.so.6", "uc_version"}, // loads, but has no Unicorn symbols
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := loadFrom(tc.name)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range []string{tc.want, "libunicorn2"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// A failed load leaves the real library usable.
	mu, err := NewUnicorn(ARCH_ARM64, MODE_ARM)
	if err != nil {
		t.Fatal(err)
	}
	mu.Close()
}
