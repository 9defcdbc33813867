// SPDX-License-Identifier: Apache-2.0

package safefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// folder is the target's folder as a message names it: absolute, so that
// "." or "" never stands for it.
func (t *Target) folder() string {
	dir := filepath.Dir(t.Path)
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// checkFolder refuses, before anything is read or created, a target whose
// folder this process cannot create and rename files in: a read-only file
// system, no write permission, or a folder with chattr +i or +a (the
// kernel would refuse the rename, and the removal of the temporary).
func (t *Target) checkFolder() error {
	dir := t.folder()
	err := unix.Faccessat(unix.AT_FDCWD, dir, unix.W_OK|unix.X_OK, unix.AT_EACCESS)
	switch {
	case errors.Is(err, unix.EROFS):
		return fmt.Errorf("%w: its folder %s is on a read-only file system; write a copy elsewhere (-o)", ErrCannotWrite, dir)
	case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w: uid %d may not create files in its folder %s; run as a user who may, or write a copy elsewhere (-o)", ErrCannotWrite, os.Geteuid(), dir)
	case err != nil && !errors.Is(err, unix.ENOSYS):
		return fmt.Errorf("%w: folder %s: %w", ErrCannotWrite, dir, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%w: folder %s: %w", ErrCannotWrite, dir, err)
	}
	defer d.Close()
	fl, err := getFlags(int(d.Fd()))
	if err == nil && fl&(flImmutable|flAppend) != 0 {
		bad := flagString(fl & (flImmutable | flAppend))
		return fmt.Errorf("%w: its folder %s has the chattr flag %s, so no file in it may be replaced or removed; remove the flag (chattr -%s %s), or write a copy elsewhere (-o)",
			ErrCannotWrite, dir, bad, bad[1:], dir)
	}
	return nil
}

// writeError names the target (as the user gave it) and its folder in an
// error of a system call that writes in the folder, with a hint for the
// usual causes.
func (t *Target) writeError(what string, err error) error {
	hint := ""
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case unix.ENOSPC, unix.EDQUOT:
			hint = "; free some space, or write a copy elsewhere (-o)"
		case unix.EROFS:
			hint = "; write a copy elsewhere (-o)"
		case unix.EPERM, unix.EACCES:
			hint = "; the folder or the file may be immutable or append-only (lsattr -d), the folder sticky and the file another user's, or the file system may refuse it; write a copy elsewhere (-o)"
		}
	}
	return fmt.Errorf("%w: %s %s in folder %s: %w%s", ErrCannotWrite, what, t.Name, t.folder(), err, hint)
}
