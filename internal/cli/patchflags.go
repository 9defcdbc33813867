package cli

// Flags and the run function shared by init, enable and disable.

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ftpatch/ftpatch/internal/patch"
)

// PatchOptions are the flags every patch command takes.
type PatchOptions struct {
	File       string    // the input
	Output     string    // -o: write here instead of replacing File
	DryRun     bool      // --dry-run: print the plan, write nothing
	DefaultOps string    // --default-ops: the literal's idle value (init, disable)
	Select     Selection // --func, --exclude
	// AllowAbsolute (--allow-absolute) lets a non-zero literal be stored in
	// a PIE or shared file that has no dynamic relocation for it.
	AllowAbsolute bool
}

func (o *PatchOptions) addFlags(f *pflag.FlagSet, defaultOps bool) {
	addOutputFlag(f, &o.Output, "instead of replacing the input")
	f.BoolVar(&o.DryRun, "dry-run", false, "print the planned writes (function, address, old word, new word) and write nothing")
	o.Select.addFlags(f)
	f.BoolVar(&o.AllowAbsolute, "allow-absolute", false, "store an absolute ops address in a PIE/shared file (no dynamic relocation)")
	if defaultOps {
		f.StringVar(&o.DefaultOps, "default-ops", "", "idle value of the literal: `SYM|ADDR` (default 0)")
	}
}

// oneFile is the Args check of the patch commands.
func oneFile(name string, file *string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return UsageErrorf("%s needs exactly one FILE, got %d arguments", name, len(args))
		}
		*file = args[0]
		return nil
	}
}

// request builds the common part of a patch request from the flags.
func (o *PatchOptions) request(op patch.Op) (patch.Request, error) {
	req := patch.Request{Op: op, Funcs: o.Select.Funcs, Exclude: o.Select.Exclude, AllowAbsolute: o.AllowAbsolute}
	if err := o.Select.check(); err != nil {
		return req, err
	}
	if o.DefaultOps != "" {
		v, err := parseValueFlag("--default-ops", o.DefaultOps)
		if err != nil {
			return req, err
		}
		req.DefaultOps = v
	}
	return req, nil
}

// runPatch opens, plans and (unless --dry-run) writes one file.
func runPatch(o *PatchOptions, req patch.Request, io *IO) error {
	if o.File == "" {
		return UsageErrorf("%s needs a FILE", req.Op)
	}
	if err := checkOutput(o.Output); err != nil {
		return err
	}
	in, err := patch.Open(o.File)
	if err != nil {
		return fmt.Errorf("file %s: %w", o.File, err)
	}
	defer in.Close()
	for i := range in.Scan.Sites {
		o.Select.Selects(in.Scan.Sites[i].Func)
	}
	if err := o.Select.unmatched(o.File); err != nil {
		return err
	}
	c, err := patch.Plan(in, req)
	if err != nil {
		return inFile(o.File, err)
	}
	for _, s := range c.Skipped {
		fmt.Fprintf(io.Err, "ftpatch: file %s: skipped function %s at %s: %s\n", o.File, s.Func, s.Where, s.Reason)
	}
	if o.DryRun {
		return c.Print(io.Out)
	}
	out := o.Output
	if out == "" {
		out = o.File
		if c.Empty() {
			fmt.Fprintf(io.Out, "%s: %s: nothing to change (%d sites)\n", o.File, req.Op, len(in.Scan.Sites))
			return nil
		}
	}
	if err := patch.Apply(in, c, out); err != nil {
		return fmt.Errorf("file %s: %w", o.File, outputError(out, err))
	}
	fmt.Fprintf(io.Out, "%s: %s: %d sites changed (%d words, %d relocations, %d symbols added)%s\n",
		out, req.Op, c.Sites, len(c.Writes), len(c.Relocs), len(c.NewSyms), skippedNote(c))
	return nil
}

func skippedNote(c *patch.Changes) string {
	if len(c.Skipped) == 0 {
		return ""
	}
	return fmt.Sprintf(", %d skipped", len(c.Skipped))
}
