// SPDX-License-Identifier: Apache-2.0

package cli

// Library messages name roles (patch.Role: ops, trampoline, direct
// trampoline...), never flags; this file is the one place they get the
// names a user types.

import (
	"errors"

	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/patch"
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
