package safefile

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Replace writes the new contents of the target: fill writes them to a
// temporary file in the target's folder, which gets the target's owner,
// group, mode and extended attributes (a new file: perm), is fsynced and
// renamed over the target; then the folder is fsynced. On any error, and
// on a signal handled by HandleSignals, the target is left as it was and
// no temporary file remains. Call it once, with the lock held.
func (t *Target) Replace(fill func(*os.File) error, perm os.FileMode) (err error) {
	if t.Exists() && t.st.Nlink > 1 && t.opt.Warn != nil {
		fmt.Fprintf(t.opt.Warn, "ftpatch: warning: file %s has %d hard links: only this name gets the patched file, the other %d keep the old contents\n",
			t.Name, t.st.Nlink, t.st.Nlink-1)
	}
	dir, base := filepath.Split(t.Path)
	tmp, err := createTemp(dir, base)
	if err != nil {
		return fmt.Errorf("creating a temporary file in %s: %w", dir, err)
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
		return err
	}
	if err = t.keep(tmp.f, perm); err != nil {
		return err
	}
	testSignal("filled")
	if err = tmp.f.Sync(); err != nil {
		return err
	}
	if err = tmp.commit(t.Path); err != nil {
		return err
	}
	testSignal("renamed")
	if d, derr := os.Open(dir); derr == nil { // make the rename durable
		derr = d.Sync()
		d.Close()
		if derr != nil {
			return fmt.Errorf("fsync of folder %s: %w", dir, derr)
		}
	}
	return nil
}

// removeStale removes temporary files of this target left by a run that was
// killed with SIGKILL between linking its file and renaming it (or, before
// safefile, at any moment). Under the exclusive lock no live run can be
// writing one: a run creates its temporary only once it holds the lock.
func (t *Target) removeStale() {
	dir, base := filepath.Split(t.Path)
	if dir == "" {
		dir = "."
	}
	stale, _ := filepath.Glob(filepath.Join(dir, "."+escapeGlob(base)+".ftpatch-*"))
	for _, name := range stale {
		if fi, err := os.Lstat(name); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if os.Remove(name) == nil && t.opt.Warn != nil {
			fmt.Fprintf(t.opt.Warn, "ftpatch: warning: removed %s, a temporary file left by an ftpatch run that was killed\n", name)
		}
	}
}

// escapeGlob quotes the characters filepath.Match treats specially.
func escapeGlob(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', '\\':
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}

// keep gives f the target's owner, group, extended attributes and mode
// (chown first: it clears setuid and setgid), or perm for a new file, and
// checks the result.
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
			return t, nil
		}
		// EOPNOTSUPP: the file system has no O_TMPFILE; EISDIR or
		// EINVAL: the kernel does not know it.
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
			return nil, err
		}
	}
	for range 100 {
		name := tempName(dir, base)
		cleanup.mu.Lock() // registered before it exists: a signal now removes it
		cleanup.paths[name] = true
		cleanup.mu.Unlock()
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
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

// tempName is a hidden name beside the target, saying which run made it.
func tempName(dir, base string) string {
	return filepath.Join(dir, "."+base+".ftpatch-"+strconv.Itoa(os.Getpid())+"-"+strconv.FormatUint(rand.Uint64()%1e8, 10))
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
		return err
	}
	delete(cleanup.paths, t.name)
	t.name = ""
	return t.f.Close()
}

// link gives the unnamed file a temporary name, through /proc/self/fd, or
// with AT_EMPTY_PATH where /proc is not mounted (that needs
// CAP_DAC_READ_SEARCH).
func (t *temp) link() (string, error) {
	fd := int(t.f.Fd())
	for range 100 {
		name := tempName(t.dir, t.base)
		err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, name, unix.AT_SYMLINK_FOLLOW)
		if errors.Is(err, unix.ENOENT) {
			err = unix.Linkat(fd, "", unix.AT_FDCWD, name, unix.AT_EMPTY_PATH)
		}
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("linking the new file into %s: %w", t.dir, err)
		}
		return name, nil
	}
	return "", fmt.Errorf("no free temporary name in %s", t.dir)
}

// discard closes and removes what createTemp made.
func (t *temp) discard() {
	t.f.Close() // an error after commit's Close: already closed, harmless
	if t.name != "" {
		os.Remove(t.name)
		forget(t.name)
	}
}
