// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"fmt"
	goio "io"
	"os"

	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/report"
)

// ShowOptions are the flags of `ftpatch show`.
type ShowOptions struct {
	File   string
	JSON   bool // --json: one object for the file
	Select Selection
}

func newShowCmd(io *IO) *cobra.Command {
	opts := &ShowOptions{}
	cmd := &cobra.Command{
		Use:   "show [--json] [--func GLOB]... [--exclude GLOB]... [--max-decompressed SIZE] FILE",
		Short: "Disassemble the words of each patch site, with its state",
		Long: `Print each selected patch site: its function, entry, layout and state,
then its words (literal, BTI, slot1, slot2) with their addresses,
disassembled by golang.org/x/arch/arm64/arm64asm in GNU syntax, and its
problems. --json prints the same as one JSON object (docs/json.md).`,
		Args: oneFile("show", &opts.File),
		RunE: func(cmd *cobra.Command, args []string) error { return runShow(opts, io) },
	}
	addJSONFlag(cmd.Flags(), &opts.JSON)
	opts.Select.addFlags(cmd.Flags())
	addMaxDecompressedFlag(cmd)
	return cmd
}

func runShow(opts *ShowOptions, stdio *IO) error {
	if err := checkInputArgs([]string{opts.File}); err != nil {
		return err
	}
	if err := opts.Select.check(); err != nil {
		return err
	}
	var out goio.Writer = stdio.Out
	if opts.JSON {
		out = report.NewVersionStamp(stdio.Out, Version())
	}
	doc, err := showDoc(opts)
	if err != nil {
		if opts.JSON {
			// Its line, as scan and verify give a failed input (docs/json.md).
			reportInput(stdio, out, opts.File, err)
			return errInputsFailed{1}
		}
		return err
	}
	if err := opts.Select.unmatched(opts.File); err != nil {
		return err
	}
	if opts.JSON {
		return report.WriteLine(out, doc)
	}
	return report.ShowText(out, &doc)
}

// showDoc opens and scans the file and builds what show prints.
func showDoc(opts *ShowOptions) (report.ShowFile, error) {
	if st, err := os.Stat(opts.File); err == nil && st.IsDir() {
		return report.ShowFile{}, fmt.Errorf("folder %s: show takes one FILE; list the sites of a folder with: ftpatch scan %s", opts.File, opts.File)
	}
	in, err := elfscan.Open(opts.File)
	if err != nil {
		return report.ShowFile{}, fmt.Errorf("file %s: %w", opts.File, err)
	}
	defer in.Close()
	f, err := in.Scan()
	if err != nil {
		return report.ShowFile{}, fmt.Errorf("file %s: %w", opts.File, err)
	}
	return report.Show(in, opts.File, f, opts.Select.Selects), nil
}
