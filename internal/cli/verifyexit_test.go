// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// verify's exit codes (issue 9.4), on the real binary: --against exits 1
// for any change that is not live-safe, an init change included, unless
// --allow-init; a named symbol that does not exist and an ORIG that is a
// folder are input errors (exit 2) that say what to do.
func TestVerifyExitCodes(t *testing.T) {
	p := newPromise(t)
	dir := t.TempDir()
	// Clang's image: every literal aligned, so the init change is the only
	// thing that is not live-safe.
	orig := testutil.Fixtures(t, "clang-callops-kimage.elf")[0]
	initd := filepath.Join(dir, "init.elf")
	p.mustRun(t, "init", "-o", initd, orig)
	enabled := filepath.Join(dir, "enabled.elf")
	p.mustRun(t, append(enableArgs, "--func", "fx_add", "-o", enabled, initd)...)
	disabled := filepath.Join(dir, "disabled.elf")
	p.mustRun(t, "disable", "-o", disabled, enabled)
	backToNop := filepath.Join(dir, "nop.elf") // init -> nop: MOV X9,X30 -> NOP, never live-safe
	writeFile(t, backToNop, readFile(t, orig), 0o755)
	obj := filepath.Join(dir, "enabled.o")
	p.mustRun(t, append(enableArgs, "--init", "-o", obj, testutil.Fixtures(t, "clang-callops-obj.o")[0])...)

	for _, c := range []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"init change", []string{"verify", "--against", orig, initd}, 1, "--allow-init"},
		{"init change allowed", []string{"verify", "--allow-init", "--against", orig, initd}, 0, ""},
		{"enable is live-safe", []string{"verify", "--against", initd, enabled}, 0, ""},
		{"disable is live-safe", []string{"verify", "--against", enabled, disabled}, 0, ""},
		{"unmov is never allowed", []string{"verify", "--allow-init", "--against", initd, backToNop}, 1, "not live-safe"},
		{"init change, JSON", []string{"verify", "--json", "--against", orig, initd}, 1, "--allow-init"},
		{"ORIG a folder", []string{"verify", "--against", dir, enabled}, 2, "is a folder"},
		{"no such trampoline", []string{"verify", "--trampoline", "no_such_symbol", enabled}, 2, "no_such_symbol"},
		{"no such trampoline, nop file", []string{"verify", "--trampoline", "no_such_symbol", orig}, 2, "no_such_symbol"},
		{"trampoline by address", []string{"verify", "--trampoline", "0x1000", orig}, 0, ""},
		{"--allow-init without --against", []string{"verify", "--allow-init", orig}, 2, "--allow-init is for --against"},
		// An object calls its trampoline through an undefined symbol: a
		// name is checked against the enabled sites' symbols.
		{"object: no such trampoline", []string{"verify", "--trampoline", "no_such_symbol", obj}, 2, `symbol "no_such_symbol" is not defined`},
		{"object: the trampoline it calls", []string{"verify", "--trampoline", "ftrace_caller", obj}, 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := p.run(t, c.args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.want) {
				t.Errorf("ftpatch %s: exit %d, stderr %q; want exit %d and %q\n%s", strings.Join(c.args, " "), r.code, r.stderr, c.code, c.want, r.stdout)
			}
		})
	}
}
