// SPDX-License-Identifier: Apache-2.0

package safefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

// pauseAt makes the first write that reaches stage wait there until the
// returned resume is called; paused is closed once it waits.
func pauseAt(t *testing.T, stage string) (paused <-chan struct{}, resume func()) {
	p, r := make(chan struct{}), make(chan struct{})
	var once sync.Once
	testHook = func(s string) {
		if s == stage {
			once.Do(func() { close(p); <-r })
		}
	}
	t.Cleanup(func() { testHook = nil })
	return p, sync.OnceFunc(func() { close(r) })
}

// Issue 22.1: a run writing a new -o file pauses between naming its
// temporary and renaming it; meanwhile another run tries the same output
// (and, when it gets it, writes it), or another program creates it, and
// then a third run locks the output, sweeping what killed runs left. The
// first run's temporary must survive (it used to be removed as stale, and
// the run failed at its rename), and the folder ends with the output only.
func TestNewOutputTemporaryNotSwept(t *testing.T) {
	for _, named := range []bool{false, true} {
		for _, creator := range []string{"ftpatch", "another program"} {
			t.Run(fmt.Sprintf("named=%v creator=%s", named, creator), func(t *testing.T) {
				if named {
					t.Setenv(testNoTmpfile, "1")
				}
				dir := t.TempDir()
				out := filepath.Join(dir, "out.elf")
				paused, resume := pauseAt(t, "linked")
				defer resume()
				a, err := Lock(out, Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer a.Close()
				done := make(chan error, 1)
				go func() { done <- a.Replace(writeString("first run"), 0o644) }()
				<-paused
				if creator == "ftpatch" {
					if c, err := Lock(out, Options{}); err == nil {
						// Nothing kept it out: it writes its output (plainly:
						// the paused run holds Replace's commit lock).
						if err := os.WriteFile(out, []byte("second run"), 0o644); err != nil {
							t.Fatal(err)
						}
						c.Close()
					} else if !errors.Is(err, ErrLocked) {
						t.Fatalf("second run: %v", err)
					}
				} else if err := os.WriteFile(out, []byte("another program"), 0o644); err != nil {
					t.Fatal(err)
				}
				var warn warnings
				if b, err := Lock(out, Options{Warn: warn.add}); err == nil {
					b.Close()
				} else if !errors.Is(err, ErrLocked) {
					t.Fatalf("third run: %v", err)
				}
				if removed := warn.paths(WarnRemovedStale); len(removed) > 0 {
					t.Errorf("the third run removed a live run's file: %q", removed)
				}
				resume()
				if err := <-done; err != nil {
					t.Fatalf("the first run failed: %v", err)
				}
				a.Close()
				if got, _ := os.ReadFile(out); string(got) != "first run" {
					t.Errorf("output holds %q, want the first run's", got)
				}
				if n := listDir(t, dir); !slices.Equal(n, []string{"out.elf"}) {
					t.Errorf("folder holds %q", n)
				}
			})
		}
	}
}

func writeString(s string) func(*os.File) error {
	return func(f *os.File) error {
		_, err := f.WriteString(s)
		return err
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// A target that does not exist yet is locked as an existing one is: a
// second run fails at once, or with Wait waits, and then locks the file
// the first run wrote. The lock file goes when the first run ends, and a
// lock file left by a killed run is taken over.
func TestNewOutputLocked(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "new.elf")
	// A killed run's lock file (nothing holds its flock).
	stale := filepath.Join(dir, lockName("new.elf"))
	if err := os.WriteFile(stale, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := Lock(out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(out, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock of a new output while the first holds it: %v, want ErrLocked", err)
	}
	got := make(chan error, 1)
	go func() {
		b, err := Lock(out, Options{Wait: time.Minute})
		if err == nil {
			if !b.Exists() {
				err = errors.New("the waiting run did not see the first run's file")
			}
			b.Close()
		}
		got <- err
	}()
	if err := a.Replace(writeString("first"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("the waiting run: %v", err)
	}
	if n := listDir(t, dir); !slices.Equal(n, []string{"new.elf"}) {
		t.Errorf("folder holds %q", n)
	}
}

// Issue 22.2: the sweep removes only what it can prove ftpatch made (the
// name's MAC) and that no live run holds (its flock); anything else with a
// name of that shape stays, and the run says so.
func TestSweepRemovesOnlyItsOwn(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "s.elf")
	if err := os.WriteFile(f, []byte("elf"), 0o644); err != nil {
		t.Fatal(err)
	}
	dead := []string{tempName("s.elf"), lockName("s.elf")}
	alive := tempName("s.elf")
	foreign := []string{
		".s.elf.ftpatch-notes",            // a user's file
		".s.elf.ftpatch-4242-17",          // an older ftpatch's temporary: no proof
		".s.elf.ftpatch-lock.0123abcd",    // a forged MAC
		"." + alive[1:] + "x",             // one byte more than a real name
		".s.elf2.ftpatch-" + dead[0][16:], // another target's prefix
	}
	for _, n := range slices.Concat(dead, foreign, []string{alive}) {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	release := holdFlock(t, filepath.Join(dir, alive))
	defer release()
	var warn warnings
	tg, err := Lock(f, Options{Warn: warn.add})
	if err != nil {
		t.Fatal(err)
	}
	tg.Close()
	want := slices.Concat([]string{"s.elf", alive}, foreign)
	slices.Sort(want)
	if n := listDir(t, dir); !slices.Equal(n, want) {
		t.Errorf("folder holds %q, want %q", n, want)
	}
	inDir := func(names []string) []string {
		var paths []string
		for _, n := range names {
			paths = append(paths, filepath.Join(dir, n))
		}
		slices.Sort(paths)
		return paths
	}
	// Neither the live run's file nor another target's is named.
	if got, want := warn.paths(WarnRemovedStale), inDir(dead); !slices.Equal(got, want) {
		t.Errorf("warned of removing %q, want %q", got, want)
	}
	if got, want := warn.paths(WarnForeignTemp), inDir(foreign[:4]); !slices.Equal(got, want) {
		t.Errorf("warned of leaving %q alone, want %q", got, want)
	}
	for _, w := range warn {
		if w.Name != f {
			t.Errorf("warning %+v names the target %q, want %q", w, w.Name, f)
		}
	}
}

// warnings collects what a Target warns about (Options.Warn).
type warnings []Warning

func (ws *warnings) add(w Warning) { *ws = append(*ws, w) }

// paths are the Paths of the warnings of kind k, sorted.
func (ws warnings) paths(k WarningKind) []string {
	var p []string
	for _, w := range ws {
		if w.Kind == k {
			p = append(p, w.Path)
		}
	}
	slices.Sort(p)
	return p
}

// holdFlock flocks name as a live run holds its temporary.
func holdFlock(t *testing.T, name string) (release func()) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	return func() { f.Close() }
}

// Names stay within NAME_MAX for the longest base names, and are still
// recognised as ftpatch's.
func TestNamesFit(t *testing.T) {
	base := strings.Repeat("b", 255)
	for _, n := range []string{tempName(base), lockName(base)} {
		if len(n) > 255 {
			t.Errorf("%d-byte name %q", len(n), n)
		}
		if !ours(n, base) {
			t.Errorf("%q not recognised as ftpatch's", n)
		}
		if ours(n, base[1:]) {
			t.Errorf("%q taken as a name beside another target", n)
		}
	}
}
