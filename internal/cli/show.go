package cli

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"path"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/render"
)

// ShowOptions are the flags of `ftpatch show`.
type ShowOptions struct {
	File  string
	Funcs []string // --func: globs of functions to show
}

func newShowCmd(io *IO) *cobra.Command {
	opts := &ShowOptions{}
	cmd := &cobra.Command{
		Use:   "show [--func GLOB]... FILE",
		Short: "Disassemble the words of each patch site, with its state",
		Long: `Print each selected patch site: its function, entry, layout and state,
then its words (literal, BTI, slot1, slot2) with their addresses,
disassembled by golang.org/x/arch/arm64/arm64asm in GNU syntax.`,
		Args: oneFile("show", &opts.File),
		RunE: func(cmd *cobra.Command, args []string) error { return runShow(opts, io) },
	}
	cmd.Flags().StringArrayVar(&opts.Funcs, "func", nil, "only functions matching `GLOB` (repeatable)")
	addMaxDecompressedFlag(cmd)
	return cmd
}

func runShow(opts *ShowOptions, io *IO) error {
	for _, g := range opts.Funcs {
		if _, err := path.Match(g, ""); err != nil {
			return UsageErrorf("bad glob %q: %v", g, err)
		}
	}
	in, err := elfscan.Open(opts.File)
	if err != nil {
		return fmt.Errorf("file %s: %w", opts.File, err)
	}
	defer in.Close()
	f, err := in.Scan()
	if err != nil {
		return fmt.Errorf("file %s: %w", opts.File, err)
	}
	rel := f.Type == elf.ET_REL
	at := func(s *elfscan.Site, a uint64) string { return render.Place(rel, s.Section, a) }
	tw := tabwriter.NewWriter(io.Out, 0, 4, 2, ' ', 0)
	n := 0
	for i := range f.Sites {
		s := &f.Sites[i]
		if !selected(opts.Funcs, s.Func) {
			continue
		}
		n++
		bti := "-"
		if s.BTI {
			bti = "bti"
		}
		name := s.Func
		if name == "" {
			name = "<no function>"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", name, at(s, s.Entry), s.Layout, bti, s.State)
		if s.CFIHashOff != elfscan.NoOffset {
			fmt.Fprintf(tw, "  %s\t%08x\t.word %#x (kCFI type hash)\t\t\t\n", at(s, s.CFIHashAddr()), s.CFIHash, s.CFIHash)
		}
		spare := func() {
			if s.SpareOff != elfscan.NoOffset {
				fmt.Fprintf(tw, "  %s\t%08x\t%s (spare)\t\t\t\n", at(s, s.Spare), s.SpareWord, disasm(s.SpareWord, s.Spare, nil))
			}
		}
		if s.Spare < s.Literal {
			spare()
		}
		if s.Layout.HasLiteral() && s.LiteralOff != elfscan.NoOffset {
			fmt.Fprintf(tw, "  %s\t%016x\t%s\t\t\t\n", at(s, s.Literal), s.LiteralWord, literalText(s))
		}
		if s.Spare > s.Literal {
			spare()
		}
		if s.BTI && s.Slot1Off != elfscan.NoOffset {
			var b [4]byte
			w := uint32(0)
			if _, err := in.ReadAt(b[:], s.Slot1Off-4); err == nil {
				w = binary.LittleEndian.Uint32(b[:])
			}
			fmt.Fprintf(tw, "  %s\t%08x\t%s\t\t\t\n", at(s, s.Entry), w, disasm(w, s.Entry, nil))
		}
		if s.Slot1Off != elfscan.NoOffset {
			fmt.Fprintf(tw, "  %s\t%08x\t%s\t\t\t\n", at(s, s.Slot1()), s.Slot1Word, disasm(s.Slot1Word, s.Slot1(), nil))
		}
		if s.Slot2Off != elfscan.NoOffset {
			fmt.Fprintf(tw, "  %s\t%08x\t%s\t\t\t\n", at(s, s.CallSite), s.Slot2Word, disasm(s.Slot2Word, s.CallSite, s.Target))
		}
		for _, p := range s.Problems {
			fmt.Fprintf(tw, "  problem\t%s\t%s\t\t\t\n", p.Code, p.Detail)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "%s: %d of %d sites shown\n", opts.File, n, len(f.Sites))
	return nil
}

func selected(globs []string, fn string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if m, _ := path.Match(g, fn); m {
			return true
		}
	}
	return false
}

// literalText shows the literal as data: two NOPs as compiled, else its value.
func literalText(s *elfscan.Site) string {
	if s.LiteralWord == uint64(encode.NOP)|uint64(encode.NOP)<<32 {
		return "nop; nop"
	}
	if s.Ops != nil && s.Ops.Sym != "" {
		if s.Ops.SymIndex != 0 || s.Ops.Addr == 0 {
			return fmt.Sprintf(".quad %s", render.RelExpr(s.Ops.Sym, int64(s.Ops.Addr)))
		}
		return fmt.Sprintf(".quad %#x <%s>", s.Ops.Addr, s.Ops.Sym)
	}
	return fmt.Sprintf(".quad %#x", s.LiteralWord)
}

// disasm decodes w at pc in GNU syntax (encode.Disasm); a BL shows its
// target as the scan resolved it: a symbol, or relocation expression.
func disasm(w uint32, pc uint64, target *elfscan.Ref) string {
	if encode.IsBL(w) && target != nil {
		if target.SymIndex != 0 {
			return "bl " + render.RelExpr(target.Sym, int64(target.Addr))
		}
		t := fmt.Sprintf("bl %#x", target.Addr)
		if target.Sym != "" {
			t += " <" + target.Sym + ">"
		}
		return t
	}
	return encode.Disasm(w, pc)
}
