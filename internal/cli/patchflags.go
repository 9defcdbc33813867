package cli

// Flags and the run function shared by init, enable and disable.

import (
	"debug/elf"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ftpatch/ftpatch/internal/patch"
	"github.com/ftpatch/ftpatch/internal/report"
	"github.com/ftpatch/ftpatch/internal/safefile"
)

// PatchOptions are the flags every patch command takes.
type PatchOptions struct {
	File       string        // the input
	Output     string        // -o: write here instead of replacing File
	OutputSet  bool          // -o was given (an empty -o is an error, not "in place")
	Wait       time.Duration // --wait: how long to wait for another run's lock
	DryRun     bool          // --dry-run: print the plan, write nothing
	DefaultOps string        // --default-ops: the literal's idle value (init, disable)
	Select     Selection     // --func, --exclude
	// AllowAbsolute (--allow-absolute) lets a non-zero literal be stored in
	// a PIE or shared file that has no dynamic relocation for it.
	AllowAbsolute bool
	CI            CIOptions // --junit, --sarif
}

func (o *PatchOptions) addFlags(f *pflag.FlagSet, defaultOps bool) {
	addOutputFlag(f, &o.Output, &o.OutputSet, "instead of replacing the input")
	f.DurationVar(&o.Wait, "wait", 0, "if another ftpatch is patching the file, wait up to `DURATION` (e.g. 30s) for it instead of failing at once")
	f.BoolVar(&o.DryRun, "dry-run", false, "print the planned writes (function, address, old word, new word) and write nothing")
	o.Select.addFlags(f)
	f.BoolVar(&o.AllowAbsolute, "allow-absolute", false, "store an absolute ops address in a PIE/shared file (no dynamic relocation)")
	o.CI.addFlags(f)
	if defaultOps {
		f.StringVar(&o.DefaultOps, "default-ops", "", "idle value of the literal: `SYM|ADDR` (default 0)")
	}
}

// patchInputError reports err, the error of a file a patch command could
// not read, in the reports too.
func patchInputError(ci *ciFiles, file string, err error) error {
	ci.InputError(file, err.Error())
	return err
}

// outputFlag is -o: a string that remembers being set, so that `-o ""`
// (an unset variable in a script) is an error instead of "in place".
type outputFlag struct {
	path *string
	set  *bool
}

func (f outputFlag) String() string {
	if f.path == nil {
		return ""
	}
	return *f.path
}
func (f outputFlag) Set(s string) error { *f.path, *f.set = s, true; return nil }
func (f outputFlag) Type() string       { return "string" }

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
func runPatch(o *PatchOptions, req patch.Request, io *IO) (err error) {
	if o.File == "" {
		return UsageErrorf("%s needs a FILE", req.Op)
	}
	if o.OutputSet && o.Output == "" {
		return UsageErrorf("-o is empty (an unset variable?): give a file name, or leave -o out to patch %s in place", o.File)
	}
	if o.Wait < 0 {
		return UsageErrorf("--wait %v: a duration must not be negative", o.Wait)
	}
	defer gcOneFile()()
	ci, err := o.CI.open("ftpatch " + string(req.Op))
	if err != nil {
		return err
	}
	defer func() { err = ci.finish(err) }()
	path := o.File
	var job *safefile.Job
	if !o.DryRun { // lock before reading, until the new file is in place
		var err error
		if job, err = safefile.Begin(o.File, o.Output, safefile.Options{Wait: o.Wait, Warn: io.Err}); err != nil {
			return patchInputError(ci, o.File, fmt.Errorf("file %s: %w", o.File, err))
		}
		defer job.Close()
		path = job.Input
	}
	in, err := patch.Open(path)
	if err != nil {
		return patchInputError(ci, o.File, fmt.Errorf("file %s: %w", o.File, err))
	}
	defer in.Close()
	for i := range in.Scan.Sites {
		o.Select.Selects(in.Scan.Sites[i].Func)
	}
	if err := o.Select.unmatched(o.File); err != nil {
		return err
	}
	c, err := patch.Plan(in, req)
	rel := in.Scan.Type == elf.ET_REL
	if err != nil {
		var refused *patch.RefusedError
		if errors.As(err, &refused) {
			ci.PatchFile(o.File, rel, in.Scan.Sites, o.Select.selects(), nil, refused.Sites)
		} else {
			ci.InputError(o.File, inFile(o.File, err).Error())
		}
		return inFile(o.File, err)
	}
	ci.PatchFile(o.File, rel, in.Scan.Sites, o.Select.selects(), c.Skipped, nil)
	report.PatchSkipped(io.Err, o.File, c)
	if o.DryRun {
		return report.PlanText(io.Out, c)
	}
	out := o.Output
	if out == "" {
		out = o.File
		if c.Empty() {
			return report.PatchUnchanged(io.Out, o.File, req.Op, len(in.Scan.Sites))
		}
	}
	if err := patch.Apply(in, c, job.Target); err != nil {
		return fmt.Errorf("file %s: %w", o.File, err)
	}
	return report.PatchDone(io.Out, out, req.Op, c)
}
