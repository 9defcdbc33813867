package cli

import (
	"bufio"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/input"
	"github.com/ftpatch/ftpatch/internal/pool"
	"github.com/ftpatch/ftpatch/internal/render"
)

// ScanOptions are the flags and arguments of `ftpatch scan`.
type ScanOptions struct {
	JSON  bool     // --json: one object per file per line
	Check bool     // --check: exit 1 when any site has a problem
	Jobs  int      // -j: files scanned at once
	Files []string // files and folders
}

func newScanCmd(io *IO) *cobra.Command {
	opts := &ScanOptions{}
	cmd := &cobra.Command{
		Use:   "scan [--json] [--check] FILE|DIR...",
		Short: "List every patchable function entry and its state",
		Long: `List the patch sites of arm64 ELF files (objects, kernel modules, executables,
PIEs, relocatable kernel images), plain or compressed (.xz, .zst, .gz): the
function, entry, layout (call-ops with an 8-byte literal, or classic), BTI,
state (nop, init, enabled, unknown), ops and BL target, and problems:
misaligned-literal, unexpected-insn, duplicate-entry, outside-text, no-function.
Folders are searched for ELF files. --json prints one object per file per
line. --check exits 1 when any site has a problem; a file that cannot be
read is reported on stderr and makes the exit status 2.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return UsageErrorf("scan needs at least one FILE")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Files = args
			return runScan(opts, io)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object per file per line")
	f.BoolVar(&opts.Check, "check", false, "exit 1 when any site has a problem")
	f.IntVarP(&opts.Jobs, "jobs", "j", runtime.GOMAXPROCS(0), "scan up to `N` files at once")
	addMaxDecompressedFlag(cmd)
	return cmd
}

type scanResult struct {
	f    *elfscan.File
	json []byte // --json line, encoded by the worker for a small file
}

// smallJSON is the most sites a worker encodes itself; larger files are
// encoded by File.WriteJSON, in parallel chunks, as they are written.
const smallJSON = 4096

func runScan(opts *ScanOptions, io *IO) error {
	if opts.Jobs < 1 {
		return UsageErrorf("-j must be at least 1, got %d", opts.Jobs)
	}
	files, err := expandInputs(opts.Files)
	if err != nil {
		return err
	}
	if len(files) == 1 {
		defer gcOneFile()()
	}
	out := bufio.NewWriterSize(io.Out, 256<<10)
	if opts.JSON && len(files) == 1 {
		return scanJSONOne(opts, files[0], out, io)
	}
	var inputErrs []error
	byCode := map[elfscan.Code]int{}
	problems, sites := 0, 0
	var writeErr error
	pool.Ordered(context.Background(), len(files), opts.Jobs,
		func(_ context.Context, i int) (scanResult, error) {
			f, err := scanOne(files[i])
			if err != nil {
				return scanResult{}, fmt.Errorf("file %s: %w", files[i], err)
			}
			r := scanResult{f: f}
			if opts.JSON && len(f.Sites) <= smallJSON {
				r.json = f.AppendJSON(nil)
			}
			return r, nil
		},
		func(i int, r scanResult, err error) error {
			if err != nil {
				inputErrs = append(inputErrs, err)
				if opts.JSON {
					// Its own line, as verify --json does.
					if writeErr == nil {
						writeErr = writeJSONError(out, files[i], err)
					}
					return nil
				}
				// Keep stdout and stderr in order for a reader of both.
				out.Flush()
				fmt.Fprintf(io.Err, "%v\n", err)
				return nil
			}
			sites += len(r.f.Sites)
			for _, s := range r.f.Sites {
				for _, p := range s.Problems {
					byCode[p.Code]++
					problems++
				}
			}
			switch {
			case r.json != nil:
				_, writeErr = out.Write(r.json)
			case opts.JSON:
				writeErr = r.f.WriteJSON(out)
			default:
				writeErr = printScanText(out, r.f)
			}
			return writeErr // output failed: no point scanning on
		})
	if opts.Check && len(files) > 1 && !opts.JSON {
		printCheckSummary(out, len(files)-len(inputErrs), sites, byCode)
	}
	if err := out.Flush(); writeErr == nil {
		writeErr = err
	}
	if opts.Check && len(files) > 1 && opts.JSON && problems > 0 {
		// stdout carries only JSON lines; the summary goes to stderr.
		printCheckSummary(io.Err, len(files)-len(inputErrs), sites, byCode)
	}
	switch {
	case writeErr != nil:
		return fmt.Errorf("writing output: %w", writeErr)
	case len(inputErrs) > 0:
		return errInputsFailed{len(inputErrs)}
	case opts.Check && problems > 0:
		return fmt.Errorf("%d problems in %d sites: %w", problems, sites, ErrFindings)
	}
	return nil
}

// scanJSONOne is `scan --json` of a single file, which elfscan.ScanJSON
// streams: a kernel's sites are never held whole. It ends as runScan would.
func scanJSONOne(opts *ScanOptions, path string, out *bufio.Writer, io *IO) error {
	w := &errWriter{w: out}
	sites, problems, err := scanJSONFile(path, w)
	ferr := out.Flush()
	if err != nil && w.err == nil {
		// The file's own error: ScanJSON found it before writing.
		werr := writeJSONError(out, path, fmt.Errorf("file %s: %w", path, err))
		if werr == nil {
			werr = out.Flush()
		}
		if werr != nil {
			return fmt.Errorf("writing output: %w", werr)
		}
		return errInputsFailed{1}
	}
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

func scanJSONFile(path string, w io.Writer) (sites, problems int, err error) {
	in, err := input.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer in.Close()
	return elfscan.ScanJSON(in, path, w)
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

// errInputsFailed ends a run in which some files could not be scanned; each
// was reported on stderr as it came.
type errInputsFailed struct{ n int }

func (e errInputsFailed) Error() string {
	if e.n == 1 {
		return "1 file could not be scanned"
	}
	return fmt.Sprintf("%d files could not be scanned", e.n)
}

// scanOne scans a plain or compressed file.
func scanOne(path string) (*elfscan.File, error) { return elfscan.ScanFile(path) }

// printScanText writes the human table of one file and its summary line.
func printScanText(w io.Writer, f *elfscan.File) error {
	rel := f.Type == elf.ET_REL
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "FUNCTION\tSECTION\tENTRY\tLAYOUT\tBTI\tSTATE\tOPS/TARGET\tPROBLEMS\n")
	states := map[elfscan.State]int{}
	for i := range f.Sites {
		s := &f.Sites[i]
		states[s.State]++
		j := s.JSON(rel)
		fn := s.Func
		if fn == "" {
			fn = "?"
		}
		bti := "-"
		if s.BTI {
			bti = "bti"
		}
		var ot []string
		if j.Ops != nil {
			ot = append(ot, "ops="+refText(*j.Ops, j.OpsSym))
		}
		if j.Target != nil {
			ot = append(ot, "bl="+refText(*j.Target, j.TargetSym))
		}
		if len(ot) == 0 {
			ot = append(ot, "-")
		}
		probs := "-"
		if len(j.Problems) > 0 {
			ps := make([]string, len(j.Problems))
			for k, c := range j.Problems {
				ps[k] = string(c)
			}
			probs = strings.Join(ps, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", fn, s.Section, j.Entry, s.Layout, bti, s.State, strings.Join(ot, " "), probs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i := range f.Sites {
		for _, p := range f.Sites[i].Problems {
			fmt.Fprintf(w, "  %s %s: %s: %s\n", f.Sites[i].Section, render.Hex(f.Sites[i].Entry), p.Code, p.Detail)
		}
	}
	var parts []string
	for _, st := range []elfscan.State{elfscan.StateNop, elfscan.StateInit, elfscan.StateEnabled, elfscan.StateUnknown} {
		if states[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", states[st], st))
		}
	}
	summary := "no sites"
	if len(parts) > 0 {
		summary = strings.Join(parts, ", ")
	}
	_, err := fmt.Fprintf(w, "%s: %s, %d sites (%s), %d problems\n\n", f.Path, elfscan.ElfTypeName(f.Type), len(f.Sites), summary, f.Problems())
	return err
}

func refText(v, sym string) string {
	if sym != "" {
		return v + "<" + sym + ">"
	}
	return v
}

// printCheckSummary closes a --check run over several files with the
// problems counted by code.
func printCheckSummary(w io.Writer, files, sites int, byCode map[elfscan.Code]int) {
	codes := make([]string, 0, len(byCode))
	for c := range byCode {
		codes = append(codes, string(c))
	}
	sort.Strings(codes)
	fmt.Fprintf(w, "check: %d files, %d sites", files, sites)
	if len(codes) == 0 {
		fmt.Fprintf(w, ", no problems\n")
		return
	}
	for _, c := range codes {
		fmt.Fprintf(w, ", %s: %d", c, byCode[elfscan.Code(c)])
	}
	fmt.Fprintln(w)
}
