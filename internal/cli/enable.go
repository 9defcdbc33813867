package cli

import (
	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/patch"
)

// EnableOptions are the flags of `ftpatch enable`.
type EnableOptions struct {
	PatchOptions
	Ops            string // --ops: the literal's value, SYM or 0xADDR
	Trampoline     string // --trampoline: the BL target
	InitToo        bool   // --init: also initialise nop sites
	SkipMisaligned bool   // --skip-misaligned
}

func newEnableCmd(io *IO) *cobra.Command {
	opts := &EnableOptions{}
	cmd := &cobra.Command{
		Use:   "enable [--ops SYM|ADDR] [--trampoline SYM|ADDR] [--func GLOB]... [--exclude GLOB]... [--init] FILE",
		Short: "Enable patch sites: literal := ops, then BL trampoline",
		Long: `Enable the selected sites as Linux's ftrace_make_call does: the literal gets
--ops (required for call-ops sites, refused for classic ones), then the
second slot gets BL to the trampoline (default ftrace_caller). Sites must be
initialised (or enabled already); --init does both steps for nop sites.
A site whose literal is misaligned is refused unless --skip-misaligned.
In relocatable objects the literal and the BL get R_AARCH64_ABS64 and
R_AARCH64_CALL26 relocations; missing symbols are added as undefined.`,
		Args: oneFile("enable", &opts.File),
		RunE: func(cmd *cobra.Command, args []string) error { return runEnable(opts, io) },
	}
	f := cmd.Flags()
	opts.addFlags(f, false)
	f.StringVar(&opts.Ops, "ops", "", "literal value: ops `SYM` or 0xADDR")
	f.StringVar(&opts.Trampoline, "trampoline", patch.DefaultTrampoline, "BL target: `SYM` or 0xADDR")
	f.BoolVar(&opts.InitToo, "init", false, "also initialise sites that are still nop")
	f.BoolVar(&opts.SkipMisaligned, "skip-misaligned", false, "leave sites with a misaligned literal untouched (reported on stderr)")
	return cmd
}

func runEnable(opts *EnableOptions, io *IO) error {
	req, err := opts.request(patch.OpEnable)
	if err != nil {
		return err
	}
	if opts.Ops != "" {
		v, err := patch.ParseValue(opts.Ops)
		if err != nil {
			return UsageErrorf("--ops: %v", err)
		}
		req.Ops = &v
	}
	if opts.Trampoline == "" {
		return UsageErrorf("--trampoline must not be empty")
	}
	if req.Trampoline, err = patch.ParseValue(opts.Trampoline); err != nil {
		return UsageErrorf("--trampoline: %v", err)
	}
	if req.Trampoline.IsZero() {
		return UsageErrorf("--trampoline 0: a BL to address 0 is not a trampoline")
	}
	req.InitToo, req.SkipMisaligned = opts.InitToo, opts.SkipMisaligned
	return runPatch(&opts.PatchOptions, req, io)
}
