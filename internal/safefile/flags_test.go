// SPDX-License-Identifier: Apache-2.0

package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// setFlags sets exactly fl (kept flags) on name, and reports whether the
// file system then shows them.
func setFlags(t *testing.T, name string, fl uint32) bool {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cur, err := getFlags(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	want := cur&^keptFlags | fl
	if unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(want)) != nil {
		return false
	}
	got, _ := getFlags(int(f.Fd()))
	return got&keptFlags == fl
}

func flagsOf(t *testing.T, name string) uint32 {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fl, err := getFlags(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return fl
}

// Issue 22.4: chattr flags (+d, +A, +S, ... whatever this file system
// takes) are kept by an in-place replace; they used to be dropped.
func TestKeepsChattrFlags(t *testing.T) {
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var all uint32
	for _, f := range flagLetters {
		if f.fl&keptFlags != 0 && setFlags(t, probe, f.fl) {
			all |= f.fl
		}
		setFlags(t, probe, 0)
	}
	if all&(flNoDump|flNoAtime) != flNoDump|flNoAtime {
		testutil.Missing(t, "the file system of %s does not take chattr +d and +A (flags it takes: %s)", dir, flagString(all))
	}
	t.Logf("flags this file system takes: %s", flagString(all))
	f := filepath.Join(dir, "k.elf")
	if err := os.WriteFile(f, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !setFlags(t, f, all) {
		t.Fatalf("cannot set %s together", flagString(all))
	}
	tg, err := Lock(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if err := tg.Replace(writeString("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := flagsOf(t, f) & keptFlags; got != all {
		t.Errorf("after Replace the file has chattr flags %s, want %s", flagString(got), flagString(all))
	}
	if b, _ := os.ReadFile(f); string(b) != "new" {
		t.Errorf("file holds %q", b)
	}
}

// A file with chattr +i or +a cannot be replaced (the kernel refuses the
// rename): the run refuses at its lock, before anything is written, and
// says how to go on, instead of failing at the rename with a bare
// "operation not permitted". Setting the flags needs CAP_LINUX_IMMUTABLE:
// skipped when not root.
func TestRefusesImmutable(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		letter string
		fl     uint32
	}{{"i", flImmutable}, {"a", flAppend}} {
		f := filepath.Join(dir, "k-"+c.letter+".elf")
		if err := os.WriteFile(f, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		fd, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		err = unix.IoctlSetPointerInt(int(fd.Fd()), unix.FS_IOC_SETFLAGS, int(c.fl))
		fd.Close()
		if err != nil && os.Geteuid() != 0 {
			t.Skipf("chattr +%s needs root (CAP_LINUX_IMMUTABLE): %v", c.letter, err)
		}
		if err != nil {
			testutil.Missing(t, "chattr +%s on %s: %v", c.letter, f, err)
		}
		t.Cleanup(func() { clearFlag(f) })
		tg, err := Lock(f, Options{})
		if err == nil {
			tg.Close()
			t.Errorf("+%s: Lock succeeded", c.letter)
			continue
		}
		if !errors.Is(err, ErrCannotKeep) || !strings.Contains(err.Error(), "chattr -"+c.letter+" "+f) {
			t.Errorf("+%s: %v; want ErrCannotKeep saying chattr -%s", c.letter, err, c.letter)
		}
	}
	if n := listDir(t, dir); len(n) != 2 {
		t.Errorf("folder holds %q", n)
	}
}

// clearFlag removes +i and +a, so that the test's folder can be removed.
func clearFlag(name string) {
	if f, err := os.Open(name); err == nil {
		if fl, err := getFlags(int(f.Fd())); err == nil {
			unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(fl&^(flImmutable|flAppend)))
		}
		f.Close()
	}
}
