// SPDX-License-Identifier: Apache-2.0

package cli

// --junit FILE and --sarif FILE: the reports CI systems show (GitLab and
// Jenkins read JUnit XML, GitHub code scanning SARIF), written by package
// report as the run goes, beside the command's usual output.

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/ftpatch/ftpatch/internal/report"
)

// CIOptions are --junit and --sarif.
type CIOptions struct {
	JUnit, SARIF       string
	junitSet, sarifSet bool // given (an empty value is a mistake, not "none")
}

func (o *CIOptions) addFlags(f *pflag.FlagSet) {
	f.Var(outputFlag{&o.JUnit, &o.junitSet}, "junit", "also write the results as JUnit XML to `FILE` (a suite per input, a testcase per function; GitLab, Jenkins)")
	f.Var(outputFlag{&o.SARIF, &o.sarifSet}, "sarif", "also write the findings as SARIF 2.1.0 to `FILE` (a result per problem or failed site; GitHub code scanning)")
}

// given reports whether a report was asked for.
func (o *CIOptions) given() bool { return o.junitSet || o.sarifSet }

// ciFiles are the open report files and their writers.
type ciFiles struct {
	report.CI
	files []*os.File
	names []string
}

// open creates the report files and starts their documents, before any
// input is read: a bad path is refused with nothing done. title names the
// JUnit document ("ftpatch scan").
func (o *CIOptions) open(title string) (*ciFiles, error) {
	c := &ciFiles{}
	if !o.given() {
		return c, nil
	}
	reports := []struct {
		flag, path string
		set        bool
	}{{"--junit", o.JUnit, o.junitSet}, {"--sarif", o.SARIF, o.sarifSet}}
	if o.junitSet && o.sarifSet && o.JUnit == o.SARIF {
		return nil, UsageErrorf("--junit and --sarif name the same file %s: give each its own", o.JUnit)
	}
	for _, r := range reports {
		if !r.set {
			continue
		}
		f, err := createReport(r.flag, r.path)
		if err != nil {
			c.abort()
			return nil, err
		}
		c.files, c.names = append(c.files, f), append(c.names, r.flag+" "+r.path)
		if r.flag == "--junit" {
			c.JUnit = report.NewJUnit(f, title)
		} else {
			c.SARIF = report.NewSARIF(f, Version())
		}
	}
	return c, nil
}

// createReport creates (or truncates) a report file.
func createReport(flag, path string) (*os.File, error) {
	if path == "" {
		return nil, UsageErrorf("%s is empty (an unset variable?): give a file name", flag)
	}
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return nil, UsageErrorf("%s %s: not a regular file; give the name of a file to write", flag, path)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return f, nil
}

// close ends the documents and closes the files; an error names the
// report.
func (c *ciFiles) close() error {
	if c == nil || len(c.files) == 0 {
		return nil
	}
	err := c.CI.Close()
	for i, f := range c.files {
		if e := f.Close(); e != nil && err == nil {
			err = fmt.Errorf("%s: %w", c.names[i], e)
		}
	}
	if err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// abort closes and removes the files of a run that never started.
func (c *ciFiles) abort() {
	for _, f := range c.files {
		f.Close()
		os.Remove(f.Name())
	}
	c.files = nil
}

// finish closes the reports at the end of a run whose result is err: a
// report that cannot be written is an error (exit 2) unless the run
// already failed for another reason, which is said first.
func (c *ciFiles) finish(err error) error {
	cerr := c.close()
	if cerr == nil {
		return err
	}
	var said errInputsFailed
	if err != nil && !errors.Is(err, ErrFindings) && !errors.As(err, &said) {
		return errors.Join(err, cerr) // two messages, each its line
	}
	return cerr
}
