// SPDX-License-Identifier: Apache-2.0

package report

// The run summary: the totals of a command over many inputs, as the last
// JSON line ({"ftpatch":…,"summary":{…}}) and as one stderr line.

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Summary is a run's totals (docs/json.md, object summary). The field
// names are a contract.
type Summary struct {
	Command string         `json:"command"` // scan, verify, init, enable, disable
	Inputs  int            `json:"inputs"`  // inputs taken, failed ones included
	Failed  int            `json:"failed"`  // inputs that could not be read or processed
	Skipped map[string]int `json:"skipped"` // files walks left out, by reason; never null
	Sites   int            `json:"sites"`   // sites of the inputs read (selected ones)
	// Problems counts the scan's problems by code (scan only).
	Problems map[string]int `json:"problems,omitzero"`
	// Ignored lists the codes --check accepts (scan --ignore).
	Ignored []string `json:"ignored,omitempty"`
	// SitesFailed counts the sites that failed (verify only).
	SitesFailed *int `json:"sites_failed,omitempty"`
	// Patched, Unchanged and SitesChanged: patch commands only.
	Patched      *int   `json:"patched,omitempty"`
	Unchanged    *int   `json:"unchanged,omitempty"`
	SitesChanged *int   `json:"sites_changed,omitempty"`
	Trees        []Tree `json:"trees,omitempty"`
}

// Tree is a folder read as a kernel tree (object tree).
type Tree struct {
	Folder   string `json:"folder"`   // as given
	Kind     string `json:"kind"`     // "build" or "installed"
	Inputs   int    `json:"inputs"`   // inputs it gave (missing modules included)
	Vmlinux  bool   `json:"vmlinux"`  // vmlinux is one of them
	Listed   int    `json:"listed"`   // modules modules.order lists, found
	Unlisted int    `json:"unlisted"` // module files it does not list
	Missing  int    `json:"missing"`  // listed modules with no file (each a failed input)
}

// SummaryLine is the summary's JSON line.
type SummaryLine struct {
	Summary *Summary `json:"summary"`
}

// WriteSummary writes s as the run's last JSON line.
func WriteSummary(w io.Writer, s *Summary) error {
	if s.Skipped == nil {
		s.Skipped = map[string]int{}
	}
	return WriteLine(w, SummaryLine{s})
}

// SummaryText writes s as one line, for stderr:
//
//	summary: scan: 4 inputs, 1 failed, 3 skipped (not-aarch64 2, not-elf 1), 54 sites, 1 problem (misaligned-literal 1)
//	summary: enable: 4 inputs: 2 patched, 1 unchanged, 1 failed; 0 skipped, 54 sites, 40 changed
func SummaryText(w io.Writer, s *Summary) error {
	var b strings.Builder
	fmt.Fprintf(&b, "summary: %s: %s", s.Command, count(s.Inputs, "input"))
	if s.Patched != nil {
		fmt.Fprintf(&b, ": %d patched, %d unchanged, %d failed;", *s.Patched, *s.Unchanged, s.Failed)
	} else {
		fmt.Fprintf(&b, ", %d failed,", s.Failed)
	}
	fmt.Fprintf(&b, " %d skipped%s, %s", total(s.Skipped), byKey(s.Skipped, nil), count(s.Sites, "site"))
	switch {
	case s.Problems != nil:
		ignored := map[string]bool{}
		for _, c := range s.Ignored {
			ignored[c] = true
		}
		fmt.Fprintf(&b, ", %s%s", count(total(s.Problems), "problem"), byKey(s.Problems, ignored))
	case s.SitesFailed != nil:
		fmt.Fprintf(&b, ", %d failed", *s.SitesFailed)
	case s.SitesChanged != nil:
		fmt.Fprintf(&b, ", %d changed", *s.SitesChanged)
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

// TreeText says what a kernel tree gave: "a kernel build tree: 315 inputs
// (vmlinux, 312 listed in modules.order, 2 not listed)".
func TreeText(t *Tree) string {
	var parts []string
	if t.Vmlinux {
		parts = append(parts, "vmlinux")
	}
	parts = append(parts, fmt.Sprintf("%d listed in modules.order", t.Listed))
	if t.Missing > 0 {
		parts = append(parts, fmt.Sprintf("%d of them missing", t.Missing))
	}
	parts = append(parts, fmt.Sprintf("%d not listed", t.Unlisted))
	kind := "a kernel build tree"
	if t.Kind == "installed" {
		kind = "an installed kernel tree"
	}
	return fmt.Sprintf("%s: %s (%s)", kind, count(t.Inputs, "input"), strings.Join(parts, ", "))
}

// count is "1 site", "2 sites".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// byKey is " (a 1, b 2)" in key order, each key in marked followed by
// ", ignored"; "" for an empty map.
func byKey(m map[string]int, marked map[string]bool) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
		if marked[k] {
			parts[i] += " ignored"
		}
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
