package cli

// Inputs for scan and verify: files and folders as arguments, processed in
// parallel and reported in a deterministic order.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/input"
	"github.com/ftpatch/ftpatch/internal/pool"
)

// expandInputs turns command-line arguments into the list of files to
// process:
//   - a file argument is kept as given, even when it is not ELF, does not
//     exist or is a special file: the command reports it (input.Open refuses
//     FIFOs, sockets and devices by name without opening them for reading);
//   - a directory argument (or a symlink to one) is recursed: the ELF files
//     in it, plain or compressed (recognised by their magic, not their name),
//     are kept and every other file is skipped silently. Symlinks inside it
//     to files are kept when their target is ELF; symlinks to directories are
//     not followed (no loops, no escaping the tree); broken ones are skipped.
//     Special files in it are skipped without being opened.
//   - a file in a directory whose first bytes cannot be read is kept: the
//     command reports it on its own line (a file that might be ELF is never
//     dropped silently) and still reports the others;
//   - a directory with no ELF file in it is an error naming it (exit 2): a
//     check that looked at nothing must not pass;
//   - order: argument order, and within a directory a depth-first walk in
//     lexical order;
//   - a file reached twice (same cleaned path, or a symlink and its target)
//     is kept once, where it is first seen.
//
// A directory that cannot be read is an error naming it.
func expandInputs(args []string) ([]string, error) {
	in, err := walker{readDir: os.ReadDir, sniff: sniffELF}.expand(args)
	return in.files, err
}

// expandFound is expandInputs for a command that opens each file with
// openFound (scan): the files of a folder are not sniffed by the walk,
// since the command opens them anyway (and a compressed one would be
// decompressed twice); they are kept as unsure, and the command skips one
// silently when it turns out not to be ELF (skipped). The walk sniffs a
// folder's files in order only until the first ELF one: a folder with
// none is still an error before the command runs.
func expandFound(args []string) (foundInputs, error) {
	return walker{readDir: os.ReadDir, sniff: sniffELF, deferSniff: true}.expand(args)
}

// foundInputs are the files to process, and which of them are unsure:
// files from a folder, not yet known to be ELF.
type foundInputs struct {
	files  []string
	unsure []bool // nil when none is
}

// skipped reports whether err, the result of opening file i with
// openFound, says the file is not ELF and is one to skip silently.
func (in foundInputs) skipped(i int, err error) bool {
	return in.unsure != nil && in.unsure[i] && errors.Is(err, input.ErrNotELF)
}

// openFound opens file i: an unsure one with elfscan.OpenFound, which
// sniffs it while decompressing it (see skipped).
func (in foundInputs) openFound(i int) (*elfscan.Object, error) {
	if in.unsure != nil && in.unsure[i] {
		return elfscan.OpenFound(in.files[i])
	}
	return elfscan.Open(in.files[i])
}

// errNoELF: a folder argument holds no ELF file.
var errNoELF = errors.New("no ELF file in it (plain, or compressed with xz, zstd or gzip)")

func sniffELF(path string) (bool, error) {
	isELF, _, err := input.Sniff(path)
	return isELF, err
}

// walker carries the file-system operations, so tests can inject failures
// that a root user would not see (permission denied). With deferSniff (see
// expandFound), the files of a folder are kept unsure rather than sniffed.
type walker struct {
	readDir    func(string) ([]os.DirEntry, error)
	sniff      func(string) (bool, error)
	deferSniff bool
}

func (w walker) expand(args []string) (foundInputs, error) {
	var out foundInputs
	seen := map[string]bool{}
	keep := func(path, key string, unsure bool) {
		if !seen[key] {
			seen[key] = true
			out.files = append(out.files, path)
			if unsure && out.unsure == nil {
				out.unsure = make([]bool, len(out.files)-1, cap(out.files))
			}
			if out.unsure != nil {
				out.unsure = append(out.unsure, unsure)
			}
		}
	}
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil || !st.IsDir() {
			keep(arg, identity(arg), false)
			continue
		}
		var candidates []candidate
		if err := w.walk(arg, identity(arg), &candidates); err != nil {
			return foundInputs{}, err
		}
		if w.deferSniff {
			// Every file is unsure but the first ELF one, found by
			// sniffing in order: usually the first file.
			first := -1
			for i, c := range candidates {
				if isELF, err := w.sniff(c.path); isELF || err != nil {
					first = i
					break
				}
			}
			if first < 0 {
				return foundInputs{}, fmt.Errorf("folder %s: %w", arg, errNoELF)
			}
			for i, c := range candidates[first:] {
				keep(c.path, c.key, i > 0)
			}
			continue
		}
		found := 0
		pool.Ordered(context.Background(), len(candidates), pool.Workers(len(candidates)),
			func(_ context.Context, i int) (bool, error) { return w.sniff(candidates[i].path) },
			func(i int, isELF bool, err error) error {
				// Unreadable: kept, for the command to report.
				if isELF || err != nil {
					keep(candidates[i].path, candidates[i].key, false)
					found++
				}
				return nil
			})
		if found == 0 {
			return foundInputs{}, fmt.Errorf("folder %s: %w", arg, errNoELF)
		}
	}
	return out, nil
}

// candidate is a file found in a folder, and its identity (see identity).
type candidate struct{ path, key string }

// walk appends to files, in lexical depth-first order, every regular file
// under dir and every symlink under it that resolves to a regular file.
// dirKey is dir's identity: a file's is dirKey/name, without resolving the
// path again for each file (directory symlinks are not followed).
func (w walker) walk(dir, dirKey string, files *[]candidate) error {
	entries, err := w.readDir(dir)
	if err != nil {
		return fmt.Errorf("reading directory %s: %w", dir, err)
	}
	for _, e := range entries { // os.ReadDir sorts by name
		path, key := filepath.Join(dir, e.Name()), filepath.Join(dirKey, e.Name())
		switch t := e.Type(); {
		case t.IsDir():
			if err := w.walk(path, key, files); err != nil {
				return err
			}
		case t.IsRegular():
			*files = append(*files, candidate{path, key})
		case t&fs.ModeSymlink != 0:
			// Follow to files only; a dangling link or a loop is skipped.
			if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
				*files = append(*files, candidate{path, identity(path)})
			}
		}
		// Devices, pipes and sockets are never ELF files.
	}
	return nil
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
