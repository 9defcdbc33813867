package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// fixtureCopy copies a fixture into a fresh folder with an old mtime.
func fixtureCopy(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(testutil.Fixtures(t, name)[0])
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	return p
}

// ambiguousExe links two files that each define a static `dup_ops`.
func ambiguousExe(t *testing.T) string {
	gcc := testutil.NeedTool(t, "aarch64-linux-gnu-gcc")
	dir := t.TempDir()
	for _, n := range []string{"a", "b"} {
		src := "static long dup_ops[2] = {1, 2};\nlong *" + n + "(void) { return dup_ops; }\n"
		if err := os.WriteFile(filepath.Join(dir, n+".c"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, dir, gcc, "-O2", "-fpatchable-function-entry=4,2", "-falign-functions=8", "-nostdlib", "-static", "-e", "a", "-o", "amb", "a.c", "b.c")
	return filepath.Join(dir, "amb")
}

func TestPatchErrors(t *testing.T) {
	corrupt := func(t *testing.T) string {
		p := fixtureCopy(t, "gcc-callops-bti-static.elf")
		b, _ := os.ReadFile(p)
		i := bytes.Index(b, []byte{0x1f, 0x20, 0x03, 0xd5, 0x1f, 0x20, 0x03, 0xd5, 0x5f, 0x24, 0x03, 0xd5}) // literal NOPs, BTI C
		if i < 0 {
			t.Fatal("no site words found")
		}
		copy(b[i+12:], []byte{0xef, 0xbe, 0xad, 0xde}) // slot1 := garbage
		os.WriteFile(p, b, 0o640)
		old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		os.Chtimes(p, old, old)
		return p
	}
	tests := []struct {
		name  string
		file  func(t *testing.T) string
		args  []string
		needs []string // in stderr, besides the file name
	}{
		{"unknown symbol", func(t *testing.T) string { return fixtureCopy(t, "gcc-callops-bti-static.elf") },
			[]string{"enable", "--init", "--ops", "no_such_ops"}, []string{`"no_such_ops"`, "not defined"}},
		{"ambiguous symbol", ambiguousExe,
			[]string{"enable", "--init", "--ops", "dup_ops", "--trampoline", "a"}, []string{`"dup_ops"`, "ambiguous"}},
		{"out of range BL", func(t *testing.T) string { return fixtureCopy(t, "gcc-callops-bti-static.elf") },
			[]string{"enable", "--init", "--ops", "ops", "--trampoline", "0x40000000"}, []string{"out of range", "(14 sites)", "function fx_add at 0x", "function fx_more_run at 0x"}},
		{"nop site without --init", func(t *testing.T) string { return fixtureCopy(t, "clang-callops-static.elf") },
			[]string{"enable", "--ops", "ops"}, []string{"function fx_add at 0x", "is nop", "--init"}},
		{"unknown state", corrupt, []string{"init"}, []string{"unexpected state", "state unknown", "at 0x"}},
		{"classic with --ops", func(t *testing.T) string { return fixtureCopy(t, "gcc-classic-static.elf") },
			[]string{"enable", "--init", "--ops", "ops"}, []string{"classic", "no literal", "function fx_add at 0x"}},
		{"ET_DYN without --allow-absolute", func(t *testing.T) string { return fixtureCopy(t, "gcc-callops-bti-pie.elf") },
			[]string{"enable", "--init", "--ops", "ops"}, []string{"position-independent", "--allow-absolute", "link without PIE"}},
		{"misaligned literal", func(t *testing.T) string { return fixtureCopy(t, "gcc-callops-static.elf") },
			[]string{"enable", "--init", "--ops", "ops"}, []string{"misaligned", "function fx_more_cold.constprop.0 at 0x", "--skip-misaligned"}},
		{"init of enabled", func(t *testing.T) string {
			p := fixtureCopy(t, "clang-callops-static.elf")
			mustFtp(t, "enable", "--init", "--ops", "ops", p)
			old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
			os.Chtimes(p, old, old)
			return p
		}, []string{"init"}, []string{"is enabled", "disable it first", "function fx_add at 0x"}},
		{"trampoline address in an object", func(t *testing.T) string { return fixtureCopy(t, "gcc-callops-obj.o") },
			[]string{"enable", "--init", "--ops", "ops", "--trampoline", "0x1000"}, []string{"no addresses"}},
		{"bad glob", func(t *testing.T) string { return fixtureCopy(t, "gcc-callops-obj.o") },
			[]string{"enable", "--ops", "ops", "--func", "["}, []string{"bad glob"}},
		{"missing --ops", func(t *testing.T) string { return fixtureCopy(t, "gcc-callops-obj.o") },
			[]string{"enable", "--init"}, []string{"--ops"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.file(t)
			before, _ := os.ReadFile(p)
			st0, _ := os.Stat(p)
			_, stderr, code := ftp(t, append(tc.args, p)...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr:\n%s", code, stderr)
			}
			if !strings.Contains(stderr, p) && !strings.Contains(tc.name, "glob") {
				t.Errorf("stderr does not name the file %s:\n%s", p, stderr)
			}
			for _, n := range tc.needs {
				if !strings.Contains(stderr, n) {
					t.Errorf("stderr lacks %q:\n%s", n, stderr)
				}
			}
			after, _ := os.ReadFile(p)
			st1, _ := os.Stat(p)
			if !bytes.Equal(before, after) || !st0.ModTime().Equal(st1.ModTime()) {
				t.Errorf("input changed (bytes or mtime)")
			}
			if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 && !strings.Contains(tc.name, "ambiguous") {
				t.Errorf("files left behind: %v", ents)
			}
		})
	}
}

func TestPatchDryRunAndOutput(t *testing.T) {
	p := fixtureCopy(t, "clang-callops-bti-static.elf")
	if err := os.Chmod(p, 0o751); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p)
	out := mustFtp(t, "enable", "--dry-run", "--init", "--ops", "ops", "--func", "fx_add", p)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "fx_add") || !strings.Contains(lines[0], "literal") ||
		!strings.Contains(lines[1], "d503201f -> aa1e03e9") || !strings.Contains(lines[2], "slot2") {
		t.Errorf("dry-run plan:\n%s", out)
	}
	if after, _ := os.ReadFile(p); !bytes.Equal(before, after) {
		t.Fatal("--dry-run wrote the file")
	}
	o := filepath.Join(filepath.Dir(p), "out.elf")
	mustFtp(t, "init", "-o", o, p)
	if after, _ := os.ReadFile(p); !bytes.Equal(before, after) {
		t.Fatal("-o changed the input")
	}
	if st, err := os.Stat(o); err != nil || st.Mode().Perm() != 0o751 {
		t.Fatalf("output mode: %v %v, want 0751", st.Mode(), err)
	}
	// Idempotent: the second init changes nothing and keeps the mtime.
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(o, old, old)
	if out := mustFtp(t, "init", o); !strings.Contains(out, "nothing to change") {
		t.Errorf("init of init: %s", out)
	}
	if st, _ := os.Stat(o); !st.ModTime().Equal(old) {
		t.Errorf("init of init rewrote the file")
	}
	// --skip-misaligned reports on stderr and leaves the site alone.
	m := fixtureCopy(t, "gcc-callops-static.elf")
	_, stderr, code := ftp(t, "enable", "--init", "--skip-misaligned", "--ops", "ops", m)
	if code != 0 || !strings.Contains(stderr, "skipped function fx_more_cold.constprop.0 at 0x") {
		t.Errorf("--skip-misaligned: exit %d\n%s", code, stderr)
	}
}

func TestShow(t *testing.T) {
	p := fixtureCopy(t, "gcc-callops-bti-static.elf")
	mustFtp(t, "enable", "--init", "--ops", "ops", "--func", "fx_add", p)
	out := mustFtp(t, "show", "--func", "fx_a*", p)
	for _, want := range []string{"fx_add", "enabled", "<ops>", "bti c", "mov x9, x30", "bl 0x", "<ftrace_caller>", "1 of 14 sites shown"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	o := fixtureCopy(t, "clang-callops-obj.o")
	out = mustFtp(t, "show", o)
	for _, want := range []string{"nop; nop", "nop", ".text+0x"} {
		if !strings.Contains(out, want) {
			t.Errorf("show of an object lacks %q:\n%s", want, out)
		}
	}
	if _, _, code := ftp(t, "show"); code != 2 {
		t.Errorf("show without FILE: exit %d", code)
	}
}
