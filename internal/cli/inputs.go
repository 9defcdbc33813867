package cli

// Inputs for scan and verify: files and folders as arguments, processed in
// parallel and reported in a deterministic order.

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/pool"
)

// expandInputs turns command-line arguments into the list of files to
// process:
//   - a file argument is kept as given, even when it is not ELF or does not
//     exist: the command reports it;
//   - a directory argument (or a symlink to one) is recursed: the ELF files
//     in it, plain or compressed (recognised by their magic, not their name),
//     are kept and every other file is skipped silently. Symlinks inside it
//     to files are kept when their target is ELF; symlinks to directories are
//     not followed (no loops, no escaping the tree); broken ones are skipped.
//   - order: argument order, and within a directory a depth-first walk in
//     lexical order;
//   - a file reached twice (same cleaned path, or a symlink and its target)
//     is kept once, where it is first seen.
//
// A directory that cannot be read, or a file in one whose first bytes cannot
// be read, is an error naming it: a file that might be ELF is never dropped
// silently.
func expandInputs(args []string) ([]string, error) {
	return walker{readDir: os.ReadDir, sniff: sniffELF}.expand(args)
}

func sniffELF(path string) (bool, error) {
	isELF, _, err := elfscan.SniffELF(path)
	return isELF, err
}

// walker carries the file-system operations, so tests can inject failures
// that a root user would not see (permission denied).
type walker struct {
	readDir func(string) ([]os.DirEntry, error)
	sniff   func(string) (bool, error)
}

func (w walker) expand(args []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	keep := func(path string) {
		k := identity(path)
		if !seen[k] {
			seen[k] = true
			out = append(out, path)
		}
	}
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil || !st.IsDir() {
			keep(arg)
			continue
		}
		var candidates []string
		if err := w.walk(arg, &candidates); err != nil {
			return nil, err
		}
		err = pool.Ordered(context.Background(), len(candidates), pool.Workers(len(candidates)),
			func(_ context.Context, i int) (bool, error) { return w.sniff(candidates[i]) },
			func(i int, isELF bool, err error) error {
				if err != nil {
					return fmt.Errorf("reading %s: %w", candidates[i], err)
				}
				if isELF {
					keep(candidates[i])
				}
				return nil
			})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// walk appends to files, in lexical depth-first order, every regular file
// under dir and every symlink under it that resolves to a regular file.
func (w walker) walk(dir string, files *[]string) error {
	entries, err := w.readDir(dir)
	if err != nil {
		return fmt.Errorf("reading directory %s: %w", dir, err)
	}
	for _, e := range entries { // os.ReadDir sorts by name
		path := filepath.Join(dir, e.Name())
		switch t := e.Type(); {
		case t.IsDir():
			if err := w.walk(path, files); err != nil {
				return err
			}
		case t.IsRegular():
			*files = append(*files, path)
		case t&fs.ModeSymlink != 0:
			// Follow to files only; a dangling link or a loop is skipped.
			if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
				*files = append(*files, path)
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
