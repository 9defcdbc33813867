// SPDX-License-Identifier: Apache-2.0

package report

// init, enable, disable: the plan (--dry-run), what a plan left out, and
// what a run changed.

import (
	"debug/elf"
	"fmt"
	"io"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/patch"
	"github.com/ftpatch/ftpatch/internal/render"
)

// PlanHeader writes the line that starts the plan of input file, in a
// --dry-run over several inputs.
func PlanHeader(w io.Writer, file string) {
	fmt.Fprintf(w, "# %s\n", file)
}

// PlanText writes plan c (init, enable, disable --dry-run), one line per
// word, relocation, symbol and alignment changed:
//
//	FUNC  ADDR  SLOT  OLD -> NEW
func PlanText(w io.Writer, c *patch.Changes) error {
	rel := c.Type == elf.ET_REL
	for x := range c.Writes() {
		if _, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s -> %s\n", render.FuncName(x.Func()), render.Place(rel, x.Section(), x.Addr()), x.Slot, render.Word(x.OldBytes()), render.Word(x.NewBytes())); err != nil {
			return err
		}
	}
	for _, r := range c.Relocs {
		if _, err := fmt.Fprintf(w, "%s\t%s\treloc\t%s -> %s\n", render.FuncName(r.Func), render.Place(rel, r.Section, r.Off), r.OldText(), r.NewText()); err != nil {
			return err
		}
	}
	for _, s := range c.NewSyms {
		if _, err := fmt.Fprintf(w, "-\t.symtab\tsymbol\t- -> %s (undefined global)\n", s); err != nil {
			return err
		}
	}
	for _, a := range c.Aligns {
		if _, err := fmt.Fprintf(w, "-\t%s\tsh_addralign\t%d -> 8 (keeps 5,3 literals aligned when linked)\n", a.Section, a.Old); err != nil {
			return err
		}
	}
	return nil
}

// PatchSkipped writes the sites plan c of file leaves untouched, as
// ftpatch's messages (for stderr): a line per skipped function, and one
// line for all the sites in no function (a kernel has hundreds).
func PatchSkipped(w io.Writer, file string, c *patch.Changes) {
	noFunc := 0
	for _, s := range c.Skipped {
		if s.Reason == string(elfscan.CodeNoFunction) {
			noFunc++
			continue
		}
		fmt.Fprintf(w, "ftpatch: warning: file %s: skipped function %s at %s: %s\n", file, s.Func, s.Where, s.Reason)
	}
	if noFunc > 0 {
		fmt.Fprintf(w, "ftpatch: warning: file %s: skipped %s in no function (no-function; %s)\n", file, render.Count(noFunc, "site"), elfscan.NoFunctionHelp)
	}
}

// PatchUnchanged writes the line of an in-place request that had nothing
// to change in file's sites.
func PatchUnchanged(w io.Writer, file string, op patch.Op, sites int) error {
	_, err := fmt.Fprintf(w, "%s: %s: nothing to change (%s)\n", file, op, render.Count(sites, "site"))
	return err
}

// PatchDone writes the line that ends a request applied to out: sites and
// words changed, relocations and symbols added, sites skipped.
func PatchDone(w io.Writer, out string, op patch.Op, c *patch.Changes) error {
	skipped := ""
	if len(c.Skipped) > 0 {
		skipped = fmt.Sprintf(", %d skipped", len(c.Skipped))
	}
	_, err := fmt.Fprintf(w, "%s: %s: %s changed (%s, %s, %s added)%s\n",
		out, op, render.Count(c.Sites, "site"), render.Count(c.Words(), "word"), render.Count(len(c.Relocs), "relocation"), render.Count(len(c.NewSyms), "symbol"), skipped)
	return err
}
