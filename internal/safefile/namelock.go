// SPDX-License-Identifier: Apache-2.0

package safefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// A target that does not exist yet (a new -o file) has no inode to flock.
// Its lock is a file beside it, lockName(base), empty and flocked by the
// run that writes the target, from before the run creates anything until
// it ends; the run removes it before it lets the flock go. Every run
// writing a target thus holds one lock for it, whether the target existed
// or not, so a run that sweeps the temporaries of killed runs (holding
// the target's lock) never meets a live run's temporary. A kill -9 leaves
// the lock file; the next run on the target takes it over, or, if the
// target exists by then, sweeps it as it sweeps temporaries.

// nameLock is a held lock file.
type nameLock struct {
	path string
	f    *os.File
}

// errAppeared says that the target came into existence while its lock
// file was being taken: the caller locks the target itself.
var errAppeared = errors.New("the file appeared")

// lockNew takes the lock file of path, a target that did not exist. It
// fails with errAppeared, holding nothing, when the target exists once the
// lock file is held.
func lockNew(path string, opt Options) (*nameLock, error) {
	dir, base := filepath.Split(path)
	lp := filepath.Join(dir, lockName(base))
	w := newWaiter(opt)
	for swaps := 0; ; swaps++ {
		if swaps > maxSwaps {
			return nil, fmt.Errorf("%w: its lock file %s was replaced %d times while locking it", ErrLocked, lp, swaps)
		}
		f, st, err := openLockFile(lp)
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOENT) { // created or removed meanwhile
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("lock file %s: %w", lp, err)
		}
		err = flock(f, unix.LOCK_EX)
		if errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			if err := w.again("another ftpatch is writing it"); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", lp, err)
		}
		if !sameFile(lp, &st) { // a run that held it removed it meanwhile
			f.Close()
			continue
		}
		l := &nameLock{path: lp, f: f}
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			l.release()
			return nil, errAppeared
		}
		registerCleanup(lp)
		return l, nil
	}
}

// openLockFile opens the lock file at lp, creating it if it does not
// exist. An existing one is opened without O_CREAT: in a sticky folder
// (/tmp) the kernel may refuse O_CREAT on another user's file
// (fs.protected_regular).
func openLockFile(lp string) (*os.File, unix.Stat_t, error) {
	const flags = os.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY
	f, err := os.OpenFile(lp, flags, 0)
	if errors.Is(err, os.ErrNotExist) {
		f, err = os.OpenFile(lp, flags|os.O_CREATE|os.O_EXCL, 0o644)
	}
	var st unix.Stat_t
	if err != nil {
		return nil, st, err
	}
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, st, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != 0 {
		f.Close()
		return nil, st, fmt.Errorf("%w: a file that is not an empty lock file is in the way; remove it", ErrNotFile)
	}
	return f, st, nil
}

// release removes the lock file, if it is still the one held, and then
// lets its flock go: a run waiting for it finds the name gone and looks
// again.
func (l *nameLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	var st unix.Stat_t
	var err error
	if unix.Fstat(int(l.f.Fd()), &st) == nil && sameFile(l.path, &st) {
		err = os.Remove(l.path)
	}
	forget(l.path)
	err = errors.Join(err, l.f.Close())
	l.f = nil
	return err
}
