// SPDX-License-Identifier: Apache-2.0

package safefile

// The names ftpatch gives the files it makes beside a target, and how a
// later run proves that a file of such a name is one of them before it
// removes it.
//
//	.BASE.ftpatch-PID-RAND.MAC   a temporary: the new contents, until renamed
//	.BASE.ftpatch-lock.MAC       the lock of a target that does not exist yet
//
// MAC is a keyed hash of BASE and the part before it, which only ftpatch
// computes: a user's file that merely looks like a temporary
// (".k.elf.ftpatch-notes", an older ftpatch's ".k.elf.ftpatch-PID-N") has
// no valid MAC and is never removed. The proof must live in the name: an
// extended attribute would need a file system that takes one (FUSE and
// some tmpfs do not), and would go with the temporary onto the user's file
// at the rename.

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

// macKey keys the names' MAC: it makes them ftpatch's, not a secret.
const macKey = "ftpatch temporary file\x00"

// maxBase is the longest base name used as it is in the names beside it;
// a longer one is cut and completed by a hash of the whole, so that the
// names stay within NAME_MAX (255 bytes).
const maxBase = 180

// nameBase is the part of base the names beside it start with.
func nameBase(base string) string {
	if len(base) <= maxBase {
		return base
	}
	h := sha256.Sum256([]byte(base))
	return base[:maxBase-17] + "~" + hex.EncodeToString(h[:8])
}

// namePrefix starts every name ftpatch makes beside base.
func namePrefix(base string) string { return "." + nameBase(base) + ".ftpatch-" }

// mac is the proof that ftpatch made the name namePrefix(base)+token+"."+mac.
func mac(base, token string) string {
	h := sha256.Sum256([]byte(macKey + base + "\x00" + token))
	return hex.EncodeToString(h[:4])
}

// lockToken is the token of a target's lock file.
const lockToken = "lock"

// tempName is a fresh temporary's name (no folder) for the target base,
// saying which process made it.
func tempName(base string) string {
	token := strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(rand.Uint64()>>32, 16)
	return namePrefix(base) + token + "." + mac(base, token)
}

// lockName is the name (no folder) of the lock file of the target base.
func lockName(base string) string {
	return namePrefix(base) + lockToken + "." + mac(base, lockToken)
}

// ours reports whether name (no folder) is one ftpatch gives the files it
// makes beside the target base: it starts as they do and carries their
// MAC.
func ours(name, base string) bool {
	rest, ok := strings.CutPrefix(name, namePrefix(base))
	if !ok {
		return false
	}
	i := strings.LastIndexByte(rest, '.')
	return i > 0 && rest[i+1:] == mac(base, rest[:i])
}
