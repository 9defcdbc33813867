// SPDX-License-Identifier: Apache-2.0

package safefile

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// sweep removes the files beside the target that ftpatch runs left when
// they were killed with SIGKILL: a temporary between its link and its
// rename (or, on a file system without O_TMPFILE, at any moment), or the
// lock file of a target that did not exist yet. It runs with the target's
// lock held, and removes a file only with two proofs: that ftpatch made it
// (its name carries the MAC only ftpatch computes, see ours) and that the
// run which made it is dead (every such file is flocked by its run from
// before it has a name until it is renamed or removed, so a free flock
// means a dead run). Any other file whose name looks like ftpatch's is
// left alone, with a warning.
func (t *Target) sweep() {
	dir, base := filepath.Split(t.Path)
	if dir == "" {
		dir = "."
	}
	d, err := os.Open(dir)
	if err != nil {
		return // the run itself will say what is wrong with the folder
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	prefix := namePrefix(base)
	for _, name := range names {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		path := filepath.Join(dir, name)
		if !ours(name, base) {
			t.warn(Warning{Kind: WarnForeignTemp, Path: path})
			continue
		}
		if removeIfDead(path) {
			t.warn(Warning{Kind: WarnRemovedStale, Path: path})
		}
	}
}

// removeIfDead removes path, a regular file, if no process holds a flock
// on it and the name still leads to the file it checked; it reports
// whether it did.
func removeIfDead(path string) bool {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return false
	}
	defer f.Close() // after the removal: no run can take the flock meanwhile
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false
	}
	if flock(f, unix.LOCK_EX) != nil { // alive (or cannot tell)
		return false
	}
	if !sameFile(path, &st) {
		return false
	}
	return os.Remove(path) == nil
}

// sameFile reports whether path (not followed) is the file st describes.
func sameFile(path string, st *unix.Stat_t) bool {
	var now unix.Stat_t
	return unix.Lstat(path, &now) == nil && now.Dev == st.Dev && now.Ino == st.Ino
}
