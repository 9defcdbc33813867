// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ftpatch/ftpatch/internal/report"
	"github.com/ftpatch/ftpatch/internal/safefile"
)

// flagError marks errors that come from parsing the command line, for which
// usage is printed.
type flagError struct{ err error }

func (e flagError) Error() string { return e.err.Error() }
func (e flagError) Unwrap() error { return e.err }

// NewRoot builds the ftpatch command tree.
func NewRoot(stdio *IO) *cobra.Command {
	root := &cobra.Command{
		Use:           "ftpatch",
		Short:         "Patch arm64 ELF function entries for fast call-ops tracing, and prove it",
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       Version(),
		Long: `Patch arm64 ELF function entries for fast call-ops tracing, and prove it.

Exit status: 0 success; 1 findings (scan --check found a problem, verify a
failing site or change); 2 usage or input error, nothing written. Messages
go to stderr, one line each, starting "ftpatch: ". --json output is one
object per input per line, described in docs/json.md.`,
	}
	// Cobra's own suggestions span several lines; unknownCommand says
	// them in the one line every message has.
	root.DisableSuggestions = true
	root.SuggestionsMinimumDistance = 2
	root.SetVersionTemplate(versionText())
	root.Flags().BoolP("version", "v", false, "print the version, VCS revision and Go version of this build")
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return flagError{err}
	})
	root.AddCommand(
		newScanCmd(stdio),
		newShowCmd(stdio),
		newInitCmd(stdio),
		newEnableCmd(stdio),
		newDisableCmd(stdio),
		newVerifyCmd(stdio),
		newDiffCmd(stdio),
		newTrampolineCmd(stdio),
	)
	helpTopicsOneLine(root)
	return root
}

// helpTopicsOneLine makes `ftpatch help TOPIC` for an unknown topic an
// error of one line with the commands meant (exit 2), as a mistyped
// command is, where cobra's help command printed the whole usage (exit 0).
func helpTopicsOneLine(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		if c.Name() != "help" {
			continue
		}
		show := c.Run
		c.Run = nil
		c.RunE = func(c *cobra.Command, args []string) error {
			if cmd, _, err := c.Root().Find(args); cmd == nil || err != nil {
				if err == nil {
					err = fmt.Errorf("unknown command %q", strings.Join(args, " "))
				}
				return unknownCommand(c.Root(), args, err)
			}
			show(c, args)
			return nil
		}
	}
}

// Main runs the CLI with args and returns the exit code; the process is
// to exit with it (the handled signals are ignored once Main returns).
func Main(args []string) int {
	stdio := &IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, IsTerminal: term.IsTerminal(int(os.Stderr.Fd()))}
	// A signal removes what a write created and exits 128+signal, saying so.
	defer safefile.HandleSignals(func(n safefile.SignalNotice) { report.SignalNotice(stdio.Err, n) })()
	tuneGC()
	root := NewRoot(stdio)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	err = unknownCommand(root, args, err)
	var said errInputsFailed
	if err != nil && !errors.Is(err, ErrFindings) && !errors.As(err, &said) {
		report.Error(stdio.Err, err)
		var fe flagError
		if errors.As(err, &fe) || isArgsError(err) {
			fmt.Fprint(stdio.Err, cmd.UsageString())
		}
	}
	return int(exitCode(err))
}

// usageError is returned by commands for bad arguments (missing file, bad
// combination of flags); usage is printed and the exit code is 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// UsageErrorf builds a usage error.
func UsageErrorf(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func isArgsError(err error) bool {
	var ue usageError
	return errors.As(err, &ue)
}

// unknownCommand rewrites cobra's error for a mistyped command into one
// line, with the commands it may have meant: `unknown command "sacn"; did
// you mean scan? (ftpatch --help lists the commands)`. Other errors pass.
func unknownCommand(root *cobra.Command, args []string, err error) error {
	var said unknownCommandError
	if err == nil || errors.As(err, &said) || !strings.HasPrefix(err.Error(), "unknown command ") {
		return err
	}
	var typed string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			typed = a
			break
		}
	}
	root.DisableSuggestions = false // SuggestionsFor honours it
	defer func() { root.DisableSuggestions = true }()
	msg := fmt.Sprintf("unknown command %q", typed)
	if s := root.SuggestionsFor(typed); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	// Not a usageError: the one line says it all, without the usage.
	return unknownCommandError{msg + " (ftpatch --help lists the commands)"}
}

// unknownCommandError is a mistyped command, said in one line.
type unknownCommandError struct{ msg string }

func (e unknownCommandError) Error() string { return e.msg }
