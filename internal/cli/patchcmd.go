// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/patch"
)

// idleCommand describes a patch command that leaves the literal at its
// idle value (--default-ops): init and disable, built by newIdleCmd.
type idleCommand struct {
	op    patch.Op
	use   string // after the command's name
	short string
	long  string // before patchManyHelp
	// skipMisaligned: the command takes --skip-misaligned (a command that
	// writes slot1 can meet a misaligned literal).
	skipMisaligned bool
}

// IdleOptions are the flags of init and disable.
type IdleOptions struct {
	PatchOptions
	SkipMisaligned bool // --skip-misaligned (init)
}

// newIdleCmd builds the command c describes.
func newIdleCmd(c idleCommand, stdio *IO) *cobra.Command {
	opts := &IdleOptions{}
	cmd := &cobra.Command{
		Use:   string(c.op) + " " + c.use,
		Short: c.short,
		Long:  c.long + patchManyHelp,
		Args:  patchArgs(string(c.op), &opts.Files),
		RunE:  func(cmd *cobra.Command, args []string) error { return runIdle(c.op, opts, stdio) },
	}
	opts.addFlags(cmd.Flags(), true)
	if c.skipMisaligned {
		cmd.Flags().BoolVar(&opts.SkipMisaligned, "skip-misaligned", false, "leave sites with a misaligned literal untouched (reported on stderr)")
	}
	return cmd
}

func runIdle(op patch.Op, opts *IdleOptions, stdio *IO) error {
	req, err := opts.request(op)
	if err != nil {
		return err
	}
	req.SkipMisaligned = opts.SkipMisaligned
	return runPatch(&opts.PatchOptions, req, stdio)
}
