// SPDX-License-Identifier: Apache-2.0

package cli

// The files a run's walks skip: counted by reason, the first few named.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ftpatch/ftpatch/internal/input"
	"github.com/ftpatch/ftpatch/internal/render"
)

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
	return fmt.Sprintf("ftpatch: warning: skipped %s that %s not 64-bit little-endian AArch64 ELF (%s): %s%s",
		render.Count(s.n, "file"), render.Noun(s.n, "is", "are"), strings.Join(counts, ", "), strings.Join(names, ", "), more)
}
