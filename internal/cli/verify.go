// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/livesafe"
	"github.com/ftpatch/ftpatch/internal/pool"
	"github.com/ftpatch/ftpatch/internal/render"
	"github.com/ftpatch/ftpatch/internal/report"
	"github.com/ftpatch/ftpatch/internal/verify"
)

// VerifyOptions are the flags and arguments of `ftpatch verify`.
type VerifyOptions struct {
	Files               []string
	JSON                bool     // --json: one object per file per line
	Trampoline          string   // --trampoline SYM|ADDR
	RunFileTrampoline   bool     // --run-file-trampoline
	Against             string   // --against ORIG
	AllowInit           bool     // --allow-init: NOP -> MOV X9,X30 changes do not fail --against
	TrampolineNamed     bool     // --trampoline was given: a missing symbol is an input error
	Jobs                int      // -j
	Seed                uint64   // --seed
	Direct              []string // --direct: legal direct trampolines
	DirectCallOffset    int64    // --direct-call-offset
	DirectCallOffsetSet bool     // --direct-call-offset was given
	Quiet               bool     // --quiet: only failures, errors and the summary
	RequireSites        bool     // --require-sites: a file with no patch site is a finding
	CI                  CIOptions
	Select              Selection
	Walk                WalkOptions
}

// runAgainst runs the static --against comparison of orig and patched
// (livesafe.Compare), then runs each intermediate state on the emulator with
// vopts and writes the report to out.
func runAgainst(orig, patched *elfscan.Object, vopts verify.Options, out io.Writer, jsonOut bool) (*livesafe.Report, error) {
	rep, err := livesafe.Compare(orig, patched, livesafe.Options{})
	if err != nil {
		return nil, err
	}
	vopts.Progress = nil
	if err := verify.RunIntermediates(rep, orig, vopts); err != nil {
		return nil, withFlagNames(err)
	}
	if jsonOut {
		err = report.WriteLine(out, report.Against(rep))
	} else {
		err = report.AgainstText(out, rep)
	}
	return rep, err
}

// notLiveSafe counts the changes of rep running code may not take; init
// changes (NOP -> MOV X9,X30) separately, and not at all with allowInit.
func notLiveSafe(rep *livesafe.Report, allowInit bool) (n, inits int) {
	for _, ch := range rep.Changes {
		switch {
		case ch.LiveSafe:
		case ch.Kind == livesafe.KindMov:
			if !allowInit {
				n++
				inits++
			}
		default:
			n++
		}
	}
	return n, inits
}

// progressMin is the number of sites above which a terminal gets a bar.
const progressMin = 20000

func newVerifyCmd(stdio *IO) *cobra.Command {
	opts := &VerifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify [--json] [--trampoline SYM|ADDR] [--run-file-trampoline] [--direct SYM|ADDR]... [--against ORIG [--allow-init]] [--quiet] [--func GLOB]... [--exclude GLOB]... [--all-files] [--path GLOB]... [--exclude-path GLOB]... [--seed N] [--require-sites] [--junit FILE] [--sarif FILE] [-j N] [--max-decompressed SIZE] FILE|DIR...",
		Short: "Run every patch site on Unicorn's arm64 CPU and check what it does",
		Long: `Run every patch site on Unicorn's arm64 CPU, from the function entry to the
first instruction after the site, and check it behaves as its state says:
nop and init sites make no call and change no register (init: X9 = the return
address); enabled sites call op->func once with ip, parent_ip and op right,
through the trampoline (--trampoline, default ftrace_caller), and come back
with X0-X8, X19-X29, SP and X30 as they were. By default the tool's own
trampoline runs at the trampoline's address; --run-file-trampoline runs the
file's (an object found in a folder, such as a kernel tree's module, has none
until linked: it runs the tool's, said once). With --against ORIG, also exit
1 when a change from ORIG is not live-safe; NOP -> MOV X9,X30 (init) is one unless --allow-init says FILE is
not running yet.

--direct SYM|ADDR names a legal direct trampoline (repeatable; Linux 6.4+
direct calls). A site whose BL goes to one, or to the trampoline with an op
whose direct_call (at --direct-call-offset, default 208 as in Linux 6.12) is
set, runs that direct trampoline's code (the file's; for an address with no
code, or an object's undefined symbol, a stand-in like Linux's
ftrace_stub_direct_tramp): it must be entered once with X9 = the parent and
X30 = the return into the function, call no op->func, and come back with
X30 = the parent and X0-X8, X19-X29, SP as they were. With --direct the
tool's trampoline has the direct-call path. Exit 1 when a site fails, 2 on
input errors.
` + inputsHelp,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return UsageErrorf("verify needs at least one FILE or DIR")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Files = args
			opts.TrampolineNamed = cmd.Flags().Changed("trampoline")
			opts.DirectCallOffsetSet = cmd.Flags().Changed("direct-call-offset")
			return runVerify(opts, stdio)
		},
	}
	f := cmd.Flags()
	addJSONFlag(f, &opts.JSON)
	addTrampolineFlag(f, &opts.Trampoline, verify.DefaultTrampoline, "enabled sites must call")
	f.BoolVar(&opts.RunFileTrampoline, "run-file-trampoline", false, "run the file's own trampoline instead of the tool's")
	f.StringVar(&opts.Against, "against", "", "also check that FILE differs from `ORIG` only in live-safe site changes")
	f.BoolVar(&opts.AllowInit, "allow-init", false, "with --against: accept init changes (NOP -> MOV X9,X30), for a FILE that is not running yet")
	addJobsFlag(f, &opts.Jobs, "run sites on `N` workers")
	f.Uint64Var(&opts.Seed, "seed", 1, "seed `N` of the random register values")
	addQuietFlag(f, &opts.Quiet)
	opts.Select.addFlags(f)
	opts.Walk.addFlags(f)
	f.StringSliceVar(&opts.Direct, "direct", nil, "`SYM|ADDR` of a legal direct trampoline (repeatable): direct sites run it and must come back with X30 = parent")
	f.Int64Var(&opts.DirectCallOffset, "direct-call-offset", encode.DefaultDirectCallOffset, "with --direct: offset `N` of direct_call in struct ftrace_ops")
	f.BoolVar(&opts.RequireSites, "require-sites", false, "exit 1 for a file with no patch site at all (built without -fpatchable-function-entry?)")
	opts.CI.addFlags(f)
	addMaxDecompressedFlag(cmd)
	return cmd
}

// verified is one file's verify run: its report, and the sites it was
// given (for --junit, which lists the sites that passed too).
type verified struct {
	rep   *verify.Report
	sites []elfscan.Site
	total int  // the file's sites, before --func/--exclude
	rel   bool // the file is a relocatable object (a module)
	// tool: an object found by a walk that has no trampoline of its own
	// ran ftpatch's instead (--run-file-trampoline over a tree).
	tool bool
}

func runVerify(opts *VerifyOptions, stdio *IO) (err error) {
	if err := checkVerifyOptions(opts); err != nil {
		return err
	}
	// -j bounds the whole command's parallelism, the scan's goroutines
	// with the emulator's workers: verify -j 1 uses one CPU.
	if opts.Jobs < runtime.GOMAXPROCS(0) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(opts.Jobs))
	}
	if err := verify.EmulatorBuilt(); err != nil {
		return err
	}
	in := newWalker(opts.Walk, false).expand(opts.Files)
	if len(in.items) == 1 {
		// The Go heap stays on 4 KiB pages: see "A sixth look" in the
		// README (huge pages for it cost a cold host 1.35-1.79x the
		// floor's cpu where 4 KiB pages cost 1.21-1.23x).
		//
		// One file's sites and image stay live until its report is
		// written: a collection at the folder floor freed little and
		// cost ~20 ms of cpu on the 53k-site bench image (~0.4 µs a
		// site).
		defer gcOneFile()()
	} else {
		defer gcEmulatorWalk()()
	}
	verify.Preload() // libunicorn loads while the inputs are read
	vopts := verify.Options{Trampoline: opts.Trampoline, TrampolineNamed: opts.TrampolineNamed,
		RunFileTrampoline: opts.RunFileTrampoline, Jobs: opts.Jobs, Seed: opts.Seed,
		Direct: opts.Direct, DirectCallOffset: opts.DirectCallOffset, Names: flagName}
	if opts.Select.Active() {
		vopts.Select = opts.Select.Selects
	}
	var out, jsonErr io.Writer = stdio.Out, nil
	if opts.JSON {
		out = report.NewVersionStamp(stdio.Out, Version())
		jsonErr = out
	}
	if opts.Against != "" && (len(in.items) != 1 || in.items[0].err != nil) {
		return UsageErrorf("--against ORIG compares one FILE, got %s in %s", render.Count(len(in.items), "input"), opts.Files[0])
	}
	ci, err := opts.CI.open("ftpatch verify")
	if err != nil {
		return err
	}
	defer func() { err = ci.finish(err) }()
	if opts.Against != "" {
		return runVerifyAgainst(opts, in.items[0].path, vopts, stdio, out, jsonErr, ci)
	}
	return verifyAll(opts, in, vopts, stdio, out, jsonErr, ci)
}

// checkVerifyOptions checks verify's flags and arguments before anything
// is read.
func checkVerifyOptions(opts *VerifyOptions) error {
	if err := checkJobs(&opts.Jobs); err != nil {
		return err
	}
	if err := checkInputArgs(opts.Files); err != nil {
		return err
	}
	if err := opts.Select.check(); err != nil {
		return err
	}
	if err := opts.Walk.check(); err != nil {
		return err
	}
	if err := checkDirectCallOffset(len(opts.Direct) > 0, opts.DirectCallOffsetSet, opts.DirectCallOffset); err != nil {
		return err
	}
	if opts.Against != "" && len(opts.Files) != 1 {
		return UsageErrorf("--against ORIG compares one FILE, got %d", len(opts.Files))
	}
	if opts.AllowInit && opts.Against == "" {
		return UsageErrorf("--allow-init is for --against ORIG")
	}
	return nil
}

// verifyAll verifies the inputs: files run concurrently (at most Jobs at
// once), each with its own workers; reports are printed in input order.
func verifyAll(opts *VerifyOptions, in *runInputs, vopts verify.Options, stdio *IO, out, jsonErr io.Writer, ci *ciFiles) error {
	t := &verifyTally{opts: opts, in: in, out: out, ci: ci, run: newRunState("verify", stdio, in, jsonErr, opts.Quiet)}
	err := pool.Ordered(context.Background(), len(in.items), opts.Jobs,
		func(_ context.Context, i int) (verified, error) {
			it := &in.items[i]
			if it.err != nil {
				return verified{}, it.err
			}
			v, err := verifyOne(it.path, vopts, stdio, len(in.items) == 1, ci.Active())
			if errors.Is(err, verify.ErrNoFileTrampoline) && it.rel != "" && v.rel {
				// A module of a tree reaches the kernel's trampoline
				// through a relocation: its sites run the tool's.
				vo := vopts
				vo.RunFileTrampoline = false
				v, err = verifyOne(it.path, vo, stdio, false, ci.Active())
				v.tool = true
			}
			if err != nil {
				err = fmt.Errorf("file %s: %w", it.path, err)
			}
			return v, err
		},
		t.emit)
	if err != nil {
		return err // a mistake in the request, said once, or output failed
	}
	return t.end()
}

// verifyTally writes a verify run's files as they come, and counts them.
type verifyTally struct {
	opts          *VerifyOptions
	in            *runInputs
	out           io.Writer
	ci            *ciFiles
	run           *runState
	sites, failed int
	empty         []string // files without a patch site
	tool          []string // objects that ran the tool's trampoline (see verifyAll)
}

// emit writes input i's result, in input order; an error stops the run.
func (t *verifyTally) emit(i int, v verified, err error) error {
	t.run.step()
	if errors.Is(err, verify.ErrNoFileTrampoline) {
		// A mistake in the request: said once, and the run stops
		// (every other object would say it again).
		return fmt.Errorf("--run-file-trampoline: %w", err)
	}
	if err != nil {
		t.run.fail(i, err)
		t.ci.InputError(t.in.items[i].path, err.Error())
		return nil
	}
	t.sites += v.rep.Sites
	t.failed += v.rep.Failed
	if !t.opts.Quiet || v.rep.Failed > 0 {
		t.run.toStderr()
		if err := writeVerify(t.out, v.rep, t.opts.JSON); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
	}
	t.ci.VerifyFile(v.sites, v.rep)
	if v.tool {
		t.tool = append(t.tool, v.rep.File)
	}
	if v.total == 0 && t.opts.RequireSites {
		t.empty = append(t.empty, v.rep.File)
	}
	return nil
}

// end closes the run: the files without sites (--require-sites), the
// summary, then the exit status.
func (t *verifyTally) end() error {
	report.NoSites(t.run.io.Err, t.empty, true)
	report.RanToolTrampoline(t.run.io.Err, t.tool)
	t.run.sum.Sites, t.run.sum.SitesFailed = t.sites, intp(t.failed)
	if err := t.run.finish(); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if t.run.sum.Failed > 0 {
		return errInputsFailed{t.run.sum.Failed}
	}
	if err := t.opts.Select.unmatched(inputsName(t.in), t.opts.Files...); err != nil {
		return err
	}
	switch {
	case t.failed > 0:
		return fmt.Errorf("%s failed: %w", render.Count(t.failed, "site"), ErrFindings)
	case len(t.empty) > 0:
		return fmt.Errorf("%s without patch sites: %w", render.Count(len(t.empty), "file"), ErrFindings)
	}
	return nil
}

// runVerifyAgainst verifies file and compares it with opts.Against, each
// file opened (and decompressed, and scanned) once: FILE's sites run from
// the same Object the comparison reads, and ORIG's intermediate states from
// ORIG's.
func runVerifyAgainst(opts *VerifyOptions, file string, vopts verify.Options, stdio *IO, out, jsonErr io.Writer, ci *ciFiles) error {
	if fi, err := os.Stat(opts.Against); err == nil && fi.IsDir() {
		return fmt.Errorf("--against %s is a folder: ORIG must be the one file %s was patched from (run verify --against once per file)", opts.Against, file)
	}
	orig, err := elfscan.Open(opts.Against)
	if err != nil {
		return fmt.Errorf("--against %s: file %s: %w", opts.Against, opts.Against, err)
	}
	defer orig.Close()
	patched, err := elfscan.Open(file)
	if err != nil {
		return againstInputError(stdio, jsonErr, ci, file, err)
	}
	defer patched.Close()
	rep, err := verifyImage(func() (*verify.Image, error) {
		return verify.LoadObject(patched, vopts)
	}, vopts, stdio, true)
	if err != nil {
		return againstInputError(stdio, jsonErr, ci, file, err)
	}
	if err := writeVerify(out, rep, opts.JSON); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	ci.VerifyFile(checkedSites(patched, vopts, ci.Active()), rep)
	if err := opts.Select.unmatched(file); err != nil {
		return err
	}
	against, err := runAgainst(orig, patched, vopts, out, opts.JSON)
	if err != nil {
		return fmt.Errorf("--against %s: %w", opts.Against, err)
	}
	ci.AgainstFile(against, opts.AllowInit)
	notSafe, inits := notLiveSafe(against, opts.AllowInit)
	if notSafe > 0 {
		report.NotLiveSafe(stdio.Err, file, opts.Against, notSafe, inits)
	}
	if failed := rep.Failed + against.Counts.Problems + notSafe; failed > 0 {
		return fmt.Errorf("%d findings: %w", failed, ErrFindings)
	}
	return nil
}

// againstInputError reports FILE of verify --against that could not be
// read or loaded.
func againstInputError(stdio *IO, jsonErr io.Writer, ci *ciFiles, file string, err error) error {
	err = fmt.Errorf("file %s: %w", file, err)
	ci.InputError(file, err.Error())
	if werr := reportInput(stdio, jsonErr, file, err); werr != nil {
		return fmt.Errorf("writing output: %w", werr)
	}
	return errInputsFailed{1}
}

// verifyOne loads and checks one file, with a progress bar on a terminal
// when it has many sites and is the only file; withSites also returns the
// sites it checked (for --junit).
func verifyOne(path string, vopts verify.Options, stdio *IO, bar, withSites bool) (verified, error) {
	o, err := elfscan.Open(path)
	if err != nil {
		return verified{}, err
	}
	v := verified{rel: o.Rel()}
	v.rep, err = verifyImage(func() (*verify.Image, error) {
		defer o.Close() // the Image keeps what it needs, and the scan stays usable
		img, err := verify.LoadObject(o, vopts)
		if err == nil {
			sf, _ := o.Scan() // done by LoadObject: its result
			v.total = len(sf.Sites)
			v.sites = checkedSites(o, vopts, withSites)
		}
		return img, err
	}, vopts, stdio, bar)
	return v, err
}

// checkedSites are the sites of o that verify checks: its scan's, or the
// ones vopts.Select keeps. Only when want is set: nil otherwise.
func checkedSites(o *elfscan.Object, vopts verify.Options, want bool) []elfscan.Site {
	sf, err := o.Scan()
	if !want || err != nil {
		return nil
	}
	if vopts.Select == nil {
		return sf.Sites
	}
	return slices.DeleteFunc(slices.Clone(sf.Sites), func(s elfscan.Site) bool { return !vopts.Select(s.Func) })
}

// verifyImage loads an image with load and checks it.
func verifyImage(load func() (*verify.Image, error), vopts verify.Options, stdio *IO, bar bool) (*verify.Report, error) {
	start := time.Now()
	img, err := load()
	if err != nil {
		return nil, withFlagNames(err)
	}
	defer img.Close()
	releaseBeforeRun()
	if bar && stdio.IsTerminal && img.Sites() >= progressMin {
		pb := report.NewProgress(stdio.Err, img.Sites(), "verify")
		vopts.Progress = pb.Add
		defer pb.Finish()
	}
	vopts.Closing = true // the deferred Close is all that follows
	rep, err := verify.Check(img, vopts)
	if err != nil {
		return nil, err
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// writeVerify writes rep as its JSON line or as text.
func writeVerify(out io.Writer, rep *verify.Report, jsonOut bool) error {
	if jsonOut {
		return report.WriteLine(out, report.Verify(rep))
	}
	return report.VerifyText(out, rep)
}
