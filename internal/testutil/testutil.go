// SPDX-License-Identifier: Apache-2.0

// Package testutil holds helpers shared by the tests: locating external
// tools (binutils, cross compilers, qemu) and the committed fixtures.
//
// Policy: a test that needs something CI installs fails under CI=true when
// it is missing, and skips only on a developer's machine.
package testutil

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true), where missing tools
// and fixtures are failures rather than skips.
func InCI() bool { return os.Getenv("CI") == "true" }

// missing fails under CI=true and skips otherwise.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// Missing says that something a test needs (a file system feature, a
// privilege) is not here: the test fails under CI=true and is skipped
// otherwise.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	missing(t, format, args...)
}

// NeedTool returns the absolute path of the program name found in PATH. When
// it is missing the test fails under CI=true and is skipped otherwise.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s not found in PATH (apt-get install gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu clang lld llvm qemu-user): %v", name, err)
	}
	return p
}

var (
	rootOnce sync.Once
	root     string
	rootErr  error
)

// RepoRoot returns the directory holding go.mod, found by walking up from
// the test's working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				root = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				rootErr = os.ErrNotExist
				return
			}
			dir = parent
		}
	})
	if rootErr != nil {
		t.Fatalf("cannot find the repository root (go.mod): %v", rootErr)
	}
	return root
}

// Fixtures returns, sorted, the files under testdata/fixtures at the
// repository root matching glob (filepath.Match syntax, e.g. "*-pie.elf").
// When none match the test fails under CI=true and is skipped otherwise
// (run `make testdata` to build them).
func Fixtures(t testing.TB, glob string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(RepoRoot(t), "testdata", "fixtures", glob))
	if err != nil {
		t.Fatalf("fixtures glob %q: %v", glob, err)
	}
	var out []string
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		missing(t, "no fixtures match testdata/fixtures/%s (run `make testdata`)", glob)
	}
	return out
}

// SymbolAddr returns the value of the first symbol called name in the ELF
// file at path (.symtab), failing the test when there is none.
func SymbolAddr(t testing.TB, path, name string) uint64 {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, _ := f.Symbols()
	for _, s := range syms {
		if s.Name == name {
			return s.Value
		}
	}
	t.Fatalf("%s: no symbol %s", path, name)
	return 0
}

// BuildFTPatch builds ./cmd/ftpatch into a new temporary folder, with env
// added to the environment (e.g. "CGO_ENABLED=0"), and returns the binary's
// path.
func BuildFTPatch(t testing.TB, env ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ftpatch")
	cmd := exec.Command(GoTool(), "build", "-o", bin, "./cmd/ftpatch")
	cmd.Dir = RepoRoot(t)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s go build ./cmd/ftpatch: %v\n%s", strings.Join(env, " "), err, b)
	}
	return bin
}

// GoTool is the go command: the one on PATH (go test puts the running
// toolchain's bin folder first there), else $GOROOT's. runtime.GOROOT is
// deprecated: the root a test binary was built with may not be there.
func GoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if r := os.Getenv("GOROOT"); r != "" {
		return filepath.Join(r, "bin", "go")
	}
	return "go"
}

// NeededLibraries returns the DT_NEEDED entries of the ELF file at path.
func NeededLibraries(t testing.TB, path string) []string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	return libs
}

// AddFixtures seeds a fuzz target with the bytes of every ELF fixture (the
// files under testdata/fixtures starting with the ELF magic; not the
// README).
func AddFixtures(f *testing.F) {
	f.Helper()
	for _, p := range Fixtures(f, "*") {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if strings.HasPrefix(string(b), elf.ELFMAG) {
			f.Add(b)
		}
	}
}

// GlobalSymbols returns the names of f's global symbols (.symtab), in
// table order.
func GlobalSymbols(t testing.TB, f *elf.File) []string {
	t.Helper()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	var globals []string
	for _, s := range syms {
		if elf.ST_BIND(s.Info) == elf.STB_GLOBAL {
			globals = append(globals, s.Name)
		}
	}
	return globals
}

// ReadELF reads the file at path and parses it, for a test that edits its
// bytes where the parsed headers say.
func ReadELF(t testing.TB, path string) ([]byte, *elf.File) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b, f
}
