// SPDX-License-Identifier: Apache-2.0

package cli

// The two sides of `ftpatch diff`: each a file, a folder (or kernel tree)
// expanded as scan and verify expand theirs, or a saved `scan --json`
// output, recognised by its contents. Inputs are paired across the sides
// by their path relative to the side's root.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/ktree"
	"github.com/ftpatch/ftpatch/internal/report"
	"github.com/ftpatch/ftpatch/internal/sitediff"
)

// diffSide is one side of a diff.
type diffSide struct {
	arg    string
	saved  *report.SavedScan // a saved scan --json; nil for files and folders
	file   *os.File          // the saved scan's file
	inputs []sideInput
}

// sideInput is one input of a side: a file, or a line of a saved scan.
type sideInput struct {
	key  string // what pairs it with the other side's
	path string // the file, or the file the saved line names
	line int    // the saved scan's line; -1 for a file
	err  error  // failed before it was read (a subfolder that cannot be read, a missing module)
}

// openDiffSide reads what arg is: a folder, a saved scan or a file.
func openDiffSide(arg string) (*diffSide, error) {
	s := &diffSide{arg: arg}
	st, err := os.Stat(arg)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		s.expandFolder(arg)
		return s, nil
	}
	saved, f, err := openSaved(arg)
	if err != nil {
		return nil, err
	}
	if saved != nil {
		s.saved, s.file = saved, f
		for i, l := range saved.Lines {
			s.inputs = append(s.inputs, sideInput{key: filepath.ToSlash(l.File), path: l.File, line: i})
		}
		return s, nil
	}
	return &diffSide{arg: arg, inputs: []sideInput{{key: normalizeKey(filepath.Base(arg)), path: arg, line: -1}}}, nil
}

// expandFolder takes a folder's inputs as the other commands take them (a
// kernel tree's vmlinux and modules, or the AArch64 ELF files of a walk),
// each keyed by its path from the folder; in an installed tree
// (lib/modules/RELEASE) a module's path loses its leading kernel/, as in
// a build tree. An input that failed before it was read keeps its error.
func (s *diffSide) expandFolder(arg string) {
	installed := ktree.Detect(arg) == ktree.Installed
	for _, it := range newWalker(WalkOptions{}, false).expand([]string{arg}).items {
		rel := it.rel
		if installed {
			rel = strings.TrimPrefix(rel, "kernel/")
		}
		s.inputs = append(s.inputs, sideInput{key: normalizeKey(rel), path: it.path, line: -1, err: it.err})
	}
}

// openSaved opens arg as a saved scan when its contents say it is one;
// (nil, nil, nil) when they do not.
func openSaved(arg string) (*report.SavedScan, *os.File, error) {
	f, err := os.Open(arg)
	if err != nil {
		return nil, nil, nil // the file's own open says why, as an input
	}
	head := make([]byte, 64)
	n, _ := io.ReadFull(f, head)
	if !report.LooksSaved(head[:n]) {
		f.Close()
		return nil, nil, nil
	}
	saved, err := report.ReadSavedScan(f, arg)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return saved, f, nil
}

// close closes a saved scan's file.
func (s *diffSide) close() {
	if s.file != nil {
		s.file.Close()
	}
}

// Patterns of a kernel tree's paths that differ from build to build: the
// release in an installed tree's module folder and image name, and the
// compression of a module.
var (
	modulesDir  = regexp.MustCompile(`(?:^|/)lib/modules/[^/]+/(?:kernel/)?`)
	imageName   = regexp.MustCompile(`(?:^|/)vmlinux-[^/]+$`)
	compression = regexp.MustCompile(`\.(?:xz|zst|gz)$`)
)

// normalizeKey is the key an input pairs by: its path from the side's
// root with what changes between two builds of one kernel taken out: a
// module by its path under lib/modules/RELEASE/kernel (the path it has in
// a build tree), an installed image vmlinux-RELEASE as vmlinux, and a
// compressed module as the plain one.
func normalizeKey(rel string) string {
	k := filepath.ToSlash(rel)
	k = compression.ReplaceAllString(k, "")
	if loc := modulesDir.FindStringIndex(k); loc != nil {
		k = k[loc[1]:]
	}
	if imageName.MatchString(k) {
		k = "vmlinux"
	}
	return k
}

// alignSaved sets the keys of a saved scan's inputs, whose root the file
// does not record (its paths are as the scan reached them: build/vmlinux,
// build/modules/drv.ko): the prefix taken off is the one that pairs most
// of them with other's keys, or, with none to go by, the longest folder
// all of them share.
func (s *diffSide) alignSaved(other *diffSide) {
	keys := map[string]bool{}
	if other != nil && other.saved == nil {
		for _, in := range other.inputs {
			keys[in.key] = true
		}
	}
	prefix, best := commonDir(s.inputs), 0
	votes := map[string]int{}
	for _, in := range s.inputs {
		p := in.key
		for i := 0; i <= len(p); i++ {
			if (i == 0 || p[i-1] == '/') && keys[normalizeKey(p[i:])] {
				votes[p[:i]]++
			}
		}
	}
	for p, n := range votes {
		if n > best || (n == best && len(p) > len(prefix)) {
			prefix, best = p, n
		}
	}
	for i := range s.inputs {
		s.inputs[i].key = normalizeKey(strings.TrimPrefix(s.inputs[i].key, prefix))
	}
}

// commonDir is the longest folder path (ending in /) every input's key
// starts with.
func commonDir(ins []sideInput) string {
	if len(ins) == 0 {
		return ""
	}
	p := ins[0].key
	if i := strings.LastIndex(p, "/"); i >= 0 {
		p = p[:i+1]
	} else {
		return ""
	}
	for _, in := range ins[1:] {
		for !strings.HasPrefix(in.key, p) {
			i := strings.LastIndex(strings.TrimSuffix(p, "/"), "/")
			if i < 0 {
				return ""
			}
			p = p[:i+1]
		}
	}
	return p
}

// diffPairing is an old and a new input compared; -1 where a side has
// none.
type diffPairing struct{ old, new int }

// pairInputs pairs the inputs of two sides: by key, the n-th of a key on
// one side with the n-th on the other; two sides of one input each are
// compared whatever their names. The pairs come in new's order, then the
// old inputs new lacks, in old's order.
func pairInputs(old, new *diffSide) []diffPairing {
	if len(old.inputs) == 1 && len(new.inputs) == 1 {
		return []diffPairing{{0, 0}}
	}
	queue := map[string][]int{}
	for i, in := range old.inputs {
		queue[in.key] = append(queue[in.key], i)
	}
	used := make([]bool, len(old.inputs))
	var pairs []diffPairing
	for j, in := range new.inputs {
		p := diffPairing{-1, j}
		if q := queue[in.key]; len(q) > 0 {
			p.old, queue[in.key] = q[0], q[1:]
			used[p.old] = true
		}
		pairs = append(pairs, p)
	}
	for i := range old.inputs {
		if !used[i] {
			pairs = append(pairs, diffPairing{i, -1})
		}
	}
	return pairs
}

// errSavedInput: the saved scan could not read the input either.
var errSavedInput = errors.New("the saved scan has no sites for it")

// load reads input i's sites. The returned release frees what reading
// them holds (HasFunc looks in the open file until then).
func (s *diffSide) load(i int) (side sitediff.Side, rel bool, release func(), err error) {
	in := s.inputs[i]
	if in.err != nil {
		return side, false, nil, in.err
	}
	if in.line >= 0 {
		side, rel, err = s.loadSaved(in)
		return side, rel, func() {}, err
	}
	o, err := elfscan.Open(in.path)
	if err != nil {
		return side, false, nil, fmt.Errorf("file %s: %w", in.path, err)
	}
	f, err := o.Scan()
	if err != nil {
		o.Close()
		return side, false, nil, fmt.Errorf("file %s: %w", in.path, err)
	}
	side.Sites = make([]sitediff.Site, len(f.Sites))
	for k := range f.Sites {
		side.Sites[k] = fromScan(&f.Sites[k])
	}
	side.HasFunc = func(name string) bool {
		_, err := o.Lookup(name)
		return err == nil || errors.Is(err, elfscan.ErrSymbolAmbiguous)
	}
	return side, o.Rel(), func() { o.Release() }, nil
}

// loadSaved decodes a saved scan's line.
func (s *diffSide) loadSaved(in sideInput) (sitediff.Side, bool, error) {
	l := s.saved.Lines[in.line]
	if l.Error != "" {
		return sitediff.Side{}, false, fmt.Errorf("%s: file %s: %w (its line says: %s)", s.arg, l.File, errSavedInput, l.Error)
	}
	elfType, saved, err := s.saved.Sites(in.line)
	if err != nil {
		return sitediff.Side{}, false, fmt.Errorf("%s: %w", s.arg, err)
	}
	side := sitediff.Side{Sites: make([]sitediff.Site, len(saved))}
	for k, ss := range saved {
		side.Sites[k] = fromSaved(ss)
	}
	return side, elfType == "REL", nil
}

// fromScan is a scanned site as a comparison takes it.
func fromScan(s *elfscan.Site) sitediff.Site {
	d := sitediff.Site{Func: s.Func, Section: s.Section, Entry: s.Entry(), Layout: s.Layout.String(), Literal: s.Layout.HasLiteral()}
	for _, p := range s.Problems() {
		d.Problems = append(d.Problems, sitediff.Problem{Code: string(p.Code), Detail: p.Detail})
	}
	return d
}

// fromSaved is a saved site as a comparison takes it.
func fromSaved(s report.SavedSite) sitediff.Site {
	d := sitediff.Site{Func: s.Func, Section: s.Section, Entry: uint64(s.Entry), Layout: s.Layout,
		Literal: s.Layout == elfscan.LayoutCallOps.String() || s.Layout == elfscan.LayoutCallOps53.String()}
	for k, c := range s.Problems {
		p := sitediff.Problem{Code: c}
		if k < len(s.ProblemDetails) {
			p.Detail = s.ProblemDetails[k]
		}
		d.Problems = append(d.Problems, p)
	}
	return d
}

// name names a side's input i in messages and reports: its path ("" for
// none).
func (s *diffSide) name(i int) string {
	if i < 0 {
		return ""
	}
	return s.inputs[i].path
}
