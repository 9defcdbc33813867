package cli

// Inputs for scan and verify: files and folders as arguments, processed in
// parallel and reported in a deterministic order.

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"

	"github.com/ftpatch/ftpatch/internal/input"
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
	isELF, _, err := input.Sniff(path)
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
		type sniffed struct {
			isELF bool
			err   error
		}
		var firstErr error
		forEachOrdered(len(candidates), runtime.GOMAXPROCS(0),
			func(i int) sniffed {
				ok, err := w.sniff(candidates[i])
				return sniffed{ok, err}
			},
			func(i int, r sniffed) {
				switch {
				case firstErr != nil:
				case r.err != nil:
					firstErr = fmt.Errorf("reading %s: %w", candidates[i], r.err)
				case r.isELF:
					keep(candidates[i])
				}
			})
		if firstErr != nil {
			return nil, firstErr
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

// forEachOrdered runs work(i) for i in [0, n) on up to workers goroutines
// and calls emit(i, result) on the calling goroutine in order 0, 1, …, n-1,
// each as soon as it and every earlier result are ready. At most 2×workers
// results are held at once, so a slow early item stalls the workers instead
// of letting results pile up in memory. work must be safe for concurrent
// use; emit needs no locking.
func forEachOrdered[T any](n, workers int, work func(i int) T, emit func(i int, r T)) {
	if n <= 0 {
		return
	}
	workers = max(1, min(workers, n))
	if workers == 1 {
		for i := range n {
			emit(i, work(i))
		}
		return
	}
	// Item i lives in slot i%window from when a worker takes it until it is
	// emitted. A worker takes a token before taking an item and the emitter
	// returns it after emitting, so at most window items are in flight and
	// their slots are distinct. The smallest unemitted item has always been
	// taken (items are taken in order), so the emitter never waits on an
	// item no worker holds.
	window := 2 * workers
	type slot struct {
		r     T
		ready chan struct{}
	}
	slots := make([]slot, window)
	for i := range slots {
		slots[i].ready = make(chan struct{}, 1)
	}
	tokens := make(chan struct{}, window)
	var next atomic.Int64
	for range workers {
		go func() {
			for {
				tokens <- struct{}{}
				i := int(next.Add(1) - 1)
				if i >= n {
					<-tokens
					return
				}
				s := &slots[i%window]
				s.r = work(i)
				s.ready <- struct{}{}
			}
		}()
	}
	var zero T
	for i := range n {
		s := &slots[i%window]
		<-s.ready
		r := s.r
		s.r = zero
		emit(i, r)
		<-tokens
	}
}
