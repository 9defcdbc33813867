// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/pool"
	"github.com/ftpatch/ftpatch/internal/render"
	"github.com/ftpatch/ftpatch/internal/report"
	"github.com/ftpatch/ftpatch/internal/sitediff"
)

// DiffOptions are the flags and arguments of `ftpatch diff`.
type DiffOptions struct {
	JSON     bool
	Ignore   []string // --ignore CODE[,CODE]: regressions that do not make the exit status 1
	Jobs     int
	CI       CIOptions
	Old, New string
}

// diffCodes are the codes diff --ignore takes besides the problem codes.
var diffCodes = []string{report.RuleLostSite, report.RuleLayoutChange, report.RuleRemovedInput}

func newDiffCmd(stdio *IO) *cobra.Command {
	opts := &DiffOptions{}
	cmd := &cobra.Command{
		Use:   "diff [--json] [--ignore CODE[,CODE]] [--junit FILE] [--sarif FILE] [-j N] [--max-decompressed SIZE] OLD NEW",
		Short: "Compare the patch sites of two builds: exit 1 when functions lost theirs",
		Long: `Compare the patch sites of two builds, input by input: functions that lost
their patch site, sites that gained a problem, layout changes, functions
added and removed. OLD and NEW are each a file, a folder (a kernel build
tree), or a saved scan --json output (recognised by its contents): keep the
base build's scan --json and compare each new build with it.

Inputs are paired by their path from the side's root (a module of an
installed tree by its path under lib/modules/RELEASE/kernel, a compressed
module as the plain one; two sides of one input each are compared whatever
their names). Sites are matched by function and section, functions of one
name by their order, then by name alone (a function that moved section).
A site of OLD missing from NEW is lost when NEW still has the function, or
when NEW is a saved scan (which lists sites only), and removed otherwise.

Exit 1 when something regressed: a site lost, a problem gained, a site that
lost its literal (call-ops to classic), an input of OLD missing from NEW;
--ignore CODE accepts a problem code or lost-site, layout-change,
removed-input. Exit 2 when an input cannot be read.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return UsageErrorf("diff compares two builds: give OLD and NEW (files, folders or saved scan --json outputs), got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Old, opts.New = args[0], args[1]
			return runDiff(opts, stdio)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object per input per line (docs/json.md)")
	f.StringSliceVar(&opts.Ignore, "ignore", nil, "regressions of `CODE[,CODE]` (a problem code, lost-site, layout-change, removed-input) do not make the exit status 1")
	addJobsFlag(f, &opts.Jobs, "compare up to `N` inputs at once")
	opts.CI.addFlags(f)
	addMaxDecompressedFlag(cmd)
	return cmd
}

// diffIgnored checks --ignore and returns what it accepts.
func diffIgnored(codes []string) (func(string) bool, error) {
	known := slices.Clone(diffCodes)
	for _, c := range elfscan.Codes {
		known = append(known, string(c))
	}
	set := map[string]bool{}
	for _, c := range codes {
		c = strings.TrimSpace(c)
		if !slices.Contains(known, c) {
			return nil, UsageErrorf("--ignore: unknown code %q (known: %s)", c, strings.Join(known, ", "))
		}
		set[c] = true
	}
	return func(c string) bool { return set[c] }, nil
}

// diffOutcome is one pair compared.
type diffOutcome struct {
	pair     *report.DiffPair
	newSites []sitediff.Site
}

// diffTally counts a diff run's inputs as they come.
type diffTally struct {
	inputs, changed, regressed, regressions, failed int
}

func runDiff(opts *DiffOptions, stdio *IO) (err error) {
	if err := checkJobs(&opts.Jobs); err != nil {
		return err
	}
	ignored, err := diffIgnored(opts.Ignore)
	if err != nil {
		return err
	}
	oldSide, newSide, err := openDiffSides(opts.Old, opts.New)
	if err != nil {
		return err
	}
	defer oldSide.close()
	defer newSide.close()
	ci, err := opts.CI.open("ftpatch diff")
	if err != nil {
		return err
	}
	defer func() { err = ci.finish(err) }()
	var out flushWriter = bufio.NewWriterSize(stdio.Out, 256<<10)
	if opts.JSON {
		out = report.NewVersionStamp(out, Version())
	}
	pairs := pairInputs(oldSide, newSide)
	t := &diffTally{}
	werr := pool.Ordered(context.Background(), len(pairs), opts.Jobs,
		func(_ context.Context, k int) (diffOutcome, error) {
			return comparePair(oldSide, newSide, pairs[k], ignored)
		},
		func(k int, o diffOutcome, err error) error {
			if err != nil {
				t.failed++
				out.Flush()
				file := newSide.name(pairs[k].new)
				if file == "" {
					file = oldSide.name(pairs[k].old)
				}
				ci.InputError(file, err.Error())
				return reportInput(stdio, jsonOut(opts.JSON, out), file, err)
			}
			return t.emit(out, o, opts.JSON, ci)
		})
	if !opts.JSON && werr == nil {
		werr = report.DiffSummary(out, t.inputs, t.changed, t.regressed, t.regressions)
	}
	if ferr := out.Flush(); werr == nil {
		werr = ferr
	}
	switch {
	case werr != nil:
		return fmt.Errorf("writing output: %w", werr)
	case t.failed > 0:
		return errInputsFailed{t.failed}
	case t.regressions > 0:
		return fmt.Errorf("%s in %s: %w", render.Count(t.regressions, "regression"), render.Count(t.regressed, "input"), ErrFindings)
	}
	return nil
}

// jsonOut is out when the run prints JSON lines, for reportInput.
func jsonOut(json bool, out flushWriter) io.Writer {
	if json {
		return out
	}
	return nil
}

// emit writes one compared pair and counts it.
func (t *diffTally) emit(out flushWriter, o diffOutcome, json bool, ci *ciFiles) error {
	p := o.pair
	t.inputs++
	if p.Result.Changed() || p.Old == "" || p.New == "" {
		t.changed++
	}
	if n := p.Regressions(); n > 0 {
		t.regressed++
		t.regressions += n
	}
	ci.DiffFile(p, o.newSites)
	if json {
		return report.WriteLine(out, report.Diff(p))
	}
	return report.DiffText(out, p)
}

// openDiffSides reads both sides, and pairs a saved scan's inputs with the
// other side's by their paths.
func openDiffSides(oldArg, newArg string) (oldSide, newSide *diffSide, err error) {
	if oldSide, err = openDiffSide(oldArg); err != nil {
		return nil, nil, fmt.Errorf("OLD %s: %w", oldArg, err)
	}
	if newSide, err = openDiffSide(newArg); err != nil {
		oldSide.close()
		return nil, nil, fmt.Errorf("NEW %s: %w", newArg, err)
	}
	if oldSide.saved != nil {
		oldSide.alignSaved(newSide)
	}
	if newSide.saved != nil {
		newSide.alignSaved(oldSide)
	}
	return oldSide, newSide, nil
}

// comparePair reads a pair's two inputs and compares them. An input only
// one side has is compared with nothing: all its sites added, or all
// removed (and the input itself missing from the new build).
func comparePair(oldSide, newSide *diffSide, p diffPairing, ignored func(string) bool) (diffOutcome, error) {
	var o, n sitediff.Side
	n.HasFunc = func(string) bool { return false } // no new input: nothing is there
	pair := &report.DiffPair{Old: oldSide.name(p.old), New: newSide.name(p.new), Ignored: ignored}
	if p.old >= 0 {
		side, rel, release, err := oldSide.load(p.old)
		if err != nil {
			return diffOutcome{}, err
		}
		defer release()
		o, pair.Rel = side, rel
	}
	if p.new >= 0 {
		side, rel, release, err := newSide.load(p.new)
		if err != nil {
			return diffOutcome{}, err
		}
		defer release()
		n, pair.Rel = side, rel
	}
	pair.Result = sitediff.Compare(o, n)
	return diffOutcome{pair, n.Sites}, nil
}
