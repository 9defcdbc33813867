// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/patch"
)

// DisableOptions are the flags of `ftpatch disable`.
type DisableOptions struct {
	PatchOptions
}

func newDisableCmd(io *IO) *cobra.Command {
	opts := &DisableOptions{}
	cmd := &cobra.Command{
		Use:   "disable [--default-ops SYM|ADDR] [--allow-absolute] [--func GLOB]... [--exclude GLOB]... [-o FILE|DIR] [-j N] [--quiet] [--all-files] [--path GLOB]... [--exclude-path GLOB]... [--wait DURATION] [--dry-run] [--junit FILE] [--sarif FILE] FILE|DIR...",
		Short: "Disable patch sites: BL := NOP, literal := default ops",
		Long: `Disable the selected enabled sites as Linux's ftrace_make_nop does: the BL
becomes a NOP first, then the literal gets the default ops back (0 unless
--default-ops). Disable after enable gives the init bytes back exactly;
sites that are not enabled are left alone.
` + patchManyHelp,
		Args: patchArgs("disable", &opts.Files),
		RunE: func(cmd *cobra.Command, args []string) error { return runDisable(opts, io) },
	}
	opts.addFlags(cmd.Flags(), true)
	return cmd
}

func runDisable(opts *DisableOptions, io *IO) error {
	req, err := opts.request(patch.OpDisable)
	if err != nil {
		return err
	}
	return runPatch(&opts.PatchOptions, req, io)
}
