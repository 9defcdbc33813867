// SPDX-License-Identifier: Apache-2.0

package cli

// init, enable and disable over many inputs: files, folders, kernel trees.
// Each file is patched as one file is (patchFile: locked, read, planned,
// written with every guarantee safefile gives), in parallel on the one
// ordered pool; a file that fails is left untouched and the others go on.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/patch"
	"github.com/ftpatch/ftpatch/internal/pool"
	"github.com/ftpatch/ftpatch/internal/report"
)

// patchMany patches every input of o. Before anything is written it
// checks the outputs (-o names an existing folder; no two inputs write one
// path) and, with --func/--exclude, that each pattern matches a function
// in some input. Memory stays flat: a worker holds one file at a time, and
// a file's lines are all that waits for its turn to be printed.
func patchMany(o *PatchOptions, req patch.Request, stdio *IO, ci *ciFiles) error {
	in := newWalker(o.Walk, false).expand(o.Files)
	outs, err := outputPaths(o, in)
	if err != nil {
		return err
	}
	if err := selectAcross(o, in); err != nil {
		return err
	}
	run := newRunState(string(req.Op), stdio, in, nil, o.Quiet)
	dirs := &outDirs{made: map[string]bool{}}
	t := &patchTally{run: run, quiet: o.Quiet, stdio: stdio, ci: ci, in: in}
	err = pool.Ordered(context.Background(), len(in.items), o.Jobs,
		func(_ context.Context, i int) (*patchOutput, error) {
			return patchItem(o, req, &in.items[i], outs[i], dirs)
		},
		t.emit)
	dirs.removeEmpty()
	if err != nil {
		return err
	}
	t.fill()
	if err := run.finish(); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if t.writeErr != nil {
		return fmt.Errorf("writing output: %w", t.writeErr)
	}
	if run.sum.Failed > 0 {
		return errInputsFailed{run.sum.Failed}
	}
	return nil
}

// patchOutput is one file's result and what it printed, held until its
// turn (files finish out of order).
type patchOutput struct {
	res            *patchResult
	stdout, stderr bytes.Buffer
}

// patchItem patches input it to out ("": in place).
func patchItem(o *PatchOptions, req patch.Request, it *inputItem, out string, dirs *outDirs) (*patchOutput, error) {
	if it.err != nil {
		return nil, it.err
	}
	p := &patchOutput{}
	if o.DryRun {
		report.PlanHeader(&p.stdout, it.path)
	} else if out != "" {
		if err := dirs.make(filepath.Dir(out)); err != nil {
			return nil, fmt.Errorf("file %s: -o %s: %w", it.path, o.Output, err)
		}
	}
	res, err := patchFile(o, req, it.path, out, false, &p.stdout, &p.stderr)
	if err != nil {
		// Its notices (a plan's skipped functions) go with its error.
		if p.stderr.Len() > 0 {
			err = fmt.Errorf("%w\n%s", err, strings.TrimSuffix(indent(p.stderr.String()), "\n"))
		}
		return &patchOutput{res: res}, err // res: a refused plan's sites, for the reports
	}
	p.res = res
	return p, nil
}

// indent puts two spaces before each line of s (report.Error keeps such
// lines under the message above them).
func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}

// patchTally adds up a patch run as files finish, in input order.
type patchTally struct {
	run   *runState
	stdio *IO
	quiet bool
	ci    *ciFiles
	in    *runInputs

	patched, unchanged, sites, changed int
	writeErr                           error // the first failed write to stdout
}

func (t *patchTally) emit(i int, p *patchOutput, err error) error {
	t.run.step()
	var res *patchResult
	if p != nil {
		res = p.res
	}
	t.ci.patched(t.in.items[i].path, res, err) // in input order, on this goroutine
	if err != nil {
		t.run.fail(i, err)
		return nil
	}
	t.sites += p.res.sites
	t.changed += p.res.done
	if p.res.changed {
		t.patched++
	} else {
		t.unchanged++
	}
	if p.stderr.Len() > 0 || !t.quiet {
		t.run.toStderr()
	}
	t.stdio.Err.Write(p.stderr.Bytes()) // notices: a failed stderr is not the run's
	if !t.quiet && t.writeErr == nil {
		// A failed stdout does not stop the run: the files are what it
		// is for. It ends the run with the error.
		if _, t.writeErr = t.stdio.Out.Write(p.stdout.Bytes()); t.writeErr == nil {
			_, t.writeErr = io.WriteString(t.stdio.Out, p.res.line)
		}
	}
	return nil
}

// fill puts the totals in the run's summary.
func (t *patchTally) fill() {
	s := &t.run.sum
	s.Patched, s.Unchanged = intp(t.patched), intp(t.unchanged)
	s.Sites, s.SitesChanged = t.sites, intp(t.changed)
}

// outputPaths is where each input is written: nil in place (no -o); with
// -o, a folder that must exist, each output at the input's path relative
// to the folder it was found in (a file argument: at its name). Two
// inputs that would write one path are an error before anything is
// written, naming both.
func outputPaths(o *PatchOptions, in *runInputs) ([]string, error) {
	if !o.OutputSet {
		return make([]string, len(in.items)), nil
	}
	if st, err := os.Stat(o.Output); err != nil || !st.IsDir() {
		return nil, UsageErrorf("-o %s: with %s or a folder, -o names an existing folder to write the outputs into (each at its path relative to the folder it was found in); %s",
			o.Output, "several inputs", notFolder(o.Output, err))
	}
	outs := make([]string, len(in.items))
	from := map[string]int{}
	for i, it := range in.items {
		if it.err != nil {
			continue
		}
		rel := it.rel
		if rel == "" {
			rel = filepath.Base(it.path)
		}
		outs[i] = filepath.Join(o.Output, filepath.FromSlash(rel))
		key := filepath.Clean(outs[i])
		if j, ok := from[key]; ok {
			return nil, UsageErrorf("-o %s: %s and %s would both be written to %s; patch them in separate runs (or with separate -o folders)",
				o.Output, in.items[j].path, it.path, outs[i])
		}
		from[key] = i
	}
	return outs, nil
}

// notFolder says why -o is not a folder.
func notFolder(out string, err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "it does not exist: create it first (mkdir -p " + out + ")"
	case err != nil:
		return err.Error()
	}
	return "it is a file"
}

// selectAcross judges --func and --exclude over all the inputs before
// anything is written: each input is read (not locked: patchFile locks it
// again before it reads it to write) for its functions, and a pattern that
// matches no function in any of them, or a selection that selects no site
// at all, is an error naming it. Inputs that cannot be read are left to
// the run, which reports them.
func selectAcross(o *PatchOptions, in *runInputs) error {
	if !o.Select.Active() {
		return nil
	}
	err := pool.Each(context.Background(), len(in.items), o.Jobs, func(_ context.Context, i int) error {
		if in.items[i].err != nil {
			return nil
		}
		obj, err := elfscan.Open(in.items[i].path)
		if err != nil {
			return nil
		}
		defer obj.Close()
		if f, err := obj.Scan(); err == nil {
			selectedSites(&o.Select, f.Sites)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return o.Select.unmatched(inputsName(in), o.Files...)
}

// outDirs makes the folders under -o that outputs need, and removes at
// the end those it made that stayed empty (their files all failed).
type outDirs struct {
	mu   sync.Mutex
	made map[string]bool
}

// make makes dir and its missing parents, remembering which it made.
func (d *outDirs) make(dir string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var missing []string
	for p := dir; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil || p == filepath.Dir(p) {
			break
		}
		missing = append(missing, p)
	}
	for _, p := range slices.Backward(missing) {
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		d.made[p] = true
	}
	return nil
}

// removeEmpty removes the folders make made that are empty, deepest
// first.
func (d *outDirs) removeEmpty() {
	dirs := make([]string, 0, len(d.made))
	for p := range d.made {
		dirs = append(dirs, p)
	}
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
	for _, p := range dirs {
		os.Remove(p) // fails, as it should, when the folder holds a file
	}
}
