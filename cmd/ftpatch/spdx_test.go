// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// spdxSource reports whether a tracked file is a source file that must say
// its licence: Go, C and headers, assembly, linker scripts, shell scripts
// (by name or by their #! line), Makefiles and the CI examples.
func spdxSource(root, path string) bool {
	base := filepath.Base(path)
	switch filepath.Ext(path) {
	case ".go", ".c", ".h", ".S", ".s", ".lds", ".sh", ".yml", ".yaml", ".py":
		return true
	}
	if base == "Makefile" || strings.HasSuffix(base, ".mk") {
		return true
	}
	f, err := os.Open(filepath.Join(root, path))
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 2)
	n, _ := f.Read(head)
	return n == 2 && string(head) == "#!"
}

// spdxExempt are the tracked paths that keep another licence or are not
// ftpatch's sources: the kernel patches in linux/ (GPL-2.0, as Linux), the
// schemas copied from their publishers (testdata/schema, their licences
// noted there), committed binaries, the generated kernel tree in
// miniature (testdata/ktree: scripts/fixtures.sh writes it, testdata-check
// compares it) and fuzz inputs.
func spdxExempt(path string) bool {
	for _, p := range []string{"linux/", "testdata/schema/", "testdata/fixtures/", "testdata/ktree/", "internal/verify/testdata/fuzz/"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return strings.Contains(path, "/testdata/fuzz/")
}

// Every source file says its licence in an SPDX line near its top:
// Apache-2.0, ftpatch's (LICENSE).
func TestSPDX(t *testing.T) {
	root := testutil.RepoRoot(t)
	git := testutil.NeedTool(t, "git")
	cmd := exec.Command(git, "ls-files", "-z")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("not a git work tree (%v): the tracked files are unknown", err)
	}
	checked := 0
	for _, path := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if path == "" || spdxExempt(path) || !spdxSource(root, path) {
			continue
		}
		checked++
		if id := spdxID(t, filepath.Join(root, path)); id != "Apache-2.0" {
			t.Errorf("%s: SPDX-License-Identifier %q in its first lines, want Apache-2.0 (add a line \"SPDX-License-Identifier: Apache-2.0\" in the file's comment syntax)", path, id)
		}
	}
	if checked < 100 {
		t.Fatalf("only %d source files found", checked)
	}
}

// spdxID is the identifier of the SPDX line among a file's first 5 lines,
// "" when there is none.
func spdxID(t *testing.T, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for i := 0; i < 5 && sc.Scan(); i++ {
		if _, id, ok := strings.Cut(sc.Text(), "SPDX-License-Identifier:"); ok {
			return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(id), "*/"))
		}
	}
	return ""
}
