// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/pool"
	"github.com/ftpatch/ftpatch/internal/render"
	"github.com/ftpatch/ftpatch/internal/report"
)

// ScanOptions are the flags and arguments of `ftpatch scan`.
type ScanOptions struct {
	JSON  bool // --json: one object per file per line
	Check bool // --check: exit 1 when any site has a problem
	// Ignore lists problem codes --check accepts (--ignore CODE[,CODE]):
	// still reported, but they do not make the exit status 1.
	Ignore []string
	Jobs   int  // -j: files scanned at once
	Quiet  bool // --quiet: only problems, errors and the summary
	// RequireSites (--require-sites, with --check): a file with no patch
	// site at all (built without -fpatchable-function-entry) is a finding.
	RequireSites bool
	CI           CIOptions // --junit, --sarif (with --check)
	Select       Selection
	Walk         WalkOptions
	Files        []string // files and folders
}

func newScanCmd(stdio *IO) *cobra.Command {
	opts := &ScanOptions{}
	cmd := &cobra.Command{
		Use:   "scan [--json] [--check [--ignore CODE[,CODE]] [--require-sites] [--junit FILE] [--sarif FILE]] [--quiet] [--func GLOB]... [--exclude GLOB]... [--all-files] [--path GLOB]... [--exclude-path GLOB]... [-j N] [--max-decompressed SIZE] FILE|DIR...",
		Short: "List every patchable function entry and its state",
		Long: `List the patch sites of arm64 ELF files (objects, kernel modules, executables,
PIEs, relocatable kernel images), plain or compressed (.xz, .zst, .gz): the
function, entry, layout (call-ops with an 8-byte literal, or classic), BTI,
state (nop, init, enabled, unknown), ops and BL target, and problems:
misaligned-literal, unexpected-insn, duplicate-entry, outside-text, no-function.
--json prints one object per file per line (docs/json.md). --check exits 1
when any site has a problem, except those whose code --ignore lists (they
are still reported); a file that cannot be read is reported on stderr (and,
with --json, as its line) and makes the exit status 2.
` + inputsHelp,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return UsageErrorf("scan needs at least one FILE or DIR")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Files = args
			return runScan(opts, stdio)
		},
	}
	f := cmd.Flags()
	addJSONFlag(f, &opts.JSON)
	f.BoolVar(&opts.Check, "check", false, "exit 1 when any site has a problem")
	f.StringSliceVar(&opts.Ignore, "ignore", nil, "with --check: problem `CODE[,CODE]` that do not make the exit status 1")
	f.BoolVar(&opts.RequireSites, "require-sites", false, "with --check: exit 1 for a file with no patch site at all (built without -fpatchable-function-entry?)")
	opts.CI.addFlags(f)
	addJobsFlag(f, &opts.Jobs, "scan up to `N` files at once")
	addQuietFlag(f, &opts.Quiet)
	opts.Select.addFlags(f)
	opts.Walk.addFlags(f)
	addMaxDecompressedFlag(cmd)
	return cmd
}

type scanResult struct {
	f       *elfscan.File
	total   int            // the file's sites, before --func/--exclude
	ciFile  *elfscan.File  // for --junit/--sarif when --quiet trimmed f: its selected sites
	json    []byte         // --json line, encoded by the worker for a small file
	sites   int            // sites selected (before --quiet leaves out those without a problem)
	byCode  map[string]int // problems by code
	ignored int            // problems --ignore accepts
	quiet   bool           // --quiet and no problem: nothing to print
}

// smallJSON is the most sites a worker encodes itself; larger files are
// encoded by report.WriteScan, in parallel chunks, as they are written.
const smallJSON = 4096

// jsonBufs holds the buffers workers encode a small file's line into: a
// folder of modules reuses a few, instead of allocating each line (~40% of
// what scan --json of a module folder allocated).
var jsonBufs sync.Pool

// getJSONBuf returns an empty buffer of at least n bytes.
func getJSONBuf(n int) []byte {
	if p, ok := jsonBufs.Get().(*[]byte); ok && cap(*p) >= n {
		return (*p)[:0]
	}
	return make([]byte, 0, n)
}

// putJSONBuf returns b, written, for reuse.
func putJSONBuf(b []byte) { jsonBufs.Put(&b) }

func runScan(opts *ScanOptions, stdio *IO) (err error) {
	ignore, err := checkScanOptions(opts)
	if err != nil {
		return err
	}
	in := newWalker(opts.Walk, true).expand(opts.Files)
	ci, err := opts.CI.open("ftpatch scan")
	if err != nil {
		return err
	}
	defer func() { err = ci.finish(err) }()
	if len(in.items) == 1 {
		defer gcOneFile()()
	}
	out := scanOutput(opts, stdio)
	if streamsOneFile(opts, in, ignore, ci) {
		return scanJSONOne(opts, in.items[0].path, out, stdio)
	}
	s := newScanJob(opts, in, out, ignore, ci, stdio)
	if err := pool.Ordered(context.Background(), len(in.items), opts.Jobs,
		func(_ context.Context, i int) (scanResult, error) { return s.work(i) },
		s.emit); err != nil {
		s.writeErr = err // emit stops the run only when output failed
	}
	return s.end()
}

// checkScanOptions checks scan's flags and arguments before anything is
// read, and returns the codes --ignore accepts.
func checkScanOptions(opts *ScanOptions) (map[elfscan.Code]bool, error) {
	if err := checkJobs(&opts.Jobs); err != nil {
		return nil, err
	}
	if err := checkInputArgs(opts.Files); err != nil {
		return nil, err
	}
	if err := opts.Select.check(); err != nil {
		return nil, err
	}
	if err := opts.Walk.check(); err != nil {
		return nil, err
	}
	ignore, err := ignoredCodes(opts)
	if err != nil {
		return nil, err
	}
	if !opts.Check && (opts.RequireSites || opts.CI.given()) {
		return nil, UsageErrorf("--require-sites, --junit and --sarif are for --check (scan --check ...)")
	}
	return ignore, nil
}

// scanOutput is stdout, buffered, and with --json stamped with the
// version. The stamp writes into the buffer, so that a folder's lines
// leave in few large writes (stamped above the buffer, each flush was cut
// into a write per line and stamp).
func scanOutput(opts *ScanOptions, stdio *IO) flushWriter {
	var out flushWriter = bufio.NewWriterSize(stdio.Out, 256<<10)
	if opts.JSON {
		out = report.NewVersionStamp(out, Version())
	}
	return out
}

// streamsOneFile reports whether the run is `scan --json` of one file and
// nothing else to count or select, which scanJSONOne streams.
func streamsOneFile(opts *ScanOptions, in *runInputs, ignore map[elfscan.Code]bool, ci *ciFiles) bool {
	return opts.JSON && !in.summarize() && len(in.items) == 1 && in.items[0].err == nil &&
		!opts.Select.Active() && len(ignore) == 0 && !opts.Quiet && !ci.Active() && !opts.RequireSites
}

// newScanJob starts a scan of in, printing to out.
func newScanJob(opts *ScanOptions, in *runInputs, out flushWriter, ignore map[elfscan.Code]bool, ci *ciFiles, stdio *IO) *scanJob {
	var jsonOut io.Writer
	if opts.JSON {
		jsonOut = out
	}
	s := &scanJob{opts: opts, in: in, out: out, tables: report.ScanTexts{W: out}, ignore: ignore,
		byCode: map[string]int{}, ci: ci, run: newRunState("scan", stdio, in, jsonOut, opts.Quiet)}
	s.run.flush = func() { out.Flush() }
	return s
}

// scanJob is a scan over its inputs: what it has printed and counted.
type scanJob struct {
	opts   *ScanOptions
	in     *runInputs
	out    flushWriter
	ignore map[elfscan.Code]bool
	run    *runState

	ci       *ciFiles         // --junit, --sarif
	noSites  []string         // files without a patch site (--check says so)
	tables   report.ScanTexts // the text tables written
	sites    int              // sites read (selected)
	byCode   map[string]int   // problems by code, ignored ones included
	problems int              // problems --check counts (not ignored)
	ignored  int              // problems --ignore accepts
	writeErr error
}

// work scans input i and, for --json and a small file, encodes its line.
func (s *scanJob) work(i int) (scanResult, error) {
	it := &s.in.items[i]
	if it.err != nil {
		return scanResult{}, it.err
	}
	f, err := scanOne(it)
	if it.unsure && skippable(err) {
		return scanResult{}, err
	}
	if err != nil {
		return scanResult{}, fmt.Errorf("file %s: %w", it.path, err)
	}
	total := len(f.Sites)
	f.Sites = s.opts.Select.Filter(f.Sites)
	r := scanResult{f: f, total: total, sites: len(f.Sites)}
	r.byCode, r.ignored = s.countProblems(f)
	if s.opts.Quiet && s.ci.Active() { // the reports list every checked site
		r.ciFile = &elfscan.File{Path: f.Path, Type: f.Type, Sites: slices.Clone(f.Sites)}
	}
	if s.opts.Quiet {
		f.Sites = problemSites(f.Sites)
		r.quiet = len(f.Sites) == 0 && len(f.FileProblems()) == 0
	}
	if s.opts.JSON && !r.quiet && len(f.Sites) <= smallJSON {
		// ~220 bytes a site: a buffer of that size, not one grown
		// from nil, reused once emit wrote it.
		r.json = report.AppendScan(getJSONBuf(256+256*len(f.Sites)), f)
	}
	return r, nil
}

// countProblems counts f's problems by code, and those --ignore accepts.
func (s *scanJob) countProblems(f *elfscan.File) (byCode map[string]int, ignored int) {
	for p := range f.AllProblems { // the file's own (zeroed-entries), then each site's
		if byCode == nil {
			byCode = map[string]int{}
		}
		byCode[string(p.Code)]++
		if s.ignore[p.Code] {
			ignored++
		}
	}
	return byCode, ignored
}

// problemSites keeps the sites with a problem, in place (--quiet).
func problemSites(sites []elfscan.Site) []elfscan.Site {
	kept := sites[:0]
	for i := range sites {
		if len(sites[i].Problems()) > 0 {
			kept = append(kept, sites[i])
		}
	}
	return kept
}

// emit counts and prints input i's result, in input order.
func (s *scanJob) emit(i int, r scanResult, err error) error {
	s.run.step()
	switch {
	case s.run.skipped(i, err): // not AArch64 ELF after all: as if the walk had not taken it
		return nil
	case err != nil:
		s.run.fail(i, err)
		s.ci.InputError(s.in.items[i].path, err.Error())
		return nil
	}
	s.report(r)
	s.sites += r.sites
	for c, n := range r.byCode {
		s.byCode[c] += n
		s.problems += n
	}
	s.problems -= r.ignored
	s.ignored += r.ignored
	if r.quiet {
		return nil
	}
	switch {
	case r.json != nil:
		_, s.writeErr = s.out.Write(r.json)
		putJSONBuf(r.json)
	case s.opts.JSON:
		s.writeErr = report.WriteScan(s.out, r.f)
	default:
		s.writeErr = s.tables.Write(r.f)
	}
	return s.writeErr // output failed: no point scanning on
}

// report writes a file's scan in the CI reports, and notes a file with no
// patch site.
func (s *scanJob) report(r scanResult) {
	if r.total == 0 && len(r.f.FileProblems()) == 0 { // zeroed-entries says why itself
		s.noSites = append(s.noSites, r.f.Path)
	}
	f := r.f
	if r.ciFile != nil {
		f = r.ciFile
	}
	s.ci.ScanFile(f, s.ignore)
}

// end closes the run: summary, then the exit status.
func (s *scanJob) end() error {
	if s.opts.Check {
		report.NoSites(s.run.io.Err, s.noSites, s.opts.RequireSites)
	}
	sum := &s.run.sum
	sum.Sites, sum.Problems = s.sites, s.byCode
	for c := range s.ignore {
		sum.Ignored = append(sum.Ignored, string(c))
	}
	slices.Sort(sum.Ignored)
	if err := s.run.finish(); s.writeErr == nil {
		s.writeErr = err
	}
	if err := s.out.Flush(); s.writeErr == nil {
		s.writeErr = err
	}
	if s.opts.Check && !s.in.summarize() && s.ignored > 0 {
		report.IgnoredProblems(s.run.io.Err, s.ignored, strings.Join(s.opts.Ignore, ","))
	}
	switch {
	case s.writeErr != nil:
		return fmt.Errorf("writing output: %w", s.writeErr)
	case sum.Failed > 0:
		return errInputsFailed{sum.Failed}
	}
	if err := s.opts.Select.unmatched(inputsName(s.in), s.opts.Files...); err != nil {
		return err
	}
	switch {
	case !s.opts.Check:
	case s.problems > 0:
		return fmt.Errorf("%s in %s: %w", render.Count(s.problems, "problem"), render.Count(s.sites, "site"), ErrFindings)
	case s.opts.RequireSites && len(s.noSites) > 0:
		return fmt.Errorf("%s without patch sites (--require-sites): %w", render.Count(len(s.noSites), "file"), ErrFindings)
	}
	return nil
}

// flushWriter is stdout, buffered: a *bufio.Writer, or a VersionStamp
// over one.
type flushWriter interface {
	io.Writer
	Flush() error
}

// inputsName names the inputs in a message: the file, or how many.
func inputsName(in *runInputs) string {
	if len(in.items) == 1 && in.folders == 0 {
		return in.items[0].path
	}
	return render.Count(len(in.items), "input")
}

// scanJSONOne is `scan --json` of a single file, streamed (scanJSONFile):
// a kernel's sites are never held whole. It ends as runScan would.
func scanJSONOne(opts *ScanOptions, path string, out flushWriter, stdio *IO) error {
	w := &errWriter{w: out}
	sites, problems, err := scanJSONFile(path, w)
	if err != nil && w.err == nil {
		// The file's own error: the scan found it before writing.
		if werr := reportInput(stdio, out, path, fmt.Errorf("file %s: %w", path, err)); werr != nil {
			return fmt.Errorf("writing output: %w", werr)
		}
		return errInputsFailed{1}
	}
	ferr := out.Flush()
	if err == nil {
		err = ferr
	}
	switch {
	case err != nil:
		return fmt.Errorf("writing output: %w", err)
	case opts.Check && problems > 0:
		return fmt.Errorf("%s in %s: %w", render.Count(problems, "problem"), render.Count(sites, "site"), ErrFindings)
	}
	return nil
}

// scanJSONFile scans path in chunks (elfscan.ScanChunks) and writes its
// --json line to w as they come (report.ScanStream). A malformed file's
// error is found before anything is written; an error from w is returned
// as it is.
func scanJSONFile(path string, w io.Writer) (sites, problems int, err error) {
	o, err := elfscan.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer o.Close()
	line := report.NewScanStream(w)
	if sites, err = elfscan.ScanChunks(o, line.Chunk(), line.Encode, line.Write); err != nil {
		return 0, 0, err
	}
	problems, err = line.End()
	return sites, problems, err
}

// errWriter remembers the first error of w.
type errWriter struct {
	w   io.Writer
	err error
}

func (c *errWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

// scanOne scans an input, plain or compressed; one a walk did not read
// is opened as elfscan.Found (see skipped).
func scanOne(it *inputItem) (*elfscan.File, error) {
	origin := elfscan.Named
	if it.unsure {
		origin = elfscan.Found
	}
	o, err := elfscan.Open(it.path, origin)
	if err != nil {
		return nil, err
	}
	defer o.Release() // only the scan is kept: its tables go to the next file
	return o.Scan()
}

// ignoredCodes checks --ignore: known codes only, and only with --check.
func ignoredCodes(opts *ScanOptions) (map[elfscan.Code]bool, error) {
	if len(opts.Ignore) == 0 {
		return nil, nil
	}
	if !opts.Check {
		return nil, UsageErrorf("--ignore only applies with --check")
	}
	ignore := map[elfscan.Code]bool{}
	for _, c := range opts.Ignore {
		c = strings.TrimSpace(c)
		if !slices.Contains(elfscan.Codes, elfscan.Code(c)) {
			known := make([]string, len(elfscan.Codes))
			for i, k := range elfscan.Codes {
				known[i] = string(k)
			}
			return nil, UsageErrorf("--ignore: unknown problem code %q (known: %s)", c, strings.Join(known, ", "))
		}
		ignore[elfscan.Code(c)] = true
	}
	return ignore, nil
}
