// SPDX-License-Identifier: Apache-2.0

package ktree

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		want  Kind
	}{
		{"build tree", []string{"vmlinux", "modules.order", "Makefile"}, Build},
		{"build tree with modules.builtin", []string{"vmlinux", "modules.order", "modules.builtin"}, Build},
		{"installed tree (Debian: no modules.dep)", []string{"modules.order", "modules.builtin", "modules.builtin.modinfo"}, Installed},
		{"installed tree after depmod", []string{"modules.order", "modules.dep"}, Installed},
		{"external module folder", []string{"modules.order", "Module.symvers"}, None},
		{"vmlinux alone", []string{"vmlinux"}, None},
		{"empty", nil, None},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := Detect(dir); got != tc.want {
				t.Errorf("Detect = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("modules.order a folder", func(t *testing.T) {
		dir := t.TempDir()
		os.Mkdir(filepath.Join(dir, "modules.order"), 0o755)
		os.WriteFile(filepath.Join(dir, "vmlinux"), nil, 0o644)
		if got := Detect(dir); got != None {
			t.Errorf("Detect = %q, want none", got)
		}
	})
}

func TestParseOrder(t *testing.T) {
	got, err := ParseOrder(strings.NewReader("fs/ext4/ext4.o\n\n  fs/fat/fat.o \r\nkernel/fs/vfat.ko\nfs/./ext4/ext4.o\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"fs/ext4/ext4.o", "fs/fat/fat.o", "kernel/fs/vfat.ko"}
	if !slices.Equal(got, want) {
		t.Errorf("ParseOrder = %q, want %q", got, want)
	}
	for _, bad := range []string{"/abs/x.ko", "../x.ko", "a/../../x.o", "fs/ext4/ext4.c", "x\x00.ko", ".ko", "a/.o", strings.Repeat("a", 5000) + ".o"} {
		if _, err := ParseOrder(strings.NewReader("ok.o\n" + bad + "\n")); err == nil {
			t.Errorf("ParseOrder(%q): no error", bad)
		}
	}
	var oe *OrderError
	if _, err := ParseOrder(strings.NewReader("ok.o\n/abs.ko\n")); !errors.As(err, &oe) || oe.Line != 2 {
		t.Errorf("error %v: want an *OrderError for line 2", err)
	}
}

func TestPick(t *testing.T) {
	files := []string{
		".tmp_vmlinux1", "Makefile", "arch/arm64/boot/Image", "built-in.a",
		"extra/dkms.ko", "fs/ext4/ext4.ko", "fs/ext4/ext4.mod.o", "fs/ext4/ext4.o", "fs/ext4/inode.o",
		"fs/fat/fat.ko", "fs/fat/fat.o", "scripts/basic/fixdep", "updates/fat.ko.xz",
		"vmlinux", "vmlinux.a", "vmlinux.o",
	}
	order := []string{"fs/fat/fat.o", "fs/ext4/ext4.o", "fs/nls/nls.o"}
	got := Pick(Build, order, files)
	type row struct {
		rel              string
		listed, unlisted bool
		missing          bool
	}
	var rows []row
	for _, e := range got {
		rows = append(rows, row{e.Rel, e.Listed, e.Unlisted, e.Err != nil})
	}
	want := []row{
		{"vmlinux", false, false, false},
		{"fs/fat/fat.ko", true, false, false},
		{"fs/ext4/ext4.ko", true, false, false},
		{"fs/nls/nls.ko", true, false, true},
		{"extra/dkms.ko", false, true, false},
		{"updates/fat.ko.xz", false, true, false},
	}
	if !slices.Equal(rows, want) {
		t.Errorf("Pick =\n%v\nwant\n%v", rows, want)
	}
	var me *MissingError
	if !errors.As(got[3].Err, &me) || !strings.Contains(me.Error(), "fs/nls/nls.ko, listed in modules.order, is missing") {
		t.Errorf("missing module error: %v", got[3].Err)
	}
}

func TestPickInstalled(t *testing.T) {
	files := []string{"kernel/fs/ext4/ext4.ko.xz", "kernel/fs/fat/fat.ko.zst", "modules.builtin", "modules.order", "updates/dkms/x.ko.gz", "vmlinux"}
	order := []string{"kernel/fs/fat/fat.ko", "kernel/fs/ext4/ext4.ko"}
	var rels []string
	for _, e := range Pick(Installed, order, files) {
		rels = append(rels, e.Rel)
	}
	// An installed tree takes no vmlinux (a file of that name is not
	// what makes it a tree).
	want := []string{"kernel/fs/fat/fat.ko.zst", "kernel/fs/ext4/ext4.ko.xz", "updates/dkms/x.ko.gz"}
	if !slices.Equal(rels, want) {
		t.Errorf("Pick = %q, want %q", rels, want)
	}
}

// A build tree before Linux 5.3 listed kernel/fs/... for fs/....
func TestPickOldBuildTree(t *testing.T) {
	got := Pick(Build, []string{"kernel/fs/fat/fat.ko"}, []string{"fs/fat/fat.ko", "vmlinux"})
	if len(got) != 2 || got[1].Rel != "fs/fat/fat.ko" || got[1].Err != nil {
		t.Errorf("Pick = %+v", got)
	}
}

// FuzzParseOrder: never a panic; an entry is never absolute, never
// leaves the tree, and always names a .o or .ko.
func FuzzParseOrder(f *testing.F) {
	f.Add([]byte("fs/ext4/ext4.o\nfs/fat/fat.o\n"))
	f.Add([]byte("kernel/fs/ext4/ext4.ko\n\n"))
	f.Add([]byte("../x.ko\n"))
	f.Add([]byte("/x.o"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseOrder(strings.NewReader(string(b)))
		if err != nil {
			if got != nil {
				t.Fatalf("error %v with entries %q", err, got)
			}
			return
		}
		for _, e := range got {
			if strings.HasPrefix(e, "/") || e == ".." || strings.HasPrefix(e, "../") || strings.ContainsRune(e, 0) {
				t.Fatalf("entry %q escapes the tree", e)
			}
			if !strings.HasSuffix(e, ".o") && !strings.HasSuffix(e, ".ko") {
				t.Fatalf("entry %q is not a module", e)
			}
			for _, c := range candidates(e) {
				if !IsModuleName(filepath.Base(c)) {
					t.Fatalf("candidate %q of %q is not a module name", c, e)
				}
			}
		}
	})
}
