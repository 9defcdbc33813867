// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/patch"
)

// EnableOptions are the flags of `ftpatch enable`.
type EnableOptions struct {
	PatchOptions
	Ops             string // --ops: the literal's value, SYM or 0xADDR
	Trampoline      string // --trampoline: the BL target
	InitToo         bool   // --init: also initialise nop sites
	SkipMisaligned  bool   // --skip-misaligned
	Direct          string // --direct: direct trampoline
	DirectOffset    int64  // --direct-call-offset
	DirectOffsetSet bool   // --direct-call-offset was given
}

func newEnableCmd(stdio *IO) *cobra.Command {
	opts := &EnableOptions{}
	cmd := &cobra.Command{
		Use:   "enable [--ops SYM|ADDR] [--trampoline SYM|ADDR] [--direct SYM|ADDR [--direct-call-offset N]] [--init] [--skip-misaligned] [--allow-absolute] [--func GLOB]... [--exclude GLOB]... [-o FILE|DIR] [-j N] [--quiet] [--all-files] [--path GLOB]... [--exclude-path GLOB]... [--wait DURATION] [--dry-run] [--junit FILE] [--sarif FILE] FILE|DIR...",
		Short: "Enable patch sites: literal := ops, then BL trampoline",
		Long: `Enable the selected sites as Linux's ftrace_make_call does: the literal gets
--ops (required for call-ops sites, refused for classic ones), then the
second slot gets BL to the trampoline (default ftrace_caller). Sites must be
initialised (or enabled already); --init does both steps for nop sites.
A site whose literal is misaligned is refused unless --skip-misaligned.
In relocatable objects the literal and the BL get R_AARCH64_ABS64 and
R_AARCH64_CALL26 relocations; missing symbols are added as undefined.

--direct SYM|ADDR enables direct calls, as Linux does for an ops with a
direct trampoline (ftrace_ops::direct_call, Linux 6.4+): the BL goes straight
to that trampoline when it is within BL range (±128 MiB); the literal still
gets --ops. Out of range, the BL goes to the common trampoline, which
branches to op->direct_call: then --ops must name an ops whose direct_call
(at --direct-call-offset, default 208 as in Linux 6.12) is set, or enable
refuses. In objects the BL gets a CALL26 against the direct trampoline.
` + patchManyHelp,
		Args: patchArgs("enable", &opts.Files),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.DirectOffsetSet = cmd.Flags().Changed("direct-call-offset")
			return runEnable(opts, stdio)
		},
	}
	f := cmd.Flags()
	opts.addFlags(f, false)
	f.StringVar(&opts.Ops, "ops", "", "literal value: the ops `SYM|ADDR`")
	addTrampolineFlag(f, &opts.Trampoline, patch.DefaultTrampoline, "the BL branches to")
	f.BoolVar(&opts.InitToo, "init", false, "also initialise sites that are still nop")
	f.BoolVar(&opts.SkipMisaligned, "skip-misaligned", false, "leave sites with a misaligned literal untouched (reported on stderr)")
	f.StringVar(&opts.Direct, "direct", "", "direct trampoline `SYM|ADDR`: BL straight to it when in range")
	f.Int64Var(&opts.DirectOffset, "direct-call-offset", encode.DefaultDirectCallOffset, "with --direct: offset `N` of direct_call in struct ftrace_ops")
	return cmd
}

func runEnable(opts *EnableOptions, stdio *IO) error {
	req, err := opts.request(patch.OpEnable)
	if err != nil {
		return err
	}
	if opts.Ops != "" {
		v, err := parseValueFlag("--ops", opts.Ops)
		if err != nil {
			return err
		}
		req.Ops = &v
	}
	if req.Trampoline, err = parseValueFlag("--trampoline", opts.Trampoline); err != nil {
		return err
	}
	if req.Trampoline.IsZero() {
		return UsageErrorf("--trampoline 0: a BL to address 0 is not a trampoline")
	}
	req.InitToo, req.SkipMisaligned = opts.InitToo, opts.SkipMisaligned
	if err := checkDirectCallOffset(opts.Direct != "", opts.DirectOffsetSet, opts.DirectOffset); err != nil {
		return err
	}
	if opts.Direct != "" {
		v, err := patch.ParseValue(opts.Direct)
		if err != nil {
			return UsageErrorf("--direct: %v", err)
		}
		req.Direct, req.DirectCallOffset = &v, opts.DirectOffset
	}
	return runPatch(&opts.PatchOptions, req, stdio)
}
