// SPDX-License-Identifier: Apache-2.0

// Package cli implements the ftpatch command line. Each command lives in its
// own file with an Options struct, a constructor that wires cobra flags and
// a run function that takes the options and an IO; tests drive the run
// functions with buffers.
package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/ftpatch/ftpatch/internal/report"
	"github.com/ftpatch/ftpatch/internal/verify"
)

// ExitCode is the process exit status; mapped from errors in one place.
type ExitCode int

const (
	ExitOK       ExitCode = 0 // success
	ExitFindings ExitCode = 1 // check or verify found problems
	ExitInput    ExitCode = 2 // usage or input error
)

// ErrFindings is returned by a command whose run completed but found
// problems (scan --check, verify); it maps to ExitFindings.
var ErrFindings = errors.New("findings")

// IO is where commands read and write; never os.Stdout directly.
type IO struct {
	In         io.Reader
	Out        io.Writer
	Err        io.Writer
	IsTerminal bool // stderr is a terminal (progress bars)
}

// exitCode maps an error from a command to the process exit status.
func exitCode(err error) ExitCode {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrFindings):
		return ExitFindings
	case errors.Is(err, verify.ErrNoEmulator): // built without cgo
		return ExitInput
	default:
		return ExitInput
	}
}

// errInputsFailed ends a run over several inputs in which some could not be
// processed; each was reported on stderr as it came (reportInput), so Main
// prints nothing more. It maps to ExitInput.
type errInputsFailed struct{ n int }

func (e errInputsFailed) Error() string {
	if e.n == 1 {
		return "1 input failed"
	}
	return fmt.Sprintf("%d inputs failed", e.n)
}

// reportInput reports the error of one input of several: on stderr with
// the prefix every ftpatch message has, and, when jsonOut is set, as that
// input's JSON line, {"file":…,"error":…} with the same text. It returns
// the error of writing that line (the caller's "writing output").
func reportInput(stdio *IO, jsonOut io.Writer, file string, err error) (werr error) {
	if jsonOut != nil {
		werr = report.WriteLine(jsonOut, report.InputError{File: file, Error: err.Error()})
		if f, ok := jsonOut.(interface{ Flush() error }); ok {
			// the line before the message, for a reader of both
			if ferr := f.Flush(); werr == nil {
				werr = ferr
			}
		}
	}
	report.Error(stdio.Err, err)
	return werr
}

// inFile names path in err; errors joined together (a plan's refusals of
// several kinds) each get the name, as each is printed as its own message.
func inFile(path string, err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs := j.Unwrap()
		named := make([]error, len(errs))
		for i, e := range errs {
			named[i] = fmt.Errorf("file %s: %w", path, e)
		}
		return errors.Join(named...)
	}
	return fmt.Errorf("file %s: %w", path, err)
}
