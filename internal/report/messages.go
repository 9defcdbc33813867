// SPDX-License-Identifier: Apache-2.0

package report

// The run's messages on stderr that are not an input's error: notes and
// warnings about what a check saw, each one line. Like every message on
// stderr, their write errors are not the run's.

import (
	"fmt"
	"io"
	"strings"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/render"
	"github.com/ftpatch/ftpatch/internal/safefile"
)

// NoSites says, in one line, which files a check looked at have no patch
// site at all: a warning, or with finding (--require-sites) a finding.
func NoSites(w io.Writer, files []string, finding bool) {
	if len(files) == 0 {
		return
	}
	which := "file " + files[0] + " has no patch sites"
	if len(files) > 1 {
		which = fmt.Sprintf("%d files have no patch sites (%s)", len(files), firstNames(files))
	}
	const why = "no __patchable_function_entries records and no __start_mcount_loc..__stop_mcount_loc table; built without -fpatchable-function-entry?"
	if finding {
		fmt.Fprintf(w, "ftpatch: %s: %s\n", which, why)
		return
	}
	fmt.Fprintf(w, "ftpatch: warning: %s: %s (--require-sites makes this a finding)\n", which, why)
}

// RanToolTrampoline warns that verify --run-file-trampoline ran ftpatch's
// trampoline for objects, found in folders, that have none of their own.
func RanToolTrampoline(w io.Writer, objects []string) {
	if len(objects) == 0 {
		return
	}
	fmt.Fprintf(w, "ftpatch: warning: --run-file-trampoline: %s found in the folders have no trampoline of their own (%s): their sites ran ftpatch's trampoline (a module reaches the kernel's through a relocation)\n",
		render.Count(len(objects), "object"), firstNames(objects))
}

// firstNames lists the first three of files, and how many more.
func firstNames(files []string) string {
	named := strings.Join(files[:min(len(files), 3)], ", ")
	if len(files) > 3 {
		named += fmt.Sprintf(" and %d more", len(files)-3)
	}
	return named
}

// IgnoredProblems closes a scan --check that accepted n problems of the
// codes flag lists (as the user gave them).
func IgnoredProblems(w io.Writer, n int, flag string) {
	fmt.Fprintf(w, "check: %s ignored (--ignore %s)\n", render.Count(n, "problem"), flag)
}

// NotLiveSafe says that n changes of file from orig are not live-safe,
// inits of them init changes (NOP -> MOV X9,X30) that --allow-init accepts.
func NotLiveSafe(w io.Writer, file, orig string, n, inits int) {
	note := ""
	if inits > 0 {
		note = fmt.Sprintf(" (%d of them init changes NOP -> MOV X9,X30: pass --allow-init if %s is not running yet)", inits, file)
	}
	fmt.Fprintf(w, "ftpatch: file %s: %s from %s %s not live-safe%s\n", file, render.Count(n, "change"), orig, render.Noun(n, "is", "are"), note)
}

// ScanTexts writes scan tables one after another, a blank line between
// two and none after the last.
type ScanTexts struct {
	W       io.Writer
	printed int
}

// Write writes f's table (ScanText).
func (t *ScanTexts) Write(f *elfscan.File) error {
	if t.printed > 0 {
		if _, err := io.WriteString(t.W, "\n"); err != nil {
			return err
		}
	}
	t.printed++
	return ScanText(t.W, f)
}

// FileWarning writes what safefile warned about while writing a file.
func FileWarning(w io.Writer, wn safefile.Warning) {
	switch wn.Kind {
	case safefile.WarnHardLinks:
		fmt.Fprintf(w, "ftpatch: warning: file %s has %d hard links: only this name gets the patched file, the other %d keep the old contents\n",
			wn.Name, wn.Links, wn.Links-1)
	case safefile.WarnFolderSync:
		fmt.Fprintf(w, "ftpatch: warning: %s is written, but the fsync of its folder failed (%v): a crash now could bring the old file back\n", wn.Name, wn.Err)
	case safefile.WarnForeignTemp:
		fmt.Fprintf(w, "ftpatch: warning: left %s alone: its name looks like an ftpatch temporary file's, but ftpatch did not make it (an older ftpatch's leftover, or someone's file: remove it yourself if it is not needed)\n", wn.Path)
	case safefile.WarnRemovedStale:
		fmt.Fprintf(w, "ftpatch: warning: removed %s, a temporary file left by an ftpatch run that was killed\n", wn.Path)
	default:
		fmt.Fprintf(w, "ftpatch: warning: file %s: %+v\n", wn.Name, wn)
	}
}

// Error writes err as ftpatch's messages are written: each message
// (several when errors were joined) on its own line starting "ftpatch: ";
// indented lines continue the message above them.
func Error(w io.Writer, err error) {
	var b strings.Builder
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, " ") {
			b.WriteString("ftpatch: ")
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	io.WriteString(w, b.String())
}

// SignalNotice writes what the signal handler did about a signal: the run
// ends (now, or before its next write) or completes.
func SignalNotice(w io.Writer, n safefile.SignalNotice) {
	switch n.Stage {
	case safefile.SignalCompleting:
		fmt.Fprintf(w, "ftpatch: %v after the file was written; completing the run\n", n.Sig)
	case safefile.SignalExitBeforeNext:
		fmt.Fprintf(w, "ftpatch: %v before the next file was written\n", n.Sig)
	default:
		fmt.Fprintf(w, "ftpatch: %v\n", n.Sig)
	}
}

// Skipped is what a run's walks left out: N files that are not 64-bit
// little-endian AArch64 ELF, counted by reason (in the order the line
// names them), the first few named as "path (what it is)".
type Skipped struct {
	N       int
	Reasons []SkipCount
	Named   []string
}

// SkipCount is the files skipped for one reason.
type SkipCount struct {
	Reason string
	N      int
}

// SkippedText writes the one line that says what s left out; nothing when
// nothing was.
func SkippedText(w io.Writer, s *Skipped) {
	if s.N == 0 {
		return
	}
	counts := make([]string, len(s.Reasons))
	for i, r := range s.Reasons {
		counts[i] = fmt.Sprintf("%s %d", r.Reason, r.N)
	}
	more := ""
	if s.N > len(s.Named) {
		more = fmt.Sprintf(" and %d more", s.N-len(s.Named))
	}
	fmt.Fprintf(w, "ftpatch: warning: skipped %s that %s not 64-bit little-endian AArch64 ELF (%s): %s%s\n",
		render.Count(s.N, "file"), render.Noun(s.N, "is", "are"), strings.Join(counts, ", "), strings.Join(s.Named, ", "), more)
}

// TreeRead says that a folder argument was read as the kernel tree t.
func TreeRead(w io.Writer, t *Tree) {
	fmt.Fprintf(w, "ftpatch: folder %s: read as %s; --all-files reads every file\n", t.Folder, TreeText(t))
}
