// SPDX-License-Identifier: Apache-2.0

package report

// JUnit XML, as Jenkins and GitLab read it (the schema is
// testdata/schema/jenkins-junit.xsd): a <testsuites> of one <testsuite>
// per input, one <testcase> per checked function, each problem a
// <failure> of its function's testcase, an input that could not be read a
// testcase with an <error>. Written as the results come: a suite's
// testcases are spooled (its opening tag carries their counts), nothing
// else is held.

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
)

// JUnitCase is one testcase: a checked function (or, with Error, an input
// that could not be checked).
type JUnitCase struct {
	Name      string // the function
	Classname string // where it is: the input and section
	Skipped   string // not checked, and why (a no-function site)
	Output    string // said about it, not a failure (an ignored problem)
	Failures  []JUnitFailure
	Error     *JUnitFailure // the check did not run
}

// JUnitFailure is a <failure> (or <error>): Type is a problem code or rule
// id, Message one line, Text the details.
type JUnitFailure struct {
	Type, Message, Text string
}

// JUnit writes one JUnit XML document; the zero value is not usable (see
// NewJUnit). Methods after an error do nothing; Close returns the error.
type JUnit struct {
	w    *bufio.Writer
	body spool // the open suite's testcases
	name string
	open bool
	n    struct{ tests, failures, errors, skipped int }
	err  error
}

// NewJUnit starts a document on w whose <testsuites> is called name.
func NewJUnit(w io.Writer, name string) *JUnit {
	j := &JUnit{w: bufio.NewWriterSize(w, 64<<10)}
	j.printf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=%s>\n", xmlAttr(name))
	return j
}

func (j *JUnit) printf(format string, a ...any) {
	if j.err == nil {
		_, j.err = fmt.Fprintf(j.w, format, a...)
	}
}

// StartSuite opens the testsuite of one input; EndSuite closes it.
func (j *JUnit) StartSuite(name string) {
	if j.open {
		j.EndSuite(-1)
	}
	j.name, j.open = name, true
	j.n.tests, j.n.failures, j.n.errors, j.n.skipped = 0, 0, 0, 0
}

// Case adds a testcase to the open suite.
func (j *JUnit) Case(c JUnitCase) {
	if j.err != nil {
		return
	}
	j.n.tests++
	b := j.caseXML(c)
	if _, err := j.body.Write(b); err != nil {
		j.err = err
	}
}

// caseXML is c's element, and counts it.
func (j *JUnit) caseXML(c JUnitCase) []byte {
	b := fmt.Appendf(nil, "    <testcase name=%s classname=%s", xmlAttr(c.Name), xmlAttr(c.Classname))
	if c.Skipped == "" && c.Error == nil && len(c.Failures) == 0 && c.Output == "" {
		return append(b, "/>\n"...)
	}
	b = append(b, ">\n"...)
	if c.Skipped != "" {
		j.n.skipped++
		b = fmt.Appendf(b, "      <skipped>%s</skipped>\n", xmlText(c.Skipped))
	}
	if c.Error != nil {
		j.n.errors++
		b = appendFailure(b, "error", *c.Error)
	}
	if len(c.Failures) > 0 {
		j.n.failures++
	}
	for _, f := range c.Failures {
		b = appendFailure(b, "failure", f)
	}
	if c.Output != "" {
		b = fmt.Appendf(b, "      <system-out>%s</system-out>\n", xmlText(c.Output))
	}
	return append(b, "    </testcase>\n"...)
}

func appendFailure(b []byte, elem string, f JUnitFailure) []byte {
	return fmt.Appendf(b, "      <%s type=%s message=%s>%s</%s>\n", elem, xmlAttr(f.Type), xmlAttr(f.Message), xmlText(f.Text), elem)
}

// EndSuite writes the open suite: its tag with the counts, then its
// testcases. seconds < 0 leaves the time out.
func (j *JUnit) EndSuite(seconds float64) {
	if !j.open {
		return
	}
	j.open = false
	if j.err != nil {
		j.body.close()
		return
	}
	j.printf("  <testsuite name=%s tests=\"%d\" failures=\"%d\" errors=\"%d\" skipped=\"%d\"",
		xmlAttr(j.name), j.n.tests, j.n.failures, j.n.errors, j.n.skipped)
	if seconds >= 0 {
		j.printf(" time=\"%s\"", strconv.FormatFloat(seconds, 'f', 3, 64))
	}
	j.printf(">\n")
	if j.err == nil {
		j.err = j.body.writeTo(j.w)
	}
	j.body.close()
	j.printf("  </testsuite>\n")
}

// Close ends the document (and an open suite) and flushes it; it returns
// the first error any method met.
func (j *JUnit) Close() error {
	j.EndSuite(-1)
	j.printf("</testsuites>\n")
	if j.err == nil {
		j.err = j.w.Flush()
	}
	return j.err
}

// xmlText escapes s as XML character data; characters XML 1.0 cannot hold
// (a symbol name is any bytes) become U+FFFD.
func xmlText(s string) string {
	var b []byte
	w := appendWriter{&b}
	xml.EscapeText(w, []byte(s))
	return string(b)
}

// xmlAttr is s quoted as an attribute value.
func xmlAttr(s string) string { return `"` + xmlText(s) + `"` }

// appendWriter appends what is written to a slice.
type appendWriter struct{ b *[]byte }

func (a appendWriter) Write(p []byte) (int, error) {
	*a.b = append(*a.b, p...)
	return len(p), nil
}
