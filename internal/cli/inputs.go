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
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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

// WalkOptions are the flags that say what a folder walk takes.
type WalkOptions struct {
	AllFiles bool     // --all-files: read a kernel tree as any folder
	Paths    []string // --path GLOB: take only files matching one
	Excludes []string // --exclude-path GLOB: leave files matching one
}

func (w *WalkOptions) addFlags(f *pflag.FlagSet) {
	f.BoolVar(&w.AllFiles, "all-files", false, "read a kernel tree (a folder with modules.order) as any folder: every AArch64 ELF file in it")
	f.StringArrayVar(&w.Paths, "path", nil, "in folders, take only files whose path relative to the folder matches `GLOB` (* within a name, ** across folders; repeatable)")
	f.StringArrayVar(&w.Excludes, "exclude-path", nil, "in folders, leave files whose path relative to the folder matches `GLOB` (repeatable)")
}

// check validates the globs before any folder is read.
func (w *WalkOptions) check() error {
	for _, flag := range []struct {
		name  string
		globs []string
	}{{"--path", w.Paths}, {"--exclude-path", w.Excludes}} {
		for _, g := range flag.globs {
			if g == "" {
				return UsageErrorf("%s: empty pattern; give a path relative to the folder, such as 'fs/**/*.ko'", flag.name)
			}
			if !doublestar.ValidatePattern(g) {
				return UsageErrorf("%s %q: bad pattern (* within a name, ** across folders, ? [a-z] {a,b} \\)", flag.name, g)
			}
		}
	}
	return nil
}

// takes reports whether a walk takes the file at rel (slash-separated,
// relative to the folder given).
func (w *WalkOptions) takes(rel string) bool {
	if len(w.Paths) > 0 && !matchAny(w.Paths, rel) {
		return false
	}
	return !matchAny(w.Excludes, rel)
}

func (w *WalkOptions) filtered() bool { return len(w.Paths)+len(w.Excludes) > 0 }

// String is the filter as the user gave it.
func (w *WalkOptions) String() string {
	var parts []string
	for _, g := range w.Paths {
		parts = append(parts, fmt.Sprintf("--path %q", g))
	}
	for _, g := range w.Excludes {
		parts = append(parts, fmt.Sprintf("--exclude-path %q", g))
	}
	return strings.Join(parts, " ")
}

func matchAny(globs []string, rel string) bool {
	for _, g := range globs {
		if ok, _ := doublestar.Match(g, rel); ok {
			return true
		}
	}
	return false
}

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

// errs counts the inputs that failed before any command read them.
func (r *runInputs) errs() int {
	n := 0
	for _, it := range r.items {
		if it.err != nil {
			n++
		}
	}
	return n
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
		taken = w.takeIdentified(r, seen, cands)
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
func (w walker) takeIdentified(r *runInputs, seen map[string]bool, cands []candidate) int {
	taken := 0
	pool.Ordered(context.Background(), len(cands), pool.Workers(len(cands)),
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
	return taken
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

// skippable says that err, from input.Identify or elfscan.OpenFound, is
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

// skipList counts the files walks (and scan's opens) left out, by reason,
// and keeps the first few names of each reason for the one line that says
// so.
type skipList struct {
	byReason map[string]int
	first    map[string][]string // reason -> "path (what it is)"
	n        int
}

// Reasons a walk skips a file (the keys of the summary's "skipped"), in
// the order the line names them: ELF for another machine first (host
// programs: the likelier surprise), then the rest.
const (
	skipNotAArch64 = "not-aarch64"
	skipNotELF     = "not-elf"
)

var skipReasons = []string{skipNotAArch64, skipNotELF}

// skipNamesShown is how many skipped files the line names.
const skipNamesShown = 4

// add counts path, skipped for err (skippable).
func (s *skipList) add(path string, err error) {
	reason, what := skipNotELF, "not ELF"
	var fe *input.ForeignError
	if errors.As(err, &fe) {
		reason, what = skipNotAArch64, fe.What()
	}
	if s.byReason == nil {
		s.byReason, s.first = map[string]int{}, map[string][]string{}
	}
	s.byReason[reason]++
	s.n++
	if len(s.first[reason]) < skipNamesShown {
		s.first[reason] = append(s.first[reason], fmt.Sprintf("%s (%s)", path, what))
	}
}

// line is the one stderr line of a run that skipped files, "" when none.
func (s *skipList) line() string {
	if s.n == 0 {
		return ""
	}
	var names, counts []string
	for _, r := range skipReasons {
		if s.byReason[r] > 0 {
			counts = append(counts, fmt.Sprintf("%s %d", r, s.byReason[r]))
		}
		for _, n := range s.first[r] {
			if len(names) < skipNamesShown {
				names = append(names, n)
			}
		}
	}
	more := ""
	if s.n > len(names) {
		more = fmt.Sprintf(" and %d more", s.n-len(names))
	}
	return fmt.Sprintf("ftpatch: skipped %s that %s not 64-bit little-endian AArch64 ELF (%s): %s%s",
		plural(s.n, "file"), map[bool]string{true: "is", false: "are"}[s.n == 1], strings.Join(counts, ", "), strings.Join(names, ", "), more)
}

// plural is "1 file", "2 files".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// addMaxDecompressedFlag adds --max-decompressed to a command that reads
// inputs (scan, verify, show): the cap on one compressed input's
// decompressed size, applied before the command runs.
func addMaxDecompressedFlag(cmd *cobra.Command) {
	v := &sizeFlag{n: input.DefaultMaxDecompressed}
	cmd.Flags().Var(v, "max-decompressed",
		"refuse a compressed input that decompresses to more than `SIZE` bytes (suffix K, M, G: powers of 1024)")
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		input.SetMaxDecompressed(v.n)
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

// sizeFlag is a byte count given as digits with an optional K, M or G
// suffix (powers of 1024; KiB, MiB, GiB and a trailing B accepted).
type sizeFlag struct{ n int64 }

func (s *sizeFlag) String() string { return formatSize(s.n) }
func (s *sizeFlag) Type() string   { return "size" }

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	s.n = n
	return nil
}

func parseSize(v string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(v))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	shift := 0
	if k := len(t); k > 0 {
		switch t[k-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		case 'T':
			shift = 40
		}
		if shift > 0 {
			t = t[:k-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)>>shift {
		return 0, fmt.Errorf("bad size %q: want a positive number of bytes, optionally with K, M or G (e.g. 512M, 4G)", v)
	}
	return n << shift, nil
}

func formatSize(n int64) string {
	for _, u := range []struct {
		s     string
		shift uint
	}{{"G", 30}, {"M", 20}, {"K", 10}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
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
