// SPDX-License-Identifier: Apache-2.0

package sitediff

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// site builds a site from "func@section", "func@section:classic" or
// "func@section!code".
func site(spec string, entry uint64) Site {
	s := Site{Entry: entry, Layout: "call-ops", Literal: true}
	if spec, code, ok := strings.Cut(spec, "!"); ok {
		s.Problems = []Problem{{code, "detail of " + code}}
		return fill(s, spec)
	}
	if spec, layout, ok := strings.Cut(spec, ":"); ok {
		s.Layout, s.Literal = layout, layout != "classic"
		return fill(s, spec)
	}
	return fill(s, spec)
}

func fill(s Site, spec string) Site {
	s.Func, s.Section, _ = strings.Cut(spec, "@")
	return s
}

func sites(specs ...string) []Site {
	out := make([]Site, len(specs))
	for i, sp := range specs {
		out[i] = site(sp, uint64(0x1000+8*i))
	}
	return out
}

func names(ss []Site) string {
	var n []string
	for _, s := range ss {
		n = append(n, fmt.Sprintf("%s@%s#%x", s.Func, s.Section, s.Entry))
	}
	return strings.Join(n, " ")
}

func TestCompare(t *testing.T) {
	has := func(fns ...string) func(string) bool {
		return func(f string) bool { return slices.Contains(fns, f) }
	}
	tests := []struct {
		name        string
		old, new    []Site
		hasFunc     func(string) bool
		lost        string
		removed     string
		added       string
		moved       int
		problems    string
		layouts     int
		regressions int
	}{
		{name: "same", old: sites("a@.text", "b@.text"), new: sites("a@.text", "b@.text")},
		{name: "lost, unknown functions (saved scan)", old: sites("a@.text", "b@.text"), new: sites("a@.text"),
			lost: "b@.text#1008", regressions: 1},
		{name: "lost: the function is still there", old: sites("a@.text", "b@.text"), new: sites("a@.text"), hasFunc: has("a", "b"),
			lost: "b@.text#1008", regressions: 1},
		{name: "removed: the function is gone", old: sites("a@.text", "b@.text"), new: sites("a@.text"), hasFunc: has("a"),
			removed: "b@.text#1008"},
		{name: "added", old: sites("a@.text"), new: sites("a@.text", "c@.text"), added: "c@.text#1008"},
		// Three static functions named s; the new build lost one: the
		// first two pair in order, the third is lost.
		{name: "repeated names pair in order", old: sites("s@.text", "x@.text", "s@.text", "s@.text"), new: sites("s@.text", "x@.text", "s@.text"),
			lost: "s@.text#1018", regressions: 1},
		{name: "moved section", old: sites("a@.text", "b@.text"), new: sites("a@.text", "b@.text.unlikely"), moved: 1},
		{name: "gained a problem", old: sites("a@.text", "b@.text"), new: sites("a@.text!misaligned-literal", "b@.text"),
			problems: "a:misaligned-literal", regressions: 1},
		{name: "kept a problem", old: sites("a@.text!misaligned-literal"), new: sites("a@.text!misaligned-literal")},
		{name: "added with a problem", old: sites("a@.text"), new: sites("a@.text", "c@.text!misaligned-literal"),
			added: "c@.text#1008", problems: "c:misaligned-literal", regressions: 1},
		{name: "lost the literal", old: sites("a@.text"), new: sites("a@.text:classic"), layouts: 1, regressions: 1},
		{name: "to 5,3 is no regression", old: sites("a@.text"), new: sites("a@.text:call-ops-5-3"), layouts: 1},
		{name: "no-function sites pair by section and order, never by name", old: sites("@.text", "@.init.text"), new: sites("@.text"),
			hasFunc: has(), removed: "@.init.text#1008"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Compare(Side{Sites: tc.old}, Side{Sites: tc.new, HasFunc: tc.hasFunc})
			var probs []string
			for _, g := range r.NewProblems {
				probs = append(probs, g.Site.Func+":"+g.Problem.Code)
			}
			if got := names(r.Lost); got != tc.lost {
				t.Errorf("lost %q, want %q", got, tc.lost)
			}
			if got := names(r.Removed); got != tc.removed {
				t.Errorf("removed %q, want %q", got, tc.removed)
			}
			if got := names(r.Added); got != tc.added {
				t.Errorf("added %q, want %q", got, tc.added)
			}
			if got := strings.Join(probs, " "); got != tc.problems {
				t.Errorf("new problems %q, want %q", got, tc.problems)
			}
			if len(r.Moved) != tc.moved || len(r.Layouts) != tc.layouts {
				t.Errorf("%d moved, %d layout changes; want %d, %d", len(r.Moved), len(r.Layouts), tc.moved, tc.layouts)
			}
			if got := r.Regressions(nil); got != tc.regressions {
				t.Errorf("%d regressions, want %d", got, tc.regressions)
			}
			if r.Matched+len(r.Lost)+len(r.Removed) != len(tc.old) || r.Matched+len(r.Added) != len(tc.new) {
				t.Errorf("every site is matched or left over once: matched %d, lost %d, removed %d, added %d of %d -> %d",
					r.Matched, len(r.Lost), len(r.Removed), len(r.Added), len(tc.old), len(tc.new))
			}
		})
	}
}

// --ignore accepts codes: problem codes and the regression codes.
func TestRegressionsIgnore(t *testing.T) {
	r := Compare(Side{Sites: sites("a@.text", "b@.text", "c@.text")},
		Side{Sites: sites("a@.text!misaligned-literal", "c@.text:classic")})
	for _, tc := range []struct {
		ignore []string
		want   int
	}{
		{nil, 3},
		{[]string{"misaligned-literal"}, 2},
		{[]string{CodeLostSite}, 2},
		{[]string{CodeLayoutChange, CodeLostSite, "misaligned-literal"}, 0},
	} {
		if got := r.Regressions(func(c string) bool { return slices.Contains(tc.ignore, c) }); got != tc.want {
			t.Errorf("ignoring %v: %d regressions, want %d", tc.ignore, got, tc.want)
		}
	}
}

// A site matched is matched once: however the names repeat and move, the
// counts add up (a property over generated builds).
func TestCompareCounts(t *testing.T) {
	fns := []string{"a", "b", "s", "s", ""}
	secs := []string{".text", ".text.unlikely"}
	gen := func(seed int) []Site {
		var ss []Site
		for i := 0; i < 12; i++ {
			seed = seed*1103515245 + 12345
			v := (seed >> 8) & 0xff
			if v%3 == 0 {
				continue
			}
			ss = append(ss, fill(Site{Entry: uint64(i)}, fns[v%len(fns)]+"@"+secs[(v/7)%2]))
		}
		return ss
	}
	for seed := 1; seed < 300; seed++ {
		old, new := gen(seed), gen(seed*7+3)
		r := Compare(Side{Sites: old}, Side{Sites: new})
		if r.Matched+len(r.Lost)+len(r.Removed) != len(old) || r.Matched+len(r.Added) != len(new) {
			t.Fatalf("seed %d: matched %d, lost %d, removed %d, added %d of %d -> %d", seed, r.Matched, len(r.Lost), len(r.Removed), len(r.Added), len(old), len(new))
		}
		if self := Compare(Side{Sites: old}, Side{Sites: old}); self.Changed() {
			t.Fatalf("seed %d: a build differs from itself: %+v", seed, self)
		}
	}
}
