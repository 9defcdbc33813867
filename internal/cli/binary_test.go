// SPDX-License-Identifier: Apache-2.0

package cli

// Helpers for the few Go tests that run ftpatch as a whole: a separately
// built binary
// (TestBuildWithoutCgo), or scan in-process (TestScanCompressed); the command
// line itself is tested by the
// acceptance scripts in testdata/script (cmd/ftpatch TestScripts).

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

type kfResult struct {
	stdout, stderr string
	code           int
}

// kfExit runs bin in dir and fails the test unless it exits with want.
func kfExit(t *testing.T, want int, bin, dir string, args ...string) kfResult {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := kfResult{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("ftpatch %s: %v", strings.Join(args, " "), err)
	}
	if r.code != want {
		t.Fatalf("ftpatch %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// kfScanFile is the part of a scan --json line these tests read.
type kfScanFile struct {
	File  string `json:"file"`
	Sites []struct {
		Func  string `json:"func"`
		State string `json:"state"`
	} `json:"sites"`
}

// scanRun runs scan in-process with buffers (TestScanCompressed compares
// the output of plain and compressed inputs).
func scanRun(t *testing.T, opts ScanOptions) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	if opts.Jobs == 0 {
		opts.Jobs = 2
	}
	err = runScan(&opts, &IO{Out: &out, Err: &errb})
	return out.String(), errb.String(), err
}
