// SPDX-License-Identifier: Apache-2.0

package cli

// The files a run's walks skip: counted by reason, the first few named.

import (
	"errors"
	"fmt"

	"github.com/ftpatch/ftpatch/internal/input"
	"github.com/ftpatch/ftpatch/internal/report"
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

// shown is what the one stderr line of a run that skipped files says.
func (s *skipList) shown() *report.Skipped {
	sk := &report.Skipped{N: s.n}
	for _, r := range skipReasons {
		if s.byReason[r] > 0 {
			sk.Reasons = append(sk.Reasons, report.SkipCount{Reason: r, N: s.byReason[r]})
		}
		for _, n := range s.first[r] {
			if len(sk.Named) < skipNamesShown {
				sk.Named = append(sk.Named, n)
			}
		}
	}
	return sk
}
