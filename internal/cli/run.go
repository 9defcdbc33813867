// SPDX-License-Identifier: Apache-2.0

package cli

// A run of one command over its inputs: failures reported in their place,
// skipped files counted, progress on a terminal, and the summary at the end.

import (
	"io"

	"github.com/spf13/pflag"

	"github.com/ftpatch/ftpatch/internal/report"
)

// progressMinInputs is the number of inputs from which a folder run shows
// its progress on a terminal.
const progressMinInputs = 50

// runState is what a command over many inputs adds up as it goes. Its
// methods run on the goroutine that emits results in order.
type runState struct {
	io    *IO
	in    *runInputs
	sum   report.Summary
	quiet bool
	// jsonOut is stdout with --json (error lines and the summary line go
	// there), else nil. flush, when set, flushes stdout before anything
	// goes to stderr, for a reader of both.
	jsonOut io.Writer
	flush   func()
	bar     *report.Progress // nil: none
	// writeErr is the first failed write of an input's error line.
	writeErr error
}

// newRunState starts a run of cmd over in: it says which folders were
// read as kernel trees (unless quiet) and starts the progress bar.
func newRunState(cmd string, stdio *IO, in *runInputs, jsonOut io.Writer, quiet bool) *runState {
	r := &runState{io: stdio, in: in, quiet: quiet, jsonOut: jsonOut,
		sum: report.Summary{Command: cmd, Inputs: len(in.items), Trees: in.trees}}
	if !quiet {
		for i := range in.trees {
			report.TreeRead(stdio.Err, &in.trees[i])
		}
	}
	if stdio.IsTerminal && !quiet && in.folders > 0 && len(in.items) >= progressMinInputs {
		r.bar = report.NewProgress(stdio.Err, len(in.items), cmd)
	}
	return r
}

// toStderr makes stderr ready for a line: stdout flushed, the bar cleared
// (it draws itself again on the next step).
func (r *runState) toStderr() {
	if r.flush != nil {
		r.flush()
	}
	r.bar.Clear()
}

// fail reports input i's error in its place (stderr, and its JSON line)
// and counts it.
func (r *runState) fail(i int, err error) {
	r.toStderr()
	r.sum.Failed++
	if werr := reportInput(r.io, r.jsonOut, r.in.items[i].path, err); r.writeErr == nil {
		r.writeErr = werr
	}
}

// skipped reports whether err, from opening input i, says it is a file
// the walk would have skipped (scan opens a folder's files unread); it is
// then counted as skipped.
func (r *runState) skipped(i int, err error) bool {
	if !r.in.items[i].unsure || !skippable(err) {
		return false
	}
	r.sum.Inputs--
	r.in.skips.add(r.in.items[i].path, err)
	return true
}

// step moves the progress bar one input on.
func (r *runState) step() {
	r.bar.Add(1)
}

// finish ends the run: the line naming what was skipped (unless quiet),
// then, for a run that has one, the summary on stderr and, with --json, as
// the last line of stdout.
func (r *runState) finish() error {
	r.bar.Finish()
	if r.flush != nil {
		r.flush()
	}
	if !r.quiet {
		report.SkippedText(r.io.Err, r.in.skips.shown())
	}
	if !r.in.summarize() {
		return nil
	}
	r.sum.Skipped = r.in.skips.byReason
	if r.sum.Skipped == nil {
		r.sum.Skipped = map[string]int{}
	}
	report.SummaryText(r.io.Err, &r.sum)
	if r.writeErr != nil {
		return r.writeErr
	}
	if r.jsonOut != nil {
		if err := report.WriteSummary(r.jsonOut, &r.sum); err != nil {
			return err
		}
		if f, ok := r.jsonOut.(interface{ Flush() error }); ok {
			return f.Flush()
		}
	}
	return nil
}

// inputsHelp ends the help of every command that takes FILE|DIR....
const inputsHelp = `
A folder holding vmlinux and modules.order is read as a kernel build tree:
vmlinux, each module modules.order lists (a listed foo.o stands for the
foo.ko beside it), and the module files it does not list (extra/,
updates/); an installed tree (lib/modules/VERSION: modules.order and
modules.dep or modules.builtin) the same way, its modules plain or
compressed. A listed module that is missing is an error. --all-files reads
the folder as any other. Other folders are walked for 64-bit AArch64 ELF
files (plain or compressed); what is not one (host programs, other
machines' objects, archives, scripts) is skipped, counted and named in one
line on stderr. --path and --exclude-path take or leave the files of a
folder by their path relative to it (* within a name, ** across folders).
A run over several inputs or a folder ends with a summary line on stderr
(and, with --json, as the last JSON line); --quiet prints only problems,
errors and the summary.`

// patchManyHelp ends the help of init, enable and disable.
const patchManyHelp = `
FILE|DIR...: with one FILE, -o names the output file. With several inputs
or a folder, -o names an existing folder: each output keeps its path
relative to the folder it was found in (a FILE goes to DIR/its name), and
two inputs that would write one path are an error before anything is
written. Files are patched in parallel (-j), each locked and replaced as
one file is; a file that fails is left untouched and the others go on;
the exit status is the worst of all. --func and --exclude are judged over
all the inputs. Compressed modules are refused: patch the modules of the
build tree, or decompress them first.
` + inputsHelp

// addQuietFlag is --quiet.
func addQuietFlag(f *pflag.FlagSet, p *bool) {
	f.BoolVarP(p, "quiet", "q", false, "print only problems, errors and the run's summary")
}

// intp is a pointer to a copy of n (the summary's optional counts).
func intp(n int) *int { return &n }
