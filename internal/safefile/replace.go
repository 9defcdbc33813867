// SPDX-License-Identifier: Apache-2.0

package safefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Replace writes the new contents of the target: fill writes them to a
// temporary file in the target's folder, which gets the target's owner,
// group, mode and extended attributes (a new file: perm), is fsynced and
// renamed over the target; then the folder is fsynced. On any error, and
// on a signal handled by HandleSignals, the target is left as it was and
// no temporary file remains. Call it once, with the lock held.
func (t *Target) Replace(fill func(*os.File) error, perm os.FileMode) (err error) {
	if t.Exists() && t.st.Nlink > 1 {
		t.warn(Warning{Kind: WarnHardLinks, Links: uint64(t.st.Nlink)})
	}
	dir, base := filepath.Split(t.Path)
	startWrite()
	tmp, err := createTemp(dir, base)
	if err != nil {
		abandonWrite()
		return t.writeError("creating a temporary file for", err)
	}
	defer func() {
		if err != nil {
			tmp.discard()
		}
	}()
	// Give the empty file the target's identity first, so what cannot be
	// kept fails before any bytes are written; again after filling it,
	// because the kernel clears setuid, setgid and file capabilities when
	// a file is written.
	if err = t.keep(tmp.f, perm); err != nil {
		return err
	}
	if err = fill(tmp.f); err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			err = t.writeError("writing the new contents of", errno)
		}
		return err
	}
	if err = t.keep(tmp.f, perm); err != nil {
		return err
	}
	testSignal("filled")
	if err = tmp.f.Sync(); err != nil {
		return t.writeError("syncing the new contents of", bareError(err))
	}
	if err = tmp.commit(t.Path); err != nil {
		return t.writeError("putting the new file in place of", err)
	}
	testSignal("renamed")
	// Make the rename durable. The file holds the new bytes from the
	// rename on, so a failure here is a warning, not the run's failure.
	if d, derr := os.Open(dir); derr == nil {
		derr = d.Sync()
		d.Close()
		if derr != nil {
			t.warn(Warning{Kind: WarnFolderSync, Err: derr})
		}
	}
	return nil
}

// keep gives f the target's owner, group, chattr flags, extended
// attributes and mode (chown first: it clears setuid and setgid), or perm
// for a new file, and checks the result.
func (t *Target) keep(f *os.File, perm os.FileMode) error {
	fd := int(f.Fd())
	if !t.Exists() {
		return f.Chmod(perm)
	}
	var cur unix.Stat_t
	if err := unix.Fstat(fd, &cur); err != nil {
		return err
	}
	if cur.Uid != t.st.Uid || cur.Gid != t.st.Gid {
		if err := unix.Fchown(fd, int(t.st.Uid), int(t.st.Gid)); err != nil {
			return fmt.Errorf("%w: owner %d, group %d: %w", ErrCannotKeep, t.st.Uid, t.st.Gid, err)
		}
	}
	if err := t.keepFlags(fd); err != nil {
		return err
	}
	if err := t.keepXattrs(fd); err != nil {
		return err
	}
	want := t.st.Mode & 0o7777
	if err := unix.Fchmod(fd, want); err != nil {
		return fmt.Errorf("%w: mode %#o: %w", ErrCannotKeep, want, err)
	}
	if err := unix.Fstat(fd, &cur); err != nil {
		return err
	}
	if got := cur.Mode & 0o7777; got != want {
		return fmt.Errorf("%w: mode %#o became %#o (setgid needs membership of the file's group)", ErrCannotKeep, want, got)
	}
	if cur.Uid != t.st.Uid || cur.Gid != t.st.Gid {
		return fmt.Errorf("%w: owner %d:%d became %d:%d", ErrCannotKeep, t.st.Uid, t.st.Gid, cur.Uid, cur.Gid)
	}
	return nil
}

// keepXattrs sets the target's extended attributes on fd and removes the
// ones the new file got that the target did not have (a default ACL of the
// folder, say).
func (t *Target) keepXattrs(fd int) error {
	have, err := listXattrs(fd)
	if err != nil {
		return fmt.Errorf("reading extended attributes of the new file: %w", err)
	}
	wanted := make(map[string]bool, len(t.xattrs))
	for _, x := range t.xattrs {
		wanted[x.name] = true
	}
	for _, x := range have {
		if !wanted[x.name] {
			unix.Fremovexattr(fd, x.name) // best effort: a security label may not be removable
		}
	}
	for _, x := range t.xattrs {
		if err := unix.Fsetxattr(fd, x.name, x.value, 0); err != nil {
			return fmt.Errorf("%w: extended attribute %s: %w", ErrCannotKeep, x.name, err)
		}
	}
	return nil
}

// temp is the new file: unnamed (O_TMPFILE) until commit links it, or,
// where the file system has no O_TMPFILE, named and registered for
// removal on a signal.
type temp struct {
	f    *os.File
	dir  string
	base string
	name string // the named fallback's path; "" for O_TMPFILE
}

// createTemp opens an unnamed temporary file in dir, or a named one where
// O_TMPFILE is not supported.
func createTemp(dir, base string) (*temp, error) {
	if dir == "" {
		dir = "."
	}
	t := &temp{dir: dir, base: base}
	if os.Getenv(testNoTmpfile) == "" {
		fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
		if err == nil {
			t.f = os.NewFile(uintptr(fd), filepath.Join(dir, "(O_TMPFILE for "+base+")"))
			flock(t.f, unix.LOCK_EX) // before it has a name: see sweep
			return t, nil
		}
		// EOPNOTSUPP: the file system has no O_TMPFILE; EISDIR or
		// EINVAL: the kernel does not know it.
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
			return nil, err
		}
	}
	for range 100 {
		name := filepath.Join(dir, tempName(base))
		registerCleanup(name) // before it exists: a signal now removes it
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			// Only a run holding the target's lock sweeps, so the moment
			// between the create and the flock is safe.
			flock(f, unix.LOCK_EX)
			t.f, t.name = f, name
			return t, nil
		}
		forget(name)
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no free temporary name in %s", dir)
}

// commit puts the file in place of path: an unnamed file is linked under a
// temporary name first (linkat cannot replace a name), then renamed over
// path. Both happen with the signal handler held off, so a signal sees
// either the temporary name (and removes it) or the renamed file.
func (t *temp) commit(path string) error {
	cleanup.mu.Lock()
	defer cleanup.mu.Unlock()
	if t.name == "" {
		name, err := t.link()
		if err != nil {
			return err
		}
		t.name = name
		cleanup.paths[name] = true
	}
	testSignal("linked")
	// Nothing between link and rename: a kill -9 there leaves the name
	// (for the next run's Lock to remove).
	if err := os.Rename(t.name, path); err != nil {
		return bareError(err) // the caller names the file and folder
	}
	delete(cleanup.paths, t.name)
	endWrite(true)
	t.name = ""
	f := t.f
	t.f = nil
	f.Close() // after the commit point, and fsynced: nothing to report
	return nil
}

// link gives the unnamed file a temporary name, through /proc/self/fd, or
// with AT_EMPTY_PATH where /proc is not mounted (that needs
// CAP_DAC_READ_SEARCH).
func (t *temp) link() (string, error) {
	fd := int(t.f.Fd())
	for range 100 {
		name := filepath.Join(t.dir, tempName(t.base))
		err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, name, unix.AT_SYMLINK_FOLLOW)
		if errors.Is(err, unix.ENOENT) {
			err = unix.Linkat(fd, "", unix.AT_FDCWD, name, unix.AT_EMPTY_PATH)
		}
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("linking it: %w", err)
		}
		return name, nil
	}
	return "", fmt.Errorf("no free temporary name in %s", t.dir)
}

// discard closes and removes what createTemp made, after an error before
// or at commit (after it, there is nothing to discard).
func (t *temp) discard() {
	if t.f == nil {
		return
	}
	t.f.Close()
	cleanup.mu.Lock()
	defer cleanup.mu.Unlock()
	if t.name != "" {
		os.Remove(t.name)
		delete(cleanup.paths, t.name)
	}
	endWrite(false)
}

// abandonWrite counts a write that failed before it created anything.
func abandonWrite() {
	cleanup.mu.Lock()
	endWrite(false)
	cleanup.mu.Unlock()
}

// bareError is the system call error inside err (an *os.LinkError or
// *fs.PathError naming temporary paths), or err.
func bareError(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}
