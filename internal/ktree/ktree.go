// SPDX-License-Identifier: Apache-2.0

// Package ktree reads a Linux kernel tree as the list of files ftpatch
// takes from it: a build tree (the folder `make` ran in, holding vmlinux
// and modules.order) or an installed module tree (lib/modules/VERSION, as
// `make modules_install` and distribution packages lay it out).
//
// What a tree gives, in this order:
//   - vmlinux, in a build tree;
//   - each module modules.order lists, in its order: a build tree of Linux
//     6.2+ lists the objects (fs/ext4/ext4.o), each standing for the .ko
//     beside it; older build trees and installed trees list the modules
//     themselves (kernel/fs/ext4/ext4.ko), which an installed tree may hold
//     compressed (.ko.xz, .ko.zst, .ko.gz). A listed module with no file is
//     an entry with a *MissingError, never left out silently;
//   - every other module file under the tree (updates/, extra/, DKMS),
//     marked Unlisted, in the order of the walk.
//
// Intermediate objects (*.o, *.mod.o, vmlinux.o, vmlinux.a, built-in.a,
// .tmp_vmlinux*) and host programs are never entries. The package reads
// only modules.order and the names of the tree's files (Detect stats four
// names); it opens no ELF file.
package ktree

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Kind is what a folder is: a build tree, an installed tree, or none.
type Kind string

const (
	None      Kind = ""
	Build     Kind = "build"     // vmlinux and modules.order
	Installed Kind = "installed" // modules.order and modules.dep or modules.builtin, no vmlinux
)

// String names the kind as messages do: "kernel build tree", "installed
// kernel tree".
func (k Kind) String() string {
	switch k {
	case Build:
		return "kernel build tree"
	case Installed:
		return "installed kernel tree"
	}
	return "folder"
}

// The files that make a folder a kernel tree.
const (
	OrderFile = "modules.order"
	Vmlinux   = "vmlinux"
)

// installedMarks are files depmod or modules_install leave beside
// modules.order in lib/modules/VERSION.
var installedMarks = []string{"modules.dep", "modules.builtin"}

// Detect says what kind of kernel tree dir is: Build when it holds the
// regular files vmlinux and modules.order, Installed when it holds
// modules.order and modules.dep or modules.builtin but no vmlinux, None
// otherwise (a folder of objects, an external module's build folder).
// Symbolic links to regular files count as the files.
func Detect(dir string) Kind {
	if !isFile(filepath.Join(dir, OrderFile)) {
		return None
	}
	if isFile(filepath.Join(dir, Vmlinux)) {
		return Build
	}
	for _, m := range installedMarks {
		if isFile(filepath.Join(dir, m)) {
			return Installed
		}
	}
	return None
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// ModuleSuffixes are the names a module file may end with: plain, then
// compressed as modules_install compresses them.
var ModuleSuffixes = []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"}

// IsModuleName reports whether name ends like a module file.
func IsModuleName(name string) bool {
	for _, s := range ModuleSuffixes {
		if strings.HasSuffix(name, s) && len(name) > len(s) {
			return true
		}
	}
	return false
}

// OrderError is a line of modules.order that names no module inside the
// tree.
type OrderError struct {
	Line int
	Text string
	Why  string
}

func (e *OrderError) Error() string {
	return fmt.Sprintf("%s line %d: %q %s", OrderFile, e.Line, e.Text, e.Why)
}

// maxOrderLine bounds a line of modules.order (real ones are < 100 bytes).
const maxOrderLine = 4096

// ParseOrder reads modules.order: one module per line, as a path relative
// to the tree ending in .o or .ko; blank lines are ignored. A line that is
// absolute, leaves the tree, holds a NUL or ends otherwise is an
// *OrderError. The entries are returned cleaned, slash-separated, in the
// file's order, duplicates removed.
func ParseOrder(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxOrderLine)
	var out []string
	seen := map[string]bool{}
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		e, err := orderEntry(text)
		if err != nil {
			return nil, &OrderError{Line: n, Text: text, Why: err.Error()}
		}
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s: a line longer than %d bytes: not a modules.order file", OrderFile, maxOrderLine)
		}
		return nil, fmt.Errorf("%s: %w", OrderFile, err)
	}
	return out, nil
}

// orderEntry checks one line of modules.order and returns it cleaned.
func orderEntry(text string) (string, error) {
	switch {
	case strings.ContainsRune(text, 0):
		return "", errors.New("holds a NUL byte")
	case strings.HasPrefix(text, "/"):
		return "", errors.New("is an absolute path; modules.order lists paths relative to the tree")
	}
	e := path.Clean(text)
	if e == ".." || strings.HasPrefix(e, "../") {
		return "", errors.New("leaves the tree")
	}
	if !strings.HasSuffix(e, ".o") && !strings.HasSuffix(e, ".ko") || e == ".o" || e == ".ko" || strings.HasSuffix(e, "/.o") || strings.HasSuffix(e, "/.ko") {
		return "", errors.New("is neither a module (.ko) nor its object (.o)")
	}
	return e, nil
}

// Entry is one file a tree gives, or a listed module that is missing.
type Entry struct {
	// Rel is the file's path relative to the tree, slash-separated; for
	// a missing module, the .ko modules.order stands for.
	Rel      string
	Listed   bool  // named by modules.order (vmlinux: false)
	Unlisted bool  // a module file modules.order does not name
	Err      error // *MissingError: the listed module has no file
}

// MissingError is a module modules.order lists whose file is not in the
// tree.
type MissingError struct {
	Entry string   // as listed
	Tried []string // the names looked for, relative to the tree
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("module %s, listed in %s, is missing (looked for %s); build it (make modules) or give the files you have with --all-files",
		e.Tried[0], OrderFile, strings.Join(e.Tried, ", "))
}

// Pick chooses the entries of a tree of kind k from order (ParseOrder's
// result) and files: every regular file under the tree, as a walk found
// them (slash-separated paths relative to the tree, in walk order).
func Pick(k Kind, order, files []string) []Entry {
	have := make(map[string]bool, len(files))
	for _, f := range files {
		have[f] = true
	}
	taken := map[string]bool{}
	var out []Entry
	if k == Build && have[Vmlinux] {
		out = append(out, Entry{Rel: Vmlinux})
		taken[Vmlinux] = true
	}
	for _, e := range order {
		tried := candidates(e)
		rel := ""
		for _, c := range tried {
			if have[c] {
				rel = c
				break
			}
		}
		switch {
		case rel == "":
			out = append(out, Entry{Rel: tried[0], Listed: true, Err: &MissingError{Entry: e, Tried: tried}})
		case !taken[rel]:
			taken[rel] = true
			out = append(out, Entry{Rel: rel, Listed: true})
		}
	}
	for _, f := range files {
		if !taken[f] && IsModuleName(path.Base(f)) {
			taken[f] = true
			out = append(out, Entry{Rel: f, Unlisted: true})
		}
	}
	return out
}

// candidates are the files a modules.order entry may be, in the order they
// are looked for: its .ko, then compressed; for an entry under kernel/
// (installed trees, and build trees before Linux 5.3 listed that way), the
// same without the prefix too.
func candidates(entry string) []string {
	stem := strings.TrimSuffix(strings.TrimSuffix(entry, ".o"), ".ko")
	var out []string
	for _, s := range ModuleSuffixes {
		out = append(out, stem+s)
	}
	if rest, ok := strings.CutPrefix(stem, "kernel/"); ok {
		for _, s := range ModuleSuffixes {
			out = append(out, rest+s)
		}
	}
	return out
}
