// SPDX-License-Identifier: Apache-2.0

package safefile

// Inode flags (chattr/lsattr; FS_IOC_GETFLAGS, FS_IOC_SETFLAGS): a file
// the new one replaces keeps them, or the run refuses before writing.

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// The flags of linux/fs.h that matter here (x/sys/unix does not name
// them), with chattr's letter for each.
const (
	flSecRm       = 0x00000001 // s: secure deletion
	flUnrm        = 0x00000002 // u: undeletable
	flCompr       = 0x00000004 // c: compressed
	flSync        = 0x00000008 // S: synchronous updates
	flImmutable   = 0x00000010 // i
	flAppend      = 0x00000020 // a: append only
	flNoDump      = 0x00000040 // d
	flNoAtime     = 0x00000080 // A
	flNoComp      = 0x00000400 // m: not compressed
	flJournalData = 0x00004000 // j
	flNoTail      = 0x00008000 // t
	flVerity      = 0x00100000 // V: fs-verity
	flNoCow       = 0x00800000 // C: no copy on write (set on an empty file)
	flDAX         = 0x02000000 // x
	flProjInherit = 0x20000000 // P
)

// keptFlags are the flags a user sets with chattr on a regular file and
// the new file is given. The others are the file system's own (extents,
// inline data, encryption, set by the folder) and are left to it.
const keptFlags = flSecRm | flUnrm | flCompr | flSync | flNoDump | flNoAtime | flNoComp |
	flJournalData | flNoTail | flNoCow | flDAX | flProjInherit

var flagLetters = []struct {
	fl     uint32
	letter byte
}{
	{flSecRm, 's'}, {flUnrm, 'u'}, {flCompr, 'c'}, {flSync, 'S'}, {flImmutable, 'i'}, {flAppend, 'a'},
	{flNoDump, 'd'}, {flNoAtime, 'A'}, {flNoComp, 'm'}, {flJournalData, 'j'}, {flNoTail, 't'},
	{flVerity, 'V'}, {flNoCow, 'C'}, {flDAX, 'x'}, {flProjInherit, 'P'},
}

// flagString is fl as chattr spells it ("+dA").
func flagString(fl uint32) string {
	if fl == 0 {
		return "none"
	}
	var b strings.Builder
	b.WriteByte('+')
	for _, f := range flagLetters {
		if fl&f.fl != 0 {
			b.WriteByte(f.letter)
		}
	}
	return b.String()
}

// getFlags returns fd's inode flags; 0 where the file system has none.
func getFlags(fd int) (uint32, error) {
	fl, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return 0, nil
	}
	return fl, err
}

// checkFlags refuses, before anything is written, a target whose flags
// make replacing it impossible (i, a: the kernel refuses the rename) or
// would be lost (V: the new file would not be verity-protected).
func (t *Target) checkFlags(fl uint32) error {
	if bad := fl & (flImmutable | flAppend); bad != 0 {
		return fmt.Errorf("%w: it has the chattr flag %s, so no program may replace it; remove the flag first (chattr -%s %s), or write a copy elsewhere (-o)",
			ErrCannotKeep, flagString(bad), flagString(bad)[1:], t.Name)
	}
	if fl&flVerity != 0 {
		return fmt.Errorf("%w: it is an fs-verity file (lsattr shows V), which a new file would not be; write a copy elsewhere (-o) and enable verity on it", ErrCannotKeep)
	}
	return nil
}

// keepFlags gives fd the target's kept flags, clearing kept flags the new
// file got from its folder that the target does not have, and checks the
// result. Call it on the empty file: C can only be changed on one.
func (t *Target) keepFlags(fd int) error {
	cur, err := getFlags(fd)
	if err != nil {
		return fmt.Errorf("reading the chattr flags of the new file: %w", err)
	}
	want := cur&^keptFlags | t.flags&keptFlags
	if want == cur {
		return nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(want)); err != nil {
		return fmt.Errorf("%w: chattr flags %s: %w", ErrCannotKeep, flagString(t.flags&keptFlags), err)
	}
	got, err := getFlags(fd)
	if err != nil {
		return fmt.Errorf("reading the chattr flags of the new file: %w", err)
	}
	if got&keptFlags != want&keptFlags {
		return fmt.Errorf("%w: chattr flags %s: the file system keeps %s", ErrCannotKeep, flagString(t.flags&keptFlags), flagString(got&keptFlags))
	}
	return nil
}
