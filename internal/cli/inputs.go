// SPDX-License-Identifier: Apache-2.0

package cli

// Inputs: files, folders and kernel trees as arguments, processed in
// parallel and reported in a deterministic order.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ftpatch/ftpatch/internal/input"
	"github.com/ftpatch/ftpatch/internal/ktree"
	"github.com/ftpatch/ftpatch/internal/pool"
	"github.com/ftpatch/ftpatch/internal/report"
)

// What a run's arguments name (scan, verify, init, enable, disable):
//   - a file argument is kept as given, even when it is not ELF, does not
//     exist or is a special file: the command reports it (input.Open refuses
//     FIFOs, sockets and devices by name without opening them for reading);
//   - a folder that is a kernel tree (ktree.Detect: vmlinux and
//     modules.order, or an installed lib/modules/VERSION) gives vmlinux and
//     its modules (ktree.Pick), unless --all-files;
//   - any other folder argument (or a symlink to one) is walked: its 64-bit
//     little-endian AArch64 ELF files, plain or compressed (recognised by
//     their first bytes, not their names), are kept; every other file (host
//     programs, x86 or arm32 objects, archives, scripts, raw Images) is
//     skipped and counted by reason (skipList), never an error. Symlinks
//     inside it to files are followed; symlinks to folders are not (no
//     loops, no escaping the tree); broken ones and special files are
//     skipped without being opened;
//   - --path and --exclude-path filter what a walk (or a tree) takes, by
//     the path relative to the folder given;
//   - a file in a folder whose first bytes cannot be read is kept: the
//     command reports it on its own line (a file that might be ELF is never
//     dropped silently);
//   - what fails before any command reads it becomes an input of its own
//     that carries its error, reported in its place like any failed input:
//     a subfolder that cannot be read (the walk goes on with the rest), a
//     module modules.order lists that is missing, a folder that gave
//     nothing (a check that looked at nothing must not pass);
//   - order: argument order; in a folder, a depth-first walk in lexical
//     order; in a kernel tree, vmlinux, the modules in modules.order's
//     order, then the modules it does not list, in walk order;
//   - a file reached twice (same cleaned path, or a symlink and its target)
//     is kept once, where it is first seen.

// inputItem is one input of a run.
type inputItem struct {
	path string // the file: as given, or the folder argument joined with rel
	// rel is the path relative to the folder it was found in
	// (slash-separated); "" for a file argument.
	rel string
	// unsure: found by a walk that did not read it (scan: the command's
	// open reads it, and skips it when it is not AArch64 ELF after all).
	unsure bool
	// err: the input failed before any command read it (a subfolder that
	// cannot be read, a missing module, a folder that gave nothing).
	err error
}

// runInputs is what the arguments of a run name.
type runInputs struct {
	items   []inputItem
	folders int           // folder arguments
	trees   []report.Tree // the folders read as kernel trees
	skips   skipList      // files the walks left out
}

// paths lists the inputs' paths (tests).
func (r *runInputs) paths() []string {
	out := make([]string, len(r.items))
	for i, it := range r.items {
		out[i] = it.path
	}
	return out
}

// summarize says whether the run ends with a summary: it has more than one
// input, or a folder argument.
func (r *runInputs) summarize() bool { return len(r.items) > 1 || r.folders > 0 }

// errNoELF: a folder argument holds no file to take.
var errNoELF = errors.New("no 64-bit AArch64 ELF file in it (plain, or compressed with xz, zstd or gzip)")

// walker carries the file-system operations, so tests can inject failures
// that a root user would not see (permission denied). identify reads a
// file's first bytes (input.Identify); with deferred, a folder's files are
// kept unsure, identified only until the first one to take (the command
// opens them anyway, and would read a compressed one twice).
type walker struct {
	opts     WalkOptions
	readDir  func(string) ([]os.DirEntry, error)
	identify func(string) error
	deferred bool
}

// newWalker is the walker of a command: deferred for scan.
func newWalker(opts WalkOptions, deferred bool) walker {
	return walker{opts: opts, readDir: readDir, identify: input.Identify, deferred: deferred}
}

// readDir lists a folder for every walk; tests make it fail where a root
// user would not see a failure (permission denied).
var readDir = os.ReadDir

// expand turns the arguments into the run's inputs. It never fails: what
// cannot be read becomes an input carrying its error.
func (w walker) expand(args []string) *runInputs {
	r := &runInputs{}
	seen := map[string]bool{}
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil || !st.IsDir() {
			r.keep(seen, identity(arg), inputItem{path: arg})
			continue
		}
		r.folders++
		kind := ktree.None
		if !w.opts.AllFiles {
			kind = ktree.Detect(arg)
		}
		if kind != ktree.None {
			w.expandTree(r, seen, arg, kind)
		} else {
			w.expandFolder(r, seen, arg)
		}
	}
	return r
}

// keep adds it unless its key was seen.
func (r *runInputs) keep(seen map[string]bool, key string, it inputItem) {
	if it.err == nil {
		if seen[key] {
			return
		}
		seen[key] = true
	}
	r.items = append(r.items, it)
}

// candidate is a file found in a folder: its path, its identity (see
// identity), its path relative to the folder argument; or a subfolder that
// could not be read (err).
type candidate struct {
	path, key, rel string
	err            error
}

// expandFolder takes the AArch64 ELF files of the folder arg.
func (w walker) expandFolder(r *runInputs, seen map[string]bool, arg string) {
	var all []candidate
	w.walk(arg, arg, identity(arg), "", &all)
	cands := w.filter(all)
	taken := 0
	if w.deferred {
		taken = w.takeDeferred(r, seen, arg, cands)
	} else {
		var err error
		if taken, err = w.takeIdentified(r, seen, cands); err != nil {
			r.keep(seen, "", inputItem{path: arg, err: fmt.Errorf("folder %s: %w", arg, err)})
			return
		}
	}
	if taken > 0 || hasErr(cands) { // a folder that failed says so already
		return
	}
	if w.opts.filtered() && len(cands) == 0 && len(all) > 0 {
		r.keep(seen, "", inputItem{path: arg, err: fmt.Errorf("folder %s: no file in it matches %s", arg, w.opts.String())})
		return
	}
	r.keep(seen, "", inputItem{path: arg, err: fmt.Errorf("folder %s: %w", arg, errNoELF)})
}

func hasErr(cands []candidate) bool {
	for _, c := range cands {
		if c.err != nil {
			return true
		}
	}
	return false
}

// filter keeps the candidates --path and --exclude-path take (and every
// error).
func (w walker) filter(cands []candidate) []candidate {
	if !w.opts.filtered() {
		return cands
	}
	kept := cands[:0:0]
	for _, c := range cands {
		if c.err != nil || w.opts.takes(c.rel) {
			kept = append(kept, c)
		}
	}
	return kept
}

// takeIdentified reads the first bytes of every candidate, in parallel,
// and keeps the AArch64 ELF ones (and those that cannot be read, for the
// command to report); it returns how many it took.
func (w walker) takeIdentified(r *runInputs, seen map[string]bool, cands []candidate) (int, error) {
	taken := 0
	err := pool.Ordered(context.Background(), len(cands), pool.Workers(len(cands)),
		func(_ context.Context, i int) (struct{}, error) {
			if cands[i].err != nil {
				return struct{}{}, cands[i].err
			}
			return struct{}{}, w.identify(cands[i].path)
		},
		func(i int, _ struct{}, err error) error {
			c := cands[i]
			switch {
			case c.err != nil:
				r.keep(seen, "", inputItem{path: c.path, rel: c.rel, err: c.err})
			case skippable(err):
				r.skips.add(c.path, err)
			default: // AArch64 ELF, or unreadable: kept, for the command to report
				r.keep(seen, c.key, inputItem{path: c.path, rel: c.rel})
				taken++
			}
			return nil
		})
	return taken, err
}

// takeDeferred keeps every candidate unsure, once the first one to take is
// known (identified in order: usually the first file); when there is
// none, it counts them all as skipped and takes nothing.
func (w walker) takeDeferred(r *runInputs, seen map[string]bool, arg string, cands []candidate) int {
	first := -1
	var errs []error
	for i, c := range cands {
		if c.err != nil {
			errs = append(errs, nil)
			continue
		}
		err := w.identify(c.path)
		errs = append(errs, err)
		if !skippable(err) {
			first = i
			break
		}
	}
	if first < 0 {
		for i, c := range cands {
			if c.err != nil {
				r.keep(seen, "", inputItem{path: c.path, rel: c.rel, err: c.err})
			} else {
				r.skips.add(c.path, errs[i])
			}
		}
		return 0
	}
	for _, c := range cands {
		r.keep(seen, c.key, inputItem{path: c.path, rel: c.rel, unsure: c.err == nil, err: c.err})
	}
	return len(cands)
}

// skippable says that err, from input.Identify or elfscan.Open (Found), is
// that of a file a walk skips: not ELF, or ELF for another machine.
func skippable(err error) bool {
	return errors.Is(err, input.ErrNotELF) || errors.Is(err, input.ErrNotAArch64)
}

// walk appends to files, in lexical depth-first order, every regular file
// under dir and every symlink under it that resolves to a regular file,
// and a candidate with an error for each folder that cannot be read (the
// walk goes on with the rest). arg is the folder the user gave, dirKey
// dir's identity (a file's is dirKey/name: the path is not resolved again
// for each file; folder symlinks are not followed), rel dir's path
// relative to arg.
func (w walker) walk(arg, dir, dirKey, rel string, files *[]candidate) {
	entries, err := w.readDir(dir)
	if err != nil {
		*files = append(*files, candidate{path: dir, rel: rel, err: folderError(arg, dir, err)})
		if len(entries) == 0 {
			return
		}
	}
	for _, e := range entries { // os.ReadDir sorts by name
		path, key, r := filepath.Join(dir, e.Name()), filepath.Join(dirKey, e.Name()), e.Name()
		if rel != "" {
			r = rel + "/" + e.Name()
		}
		switch t := e.Type(); {
		case t.IsDir():
			w.walk(arg, path, key, r, files)
		case t.IsRegular():
			*files = append(*files, candidate{path: path, key: key, rel: r})
		case t&fs.ModeSymlink != 0:
			// Follow to files only; a dangling link or a loop is skipped.
			if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
				*files = append(*files, candidate{path: path, key: identity(path), rel: r})
			}
		}
		// Devices, pipes and sockets are never ELF files.
	}
}

// folderError is the error of a folder a walk of arg cannot read.
func folderError(arg, dir string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if dir == arg {
		return fmt.Errorf("folder %s: cannot read it: %w", arg, err)
	}
	return fmt.Errorf("folder %s: cannot read its subfolder %s: %w; the rest of the folder is read", arg, dir, err)
}

// expandTree takes the inputs of the kernel tree arg (see ktree).
func (w walker) expandTree(r *runInputs, seen map[string]bool, arg string, kind ktree.Kind) {
	var cands []candidate
	w.walk(arg, arg, identity(arg), "", &cands)
	order, err := readOrder(arg)
	if err != nil {
		r.keep(seen, "", inputItem{path: arg, err: fmt.Errorf("folder %s: %w; read it as any folder with --all-files", arg, err)})
		return
	}
	files := make([]string, 0, len(cands))
	keys := make(map[string]string, len(cands))
	for _, c := range cands {
		if c.err == nil {
			files = append(files, c.rel)
			keys[c.rel] = c.key
		}
	}
	tree := report.Tree{Folder: arg, Kind: string(kind)}
	for _, e := range ktree.Pick(kind, order, files) {
		if !w.opts.takes(e.Rel) {
			continue
		}
		it := inputItem{path: filepath.Join(arg, filepath.FromSlash(e.Rel)), rel: e.Rel}
		switch {
		case e.Err != nil:
			it.err = fmt.Errorf("folder %s: %w", arg, e.Err)
			tree.Missing++
		case e.Listed:
			tree.Listed++
		case e.Unlisted:
			tree.Unlisted++
		default:
			tree.Vmlinux = true
		}
		tree.Inputs++
		r.keep(seen, keys[e.Rel], it)
	}
	for _, c := range cands {
		if c.err != nil {
			r.keep(seen, "", inputItem{path: c.path, rel: c.rel, err: c.err})
		}
	}
	r.trees = append(r.trees, tree)
	if tree.Inputs == 0 && !hasErr(cands) {
		r.keep(seen, "", inputItem{path: arg, err: treeEmpty(arg, kind, w.opts)})
	}
}

// treeEmpty is the error of a kernel tree that gave no input.
func treeEmpty(arg string, kind ktree.Kind, opts WalkOptions) error {
	if opts.filtered() {
		return fmt.Errorf("folder %s: no file of the %s matches %s", arg, kind, opts.String())
	}
	return fmt.Errorf("folder %s: the %s has no module (%s lists none, and no .ko file is in it)", arg, kind, ktree.OrderFile)
}

// maxOrderSize bounds modules.order (Debian's lists 1,083 modules in 45 KB).
const maxOrderSize = 16 << 20

// readOrder reads the modules.order of the tree dir.
func readOrder(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, ktree.OrderFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ktree.ParseOrder(io.LimitReader(f, maxOrderSize))
}

// identity is the key under which a path is deduplicated: its absolute
// path with symlinks resolved, or its cleaned form when that fails.
func identity(path string) string {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	if p, err := filepath.Abs(path); err == nil {
		return p
	}
	return filepath.Clean(path)
}

// stdioHint says why "-" is not a file name here. ftpatch does not read stdin nor write
// stdout in place of a file: patching needs a file it can lock and
// replace, and reading needs random access.
const stdioHint = "ftpatch reads and writes files, not stdin or stdout; for a file named -, write ./-"

// checkInputArgs refuses what cannot name an input: "" (an unset
// variable) and "-" (stdin).
func checkInputArgs(args []string) error {
	for _, a := range args {
		switch a {
		case "":
			return UsageErrorf("an empty FILE argument (an unset variable?): give a file or folder")
		case "-":
			return UsageErrorf("-: %s", stdioHint)
		}
	}
	return nil
}
