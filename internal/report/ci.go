// SPDX-License-Identifier: Apache-2.0

package report

// What the commands' results become in the reports CI systems read: JUnit
// (a suite per input, a testcase per function) and SARIF (a result per
// problem, failed site, refusal or regression). CI holds either writer, or
// both; each input is written as it comes.

import (
	"debug/elf"
	"errors"
	"fmt"
	"strconv"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/livesafe"
	"github.com/ftpatch/ftpatch/internal/patch"
	"github.com/ftpatch/ftpatch/internal/render"
	"github.com/ftpatch/ftpatch/internal/verify"
)

// CI is a run's JUnit and SARIF writers; either may be nil, and the
// methods of a CI with neither do nothing.
type CI struct {
	JUnit *JUnit
	SARIF *SARIF
}

// Active reports whether any report is being written.
func (c CI) Active() bool { return c.JUnit != nil || c.SARIF != nil }

// Close closes both writers and returns the first error.
func (c CI) Close() error {
	var err error
	if c.JUnit != nil {
		err = c.JUnit.Close()
	}
	if c.SARIF != nil {
		if e := c.SARIF.Close(); err == nil {
			err = e
		}
	}
	return err
}

// InputError reports an input that could not be checked: an errored
// testcase of its own suite, a SARIF notification.
func (c CI) InputError(file, message string) {
	if c.JUnit != nil {
		c.JUnit.StartSuite(file)
		c.JUnit.Case(JUnitCase{Name: file, Classname: file, Error: &JUnitFailure{Type: "input-error", Message: message, Text: message}})
		c.JUnit.EndSuite(-1)
	}
	if c.SARIF != nil {
		c.SARIF.InputError(file, message)
	}
}

// caseNames names a suite's testcases after their functions, numbering the
// repeats of a name (a kernel has many static functions of one name):
// "f", "f #2". Names stay the same from build to build, so a CI system
// follows one function's results over time.
type caseNames map[string]int

func (n caseNames) name(fn string, rel bool, section string, entry uint64) string {
	if fn == "" {
		return "<no function at " + render.Place(rel, section, entry) + ">"
	}
	n[fn]++
	if k := n[fn]; k > 1 {
		return fn + " #" + strconv.Itoa(k)
	}
	return fn
}

// ScanFile reports the scan of one input (scan --check): every site a
// testcase, every problem a failure (ignored codes: a note in the
// testcase's output, a SARIF note).
func (c CI) ScanFile(f *elfscan.File, ignore map[elfscan.Code]bool) {
	rel := f.Type == elf.ET_REL
	if c.JUnit != nil {
		c.JUnit.StartSuite(f.Path)
		names := caseNames{}
		if fc, ok := fileCase(f, ignore); ok {
			c.JUnit.Case(fc)
		}
		for i := range f.Sites {
			s := &f.Sites[i]
			c.JUnit.Case(scanCase(f.Path, rel, s, names.name(s.Func, rel, s.Section, s.Entry()), ignore))
		}
		c.JUnit.EndSuite(-1)
	}
	if c.SARIF != nil {
		for _, p := range f.FileProblems() {
			c.SARIF.Result(SARIFResult{Rule: string(p.Code), Ignored: ignore[p.Code], File: f.Path, Whole: true,
				Message: fmt.Sprintf("%s: %s: %s", f.Path, p.Code, p.Detail)})
		}
		for i := range f.Sites {
			s := &f.Sites[i]
			for _, p := range s.Problems() {
				c.SARIF.Result(SARIFResult{Rule: string(p.Code), Ignored: ignore[p.Code], File: f.Path, Func: s.Func, Section: s.Section, Address: s.Entry(), Rel: rel,
					Message: fmt.Sprintf("%s: %s: %s: %s", f.Path, siteText(rel, s.Func, s.Section, s.Entry()), p.Code, p.Detail)})
			}
		}
	}
}

// fileCase is the testcase of a file's own problems (zeroed-entries),
// named after the file; ok is false when it has none.
func fileCase(f *elfscan.File, ignore map[elfscan.Code]bool) (JUnitCase, bool) {
	tc := JUnitCase{Name: "(file)", Classname: f.Path}
	for _, p := range f.FileProblems() {
		text := fmt.Sprintf("%s: %s: %s", f.Path, p.Code, p.Detail)
		if ignore[p.Code] {
			tc.Output += "ignored: " + text + "\n"
			continue
		}
		tc.Failures = append(tc.Failures, JUnitFailure{Type: string(p.Code), Message: p.Detail, Text: text})
	}
	return tc, len(f.FileProblems()) > 0
}

// scanCase is one site's testcase.
func scanCase(path string, rel bool, s *elfscan.Site, name string, ignore map[elfscan.Code]bool) JUnitCase {
	tc := JUnitCase{Name: name, Classname: path}
	for _, p := range s.Problems() {
		text := fmt.Sprintf("%s: %s: %s: %s", path, siteText(rel, s.Func, s.Section, s.Entry()), p.Code, p.Detail)
		if ignore[p.Code] { // accepted by the run: said, not failed
			tc.Output += "ignored: " + text + "\n"
			continue
		}
		tc.Failures = append(tc.Failures, JUnitFailure{Type: string(p.Code), Message: p.Detail, Text: text})
	}
	return tc
}

// siteText names a site in a report: "function f at 0x…" (objects:
// "section+0x…").
func siteText(rel bool, fn, section string, entry uint64) string {
	return fmt.Sprintf("function %s at %s", render.FuncName(fn), render.Place(rel, section, entry))
}

// VerifyFile reports one input's verify run: every site checked a
// testcase (sites in no function, not run, skipped), every failed site a
// failure and a SARIF result. sites are the sites verify was given, in
// its order (the scan's, after --func/--exclude); rep.Failures follow
// that order.
func (c CI) VerifyFile(sites []elfscan.Site, rep *verify.Report) {
	if !c.Active() {
		return
	}
	rel := rep.ELFType == elf.ET_REL
	if c.JUnit != nil {
		c.JUnit.StartSuite(rep.File)
	}
	names := caseNames{}
	k := 0 // the next failure
	for i := range sites {
		s := &sites[i]
		var failed *verify.Failure
		if k < len(rep.Failures) && rep.Failures[k].Site == i {
			failed = &rep.Failures[k]
			k++
		}
		if c.JUnit != nil {
			c.JUnit.Case(verifyCase(rep.File, rel, s, names.name(s.Func, rel, s.Section, s.Entry()), failed))
		}
		if c.SARIF != nil && failed != nil {
			c.SARIF.Result(SARIFResult{Rule: RuleSiteFailed, File: rep.File, Func: s.Func, Section: s.Section, Address: s.Entry(), Rel: rel,
				Message: fmt.Sprintf("%s: %s (%s): expected: %s; observed: %s", rep.File, siteText(rel, s.Func, s.Section, s.Entry()), failed.State, failed.Expected, failed.Observed)})
		}
	}
	if c.JUnit != nil {
		c.JUnit.EndSuite(rep.Elapsed.Seconds())
	}
}

// verifyCase is one site's testcase; failed is its failure, if any.
func verifyCase(file string, rel bool, s *elfscan.Site, name string, failed *verify.Failure) JUnitCase {
	tc := JUnitCase{Name: name, Classname: file}
	switch {
	case s.HasProblem(elfscan.CodeNoFunction):
		tc.Skipped = "no function symbol covers the entry, so it is not run (" + elfscan.NoFunctionHelp + ")"
	case failed != nil:
		tc.Failures = []JUnitFailure{{Type: RuleSiteFailed, Message: "expected: " + failed.Expected + "; observed: " + failed.Observed,
			Text: verifyFailureText(file, rel, s.Section, *failed)}}
	}
	return tc
}

// verifyFailureText is a failed site as verify's text shows it.
func verifyFailureText(file string, rel bool, section string, f verify.Failure) string {
	t := fmt.Sprintf("%s: %s (%s)\nexpected: %s\nobserved: %s\n", file, siteText(rel, f.Func, section, f.Address), f.State, f.Expected, f.Observed)
	for _, w := range f.Words {
		t += "  " + wordText(w) + "\n"
	}
	return t
}

// siteKey identifies a site of one file.
type siteKey struct {
	section string
	entry   uint64
}

// PatchFile reports a patch command's run on one file: a testcase per site
// the request selected (selects; nil selects all), each refused site a
// failure with its reason (and a SARIF result), each site left alone on
// request skipped.
func (c CI) PatchFile(file string, rel bool, sites []elfscan.Site, selects func(string) bool, skipped []patch.Skip, refused []patch.Refusal) {
	if !c.Active() {
		return
	}
	why := map[siteKey][]patch.Refusal{}
	for _, r := range refused {
		k := siteKey{r.Section, r.Entry}
		why[k] = append(why[k], r)
	}
	left := map[siteKey]string{}
	for _, s := range skipped {
		left[siteKey{s.Section, s.Addr}] = s.Reason
	}
	if c.JUnit != nil {
		c.JUnit.StartSuite(file)
	}
	names := caseNames{}
	for i := range sites {
		s := &sites[i]
		if selects != nil && !selects(s.Func) {
			continue
		}
		k := siteKey{s.Section, s.Entry()}
		tc := JUnitCase{Name: names.name(s.Func, rel, s.Section, s.Entry()), Classname: file, Skipped: left[k]}
		for _, r := range why[k] {
			rule := refusalRule(r)
			tc.Failures = append(tc.Failures, JUnitFailure{Type: rule, Message: r.Reason,
				Text: fmt.Sprintf("%s: %s: %v: %s", file, siteText(rel, s.Func, s.Section, s.Entry()), r.Kind, r.Reason)})
			if c.SARIF != nil {
				c.SARIF.Result(SARIFResult{Rule: rule, File: file, Func: s.Func, Section: s.Section, Address: s.Entry(), Rel: rel,
					Message: fmt.Sprintf("%s: %s: %v: %s", file, siteText(rel, s.Func, s.Section, s.Entry()), r.Kind, r.Reason)})
			}
		}
		if c.JUnit != nil {
			c.JUnit.Case(tc)
		}
	}
	if c.JUnit != nil {
		c.JUnit.EndSuite(-1)
	}
}

// refusalRule is the rule a refusal reports under: a misaligned literal's
// is the scan code's, with its fix; the others are refused-site.
func refusalRule(r patch.Refusal) string {
	if errors.Is(r.Kind, patch.ErrMisaligned) {
		return string(elfscan.CodeMisalignedLiteral)
	}
	return RuleRefused
}

// AgainstFile reports verify --against: a testcase per change from ORIG
// to FILE (one that running code may not take a failure; allowInit
// accepts init changes, NOP -> MOV X9,X30), and one per difference that
// is no allowed change at all (each a failure); a SARIF result per
// failure.
func (c CI) AgainstFile(r *livesafe.Report, allowInit bool) {
	if !c.Active() {
		return
	}
	rel := r.Type == elf.ET_REL
	suite := r.File + " against " + r.Orig
	if c.JUnit != nil {
		c.JUnit.StartSuite(suite)
	}
	names := caseNames{}
	for _, ch := range r.Changes {
		var fails []JUnitFailure
		if !ch.LiveSafe && !(allowInit && ch.Kind == livesafe.KindMov) {
			text := fmt.Sprintf("%s: %s: %s: %s -> %s: not live-safe: %s", r.File, siteText(rel, ch.Func, ch.Section, ch.Address), ch.Kind,
				valueText(ch, ch.Old), valueText(ch, ch.New), ch.Why)
			fails = []JUnitFailure{{Type: RuleNotLiveSafe, Message: string(ch.Kind) + ": " + ch.Why, Text: text}}
		}
		c.againstCase(suite, names.name(ch.Func+" "+string(ch.Kind), rel, ch.Section, ch.Address), r.File, ch.Func, ch.Section, ch.Address, rel, fails)
	}
	for _, p := range r.Problems {
		detail := problemDetail(p)
		text := fmt.Sprintf("%s: %s (file offset %#x in %s): %s", r.File, render.Place(true, p.Section, p.Offset), p.FileOffset, r.Orig, detail)
		name := names.name("difference at "+render.Place(true, p.Section, p.Offset), rel, p.Section, p.Address)
		c.againstCase(suite, name, r.File, p.Func, p.Section, p.Address, rel, []JUnitFailure{{Type: RuleNotLiveSafe, Message: detail, Text: text}})
	}
	if c.JUnit != nil {
		c.JUnit.EndSuite(-1)
	}
}

// againstCase writes one testcase of verify --against and its failures'
// SARIF results.
func (c CI) againstCase(suite, name, file, fn, section string, addr uint64, rel bool, fails []JUnitFailure) {
	if c.JUnit != nil {
		c.JUnit.Case(JUnitCase{Name: name, Classname: suite, Failures: fails})
	}
	if c.SARIF != nil {
		for _, f := range fails {
			c.SARIF.Result(SARIFResult{Rule: f.Type, File: file, Func: fn, Section: section, Address: addr, Rel: rel, Message: f.Text})
		}
	}
}
