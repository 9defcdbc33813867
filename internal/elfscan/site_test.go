// SPDX-License-Identifier: Apache-2.0

package elfscan_test

import (
	"slices"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/testutil/pairtest"
)

// The scan of an enabled file holds one copy of the ops and trampoline
// its sites share (a kernel's 200k enabled sites would otherwise hold 200k
// of each), and a view that takes another site's findings (TakeFindings,
// as livesafe's views do) changes its own copy only, never the scan's
// sites: whether it can share the donor's part (same spare word and kCFI
// hash) or must copy its own first (a different hash).
func TestEnabledSitesShareExtras(t *testing.T) {
	fx := testutil.Fixtures(t, "gcc-callops-bti-static.elf")[0]
	sites := pairtest.Scan(t, pairtest.Linked(t, fx, "en.elf", elfscan.StateEnabled, pairtest.Ops, 0)).Sites
	if len(sites) < 2 {
		t.Fatalf("%d sites", len(sites))
	}
	a, b := &sites[0], &sites[1]
	if a.State != elfscan.StateEnabled || a.Ops() == nil || a.Target() == nil || *a.Ops() != *b.Ops() || *a.Target() != *b.Target() {
		t.Fatalf("sites %+v %+v: want enabled, same ops and target", a, b)
	}
	if a.Ops() != b.Ops() || a.Target() != b.Target() {
		t.Errorf("alike enabled sites hold their own ops/target copies (%p %p), want one shared", a.Ops(), b.Ops())
	}
	ops, target := *a.Ops(), *a.Target()
	for _, d := range findingDonors(t) {
		v := *a
		v.TakeFindings(d)
		if *a.Ops() != ops || *b.Ops() != ops || *a.Target() != target || len(a.Problems()) != 0 || len(b.Problems()) != 0 {
			t.Errorf("donor with hash %#x: taking its findings changed the scan: a ops %+v target %+v problems %v, b ops %+v",
				d.CFIHash(), a.Ops(), a.Target(), a.Problems(), b.Ops())
		}
		if !slices.Equal(v.Problems(), d.Problems()) || (v.Ops() == nil) != (d.Ops() == nil) || v.Ops() != nil && *v.Ops() != *d.Ops() ||
			v.Target() != nil || v.CFIHash() != a.CFIHash() || v.Slot2Word != a.Slot2Word {
			t.Errorf("donor with hash %#x: the view has ops %v target %v problems %v hash %#x; want the donor's findings and its own words",
				d.CFIHash(), v.Ops(), v.Target(), v.Problems(), v.CFIHash())
		}
	}
}

// findingDonors are two sites with problems, neither enabled (no BL
// target): one with a kCFI hash (a kCFI 4,2 file, whose literals are
// misaligned behind the type hash), one without (a GCC file with
// misaligned literals).
func findingDonors(t *testing.T) []*elfscan.Site {
	t.Helper()
	var donors []*elfscan.Site
	for _, fx := range []string{"clang16-kcfi-callops-bti-static.elf", "gcc-callops-static.elf"} {
		f := pairtest.Scan(t, testutil.Fixtures(t, fx)[0])
		i := slices.IndexFunc(f.Sites, func(s elfscan.Site) bool {
			return len(s.Problems()) > 0 && s.Target() == nil && (s.CFIHash() != 0) == (len(donors) == 0)
		})
		if i < 0 {
			t.Fatalf("%s: no site with problems (and a kCFI hash: %v): pick another fixture", fx, len(donors) == 0)
		}
		donors = append(donors, &f.Sites[i])
	}
	return donors
}
