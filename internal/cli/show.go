// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/render"
	"github.com/ftpatch/ftpatch/internal/report"
)

// ShowOptions are the flags of `ftpatch show`.
type ShowOptions struct {
	File   string
	JSON   bool // --json: one object for the file
	Select Selection
}

func newShowCmd(stdio *IO) *cobra.Command {
	opts := &ShowOptions{}
	cmd := &cobra.Command{
		Use:   "show [--json] [--func GLOB]... [--exclude GLOB]... [--max-decompressed SIZE] FILE",
		Short: "Disassemble the words of each patch site, with its state",
		Long: `Print each selected patch site: its function, entry, layout and state,
then its words (literal, BTI, slot1, slot2) with their addresses,
disassembled by golang.org/x/arch/arm64/arm64asm in GNU syntax, and its
problems. --json prints the same as one JSON object (docs/json.md).`,
		Args: oneFile("show", &opts.File),
		RunE: func(cmd *cobra.Command, args []string) error { return runShow(opts, stdio) },
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
	var out io.Writer = stdio.Out
	if opts.JSON {
		out = report.NewVersionStamp(stdio.Out, Version())
	}
	doc, err := showDoc(opts)
	if err != nil {
		if opts.JSON {
			// Its line, as scan and verify give a failed input (docs/json.md).
			if werr := reportInput(stdio, out, opts.File, err); werr != nil {
				return fmt.Errorf("writing output: %w", werr)
			}
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
	words, err := btiWords(in, f, opts.Select.Selects)
	if err != nil {
		return report.ShowFile{}, fmt.Errorf("file %s: %w", opts.File, err)
	}
	return report.Show(opts.File, f, opts.Select.Selects, words), nil
}

// btiWords reads the BTI word of each selected site of f that has one
// from r, the file f is the scan of; the others' are 0.
func btiWords(r io.ReaderAt, f *elfscan.File, selects func(fn string) bool) ([]uint32, error) {
	words := make([]uint32, len(f.Sites))
	for i := range f.Sites {
		s := &f.Sites[i]
		if !s.BTI || s.Slot1Off() == elfscan.NoOffset || !selects(s.Func) {
			continue
		}
		var b [4]byte
		if _, err := r.ReadAt(b[:], s.Slot1Off()-4); err != nil {
			return nil, fmt.Errorf("function %s: reading the BTI word at %s: %w", render.FuncName(s.Func), render.Place(f.Type == elf.ET_REL, s.Section, s.Entry()), err)
		}
		words[i] = binary.LittleEndian.Uint32(b[:])
	}
	return words, nil
}
