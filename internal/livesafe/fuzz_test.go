// SPDX-License-Identifier: Apache-2.0

package livesafe

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/testutil/pairtest"
)

// FuzzCompare compares each fixture (chosen by which) with mutated bytes:
// an error comes with no report, a report is consistent and renders, and
// nothing panics. Seeds: every fixture against itself, and each linked
// call-ops fixture against its enabled copy.
func FuzzCompare(f *testing.F) {
	var paths []string
	for _, pat := range []string{"*.elf", "*.o", "*.ko"} {
		paths = append(paths, testutil.Fixtures(f, pat)...)
	}
	origs := make([]*elfscan.Object, 0, len(paths))
	for _, p := range paths {
		in, err := elfscan.Open(p)
		if err != nil {
			f.Fatalf("%s: %v", p, err)
		}
		f.Cleanup(func() { in.Close() })
		origs = append(origs, in)
	}
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint16(i), b)
		if strings.HasSuffix(p, ".elf") && strings.Contains(filepath.Base(p), "callops") {
			e := pairtest.Linked(f, p, "enabled", elfscan.StateEnabled, pairtest.Ops, 0)
			if b, err = os.ReadFile(e); err != nil {
				f.Fatal(err)
			}
			f.Add(uint16(i), b)
		}
	}
	f.Fuzz(func(t *testing.T, which uint16, b []byte) {
		orig := origs[int(which)%len(origs)]
		p, err := elfscan.NewObject(bytes.NewReader(b), "fuzz")
		if err != nil {
			if p != nil {
				t.Fatalf("NewObject: error %v with an object", err)
			}
			return
		}
		const keep = 50
		r, err := Compare(orig, p, Options{ChunkSize: 4096, MaxProblems: keep})
		if err != nil {
			if r != nil {
				t.Fatalf("Compare: error %v with a report", err)
			}
			return
		}
		c := r.Counts
		if c.ProblemsKept != len(r.Problems) || len(r.Problems) > keep || len(r.Problems) > c.Problems {
			t.Fatalf("problems: %d kept, %d listed, %d counted (keep %d)", c.ProblemsKept, len(r.Problems), c.Problems, keep)
		}
		if r.LiveSafe && (r.Failed() || c.NotLiveSafe > 0 || c.Unproven > 0) {
			t.Fatalf("live-safe with problems or unsafe changes: %+v", c)
		}
		if c.Intermediates != len(r.Intermediates) || c.LiveSafe+c.NotLiveSafe != len(r.Changes) {
			t.Fatalf("counts disagree with the lists: %+v, %d intermediates, %d changes", c, len(r.Intermediates), len(r.Changes))
		}
		osf, _ := orig.Scan()
		for _, ic := range r.Intermediates {
			if ic.Site < 0 || ic.Site >= len(osf.Sites) {
				t.Fatalf("intermediate names site %d of %d", ic.Site, len(osf.Sites))
			}
		}
		Render(t, r)
	})
}
