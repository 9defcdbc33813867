// SPDX-License-Identifier: Apache-2.0

package report

// diff: what changed in one input between two builds (sitediff.Result), as
// its JSON line, as text, and in the CI reports.

import (
	"fmt"
	"io"
	"strings"

	"github.com/ftpatch/ftpatch/internal/render"
	"github.com/ftpatch/ftpatch/internal/sitediff"
)

// DiffPair is one input compared: its path on each side ("" when the
// side has no such input) and what changed.
type DiffPair struct {
	Old, New string
	Rel      bool // an object: addresses are offsets in their sections
	Result   *sitediff.Result
	// Ignored accepts codes (diff --ignore): problem codes, lost-site,
	// layout-change, removed-input.
	Ignored func(code string) bool
}

// Label names the pair in text: the new input, or the old one when the
// new build has none.
func (p *DiffPair) Label() string {
	if p.New == "" {
		return p.Old
	}
	return p.New
}

// InputRemoved reports a regression of a whole input: in OLD, not in NEW,
// and not accepted.
func (p *DiffPair) InputRemoved() bool {
	return p.New == "" && !p.ignored(RuleRemovedInput)
}

func (p *DiffPair) ignored(code string) bool { return p.Ignored != nil && p.Ignored(code) }

// Regressions counts what made the input worse, the accepted codes apart.
func (p *DiffPair) Regressions() int {
	n := p.Result.Regressions(p.Ignored)
	if p.InputRemoved() {
		n++
	}
	return n
}

// DiffLine is the `diff --json` line of one input (docs/json.md, object
// diff).
type DiffLine struct {
	Old           *string       `json:"old"`
	New           *string       `json:"new"`
	Regressed     bool          `json:"regressed"`
	Lost          []DiffSite    `json:"lost"`
	NewProblems   []DiffProblem `json:"new_problems"`
	LayoutChanges []DiffLayout  `json:"layout_changes"`
	Added         []DiffSite    `json:"added"`
	Removed       []DiffSite    `json:"removed"`
	Moved         []DiffMove    `json:"moved"`
	Matched       int           `json:"matched"`
}

// DiffSite is a site in a diff line (object diffsite).
type DiffSite struct {
	Func    string `json:"func"`
	Section string `json:"section"`
	Entry   string `json:"entry"`
}

// DiffProblem is a problem a site gained (object diffproblem).
type DiffProblem struct {
	DiffSite
	Code    string `json:"code"`
	Detail  string `json:"detail"`
	Ignored bool   `json:"ignored"`
}

// DiffLayout is a site whose layout changed (object difflayout).
type DiffLayout struct {
	DiffSite
	OldLayout   string `json:"old_layout"`
	NewLayout   string `json:"new_layout"`
	LostLiteral bool   `json:"lost_literal"`
}

// DiffMove is a function whose site moved section (object diffmove).
type DiffMove struct {
	DiffSite
	OldSection string `json:"old_section"`
}

func diffSite(s sitediff.Site) DiffSite {
	return DiffSite{Func: s.Func, Section: s.Section, Entry: render.Hex(s.Entry).String()}
}

func diffSites(ss []sitediff.Site) []DiffSite {
	out := make([]DiffSite, len(ss))
	for i, s := range ss {
		out[i] = diffSite(s)
	}
	return out
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Diff is p's --json object.
func Diff(p *DiffPair) DiffLine {
	r := p.Result
	l := DiffLine{Old: optional(p.Old), New: optional(p.New), Regressed: p.Regressions() > 0, Matched: r.Matched,
		Lost: diffSites(r.Lost), Added: diffSites(r.Added), Removed: diffSites(r.Removed),
		NewProblems: make([]DiffProblem, len(r.NewProblems)), LayoutChanges: make([]DiffLayout, len(r.Layouts)), Moved: make([]DiffMove, len(r.Moved))}
	for i, g := range r.NewProblems {
		l.NewProblems[i] = DiffProblem{diffSite(g.Site), g.Problem.Code, g.Problem.Detail, p.ignored(g.Problem.Code)}
	}
	for i, c := range r.Layouts {
		l.LayoutChanges[i] = DiffLayout{diffSite(c.New), c.Old.Layout, c.New.Layout, c.LostLiteral()}
	}
	for i, m := range r.Moved {
		l.Moved[i] = DiffMove{diffSite(m.New), m.Old.Section}
	}
	return l
}

// siteAt names a site in text: "f at 0x… (.text)", in an object "f at
// .text+0x…".
func siteAt(rel bool, s sitediff.Site) string {
	if rel {
		return render.FuncName(s.Func) + " at " + render.Place(rel, s.Section, s.Entry)
	}
	return fmt.Sprintf("%s at %s (%s)", render.FuncName(s.Func), render.Hex(s.Entry), s.Section)
}

// DiffText writes p for people when anything changed: a verdict line, then
// a line per change. An input that did not change prints nothing.
func DiffText(w io.Writer, p *DiffPair) error {
	r := p.Result
	if !r.Changed() && p.Old != "" && p.New != "" {
		return nil
	}
	var b strings.Builder
	verdict := "changed"
	if p.Regressions() > 0 {
		verdict = "REGRESSED"
	}
	fmt.Fprintf(&b, "%s: %s: %s\n", p.Label(), verdict, diffCounts(p))
	for _, s := range r.Lost {
		fmt.Fprintf(&b, "  lost site: %s%s\n", siteAt(p.Rel, s), p.accepted(sitediff.CodeLostSite))
	}
	for _, g := range r.NewProblems {
		fmt.Fprintf(&b, "  new problem: %s: %s: %s%s\n", siteAt(p.Rel, g.Site), g.Problem.Code, g.Problem.Detail, p.accepted(g.Problem.Code))
	}
	for _, c := range r.Layouts {
		lost := ""
		if c.LostLiteral() {
			lost = " (lost its literal)" + p.accepted(sitediff.CodeLayoutChange)
		}
		fmt.Fprintf(&b, "  layout: %s: %s -> %s%s\n", siteAt(p.Rel, c.New), c.Old.Layout, c.New.Layout, lost)
	}
	for _, m := range r.Moved {
		fmt.Fprintf(&b, "  moved: %s: from %s\n", siteAt(p.Rel, m.New), m.Old.Section)
	}
	diffList(&b, "added", p.Rel, r.Added)
	diffList(&b, "removed", p.Rel, r.Removed)
	_, err := io.WriteString(w, b.String())
	return err
}

// accepted marks a change --ignore accepts.
func (p *DiffPair) accepted(code string) string {
	if p.ignored(code) {
		return " (ignored)"
	}
	return ""
}

// diffList writes the added or removed sites, a line each.
func diffList(b *strings.Builder, what string, rel bool, ss []sitediff.Site) {
	for _, s := range ss {
		fmt.Fprintf(b, "  %s: %s\n", what, siteAt(rel, s))
	}
}

// diffCounts is p's verdict line's counts.
func diffCounts(p *DiffPair) string {
	r := p.Result
	var parts []string
	switch {
	case p.Old == "":
		parts = append(parts, "not in the old build")
	case p.New == "":
		parts = append(parts, "not in the new build"+p.accepted(RuleRemovedInput))
	}
	lostLiteral := 0
	for _, c := range r.Layouts {
		if c.LostLiteral() {
			lostLiteral++
		}
	}
	for _, c := range []struct {
		n    int
		noun string
	}{{len(r.Lost), "site lost"}, {len(r.NewProblems), "problem gained"}, {lostLiteral, "literal lost"},
		{len(r.Layouts) - lostLiteral, "layout changed"}, {len(r.Added), "site added"}, {len(r.Removed), "site removed"}, {len(r.Moved), "site moved"}} {
		if c.n > 0 {
			noun, rest, _ := strings.Cut(c.noun, " ")
			parts = append(parts, render.Count(c.n, noun)+" "+rest)
		}
	}
	return strings.Join(parts, ", ")
}

// DiffSummary ends a diff run's text: inputs compared, changed,
// regressed, and the regressions.
func DiffSummary(w io.Writer, inputs, changed, regressed, regressions int) error {
	_, err := fmt.Fprintf(w, "diff: %s compared, %d changed, %d regressed (%s)\n",
		render.Count(inputs, "input"), changed, regressed, render.Count(regressions, "regression"))
	return err
}

// DiffFile reports one input's comparison in the CI reports: a testcase
// per site of the new build (its gained problems and lost literal
// failures), then per site of the old build left over (a lost site a
// failure, a removed one skipped), and a SARIF result per regression;
// what --ignore accepts is no failure. newSites are the new build's sites,
// the ones the comparison was given.
func (c CI) DiffFile(p *DiffPair, newSites []sitediff.Site) {
	if !c.Active() {
		return
	}
	if c.JUnit != nil {
		c.JUnit.StartSuite(p.Label())
	}
	fails := p.newFailures()
	names := caseNames{}
	for j, s := range newSites {
		c.diffCase(p, names, s, fails[j], "")
	}
	for _, s := range p.Result.Lost {
		var f []JUnitFailure
		if !p.ignored(RuleLostSite) {
			f = []JUnitFailure{p.diffFailure(RuleLostSite, siteAt(p.Rel, s)+": lost its patch site")}
		}
		c.diffCase(p, names, s, f, "")
	}
	for _, s := range p.Result.Removed {
		c.diffCase(p, names, s, nil, "the function is not in the new build")
	}
	if p.InputRemoved() {
		f := p.diffFailure(RuleRemovedInput, "in the old build, not in the new one")
		if c.SARIF != nil {
			c.SARIF.Result(SARIFResult{Rule: f.Type, File: p.Old, Whole: true, Message: f.Text})
		}
		if c.JUnit != nil {
			c.JUnit.Case(JUnitCase{Name: p.Old, Classname: p.Label(), Failures: []JUnitFailure{f}})
		}
	}
	if c.JUnit != nil {
		c.JUnit.EndSuite(-1)
	}
}

// diffCase writes one site's testcase and its failures' SARIF results.
func (c CI) diffCase(p *DiffPair, names caseNames, s sitediff.Site, fails []JUnitFailure, skipped string) {
	for _, f := range fails {
		if c.SARIF != nil {
			c.SARIF.Result(SARIFResult{Rule: f.Type, File: p.Label(), Func: s.Func, Section: s.Section, Address: s.Entry, Rel: p.Rel, Message: f.Text})
		}
	}
	if c.JUnit != nil {
		c.JUnit.Case(JUnitCase{Name: names.name(s.Func, p.Rel, s.Section, s.Entry), Classname: p.Label(), Failures: fails, Skipped: skipped})
	}
}

// newFailures are the regressions of the new build's sites, by index.
func (p *DiffPair) newFailures() map[int][]JUnitFailure {
	fails := map[int][]JUnitFailure{}
	for _, g := range p.Result.NewProblems {
		if !p.ignored(g.Problem.Code) {
			fails[g.At] = append(fails[g.At], p.diffFailure(g.Problem.Code, siteAt(p.Rel, g.Site)+": gained "+g.Problem.Code+": "+g.Problem.Detail))
		}
	}
	for _, ch := range p.Result.Layouts {
		if ch.LostLiteral() && !p.ignored(RuleLayoutChange) {
			fails[ch.At] = append(fails[ch.At], p.diffFailure(RuleLayoutChange, siteAt(p.Rel, ch.New)+": "+ch.Old.Layout+" -> "+ch.New.Layout+": lost its literal"))
		}
	}
	return fails
}

// diffFailure is a regression of the pair, as a failure.
func (p *DiffPair) diffFailure(rule, text string) JUnitFailure {
	return JUnitFailure{Type: rule, Message: text, Text: p.Label() + ": " + text}
}
