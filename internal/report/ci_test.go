// SPDX-License-Identifier: Apache-2.0

package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/input"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/testutil/scantest"
	"github.com/ftpatch/ftpatch/internal/verify"
)

// junitDoc is what the tests read back from a JUnit document.
type junitDoc struct {
	Suites []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Errors   int    `xml:"errors,attr"`
		Skipped  int    `xml:"skipped,attr"`
		Cases    []struct {
			Name     string    `xml:"name,attr"`
			Skipped  *struct{} `xml:"skipped"`
			Error    *struct{} `xml:"error"`
			Failures []struct {
				Type string `xml:"type,attr"`
			} `xml:"failure"`
			Out string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// ciRun is a run written through CI into two buffers.
type ciRun struct {
	junit, sarif bytes.Buffer
	ci           CI
}

func newCIRun() *ciRun {
	r := &ciRun{}
	r.ci = CI{JUnit: NewJUnit(&r.junit, "ftpatch test"), SARIF: NewSARIF(&r.sarif, "v0-test")}
	return r
}

// check closes the run, validates both documents against their schemas
// and returns them decoded.
func (r *ciRun) check(t *testing.T) (junitDoc, map[string]any) {
	t.Helper()
	if err := r.ci.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := os.WriteFile(path, r.junit.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.ValidateJUnit(t, path)
	var doc junitDoc
	if err := xml.Unmarshal(r.junit.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc, testutil.ValidateSARIF(t, r.sarif.Bytes())
}

// sarifResults returns the log's results.
func sarifResults(t *testing.T, log map[string]any) []map[string]any {
	t.Helper()
	run := log["runs"].([]any)[0].(map[string]any)
	var out []map[string]any
	for _, r := range run["results"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

// Every fixture's scan as JUnit and SARIF: both validate against their
// schemas, a suite per file with a testcase per site, a failure per
// problem (ignored ones are notes, not failures), a result per problem.
func TestCIScanValidates(t *testing.T) {
	r := newCIRun()
	problems, ignored, files, sites := 0, 0, 0, 0
	for k, p := range testutil.Fixtures(t, "*") {
		if input.Identify(p) != nil {
			continue
		}
		f, err := scantest.File(p)
		if err != nil {
			t.Fatal(err)
		}
		var ignore map[elfscan.Code]bool
		if k%2 == 0 {
			ignore = map[elfscan.Code]bool{elfscan.CodeMisalignedLiteral: true}
		}
		for pr := range f.AllProblems { // the file's own too (zeroed-entries)
			if ignore[pr.Code] {
				ignored++
			} else {
				problems++
			}
		}
		files++
		sites += len(f.Sites)
		if len(f.FileProblems()) > 0 {
			sites++ // a testcase of the file's own
		}
		r.ci.ScanFile(f, ignore)
	}
	r.ci.InputError("missing.ko", "file missing.ko: no such file")
	doc, log := r.check(t)
	if len(doc.Suites) != files+1 {
		t.Fatalf("%d suites, want %d", len(doc.Suites), files+1)
	}
	failures, cases, notes := 0, 0, 0
	for _, s := range doc.Suites {
		if s.Tests != len(s.Cases) {
			t.Errorf("suite %s: tests=%d, %d testcases", s.Name, s.Tests, len(s.Cases))
		}
		for _, c := range s.Cases {
			failures += len(c.Failures)
			notes += strings.Count(c.Out, "ignored: ")
		}
		cases += len(s.Cases)
	}
	if problems == 0 || ignored == 0 {
		t.Fatalf("the fixtures give %d problems and %d ignored: the test needs both", problems, ignored)
	}
	if failures != problems || notes != ignored || cases != sites+1 {
		t.Errorf("JUnit: %d failures, %d ignored notes, %d testcases; want %d, %d, %d", failures, notes, cases, problems, ignored, sites+1)
	}
	results := sarifResults(t, log)
	if len(results) != problems+ignored {
		t.Errorf("SARIF: %d results, want %d (a result per problem)", len(results), problems+ignored)
	}
	for _, res := range results {
		if ruleIndex(res["ruleId"].(string)) < 0 {
			t.Errorf("result with unknown rule %v", res["ruleId"])
		}
	}
	inv := log["runs"].([]any)[0].(map[string]any)["invocations"].([]any)[0].(map[string]any)
	if inv["executionSuccessful"] != false || len(inv["toolExecutionNotifications"].([]any)) != 1 {
		t.Errorf("invocation: %v, want unsuccessful with the unreadable input", inv)
	}
}

// A verify run: a testcase per site, failed sites failures (and SARIF
// results, with their address), the run's no-function sites skipped;
// names a schema must still accept (XML-hostile characters, a repeated
// static function).
func TestCIVerifyValidates(t *testing.T) {
	p := testutil.Fixtures(t, "gcc-callops-kimage.elf")[0]
	f, err := scantest.File(p)
	if err != nil {
		t.Fatal(err)
	}
	sites := f.Sites
	sites[1].Func = "evil<&>\"\x01\xff"
	sites[2].Func = sites[3].Func // two static functions of one name
	rep := &verify.Report{File: "dir with space/ü:vmlinux", ELFType: f.Type, Sites: len(sites)}
	for i := 0; i < len(sites); i += 2 {
		rep.Failures = append(rep.Failures, verify.Failure{Func: sites[i].Func, Address: sites[i].Entry(), Site: i, State: sites[i].State,
			Expected: "one call of op->func", Observed: "0 calls of op->func", Words: []encode.Placed{{Addr: 0, Bits: 0xd503201f}}})
	}
	rep.Failed = len(rep.Failures)
	r := newCIRun()
	r.ci.VerifyFile(sites, rep)
	doc, log := r.check(t)
	if len(doc.Suites) != 1 || len(doc.Suites[0].Cases) != len(sites) {
		t.Fatalf("want one suite of %d testcases: %+v", len(sites), doc)
	}
	names := map[string]bool{}
	failed := 0
	for _, c := range doc.Suites[0].Cases {
		if names[c.Name] {
			t.Errorf("testcase name %q twice in a suite", c.Name)
		}
		names[c.Name] = true
		failed += len(c.Failures)
	}
	if failed != rep.Failed || doc.Suites[0].Failures != rep.Failed {
		t.Errorf("%d failures (attribute %d), want %d", failed, doc.Suites[0].Failures, rep.Failed)
	}
	results := sarifResults(t, log)
	if len(results) != rep.Failed {
		t.Fatalf("%d SARIF results, want %d", len(results), rep.Failed)
	}
	loc := results[0]["locations"].([]any)[0].(map[string]any)
	addr := loc["physicalLocation"].(map[string]any)["address"].(map[string]any)
	if got := fmt.Sprint(addr["absoluteAddress"]); got != fmt.Sprint(sites[0].Entry()) {
		t.Errorf("absoluteAddress %s, want %d", got, sites[0].Entry())
	}
	if uri := loc["physicalLocation"].(map[string]any)["artifactLocation"].(map[string]any)["uri"]; uri != "dir%20with%20space/%C3%BC:vmlinux" {
		t.Errorf("uri %v", uri)
	}
}

// The JUnit writer's spool: a suite larger than what stays in memory is
// written whole, in order.
func TestJUnitSpool(t *testing.T) {
	var b bytes.Buffer
	j := NewJUnit(&b, "big")
	j.StartSuite("vmlinux")
	n := 3 * spoolMem / 60
	for i := range n {
		j.Case(JUnitCase{Name: fmt.Sprintf("f%07d", i), Classname: "vmlinux"})
	}
	if j.body.file == nil {
		t.Fatalf("%d testcases stayed in memory: the spool never spilled", n)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	var doc junitDoc
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Suites) != 1 || doc.Suites[0].Tests != n || len(doc.Suites[0].Cases) != n {
		t.Fatalf("want %d testcases", n)
	}
	for i, c := range doc.Suites[0].Cases {
		if c.Name != fmt.Sprintf("f%07d", i) {
			t.Fatalf("testcase %d is %s", i, c.Name)
		}
	}
}

// Every problem code has a rule, with help.
func TestRulesCoverCodes(t *testing.T) {
	for _, c := range elfscan.Codes {
		if i := ruleIndex(string(c)); i < 0 || Rules[i].Help == "" || Rules[i].Short == "" {
			t.Errorf("problem code %s has no rule with a description and help", c)
		}
	}
}

// The validators can fail: documents the schemas forbid are refused.
func TestCIValidatorsRefuse(t *testing.T) {
	r := newCIRun()
	p := testutil.Fixtures(t, "gcc-callops-static.elf")[0]
	f, err := scantest.File(p)
	if err != nil {
		t.Fatal(err)
	}
	r.ci.ScanFile(f, nil)
	if err := r.ci.Close(); err != nil {
		t.Fatal(err)
	}
	for _, edit := range []struct{ old, new string }{
		{`"level":"error"`, `"level":"fatal"`},     // not a SARIF level
		{`"version":"2.1.0"`, `"version":"2.0.0"`}, // not this schema's version
		{`"ruleIndex":0`, `"ruleIndex":-2`},        // below the minimum
	} {
		bad := strings.Replace(r.sarif.String(), edit.old, edit.new, 1)
		if bad == r.sarif.String() {
			t.Fatalf("%s not in the SARIF output", edit.old)
		}
		if _, err := testutil.SARIFError(t, []byte(bad)); err == nil {
			t.Errorf("SARIF with %s validated", edit.new)
		}
	}
	for _, edit := range []struct{ old, new string }{
		{` tests="14"`, ``},                   // tests is required
		{`<testcase name=`, `<testcase nom=`}, // name is required, nom unknown
		{`<failure type=`, `<failures type=`}, // no such element
	} {
		bad := strings.Replace(r.junit.String(), edit.old, edit.new, 1)
		if bad == r.junit.String() {
			t.Fatalf("%s not in the JUnit output", edit.old)
		}
		path := filepath.Join(t.TempDir(), "bad.xml")
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if testutil.JUnitError(t, path) == nil {
			t.Errorf("JUnit with %q -> %q validated", edit.old, edit.new)
		}
	}
}
