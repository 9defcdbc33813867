// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/patch"
)

// initCommand is `ftpatch init`.
var initCommand = idleCommand{
	op:    patch.OpInit,
	use:   "[--default-ops SYM|ADDR] [--skip-misaligned] [--allow-absolute] [--func GLOB]... [--exclude GLOB]... [-o FILE|DIR] [-j N] [--quiet] [--all-files] [--path GLOB]... [--exclude-path GLOB]... [--wait DURATION] [--dry-run] [--junit FILE] [--sarif FILE] FILE|DIR...",
	short: "Initialise patch sites: literal := default ops, MOV X9,X30 after the entry",
	long: `Initialise every selected patch site as Linux's ftrace_init_nop does: the
literal (call-ops layout) gets the default ops (0 unless --default-ops), and
the first slot after the entry gets MOV X9, X30. Sites already initialised
are left alone (init is idempotent); an enabled site is refused: disable it
first. A site whose literal is misaligned is refused, as by enable, unless
--skip-misaligned. Without -o the file is replaced atomically.
`,
	skipMisaligned: true,
}

func newInitCmd(stdio *IO) *cobra.Command { return newIdleCmd(initCommand, stdio) }
