// SPDX-License-Identifier: Apache-2.0

package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// writeOnce locks name and replaces it, returning the first error.
func writeOnce(name string) error {
	tg, err := Lock(name, Options{})
	if err != nil {
		return err
	}
	defer tg.Close()
	return tg.Replace(writeString("new"), 0o644)
}

// readOnlyFolder returns a folder holding k.elf that this process cannot
// write in: a read-only tmpfs as root (root may write anywhere else), a
// folder of mode 0555 otherwise.
func readOnlyFolder(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "k.elf"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		return dir
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, 0) })
	if err := os.WriteFile(filepath.Join(mnt, "k.elf"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("", mnt, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	return mnt
}

// Issue 22, Deliver 2: a file named relative to the current folder, in a
// folder this process cannot write in, is refused naming the folder (it
// used to say "creating a temporary file in : read-only file system").
func TestUnwritableFolderNamed(t *testing.T) {
	dir := readOnlyFolder(t)
	t.Chdir(dir)
	for _, name := range []string{"k.elf", "new.elf"} {
		err := writeOnce(name)
		if err == nil || !strings.Contains(err.Error(), "folder "+dir+" ") || !strings.Contains(err.Error(), "(-o)") {
			t.Errorf("%s in %s: %v; want an error naming the folder and -o", name, dir, err)
		}
		if !errors.Is(err, ErrCannotWrite) {
			t.Errorf("%s: %v does not wrap ErrCannotWrite", name, err)
		}
	}
	if b, _ := os.ReadFile("k.elf"); string(b) != "old" {
		t.Errorf("k.elf holds %q", b)
	}
}

// A folder with chattr +a lets a file be created but not renamed over
// another nor removed: the run used to fail at the rename with a bare
// "rename …: operation not permitted" and leave its temporary behind.
// Now it is refused at the lock, naming the folder and the flag. Setting
// +a needs CAP_LINUX_IMMUTABLE: skipped when not root.
func TestAppendOnlyFolder(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "k.elf")
	if err := os.WriteFile(f, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fl, _ := getFlags(int(d.Fd()))
	if err := unix.IoctlSetPointerInt(int(d.Fd()), unix.FS_IOC_SETFLAGS, int(fl|flAppend)); err != nil {
		t.Skipf("chattr +a on a folder: %v (needs root)", err)
	}
	t.Cleanup(func() {
		if d, err := os.Open(dir); err == nil {
			unix.IoctlSetPointerInt(int(d.Fd()), unix.FS_IOC_SETFLAGS, int(fl))
			d.Close()
		}
	})
	err = writeOnce(f)
	if err == nil || !strings.Contains(err.Error(), "folder "+dir+" has the chattr flag +a") {
		t.Errorf("in an append-only folder: %v; want a refusal naming the folder and +a", err)
	}
	if n := listDir(t, dir); len(n) != 1 {
		t.Errorf("folder holds %q", n)
	}
}
