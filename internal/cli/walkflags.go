// SPDX-License-Identifier: Apache-2.0

package cli

// --all-files, --path and --exclude-path: what a folder walk takes.

import (
	"fmt"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/spf13/pflag"
)

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
