// SPDX-License-Identifier: Apache-2.0

package patch

import (
	"errors"
	"fmt"
)

// Role is what a value or a switch of a request is for. Messages of this
// package (and verify's) name roles, never how a command spells them: the
// caller spells each role its own way (cli: a flag name, from one table)
// with RoleError.Spell and RefusedError.Spell.
type Role string

// The roles messages name. Said without a Namer, a role is its own words.
const (
	RoleOps               Role = "ops"                // enable: the literal's value
	RoleDefaultOps        Role = "default ops"        // init, disable: the literal's idle value
	RoleTrampoline        Role = "trampoline"         // the common trampoline the BL goes to
	RoleDirect            Role = "direct trampoline"  // a direct trampoline (Linux 6.4+ direct calls)
	RoleDirectCallOffset  Role = "direct-call offset" // of op->direct_call in struct ftrace_ops
	RoleInitToo           Role = "init too"           // enable also initialises nop sites
	RoleSkipMisaligned    Role = "skip misaligned"    // leave sites with a misaligned literal alone
	RoleAllowAbsolute     Role = "allow absolute"     // store an absolute address in a PIE
	RoleClassicTrampoline Role = "classic trampoline" // how to build a classic trampoline for an ops
	RoleFileTrampoline    Role = "file trampoline"    // verify runs the file's own trampoline, not the tool's
)

// Namer spells a role as a caller's users know it.
type Namer func(Role) string

// Say is role as name spells it (a nil Namer: the role's own words).
func (name Namer) Say(role Role) string {
	if name == nil {
		return string(role)
	}
	return name(role)
}

// Words is a message that names roles: a fmt format and its arguments,
// among which each Role (and each Words) is spelled when the message is
// said. A %w verb wraps as fmt.Errorf's does.
type Words struct {
	format string
	args   []any
}

// Say makes Words.
func Say(format string, args ...any) Words { return Words{format, args} }

// Spell says w with every role spelled by name (nil: the role's own words).
func (w Words) Spell(name Namer) error {
	args := make([]any, len(w.args))
	for i, a := range w.args {
		switch a := a.(type) {
		case Role:
			args[i] = name.Say(a)
		case Words:
			args[i] = a.Spell(name) // an error: for %s and %w alike
		default:
			args[i] = a
		}
	}
	return fmt.Errorf(w.format, args...)
}

// RoleError is a mistake of the request about one role (an unknown
// symbol given as the trampoline, enable without ops...). Its message
// may name other roles, as advice.
type RoleError struct {
	Role  Role
	Words Words
}

func (e *RoleError) Error() string { return e.Words.Spell(nil).Error() }

// Unwrap returns the errors the message wraps (the kinds: ErrRequest...).
func (e *RoleError) Unwrap() []error { return unwrapAll(e.Words.Spell(nil)) }

// Spell returns the error with its roles spelled by name; it wraps what e
// wraps.
func (e *RoleError) Spell(name Namer) error { return e.Words.Spell(name) }

// roleErr makes a RoleError.
func roleErr(role Role, format string, args ...any) error {
	return &RoleError{Role: role, Words: Say(format, args...)}
}

// forRole names the role whose symbol could not be used (an unknown or
// ambiguous name), so the message says what the user gave.
func forRole(role Role, err error) error {
	if errors.Is(err, ErrSymbol) {
		return roleErr(role, "%s: %w", role, err)
	}
	return err
}

func unwrapAll(err error) []error {
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		return u.Unwrap()
	case interface{ Unwrap() error }:
		return []error{u.Unwrap()}
	}
	return nil
}
