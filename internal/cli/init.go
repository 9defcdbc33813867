// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/patch"
)

// InitOptions are the flags of `ftpatch init`.
type InitOptions struct {
	PatchOptions
	SkipMisaligned bool // --skip-misaligned
}

func newInitCmd(io *IO) *cobra.Command {
	opts := &InitOptions{}
	cmd := &cobra.Command{
		Use:   "init [--default-ops SYM|ADDR] [--skip-misaligned] [--allow-absolute] [--func GLOB]... [--exclude GLOB]... [-o FILE|DIR] [-j N] [--quiet] [--all-files] [--path GLOB]... [--exclude-path GLOB]... [--wait DURATION] [--dry-run] [--junit FILE] [--sarif FILE] FILE|DIR...",
		Short: "Initialise patch sites: literal := default ops, MOV X9,X30 after the entry",
		Long: `Initialise every selected patch site as Linux's ftrace_init_nop does: the
literal (call-ops layout) gets the default ops (0 unless --default-ops), and
the first slot after the entry gets MOV X9, X30. Sites already initialised
are left alone (init is idempotent); an enabled site is refused: disable it
first. A site whose literal is misaligned is refused, as by enable, unless
--skip-misaligned. Without -o the file is replaced atomically.
` + patchManyHelp,
		Args: patchArgs("init", &opts.Files),
		RunE: func(cmd *cobra.Command, args []string) error { return runInit(opts, io) },
	}
	opts.addFlags(cmd.Flags(), true)
	cmd.Flags().BoolVar(&opts.SkipMisaligned, "skip-misaligned", false, "leave sites with a misaligned literal untouched (reported on stderr)")
	return cmd
}

func runInit(opts *InitOptions, io *IO) error {
	req, err := opts.request(patch.OpInit)
	if err != nil {
		return err
	}
	req.SkipMisaligned = opts.SkipMisaligned
	return runPatch(&opts.PatchOptions, req, io)
}
