// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/patch"
)

// disableCommand is `ftpatch disable`.
var disableCommand = idleCommand{
	op:    patch.OpDisable,
	use:   "[--default-ops SYM|ADDR] [--allow-absolute] [--func GLOB]... [--exclude GLOB]... [-o FILE|DIR] [-j N] [--quiet] [--all-files] [--path GLOB]... [--exclude-path GLOB]... [--wait DURATION] [--dry-run] [--junit FILE] [--sarif FILE] FILE|DIR...",
	short: "Disable patch sites: BL := NOP, literal := default ops",
	long: `Disable the selected enabled sites as Linux's ftrace_make_nop does: the BL
becomes a NOP first, then the literal gets the default ops back (0 unless
--default-ops). Disable after enable gives the init bytes back exactly;
sites that are not enabled are left alone.
`,
}

func newDisableCmd(stdio *IO) *cobra.Command { return newIdleCmd(disableCommand, stdio) }
