// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/elfwrite"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/report"
	"github.com/ftpatch/ftpatch/internal/safefile"
)

// TrampolineOptions are the flags of `ftpatch trampoline`.
type TrampolineOptions struct {
	Output  string // -o: object (or, with --asm, assembler text) to write
	Asm     bool   // --asm: GNU assembler text instead of an object
	Name    string // --name: the function symbol
	Classic bool   // --classic: variant for sites without a literal
	Ops     string // --ops: the ops symbol of the classic variant
	// --direct-calls: the direct-call path (op->direct_call at
	// --direct-call-offset)
	DirectCalls      bool
	DirectCallOffset int64
}

func newTrampolineCmd(stdio *IO) *cobra.Command {
	opts := &TrampolineOptions{}
	cmd := &cobra.Command{
		Use:   "trampoline [-o FILE] [--asm] [--name SYM] [--classic --ops SYM | --direct-calls [--direct-call-offset N]]",
		Short: "Write the common trampoline (ftrace_caller) as an object or assembler text",
		Long: `Write the common trampoline that enabled patch sites branch to, encoded by
ftpatch itself into an ET_REL object (no assembler needed). It reads the ops
pointer from the literal before the call site ((X30 & ~7) - 16), returns at
once for a NULL op, and otherwise calls op->func(ip, parent_ip, op, regs).
A second entry, SYM_lit24, reads the literal at X30 - 24: enable aims the
5,3 sites (-fpatchable-function-entry=5,3) with BTI whose entry is 4 mod 8
at it; every other site, 4,2 or 5,3, calls SYM.
--classic builds the variant for sites without a literal, calling the ops
named by --ops. --asm prints the same code as GNU assembler text.

--direct-calls adds the direct-call path of Linux's ftrace_caller (Linux 6.4+,
DYNAMIC_FTRACE_WITH_DIRECT_CALLS): after loading a non-NULL op it loads
op->direct_call, the 8 bytes at --direct-call-offset, and when that is
non-zero branches to it (BR x17) with X9 = the parent's return address and
X30 = the return into the traced function; the direct trampoline returns
there itself, with X30 = X9. The default offset, 208, is struct ftrace_ops'
layout in Debian 13's Linux 6.12 on arm64 (its ftrace_caller reads
[x11, #208]); it depends on the kernel's configuration, so take yours from
the kernel's ftrace_caller or asm-offsets.h (FTRACE_OPS_DIRECT_CALL).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return UsageErrorf("trampoline takes no arguments, got %q", args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runTrampoline(opts, stdio) },
	}
	f := cmd.Flags()
	addOutputFlag(f, &opts.Output, nil, "(required unless --asm)")
	f.BoolVar(&opts.Asm, "asm", false, "write GNU assembler text (to stdout unless -o)")
	f.StringVar(&opts.Name, "name", "ftrace_caller", "name of the function: `SYM`")
	f.BoolVar(&opts.Classic, "classic", false, "variant for classic sites (no literal); needs --ops")
	f.StringVar(&opts.Ops, "ops", "", "the ops `SYM` the classic variant calls")
	f.BoolVar(&opts.DirectCalls, "direct-calls", false, "add the direct-call path: branch to a non-zero op->direct_call")
	f.Int64Var(&opts.DirectCallOffset, "direct-call-offset", encode.DefaultDirectCallOffset, "offset `N` of direct_call in struct ftrace_ops (Linux 6.12 arm64)")
	return cmd
}

func runTrampoline(opts *TrampolineOptions, stdio *IO) error {
	switch {
	case opts.Output == "" && !opts.Asm:
		return UsageErrorf("-o FILE is required (or --asm to print assembler text)")
	case opts.Output == "-":
		return UsageErrorf("-o -: %s", stdioHint)
	case opts.Name == "":
		return UsageErrorf("--name must not be empty")
	case opts.Classic && opts.Ops == "":
		return UsageErrorf("--classic needs --ops SYM: classic sites have no literal to read the ops from")
	case !opts.Classic && opts.Ops != "":
		return UsageErrorf("--ops is only for --classic: call-ops sites carry their ops in their literal")
	case opts.DirectCalls && opts.Classic:
		return UsageErrorf("--direct-calls is for call-ops sites, not --classic: the op comes from the literal")
	}
	prog, err := encode.Trampoline(encode.TrampolineOptions{Name: opts.Name, Classic: opts.Classic, OpsSym: opts.Ops,
		DirectCalls: opts.DirectCalls, DirectCallOffset: opts.DirectCallOffset})
	if errors.Is(err, encode.ErrTrampoline) {
		return UsageErrorf("%v", err)
	}
	if err != nil {
		return fmt.Errorf("trampoline: %w", err)
	}
	var out []byte
	if opts.Asm {
		s, err := prog.Asm()
		if err != nil {
			return fmt.Errorf("trampoline %s: %w", prog.Name, err)
		}
		out = []byte(s)
	} else if out, err = elfwrite.BuildObject(prog); err != nil {
		return fmt.Errorf("trampoline %s: %w", prog.Name, err)
	}
	if opts.Output == "" {
		_, err := stdio.Out.Write(out)
		return err
	}
	if err := writeTrampolineFile(opts.Output, out, 0o644, stdio.Err); err != nil {
		return fmt.Errorf("-o %s: %w", opts.Output, err)
	}
	return nil
}

// writeTrampolineFile replaces path with data as safefile promises. An
// existing file keeps its owner, mode and attributes; a new one gets perm.
func writeTrampolineFile(path string, data []byte, perm os.FileMode, warn io.Writer) error {
	t, err := safefile.Lock(path, safefile.Options{Warn: warnTo(warn)})
	if err != nil {
		return withLockFlags(err, false) // trampoline has no --wait
	}
	defer t.Close()
	return t.Replace(func(f *os.File) error {
		_, err := f.Write(data)
		return err
	}, perm)
}

// warnTo is a safefile warning callback that prints them to w.
func warnTo(w io.Writer) func(safefile.Warning) {
	return func(wn safefile.Warning) { report.FileWarning(w, wn) }
}
