// Package cli implements the ftpatch command line. Each command lives in its
// own file with an Options struct, a constructor that wires cobra flags and
// a run function that takes the options and an IO; tests drive the run
// functions with buffers.
package cli

import (
	"errors"
	"io"

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
