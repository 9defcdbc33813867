// SPDX-License-Identifier: Apache-2.0

package cli

// The flags several commands share, defined once so that their names,
// placeholders and help read the same everywhere:
//
//	--func GLOB, --exclude GLOB   scan, show, init, enable, disable, verify
//	-o FILE                       init, enable, disable, trampoline
//	--trampoline SYM|ADDR         enable, verify
//	--json                        scan, show, verify
//	-j N                          scan, verify

import (
	"errors"
	"fmt"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/pflag"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/patch"
)

// Selection is --func and --exclude: which functions' sites a command
// touches. A function is selected when it matches some --func (or there is
// none) and no --exclude. Every pattern must match some function among the
// inputs: a typo is an input error (exit 2) naming the pattern, never a
// silent no-op.
type Selection struct {
	Funcs        []string // --func
	Exclude      []string // --exclude
	FuncFiles    []string // --func-file: more --func globs, one per line
	ExcludeFiles []string // --exclude-file: more --exclude globs

	st *selState // made by check, which every command calls first
}

// selState is what a Selection has seen; shared by copies of it.
type selState struct {
	mu      sync.Mutex
	matched map[string]bool   // "func\x00GLOB" and "exclude\x00GLOB" that matched a function
	chosen  int               // sites selected so far
	from    map[string]string // where a pattern read from a file was: "--func-file F line N"
}

// state returns the shared state, making it on first use (check does,
// before any worker runs).
func (s *Selection) state() *selState {
	if s.st == nil {
		s.st = &selState{matched: map[string]bool{}}
	}
	return s.st
}

func (s *Selection) addFlags(f *pflag.FlagSet) {
	f.StringArrayVar(&s.Funcs, "func", nil, "only functions matching `GLOB` (path.Match syntax; repeatable)")
	f.StringArrayVar(&s.Exclude, "exclude", nil, "leave functions matching `GLOB` alone (repeatable)")
	f.StringArrayVar(&s.FuncFiles, "func-file", nil, "read --func globs from `FILE`: one per line, # comments, blank lines (repeatable)")
	f.StringArrayVar(&s.ExcludeFiles, "exclude-file", nil, "read --exclude globs from `FILE`, as --func-file (repeatable)")
}

// Active reports whether the user selected anything.
func (s *Selection) Active() bool { return len(s.Funcs)+len(s.Exclude) > 0 }

// check reads the pattern files into Funcs and Exclude, and validates the
// patterns before any input is read.
func (s *Selection) check() error {
	st := s.state()
	for _, flag := range []struct {
		name  string
		globs []string
	}{{"--func", s.Funcs}, {"--exclude", s.Exclude}} {
		for _, g := range flag.globs {
			if err := checkGlob(flag.name, g); err != nil {
				return err
			}
		}
	}
	for _, file := range []struct {
		name  string
		files []string
		globs *[]string
	}{{"--func-file", s.FuncFiles, &s.Funcs}, {"--exclude-file", s.ExcludeFiles, &s.Exclude}} {
		for _, f := range file.files {
			if err := st.readGlobs(file.name, f, file.globs); err != nil {
				return err
			}
		}
	}
	s.FuncFiles, s.ExcludeFiles = nil, nil // read: check may run again
	return nil
}

// checkGlob validates one pattern of flag (--func or --exclude).
func checkGlob(flag, g string) error {
	if g == "" {
		return UsageErrorf("%s: empty pattern; give a function name or a glob such as 'sched_*'", flag)
	}
	if _, err := path.Match(g, ""); err != nil {
		return UsageErrorf("%s %q: bad pattern (path.Match syntax: * ? [a-z] \\): %v", flag, g, err)
	}
	return nil
}

// readGlobs appends to globs the patterns of file (--func-file or
// --exclude-file): one per line, surrounding blanks trimmed; blank lines
// and lines starting with # are skipped. A pattern is remembered with
// where it came from, for the message when it matches nothing.
func (st *selState) readGlobs(flag, file string, globs *[]string) error {
	if file == "" || file == "-" {
		return UsageErrorf("%s %q: give a file name (%s)", flag, file, stdioHint)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return UsageErrorf("%s %s: %v", flag, file, err)
	}
	for n, line := range strings.Split(string(b), "\n") {
		g := strings.TrimSpace(line)
		if g == "" || strings.HasPrefix(g, "#") {
			continue
		}
		where := fmt.Sprintf("%s %s line %d", flag, file, n+1)
		if strings.ContainsAny(g, " \t") {
			return UsageErrorf("%s: %q holds a blank: one pattern per line", where, g)
		}
		if _, err := path.Match(g, ""); err != nil {
			return UsageErrorf("%s: %q: bad pattern (path.Match syntax: * ? [a-z] \\): %v", where, g, err)
		}
		if st.from == nil {
			st.from = map[string]string{}
		}
		if _, ok := st.from[g]; !ok && !slices.Contains(*globs, g) {
			st.from[g] = where
			*globs = append(*globs, g)
		}
	}
	return nil
}

// Selects reports whether fn is selected, and remembers which patterns
// matched; safe for concurrent use.
func (s *Selection) Selects(fn string) bool {
	if !s.Active() {
		return true
	}
	var hits []string
	ok := patch.SelectsFunc(s.Funcs, s.Exclude, fn, func(exclude bool, g string) {
		if exclude {
			hits = append(hits, "exclude\x00"+g)
		} else {
			hits = append(hits, "func\x00"+g)
		}
	})
	st := s.state()
	st.mu.Lock()
	for _, h := range hits {
		st.matched[h] = true
	}
	if ok {
		st.chosen++
	}
	st.mu.Unlock()
	return ok
}

// selects is Selects when a selection was given, else nil (every site).
func (s *Selection) selects() func(string) bool {
	if !s.Active() {
		return nil
	}
	return s.Selects
}

// Filter keeps the selected sites of f, in place.
func (s *Selection) Filter(sites []elfscan.Site) []elfscan.Site {
	if !s.Active() {
		return sites
	}
	kept := sites[:0]
	for i := range sites {
		if s.Selects(sites[i].Func) {
			kept = append(kept, sites[i])
		}
	}
	return kept
}

// unmatched is the error for patterns that matched no function of the
// inputs (named by what, e.g. "s.elf" or "3 inputs"; args are the
// arguments to list them with), or for a selection that left no site; nil
// when every pattern did its part.
func (s *Selection) unmatched(what string, args ...string) error {
	if !s.Active() {
		return nil
	}
	st := s.state()
	st.mu.Lock()
	defer st.mu.Unlock()
	var bad []string
	for _, g := range s.Funcs {
		if !st.matched["func\x00"+g] {
			bad = append(bad, st.name("--func", g))
		}
	}
	for _, g := range s.Exclude {
		if !st.matched["exclude\x00"+g] {
			bad = append(bad, st.name("--exclude", g))
		}
	}
	list := what
	if len(args) > 0 {
		list = strings.Join(args, " ")
	}
	switch {
	case len(bad) == 1:
		return fmt.Errorf("%w: %s matches no function in %s; list the functions with: ftpatch scan %s", ErrSelection, bad[0], what, list)
	case len(bad) > 1:
		return fmt.Errorf("%w: %s match no function in %s; list the functions with: ftpatch scan %s", ErrSelection, strings.Join(bad, ", "), what, list)
	case st.chosen == 0:
		return fmt.Errorf("%w: %s selects no site in %s: every function --func matches is excluded", ErrSelection, s.String(), what)
	}
	return nil
}

// name is how the user gave pattern g: `--func "g"`, or `"g" (--func-file
// F line N)`.
func (st *selState) name(flag, g string) string {
	if where, ok := st.from[g]; ok {
		return fmt.Sprintf("%q (%s)", g, where)
	}
	return fmt.Sprintf("%s %q", flag, g)
}

// String is the selection as the user gave it.
func (s *Selection) String() string {
	var parts []string
	for _, g := range s.Funcs {
		parts = append(parts, fmt.Sprintf("--func %q", g))
	}
	for _, g := range s.Exclude {
		parts = append(parts, fmt.Sprintf("--exclude %q", g))
	}
	return strings.Join(parts, " ")
}

// ErrSelection marks a --func/--exclude selection that matched nothing.
var ErrSelection = errors.New("selection matches nothing")

// addOutputFlag is -o FILE; set records that it was given (an empty -o
// is a mistake, not "no -o"), and may be nil.
func addOutputFlag(f *pflag.FlagSet, p *string, set *bool, usage string) {
	if set == nil {
		set = new(bool)
	}
	f.VarP(outputFlag{p, set}, "output", "o", "write to `FILE` "+usage)
}

// addTrampolineFlag is --trampoline SYM|ADDR.
func addTrampolineFlag(f *pflag.FlagSet, p *string, def, usage string) {
	f.StringVar(p, "trampoline", def, usage+" `SYM|ADDR`")
}

// addJSONFlag is --json.
func addJSONFlag(f *pflag.FlagSet, p *bool) {
	f.BoolVar(p, "json", false, "print one JSON object per input per line (docs/json.md)")
}

// addJobsFlag is -j N; 0 (the default) stands for the number of CPUs
// Go may use, so that help reads the same on every machine.
func addJobsFlag(f *pflag.FlagSet, p *int, usage string) {
	f.IntVarP(p, "jobs", "j", 0, usage+" (default 0: the number of CPUs)")
}

// checkJobs validates -j and resolves its default.
func checkJobs(n *int) error {
	switch {
	case *n < 0:
		return UsageErrorf("-j %d: give at least 1 (or 0 for the number of CPUs)", *n)
	case *n == 0:
		*n = runtime.GOMAXPROCS(0)
	}
	return nil
}

// parseValueFlag reads the SYM|ADDR of a flag (--ops, --default-ops,
// --trampoline), naming the flag and what it takes when s is neither.
func parseValueFlag(flag, s string) (patch.Value, error) {
	v, err := patch.ParseValue(s)
	if err != nil {
		return v, UsageErrorf("%s %q: give a symbol name or a 0x… address", flag, s)
	}
	return v, nil
}
