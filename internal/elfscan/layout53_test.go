// SPDX-License-Identifier: Apache-2.0

package elfscan_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// Without a symbol table the words decide the 5,3 layout: a stripped 5,3
// executable (strip from binutils) scans to the same entries, layouts,
// literals, spare words and BTI as the original, each site marked
// no-function.
func TestStripped53(t *testing.T) {
	strip := testutil.NeedTool(t, "aarch64-linux-gnu-strip")
	files := testutil.Fixtures(t, "*callops53*-static.elf")
	if len(files) == 0 {
		t.Fatal("no 5,3 executables")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "stripped.elf")
			if b, err := exec.Command(strip, "-o", out, path).CombinedOutput(); err != nil {
				t.Fatalf("strip: %v\n%s", err, b)
			}
			want, err := elfscan.ScanFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := elfscan.ScanFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Sites) != len(want.Sites) {
				t.Fatalf("%d sites stripped, %d with symbols", len(got.Sites), len(want.Sites))
			}
			for i, w := range want.Sites {
				g := got.Sites[i]
				if g.Entry() != w.Entry() || g.Layout != w.Layout || g.Literal() != w.Literal() || g.Spare() != w.Spare() || g.BTI != w.BTI || g.State != w.State {
					t.Errorf("%s: stripped %#x %s lit %#x spare %#x bti %v %s; with symbols %#x %s lit %#x spare %#x bti %v %s",
						w.Func, g.Entry(), g.Layout, g.Literal(), g.Spare(), g.BTI, g.State, w.Entry(), w.Layout, w.Literal(), w.Spare(), w.BTI, w.State)
				}
				if !g.HasProblem(elfscan.CodeNoFunction) {
					t.Errorf("%s: stripped site without no-function", w.Func)
				}
			}
		})
	}
}
