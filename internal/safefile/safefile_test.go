package safefile

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A file replaced by another run between Lock's open and its flock: the
// lock taken on the old inode protects nothing, so Lock must notice that
// the name now leads elsewhere and lock the new file.
func TestLockNoticesReplacedFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "k.elf")
	if err := os.WriteFile(f, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	opens := 0
	testAfterOpen = func() {
		if opens++; opens == 1 { // another run renames its result over f
			tmp := filepath.Join(dir, "new")
			if err := os.WriteFile(tmp, []byte("new"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer func() { testAfterOpen = nil }()
	tg, err := Lock(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	var locked, now unix.Stat_t
	if err := unix.Fstat(int(tg.lock.Fd()), &locked); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(f, &now); err != nil {
		t.Fatal(err)
	}
	if locked.Ino != now.Ino {
		t.Fatalf("Lock holds inode %d, but %s is inode %d now (the replaced file's lock)", locked.Ino, f, now.Ino)
	}
	if opens != 2 {
		t.Errorf("Lock opened the file %d times, want 2 (once more after the swap)", opens)
	}
}

// Begin for an input written to another file locks both, and a second
// Begin writing the first one's input, in the other direction, fails at
// once instead of deadlocking or proceeding.
func TestBeginLocksInputAndOutput(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, f := range []string{a, b} {
		if err := os.WriteFile(f, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	j, err := Begin(a, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if j.Input != a || j.Target.Path != b {
		t.Errorf("Begin(a, b): input %s target %s", j.Input, j.Target.Path)
	}
	if _, err := Begin(b, a, Options{}); err == nil {
		t.Error("Begin(b, a) while Begin(a, b) holds its locks: no error")
	}
	if _, err := Begin(a, "", Options{}); err == nil {
		t.Error("in-place Begin(a) while a is read for another output: no error")
	}
	// Two readers of the same input may run together.
	c := filepath.Join(dir, "c")
	j2, err := Begin(a, c, Options{})
	if err != nil {
		t.Errorf("second reader of a: %v", err)
	} else {
		j2.Close()
	}
	j.Close()
	j3, err := Begin(b, a, Options{})
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	j3.Close()
}
