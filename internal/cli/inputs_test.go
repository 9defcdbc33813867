package cli

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// elfBytes is enough of an ELF file for a magic-based walk.
var elfBytes = append([]byte{0x7F, 'E', 'L', 'F', 2, 1, 1, 0}, make([]byte, 56)...)

func compressed(t *testing.T, c string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch c {
	case "xz":
		var w *xz.Writer
		if w, err = xz.NewWriter(&buf); err == nil {
			w.Write(b)
			err = w.Close()
		}
	case "zst":
		var w *zstd.Encoder
		if w, err = zstd.NewWriter(&buf); err == nil {
			w.Write(b)
			err = w.Close()
		}
	case "gz":
		w := gzip.NewWriter(&buf)
		w.Write(b)
		err = w.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tree writes files (path → contents) under a new temporary directory.
func tree(t *testing.T, files map[string][]byte) string {
	t.Helper()
	root := t.TempDir()
	for p, b := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// rel strips root from each path, for readable comparisons.
func rel(root string, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = strings.TrimPrefix(p, root+string(filepath.Separator))
	}
	return out
}

func kernelTree(t *testing.T) string {
	root := tree(t, map[string][]byte{
		"vmlinux":                       elfBytes,
		"Makefile":                      []byte("obj-y += core.o\n"),
		"kernel/core.o":                 elfBytes,
		"kernel/core.c":                 []byte("int x;\n"),
		"kernel/.core.o.cmd":            []byte("cmd_kernel/core.o := gcc\n"),
		"kernel/sched/fair.o":           elfBytes,
		"mm/slab.o":                     elfBytes,
		"modules/a/drv.ko.xz":           compressed(t, "xz", elfBytes),
		"modules/a/drv2.ko.zst":         compressed(t, "zst", elfBytes),
		"modules/b/renamed.bin":         compressed(t, "gz", elfBytes), // by magic, not name
		"modules/b/notes.txt.gz":        compressed(t, "gz", []byte("not an elf\n")),
		"modules/b/broken.ko.xz":        []byte{0xFD, '7', 'z', 'X', 'Z', 0, 1, 2, 3},
		"modules/modules.order":         []byte("a/drv.ko\n"),
		"empty":                         nil,
		"Documentation/elf-lookalike":   []byte("\x7fEL"),
		"scripts/mod/modpost":           elfBytes,
		"scripts/mod/modpost.c":         []byte("int main(void) { return 0; }\n"),
		"z/last.o":                      elfBytes,
		"include/generated/autoconf.h":  []byte("#define CONFIG_X 1\n"),
		"arch/arm64/kernel/head.o":      elfBytes,
		"arch/arm64/kernel/vmlinux.lds": []byte("SECTIONS {}\n"),
	})
	// A loop through a directory symlink, a link to a file, a dangling link
	// and a self-referencing link.
	symlink(t, "..", filepath.Join(root, "kernel", "parent-loop"))
	symlink(t, "../mm", filepath.Join(root, "kernel", "mm-link"))
	symlink(t, "core.o", filepath.Join(root, "kernel", "alias.o"))
	symlink(t, "nowhere", filepath.Join(root, "kernel", "dangling.o"))
	symlink(t, "self.o", filepath.Join(root, "kernel", "self.o"))
	return root
}

func TestExpandInputsTree(t *testing.T) {
	root := kernelTree(t)
	got, err := expandInputs([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"arch/arm64/kernel/head.o",
		"kernel/alias.o", // symlink to core.o: kept here, where first seen
		"kernel/sched/fair.o",
		"mm/slab.o",
		"modules/a/drv.ko.xz",
		"modules/a/drv2.ko.zst",
		"modules/b/renamed.bin",
		"scripts/mod/modpost",
		"vmlinux",
		"z/last.o",
	}
	if g := rel(root, got); !slices.Equal(g, want) {
		t.Errorf("expandInputs(tree) =\n%s\nwant\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
	}
}

func TestExpandInputsArguments(t *testing.T) {
	root := kernelTree(t)
	j := func(p string) string { return filepath.Join(root, p) }
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"explicit non-ELF and missing files kept as given",
			[]string{j("Makefile"), j("missing.o"), j("kernel/core.c")},
			[]string{j("Makefile"), j("missing.o"), j("kernel/core.c")}},
		{"argument order across, lexical within",
			[]string{j("z"), j("mm"), j("kernel/sched")},
			[]string{j("z/last.o"), j("mm/slab.o"), j("kernel/sched/fair.o")}},
		{"no duplicates: file then its directory",
			[]string{j("mm/slab.o"), j("mm"), j("mm/../mm/slab.o"), j("mm")},
			[]string{j("mm/slab.o")}},
		{"no duplicates: symlink and target",
			[]string{j("kernel/core.o"), j("kernel/alias.o"), j("kernel/mm-link/slab.o"), j("mm")},
			[]string{j("kernel/core.o"), j("kernel/mm-link/slab.o")}},
		{"explicit symlink to a directory is followed",
			[]string{j("kernel/mm-link")},
			[]string{j("kernel/mm-link/slab.o")}},
		{"directory nested in a directory argument",
			[]string{j("modules"), j("modules/a")},
			[]string{j("modules/a/drv.ko.xz"), j("modules/a/drv2.ko.zst"), j("modules/b/renamed.bin")}},
		{"no arguments", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := expandInputs(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("expandInputs(%q) =\n%q\nwant\n%q", rel(root, tc.args), rel(root, got), rel(root, tc.want))
			}
		})
	}
}

func TestExpandInputsDeterministic(t *testing.T) {
	files := map[string][]byte{}
	for i := range 300 {
		files[filepath.Join("d"+string(rune('a'+i%7)), "m"+string(rune('a'+i%26))+string(rune('a'+i/26))+".o")] = elfBytes
	}
	root := tree(t, files)
	first, err := expandInputs([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 300 || !slices.IsSorted(first) {
		t.Fatalf("got %d files, sorted %v", len(first), slices.IsSorted(first))
	}
	for range 5 {
		again, err := expandInputs([]string{root})
		if err != nil || !slices.Equal(again, first) {
			t.Fatalf("second walk differs (err %v)", err)
		}
	}
}

func TestExpandInputsPermissionDenied(t *testing.T) {
	root := kernelTree(t)
	locked := filepath.Join(root, "kernel", "sched")

	t.Run("injected", func(t *testing.T) {
		w := walker{
			readDir: func(dir string) ([]os.DirEntry, error) {
				if dir == locked {
					return nil, &fs.PathError{Op: "open", Path: dir, Err: fs.ErrPermission}
				}
				return os.ReadDir(dir)
			},
			sniff: sniffELF,
		}
		_, err := w.expand([]string{root})
		if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), locked) {
			t.Errorf("error = %v, want permission denied naming %s", err, locked)
		}
	})
	t.Run("injected unreadable file", func(t *testing.T) {
		bad := filepath.Join(root, "mm", "slab.o")
		w := walker{readDir: os.ReadDir, sniff: func(p string) (bool, error) {
			if p == bad {
				return false, &fs.PathError{Op: "open", Path: p, Err: fs.ErrPermission}
			}
			return sniffELF(p)
		}}
		_, err := w.expand([]string{root})
		if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), bad) {
			t.Errorf("error = %v, want permission denied naming %s", err, bad)
		}
	})
	t.Run("chmod", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads any directory; the injected case covers this")
		}
		if err := os.Chmod(locked, 0); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(locked, 0o755)
		_, err := expandInputs([]string{root})
		if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), locked) {
			t.Errorf("error = %v, want permission denied naming %s", err, locked)
		}
	})
}
