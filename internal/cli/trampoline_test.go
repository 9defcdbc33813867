// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

func trampolineIO() (*IO, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &IO{In: strings.NewReader(""), Out: &out, Err: &errb}, &out, &errb
}

// dirEntries lists a folder, to show that nothing (no temp file) was left.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestTrampolineObject(t *testing.T) {
	for _, tt := range []struct {
		name    string
		opts    TrampolineOptions
		globals []string
	}{
		{"default", TrampolineOptions{Name: "ftrace_caller"}, []string{"ftrace_caller", "ftrace_caller_lit24"}},
		{"named", TrampolineOptions{Name: "my_tramp"}, []string{"my_tramp", "my_tramp_lit24"}},
		{"classic", TrampolineOptions{Name: "ftrace_caller", Classic: true, Ops: "my_ops"}, []string{"ftrace_caller", "my_ops"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.opts.Output = filepath.Join(dir, "t.o")
			io, out, _ := trampolineIO()
			if err := runTrampoline(&tt.opts, io); err != nil {
				t.Fatal(err)
			}
			if out.Len() != 0 {
				t.Errorf("stdout: %q", out)
			}
			if got := dirEntries(t, dir); len(got) != 1 || got[0] != "t.o" {
				t.Errorf("folder holds %q, want only t.o", got)
			}
			f, err := elf.Open(tt.opts.Output)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			globals := testutil.GlobalSymbols(t, f)
			if strings.Join(globals, ",") != strings.Join(tt.globals, ",") {
				t.Errorf("globals %q, want %q", globals, tt.globals)
			}
			if fi, _ := os.Stat(tt.opts.Output); fi.Mode().Perm() != 0o644 {
				t.Errorf("mode %v", fi.Mode())
			}
		})
	}
}

func TestTrampolineAsm(t *testing.T) {
	io, out, _ := trampolineIO()
	if err := runTrampoline(&TrampolineOptions{Asm: true, Name: "ftrace_caller"}, io); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\t.globl\tftrace_caller\n", "\t.type\tftrace_caller, %function\n", "ftrace_caller:\n", "\tbti\tc", "\tblr\tx4", "\t.size\tftrace_caller, .-ftrace_caller\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("asm lacks %q:\n%s", want, out)
		}
	}
	// --asm with -o writes the same text to the file.
	dir := t.TempDir()
	io2, out2, _ := trampolineIO()
	p := filepath.Join(dir, "t.s")
	if err := runTrampoline(&TrampolineOptions{Asm: true, Name: "ftrace_caller", Output: p}, io2); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != out.String() || out2.Len() != 0 {
		t.Errorf("file %q (%v), stdout %q", b, err, out2)
	}
}

func TestTrampolineKeepsMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.o")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	io, _, _ := trampolineIO()
	if err := runTrampoline(&TrampolineOptions{Name: "ftrace_caller", Output: p}, io); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() < 64 {
		t.Errorf("after rewrite: %v, %v", fi.Mode(), err)
	}
}

// An output another ftpatch holds is refused at once, unchanged, and the
// message names no --wait: trampoline has none (only the patch commands).
func TestTrampolineLockedOutput(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.o")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	release := holdLock(t, p)
	defer release()
	stdio, _, _ := trampolineIO()
	err := runTrampoline(&TrampolineOptions{Name: "ftrace_caller", Output: p}, stdio)
	want := "-o " + p + ": locked by another process: another ftpatch is patching it"
	if err == nil || err.Error() != want {
		t.Errorf("locked output: %v; want %q", err, want)
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Errorf("locked output changed: %q", b)
	}
}
