// SPDX-License-Identifier: Apache-2.0

package cli

// Flags and the run function shared by init, enable and disable.

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/patch"
	"github.com/ftpatch/ftpatch/internal/report"
	"github.com/ftpatch/ftpatch/internal/safefile"
)

// PatchOptions are the flags every patch command takes.
type PatchOptions struct {
	Files      []string      // the inputs: files, folders, kernel trees
	Output     string        // -o: write here instead of replacing the input (a folder for many inputs)
	OutputSet  bool          // -o was given (an empty -o is an error, not "in place")
	Wait       time.Duration // --wait: how long to wait for another run's lock
	DryRun     bool          // --dry-run: print the plan, write nothing
	DefaultOps string        // --default-ops: the literal's idle value (init, disable)
	Jobs       int           // -j: files patched at once
	Quiet      bool          // --quiet: only problems, errors and the summary
	Select     Selection     // --func, --exclude
	Walk       WalkOptions   // --all-files, --path, --exclude-path
	// AllowAbsolute (--allow-absolute) lets a non-zero literal be stored in
	// a PIE or shared file that has no dynamic relocation for it.
	AllowAbsolute bool
	CI            CIOptions // --junit, --sarif
}

func (o *PatchOptions) addFlags(f *pflag.FlagSet, defaultOps bool) {
	addOutputFlag(f, &o.Output, &o.OutputSet, "instead of replacing the input (with several inputs or a folder: an existing folder, each output at its path relative to the folder it was found in)")
	addJobsFlag(f, &o.Jobs, "patch up to `N` files at once")
	addQuietFlag(f, &o.Quiet)
	o.Walk.addFlags(f)
	f.DurationVar(&o.Wait, "wait", 0, "if another ftpatch is patching the file, wait up to `DURATION` (e.g. 30s) for it instead of failing at once")
	f.BoolVar(&o.DryRun, "dry-run", false, "print the planned writes (function, address, old word, new word) and write nothing")
	o.Select.addFlags(f)
	f.BoolVar(&o.AllowAbsolute, "allow-absolute", false, "store an absolute ops address in a PIE/shared file (no dynamic relocation)")
	o.CI.addFlags(f)
	if defaultOps {
		f.StringVar(&o.DefaultOps, "default-ops", "", "idle value of the literal: `SYM|ADDR` (default 0)")
	}
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

// oneFile is the Args check of show.
func oneFile(name string, file *string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return UsageErrorf("%s needs exactly one FILE, got %d arguments", name, len(args))
		}
		*file = args[0]
		return nil
	}
}

// patchArgs is the Args check of the patch commands: FILE|DIR....
func patchArgs(name string, files *[]string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return UsageErrorf("%s needs at least one FILE or DIR", name)
		}
		*files = args
		return nil
	}
}

// request builds the common part of a patch request from the flags.
func (o *PatchOptions) request(op patch.Op) (patch.Request, error) {
	if err := o.Select.check(); err != nil { // reads --func-file and --exclude-file
		return patch.Request{}, err
	}
	req := patch.Request{Op: op, Funcs: o.Select.Funcs, Exclude: o.Select.Exclude, AllowAbsolute: o.AllowAbsolute}
	if o.DefaultOps != "" {
		v, err := parseValueFlag("--default-ops", o.DefaultOps)
		if err != nil {
			return req, err
		}
		req.DefaultOps = v
	}
	return req, nil
}

// runPatch checks the flags shared by the patch commands, then patches
// one file (patchFile) or many (patchMany).
func runPatch(o *PatchOptions, req patch.Request, stdio *IO) (err error) {
	if err := checkInputArgs(o.Files); err != nil {
		return err
	}
	if len(o.Files) == 0 {
		return UsageErrorf("%s needs a FILE", req.Op)
	}
	if o.OutputSet && o.Output == "" {
		return UsageErrorf("-o is empty (an unset variable?): give a file name, or leave -o out to patch %s in place", strings.Join(o.Files, " "))
	}
	if o.Output == "-" {
		return UsageErrorf("-o -: %s", stdioHint)
	}
	if o.Wait < 0 {
		return UsageErrorf("--wait %v: a duration must not be negative", o.Wait)
	}
	if err := checkJobs(&o.Jobs); err != nil {
		return err
	}
	if err := o.Walk.check(); err != nil {
		return err
	}
	ci, err := o.CI.open("ftpatch " + string(req.Op))
	if err != nil {
		return err
	}
	defer func() { err = ci.finish(err) }()
	if st, err := os.Stat(o.Files[0]); len(o.Files) == 1 && (err != nil || !st.IsDir()) {
		defer gcOneFile()()
		res, err := patchFile(o, req, o.Files[0], o.Output, true, stdio.Out, stdio.Err)
		ci.patched(o.Files[0], res, err)
		if err == nil && res.line != "" {
			_, err = io.WriteString(stdio.Out, res.line)
		}
		return err
	}
	return patchMany(o, req, stdio, ci)
}

// patchReport is what the CI reports need of one file's patch: its sites,
// those the request left alone and those it refused.
type patchReport struct {
	rel     bool
	sites   []elfscan.Site
	selects func(string) bool
	skipped []patch.Skip
	refused []patch.Refusal
}

// patched reports one file's patch in the CI reports: res's sites, or,
// when the file could not be read or planned, err.
func (c *ciFiles) patched(file string, res *patchResult, err error) {
	if !c.Active() {
		return
	}
	if res != nil && res.ci != nil {
		r := res.ci
		c.PatchFile(file, r.rel, r.sites, r.selects, r.skipped, r.refused)
		return
	}
	if err != nil {
		c.InputError(file, err.Error())
	}
}

// patchResult is what patching one file did.
type patchResult struct {
	changed bool         // the plan changed something (else: unchanged)
	sites   int          // the file's sites (selected ones)
	done    int          // sites changed
	line    string       // the line that says so (stdout), "" with --dry-run
	ci      *patchReport // for --junit and --sarif; with the error of a refused plan too
}

// patchFile opens, plans and (unless --dry-run) writes one file, to
// output ("": in place). With ownSelect, a --func/--exclude pattern that
// matches no function of the file is an error (one file: the whole run);
// over many files patchMany judges the selection across all of them. The
// plan (--dry-run) goes to stdout, notices to stderr.
func patchFile(o *PatchOptions, req patch.Request, file, output string, ownSelect bool, stdout, stderr io.Writer) (*patchResult, error) {
	path := file
	var job *safefile.Job
	if !o.DryRun { // lock before reading, until the new file is in place
		var err error
		if job, err = safefile.Begin(file, output, safefile.Options{Wait: o.Wait, Warn: warnTo(stderr)}); err != nil {
			return nil, fmt.Errorf("file %s: %w", file, withLockFlags(err, true))
		}
		defer job.Close()
		path = job.Input
	}
	in, err := patch.Open(path)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", file, err)
	}
	defer in.Close()
	res := &patchResult{sites: selectedSites(&o.Select, in.Scan.Sites)}
	if ownSelect {
		if err := o.Select.unmatched(file); err != nil {
			return nil, err
		}
	}
	c, err := patch.Plan(in, req)
	err = withFlagNames(err)
	res.ci = &patchReport{rel: in.Scan.Type == elf.ET_REL, sites: in.Scan.Sites, selects: o.Select.selects()}
	if err != nil {
		var refused *patch.RefusedError
		if errors.As(err, &refused) {
			res.ci.refused = refused.Sites
			return res, inFile(file, err) // res: for the reports only
		}
		return nil, inFile(file, err)
	}
	res.ci.skipped = c.Skipped
	report.PatchSkipped(stderr, file, c)
	res.changed, res.done = !c.Empty(), c.Sites
	if o.DryRun {
		return res, report.PlanText(stdout, c)
	}
	var line strings.Builder
	out := output
	if out == "" {
		out = file
		if c.Empty() {
			report.PatchUnchanged(&line, file, req.Op, len(in.Scan.Sites))
			res.line = line.String()
			return res, nil
		}
	}
	if err := patch.Apply(in, c, job.Target); err != nil {
		return nil, fmt.Errorf("file %s: %w", file, err)
	}
	report.PatchDone(&line, out, req.Op, c)
	res.line = line.String()
	return res, nil
}

// selectedSites counts the sites sel selects (and marks the patterns
// that matched).
func selectedSites(sel *Selection, sites []elfscan.Site) int {
	if !sel.Active() {
		return len(sites)
	}
	n := 0
	for i := range sites {
		if sel.Selects(sites[i].Func) {
			n++
		}
	}
	return n
}
