// SPDX-License-Identifier: Apache-2.0

// Package safefile keeps ftpatch's promise about the files it rewrites, in
// one place:
//
//   - Lock before reading: an exclusive flock(2) on the file to be replaced,
//     held from before the command reads it until after the new file is
//     renamed over it, so two runs never lose each other's changes. A
//     second run fails at once, naming the file, or waits (Options.Wait).
//     The rename gives the name a new inode, so a run that waited on the
//     old inode notices (the name no longer leads to what it locked) and
//     locks again.
//   - Follow symbolic links: the file behind the link is replaced, the link
//     stays a link.
//   - Keep what the file carries: owner, group, mode including setuid,
//     setgid and sticky bits, and extended attributes (ACLs and
//     capabilities are extended attributes). What cannot be kept is an
//     error before the file is touched.
//   - Never leave a half-written file or a stray temporary: the new
//     contents go to an unnamed O_TMPFILE in the target's folder (nothing
//     for a kill -9 to leave behind), are fsynced, linked under a temporary
//     name and renamed over the target at once, and the folder is fsynced.
//     Where O_TMPFILE is not supported a named temporary is used and
//     removed on error and on SIGINT, SIGTERM and SIGHUP (see
//     HandleSignals).
//   - A file with several hard links has only the name given replaced (a
//     rename cannot do otherwise); Replace warns.
package safefile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ftpatch/ftpatch/internal/render"
)

// Sentinel errors; test with errors.Is.
var (
	ErrLocked     = errors.New("locked by another process")
	ErrNotFile    = errors.New("not a regular file")
	ErrCannotKeep = errors.New("cannot keep the file's owner, mode or attributes")
	// ErrCannotWrite is wrapped when the target's folder does not let
	// this process write the new file, or writing it failed.
	ErrCannotWrite = errors.New("cannot write the file")
)

// Options say how to wait and where to warn.
type Options struct {
	// Wait is how long to wait for a lock another process holds; 0 fails
	// at once.
	Wait time.Duration
	// Warn receives warnings (a file with several hard links, see
	// Warning), on the goroutine that writes; nil discards them.
	Warn func(Warning)
}

// Target is a file about to be replaced, locked (when it exists) from Lock
// until Close.
type Target struct {
	Name string // as the user gave it
	Path string // the real file: symbolic links followed

	opt    Options
	lock   *os.File  // nil when the file does not exist yet
	name   *nameLock // the lock of a file that does not exist yet
	st     unix.Stat_t
	xattrs []xattr
	flags  uint32 // chattr flags
}

type xattr struct {
	name  string
	value []byte
}

// Exists reports whether the target existed when it was locked (Replace
// then keeps its owner, mode and attributes).
func (t *Target) Exists() bool { return t.lock != nil }

// Close releases the lock.
func (t *Target) Close() error {
	err := t.name.release()
	t.name = nil
	if t.lock != nil {
		err = errors.Join(err, t.lock.Close()) // closing the last descriptor drops the flock
		t.lock = nil
	}
	return err
}

// Lock resolves name (following symbolic links), checks that it is a
// regular file or does not exist yet in an existing folder, takes an
// exclusive lock on it (on its lock file when it does not exist yet, see
// lockNew), and checks that its owner, group and mode can be given to a
// new file by this process. Holding the lock, it removes what killed runs
// left beside the file (see sweep).
func Lock(name string, opt Options) (*Target, error) {
	for {
		l, err := lock(name, unix.LOCK_EX, opt)
		if err != nil {
			return nil, err
		}
		t := &Target{Name: name, Path: l.path, opt: opt, lock: l.f, st: l.st}
		if err := t.checkFolder(); err != nil {
			t.Close()
			return nil, err
		}
		if l.f == nil {
			t.name, err = lockNew(l.path, opt)
			if errors.Is(err, errAppeared) {
				continue
			}
			if err != nil {
				return nil, err
			}
		} else if err := t.check(); err != nil {
			t.Close()
			return nil, err
		}
		t.sweep()
		return t, nil
	}
}

// Input is a file read while another file is written, share-locked so
// that no in-place run replaces it meanwhile.
type Input struct {
	Name string // as the user gave it
	Path string // the real file
	lock *os.File
}

// Close releases the lock.
func (in *Input) Close() error {
	if in == nil || in.lock == nil {
		return nil
	}
	err := in.lock.Close()
	in.lock = nil
	return err
}

// Job is one read-plan-write of a command that rewrites a file: Input is
// the file to read (in place: the target itself), Target the file to
// replace. Both are locked until Close.
type Job struct {
	Input  string // the real path to read
	Target *Target
	in     *Input // nil in place
}

// Begin locks input and output for a command that reads input and replaces
// output ("" or the same file: in place). An in-place job holds one
// exclusive lock; otherwise input is share-locked and output locked
// exclusively, in the order of their real paths so that two runs writing
// each other's input cannot deadlock.
func Begin(input, output string, opt Options) (*Job, error) {
	inReal, inSt, err := resolve(input)
	if err != nil {
		return nil, err
	}
	if inSt == nil {
		return nil, fs.ErrNotExist
	}
	inPlace := output == ""
	var outReal string
	if !inPlace {
		var outSt *unix.Stat_t
		if outReal, outSt, err = resolve(output); err != nil {
			return nil, &OutputError{Path: output, Err: err}
		}
		inPlace = outSt != nil && outSt.Dev == inSt.Dev && outSt.Ino == inSt.Ino
	}
	if inPlace {
		name := input
		if output != "" { // the same file by another name (a hard link): replace that name
			name = output
		}
		t, err := Lock(name, opt)
		if err != nil {
			return nil, err
		}
		return &Job{Input: t.Path, Target: t}, nil
	}
	j := &Job{}
	lockIn := func() error {
		l, err := lock(input, unix.LOCK_SH, opt)
		if err != nil {
			return err
		}
		if l.f == nil {
			return fs.ErrNotExist
		}
		j.in = &Input{Name: input, Path: l.path, lock: l.f}
		j.Input = l.path
		return nil
	}
	lockOut := func() (err error) {
		j.Target, err = Lock(output, opt)
		if err != nil {
			return &OutputError{Path: output, Err: err}
		}
		return nil
	}
	steps := []func() error{lockIn, lockOut}
	if outReal < inReal {
		slices.Reverse(steps)
	}
	for _, step := range steps {
		if err := step(); err != nil {
			j.Close()
			return nil, err
		}
	}
	return j, nil
}

// Close releases the locks.
func (j *Job) Close() error {
	err := j.in.Close()
	if j.Target != nil {
		err = errors.Join(err, j.Target.Close())
	}
	return err
}

// locked is a file opened and flocked, or (f == nil) a name that does not
// exist yet.
type locked struct {
	path string
	f    *os.File
	st   unix.Stat_t
}

// Polling bounds while waiting for a lock: flock has no timeout, so Lock
// polls with LOCK_NB, backing off from pollMin to pollMax.
const (
	pollMin = 2 * time.Millisecond
	pollMax = 50 * time.Millisecond
	// maxSwaps bounds how often the file may be replaced under a run
	// between its open and its lock before it gives up.
	maxSwaps = 1000
)

// lock opens the real file behind name without following it into a FIFO
// or device, and flocks it (how: LOCK_EX or LOCK_SH). After the lock it
// checks that name still leads to the inode it locked: a run that held the
// lock may have renamed a new file over it while this one waited, and a
// lock on the old inode protects nothing.
func lock(name string, how int, opt Options) (locked, error) {
	w := newWaiter(opt)
	for swaps := 0; ; {
		path, st, err := resolve(name)
		if err != nil {
			return locked{}, err
		}
		if st == nil {
			return locked{path: path}, nil
		}
		f, fst, err := openRegularNB(path)
		if err != nil {
			return locked{}, err
		}
		if testAfterOpen != nil {
			testAfterOpen()
		}
		err = flock(f, how)
		if errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			if err := w.again("another ftpatch is patching it"); err != nil {
				return locked{}, err
			}
			continue
		}
		if err != nil {
			f.Close()
			return locked{}, fmt.Errorf("locking: %w", err)
		}
		again, st2, err := resolve(name)
		if err == nil && st2 != nil && again == path && st2.Dev == fst.Dev && st2.Ino == fst.Ino {
			return locked{path: path, f: f, st: fst}, nil
		}
		f.Close()
		if swaps++; swaps > maxSwaps {
			return locked{}, fmt.Errorf("%w: replaced %d times while locking it", ErrLocked, swaps)
		}
	}
}

// openRegularNB opens path, which must be a regular file, for reading.
// O_NONBLOCK: should the name have become a FIFO since it was checked,
// opening it must not hang.
func openRegularNB(path string) (*os.File, unix.Stat_t, error) {
	var st unix.Stat_t
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, st, err
	}
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, st, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, st, notRegular(f.Stat())
	}
	return f, st, nil
}

// LockedError is ErrLocked once the wait for a lock is over (Options.Wait):
// Waited is how long it waited (0: not at all), Who who holds the lock.
// How to wait longer is the caller's to say (it names its own flag).
type LockedError struct {
	Waited time.Duration
	Who    string
}

func (e *LockedError) Error() string {
	if e.Waited > 0 {
		return fmt.Sprintf("%v: still locked after waiting %v; %s", ErrLocked, e.Waited, e.Who)
	}
	return fmt.Sprintf("%v: %s", ErrLocked, e.Who)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// OutputError is Begin's error about its output (not its input): the
// caller names the output as its user gave it.
type OutputError struct {
	Path string
	Err  error
}

func (e *OutputError) Error() string { return "output " + e.Path + ": " + e.Err.Error() }

func (e *OutputError) Unwrap() error { return e.Err }

// waiter paces the retries of a lock another process holds: flock has no
// timeout, so the lock is polled with LOCK_NB, backing off from pollMin to
// pollMax, until Options.Wait has passed.
type waiter struct {
	wait     time.Duration
	deadline time.Time
	poll     time.Duration
}

func newWaiter(opt Options) *waiter {
	return &waiter{wait: opt.Wait, deadline: time.Now().Add(opt.Wait), poll: pollMin}
}

// again sleeps before the next try, or, once the wait is over, returns
// a *LockedError; who says who holds the lock.
func (w *waiter) again(who string) error {
	if !time.Now().Before(w.deadline) {
		return &LockedError{Waited: w.wait, Who: who}
	}
	time.Sleep(min(w.poll, time.Until(w.deadline)))
	w.poll = min(2*w.poll, pollMax)
	return nil
}

// testAfterOpen, when set by a test, runs between lock's open and flock:
// where another run's rename can slip in.
var testAfterOpen func()

// flock locks f without blocking, retrying when a signal interrupts it.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err != unix.EINTR {
			return err
		}
	}
}

// resolve follows name's symbolic links to the real file and stats it
// without opening it; st is nil when the file does not exist (its folder
// must). Only regular files are accepted.
func resolve(name string) (path string, st *unix.Stat_t, err error) {
	if name == "" {
		return "", nil, fmt.Errorf("%w: empty file name", ErrNotFile)
	}
	path, err = filepath.EvalSymlinks(name)
	if errors.Is(err, fs.ErrNotExist) {
		// A missing file is created, in an existing folder. A link
		// pointing nowhere is refused: where it should lead is a guess.
		if fi, lerr := os.Lstat(name); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			dest, _ := os.Readlink(name)
			return "", nil, fmt.Errorf("%w: symbolic link to %s, which does not exist", ErrNotFile, dest)
		}
		dir, derr := filepath.EvalSymlinks(filepath.Dir(name))
		if derr != nil {
			return "", nil, fmt.Errorf("folder %s: %w", filepath.Dir(name), derr)
		}
		if fi, derr := os.Stat(dir); derr != nil || !fi.IsDir() {
			return "", nil, fmt.Errorf("%s is not a folder", filepath.Dir(name))
		}
		return filepath.Join(dir, filepath.Base(name)), nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	var s unix.Stat_t
	if err := unix.Stat(path, &s); err != nil {
		return "", nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if s.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", nil, notRegular(os.Stat(path))
	}
	return path, &s, nil
}

// notRegular refuses a file found not to be regular, naming its kind (from
// fi, a stat of it on this error path).
func notRegular(fi fs.FileInfo, err error) error {
	kind := "a special file"
	if err == nil {
		kind = render.FileKind(fi.Mode())
	}
	return fmt.Errorf("%w: it is %s; ftpatch reads and writes regular files only", ErrNotFile, kind)
}

// check refuses, before anything is read or written, a file whose owner or
// group this process cannot give a new file, or whose chattr flags forbid
// replacing it, and reads its extended attributes and flags (while the
// lock is held).
func (t *Target) check() error {
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	if t.st.Uid != uid && uid != 0 {
		return fmt.Errorf("%w: it is owned by uid %d and ftpatch runs as uid %d, so the patched file would change owner; run as root or as its owner, or write a copy you own elsewhere (-o)", ErrCannotKeep, t.st.Uid, uid)
	}
	if t.st.Gid != gid && uid != 0 {
		groups, _ := unix.Getgroups()
		if !slices.Contains(groups, int(t.st.Gid)) {
			return fmt.Errorf("%w: its group is gid %d, which uid %d is not a member of, so the patched file would change group; run as root, or write a copy elsewhere (-o)", ErrCannotKeep, t.st.Gid, uid)
		}
	}
	var err error
	t.xattrs, err = listXattrs(int(t.lock.Fd()))
	if err != nil {
		return fmt.Errorf("reading extended attributes: %w", err)
	}
	if t.flags, err = getFlags(int(t.lock.Fd())); err != nil {
		return fmt.Errorf("reading chattr flags: %w", err)
	}
	return t.checkFlags(t.flags)
}

// listXattrs reads every extended attribute of fd that this process can
// see.
func listXattrs(fd int) ([]xattr, error) {
	var names []byte
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Flistxattr(fd, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		names = buf[:n]
		break
	}
	var out []xattr
	for _, name := range strings.Split(string(bytes.TrimRight(names, "\x00")), "\x00") {
		if name == "" {
			continue
		}
		v, err := getXattr(fd, name)
		if errors.Is(err, unix.ENODATA) { // removed meanwhile
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, xattr{name, v})
	}
	return out, nil
}

func getXattr(fd int, name string) ([]byte, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Fgetxattr(fd, name, buf)
		if errors.Is(err, unix.ERANGE) {
			if size > 1<<20 {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
