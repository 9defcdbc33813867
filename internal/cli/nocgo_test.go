// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/testutil/scantest"
)

// TestBuildWithoutCgo builds ./cmd/ftpatch with CGO_ENABLED=0 and runs it:
// scan, enable --init, show, trampoline and disable work (states checked by
// scanning in this process, the trampoline by opening it), and verify
// stops at once with exit 2 and ErrNoEmulator's words, touching nothing.
func TestBuildWithoutCgo(t *testing.T) {
	bin := testutil.BuildFTPatch(t, "CGO_ENABLED=0")
	dir := filepath.Dir(bin)
	if b, err := exec.Command(testutil.GoTool(), "version", "-m", bin).Output(); err != nil || !strings.Contains(string(b), "CGO_ENABLED=0") {
		t.Fatalf("go version -m: the binary is not a cgo-free build (%v):\n%s", err, b)
	}

	src := testutil.Fixtures(t, "clang-callops-static.elf")[0]
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "f.elf")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := kfExit(t, 0, bin, dir, "scan", "--json", file)
	var scanned kfScanFile
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &scanned); err != nil || len(scanned.Sites) == 0 {
		t.Fatalf("scan --json: %v\n%s", err, r.stdout)
	}
	kfExit(t, 0, bin, dir, "enable", "--init", "--ops", "ops", file)
	f, err := scantest.File(file)
	if err != nil {
		t.Fatal(err)
	}
	enabled := 0
	for _, s := range f.Sites {
		if s.State == elfscan.StateEnabled {
			enabled++
		}
	}
	if enabled == 0 {
		t.Fatalf("enable by the cgo-free binary enabled no site of %s", file)
	}
	if r := kfExit(t, 0, bin, dir, "show", file); !strings.Contains(r.stdout, "enabled") {
		t.Fatalf("show after enable:\n%s", r.stdout)
	}
	tramp := filepath.Join(dir, "tramp.o")
	kfExit(t, 0, bin, dir, "trampoline", "-o", tramp)
	if tf, err := elfscan.Open(tramp); err != nil {
		t.Fatalf("trampoline -o: %v", err)
	} else {
		tf.Close()
	}
	before, _ := os.ReadFile(file)
	for _, args := range [][]string{{"verify", file}, {"verify", "--against", src, file}} {
		r = kfExit(t, 2, bin, dir, args...)
		if !strings.Contains(r.stderr, "built without cgo") || !strings.Contains(r.stderr, "CGO_ENABLED=1") {
			t.Fatalf("ftpatch %s: stderr does not say the build has no emulator:\n%s", strings.Join(args, " "), r.stderr)
		}
	}
	if after, _ := os.ReadFile(file); string(after) != string(before) {
		t.Fatal("verify changed the file")
	}
	kfExit(t, 0, bin, dir, "disable", file)
	if f, err = scantest.File(file); err != nil {
		t.Fatal(err)
	}
	for _, s := range f.Sites {
		if s.State == elfscan.StateEnabled {
			t.Fatalf("disable by the cgo-free binary left %s enabled", s.Func)
		}
	}
}
