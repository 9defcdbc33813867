// SPDX-License-Identifier: Apache-2.0

package cli

// Library messages name roles (patch.Role: ops, trampoline, direct
// trampoline...), never flags; this file is the one place they get the
// names a user types.

import (
	"errors"
	"fmt"

	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/patch"
	"github.com/ftpatch/ftpatch/internal/safefile"
)

// flagNames spells each role of a request as the flag that gives it.
var flagNames = map[patch.Role]string{
	patch.RoleOps:               "--ops",
	patch.RoleDefaultOps:        "--default-ops",
	patch.RoleTrampoline:        "--trampoline",
	patch.RoleDirect:            "--direct",
	patch.RoleDirectCallOffset:  "--direct-call-offset",
	patch.RoleInitToo:           "--init",
	patch.RoleSkipMisaligned:    "--skip-misaligned",
	patch.RoleAllowAbsolute:     "--allow-absolute",
	patch.RoleClassicTrampoline: "ftpatch trampoline --classic --ops",
	patch.RoleFileTrampoline:    "--run-file-trampoline",
}

// flagName is role's flag (a role with none: its own words).
func flagName(role patch.Role) string {
	if f, ok := flagNames[role]; ok {
		return f
	}
	return string(role)
}

// withFlagNames spells the roles a library error names as flags, when the
// library said them: err is a *patch.RoleError or *patch.RefusedError
// (not wrapped: those are said where the library returns them). The
// result wraps what err wraps.
func withFlagNames(err error) error {
	if s, ok := err.(interface{ Spell(patch.Namer) error }); ok {
		return s.Spell(flagName)
	}
	return err
}

// checkDirectCallOffset checks --direct-call-offset (set: given on the
// command line) for a command whose --direct is direct: it needs --direct,
// and follows encode's one rule for the offset.
func checkDirectCallOffset(direct, set bool, off int64) error {
	if set && !direct {
		return UsageErrorf("%s needs %s", flagName(patch.RoleDirectCallOffset), flagName(patch.RoleDirect))
	}
	if !direct {
		return nil
	}
	if _, err := encode.DirectCallOffset(off); err != nil {
		var bad *encode.DirectCallOffsetError
		if errors.As(err, &bad) {
			return UsageErrorf("%s %d: %s", flagName(patch.RoleDirectCallOffset), bad.Off, bad.Rule())
		}
		return UsageErrorf("%s: %v", flagName(patch.RoleDirectCallOffset), err)
	}
	return nil
}

// withLockFlags says a safefile error (from Begin or Lock, not wrapped)
// with the flags of a command: the output Begin failed on as -o gave it,
// and, for a lock still held, how to wait for it when the command has
// --wait (canWait).
func withLockFlags(err error, canWait bool) error {
	var out *safefile.OutputError
	if errors.As(err, &out) && err == error(out) {
		return fmt.Errorf("-o %s: %w", out.Path, withLockFlags(out.Err, canWait))
	}
	var held *safefile.LockedError
	if !canWait || !errors.As(err, &held) || err != error(held) {
		return err
	}
	if held.Waited > 0 {
		return fmt.Errorf("%w (wait longer: --wait DURATION)", err)
	}
	return fmt.Errorf("%w; wait for it with --wait DURATION (e.g. --wait 1m)", err)
}
