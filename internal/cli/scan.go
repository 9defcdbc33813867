package cli

import (
	"bufio"
	"context"
	"fmt"
	goio "io"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/input"
	"github.com/ftpatch/ftpatch/internal/pool"
	"github.com/ftpatch/ftpatch/internal/report"
)

// ScanOptions are the flags and arguments of `ftpatch scan`.
type ScanOptions struct {
	JSON  bool // --json: one object per file per line
	Check bool // --check: exit 1 when any site has a problem
	// Ignore lists problem codes --check accepts (--ignore CODE[,CODE]):
	// still reported, but they do not make the exit status 1.
	Ignore []string
	Jobs   int // -j: files scanned at once
	Select Selection
	Files  []string // files and folders
}

func newScanCmd(io *IO) *cobra.Command {
	opts := &ScanOptions{}
	cmd := &cobra.Command{
		Use:   "scan [--json] [--check [--ignore CODE[,CODE]]] [--func GLOB]... [--exclude GLOB]... [-j N] [--max-decompressed SIZE] FILE|DIR...",
		Short: "List every patchable function entry and its state",
		Long: `List the patch sites of arm64 ELF files (objects, kernel modules, executables,
PIEs, relocatable kernel images), plain or compressed (.xz, .zst, .gz): the
function, entry, layout (call-ops with an 8-byte literal, or classic), BTI,
state (nop, init, enabled, unknown), ops and BL target, and problems:
misaligned-literal, unexpected-insn, duplicate-entry, outside-text, no-function.
Folders are searched for ELF files. --json prints one object per file per
line (docs/json.md). --check exits 1 when any site has a problem, except
those whose code --ignore lists (they are still reported); a file that
cannot be read is reported on stderr (and, with --json, as its line) and
makes the exit status 2.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return UsageErrorf("scan needs at least one FILE or DIR")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Files = args
			return runScan(opts, io)
		},
	}
	f := cmd.Flags()
	addJSONFlag(f, &opts.JSON)
	f.BoolVar(&opts.Check, "check", false, "exit 1 when any site has a problem")
	f.StringSliceVar(&opts.Ignore, "ignore", nil, "with --check: problem `CODE[,CODE]` that do not make the exit status 1")
	addJobsFlag(f, &opts.Jobs, "scan up to `N` files at once")
	opts.Select.addFlags(f)
	addMaxDecompressedFlag(cmd)
	return cmd
}

type scanResult struct {
	f    *elfscan.File
	json []byte // --json line, encoded by the worker for a small file
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

func runScan(opts *ScanOptions, io *IO) error {
	if err := checkJobs(&opts.Jobs); err != nil {
		return err
	}
	if err := opts.Select.check(); err != nil {
		return err
	}
	ignore, err := ignoredCodes(opts)
	if err != nil {
		return err
	}
	found, err := expandFound(opts.Files)
	if err != nil {
		return err
	}
	files := found.files
	if len(files) == 1 {
		defer gcOneFile()()
	}
	// The version stamp writes into the buffer, so that a folder's lines
	// leave in few large writes (stamped above the buffer, each flush was
	// cut into a write per line and stamp).
	var out flushWriter = bufio.NewWriterSize(io.Out, 256<<10)
	if opts.JSON {
		out = report.NewVersionStamp(out, Version())
	}
	if opts.JSON && len(files) == 1 && !opts.Select.Active() && len(ignore) == 0 {
		return scanJSONOne(opts, files[0], out, io)
	}
	var jsonErr goio.Writer
	if opts.JSON {
		jsonErr = out
	}
	failed, printed, skipped := 0, 0, 0
	byCode := map[elfscan.Code]int{}
	problems, sites, ignored := 0, 0, 0
	var writeErr error
	pool.Ordered(context.Background(), len(files), opts.Jobs,
		func(_ context.Context, i int) (scanResult, error) {
			f, err := scanOne(found, i)
			if found.skipped(i, err) {
				return scanResult{}, err
			}
			if err != nil {
				return scanResult{}, fmt.Errorf("file %s: %w", files[i], err)
			}
			f.Sites = opts.Select.Filter(f.Sites)
			r := scanResult{f: f}
			if opts.JSON && len(f.Sites) <= smallJSON {
				// ~220 bytes a site: a buffer of that size, not one grown
				// from nil, reused once emit wrote it.
				r.json = report.AppendScan(getJSONBuf(256+256*len(f.Sites)), f)
			}
			return r, nil
		},
		func(i int, r scanResult, err error) error {
			if found.skipped(i, err) {
				skipped++ // not ELF after all: as if the walk had not found it
				return nil
			}
			if err != nil {
				failed++
				// Keep stdout and stderr in order for a reader of both.
				out.Flush()
				reportInput(io, jsonErr, files[i], err)
				return nil
			}
			sites += len(r.f.Sites)
			for p := range r.f.AllProblems {
				byCode[p.Code]++
				if ignore[p.Code] {
					ignored++
					continue
				}
				problems++
			}
			switch {
			case r.json != nil:
				_, writeErr = out.Write(r.json)
				putJSONBuf(r.json)
			case opts.JSON:
				writeErr = report.WriteScan(out, r.f)
			default:
				if printed > 0 {
					goio.WriteString(out, "\n") // a blank line between tables, none after the last
				}
				printed++
				writeErr = report.ScanText(out, r.f)
			}
			return writeErr // output failed: no point scanning on
		})
	if opts.Check && len(files) > 1 && !opts.JSON {
		report.CheckSummary(out, len(files)-failed-skipped, sites, byCode, ignore)
	}
	if err := out.Flush(); writeErr == nil {
		writeErr = err
	}
	if opts.Check && opts.JSON && (problems > 0 || ignored > 0) && (len(files) > 1 || len(ignore) > 0) {
		// stdout carries only JSON lines; the summary goes to stderr.
		report.CheckSummary(io.Err, len(files)-failed-skipped, sites, byCode, ignore)
	}
	if opts.Check && !opts.JSON && len(files) == 1 && ignored > 0 {
		fmt.Fprintf(io.Err, "check: %d problems ignored (--ignore %s)\n", ignored, strings.Join(opts.Ignore, ","))
	}
	switch {
	case writeErr != nil:
		return fmt.Errorf("writing output: %w", writeErr)
	case failed > 0:
		return errInputsFailed{failed}
	}
	if err := opts.Select.unmatched(inputsName(files)); err != nil {
		return err
	}
	if opts.Check && problems > 0 {
		return fmt.Errorf("%d problems in %d sites: %w", problems, sites, ErrFindings)
	}
	return nil
}

// flushWriter is stdout, buffered: a *bufio.Writer, or a VersionStamp
// over one.
type flushWriter interface {
	goio.Writer
	Flush() error
}

// inputsName names the inputs in a message: the file, or how many.
func inputsName(files []string) string {
	if len(files) == 1 {
		return files[0]
	}
	return fmt.Sprintf("%d files", len(files))
}

// scanJSONOne is `scan --json` of a single file, which report.StreamScan
// streams: a kernel's sites are never held whole. It ends as runScan would.
func scanJSONOne(opts *ScanOptions, path string, out flushWriter, io *IO) error {
	w := &errWriter{w: out}
	sites, problems, err := scanJSONFile(path, w)
	if err != nil && w.err == nil {
		// The file's own error: StreamScan found it before writing.
		reportInput(io, out, path, fmt.Errorf("file %s: %w", path, err))
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
		return fmt.Errorf("%d problems in %d sites: %w", problems, sites, ErrFindings)
	}
	return nil
}

func scanJSONFile(path string, w goio.Writer) (sites, problems int, err error) {
	in, err := input.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer in.Close()
	return report.StreamScan(in, path, w)
}

// errWriter remembers the first error of w.
type errWriter struct {
	w   goio.Writer
	err error
}

func (c *errWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

// scanOne scans file i, plain or compressed.
func scanOne(found foundInputs, i int) (*elfscan.File, error) {
	o, err := found.openFound(i)
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
