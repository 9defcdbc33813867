// SPDX-License-Identifier: Apache-2.0

// Package sitediff compares the patch sites of two builds of one input (an
// image or a module, old and new) and says what a kernel CI asks on every
// commit: did this change make functions untraceable? It works on plain
// values (Site), so a side can come from a scan of the file or from a
// saved `scan --json` line alike; it reads no file and prints nothing
// (package report renders a Result).
//
// Sites are matched by function name and section, the repeats of one name
// (a kernel has many static functions of one name) by their order; sites
// left over are then matched by name alone (a function that moved section,
// say to .text.unlikely). What stays unmatched in the old build was lost
// (the function is still there, without a site, or nobody can tell: a
// saved scan lists sites only) or removed (the new build has no such
// function); what stays in the new build was added.
package sitediff

// Site is one patch site, as much of it as a comparison needs.
type Site struct {
	Func     string // "" when no function covers the entry
	Section  string
	Entry    uint64 // in an object, the offset in Section
	Layout   string // "call-ops", "call-ops-5-3", "classic"
	Literal  bool   // the layout has an ops literal (call-ops, call-ops-5-3)
	Problems []Problem
}

// Problem is a problem code at a site and its detail.
type Problem struct {
	Code, Detail string
}

// Side is one build's sites of an input, in scan order. HasFunc reports
// whether the build defines a function of a name; nil when that is not
// known (a saved scan), and then a missing site is lost, never removed.
type Side struct {
	Sites   []Site
	HasFunc func(name string) bool
}

// Result is what changed from old to new. Lost and Removed hold old
// sites, in old's order; the others follow new's order.
type Result struct {
	Lost        []Site   // the function is still there (or may be), without its site
	Removed     []Site   // the function is gone
	Added       []Site   // a site the old build did not have
	Moved       []Move   // the same function's site, in another section
	NewProblems []Gained // a problem code the old site did not have
	Layouts     []Change // the layout changed
	Matched     int      // sites found in both
}

// Move is a site whose function is in another section now.
type Move struct{ Old, New Site }

// Gained is a problem a site has in new and did not have in old; At is
// the site's index in new.
type Gained struct {
	Site    Site
	Problem Problem
	At      int
}

// Change is a site whose layout changed; At is its index in new.
// LostLiteral says it regressed: call-ops (4,2 or 5,3) in old, classic in
// new.
type Change struct {
	Old, New Site
	At       int
}

// LostLiteral reports whether the change took the site's ops literal away.
func (c Change) LostLiteral() bool { return c.Old.Literal && !c.New.Literal }

// Changed reports whether anything differs.
func (r *Result) Changed() bool {
	return len(r.Lost)+len(r.Removed)+len(r.Added)+len(r.Moved)+len(r.NewProblems)+len(r.Layouts) > 0
}

// key is how sites are matched: function and section, or (for a site that
// moved) function alone.
type key struct{ fn, section string }

// comparison pairs the sites of old and new by index.
type comparison struct {
	old, new []Site
	pairOf   []int  // new j -> its old i, or -1
	moved    []bool // new j was paired by name alone
}

// Compare matches old's sites with new's and returns what changed.
func Compare(old, new Side) *Result {
	c := &comparison{old: old.Sites, new: new.Sites, pairOf: make([]int, len(new.Sites)), moved: make([]bool, len(new.Sites))}
	for j := range c.pairOf {
		c.pairOf[j] = -1
	}
	oldLeft, newLeft := c.match(seq(len(old.Sites)), seq(len(new.Sites)), false)
	oldLeft, _ = c.match(oldLeft, newLeft, true)
	r := &Result{}
	for j, i := range c.pairOf {
		if i >= 0 {
			r.compare(c.old[i], c.new[j], j, c.moved[j])
			continue
		}
		s := c.new[j]
		r.Added = append(r.Added, s)
		for _, p := range s.Problems {
			r.NewProblems = append(r.NewProblems, Gained{s, p, j})
		}
	}
	for _, i := range oldLeft {
		s := c.old[i]
		if s.Func != "" && (new.HasFunc == nil || new.HasFunc(s.Func)) {
			r.Lost = append(r.Lost, s)
		} else {
			r.Removed = append(r.Removed, s) // a site in no function (a weak copy) is no function lost
		}
	}
	return r
}

// seq is 0, 1, ..., n-1.
func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// match pairs the old sites olds with the new sites news of the same key,
// the n-th of a key in old with the n-th in new, and returns those left
// over on each side, in order. byName matches by function alone (sites of
// no function have no name to match by) and marks the pairs moved.
func (c *comparison) match(olds, news []int, byName bool) (oldLeft, newLeft []int) {
	keyOf := func(s *Site) key {
		if byName {
			return key{fn: s.Func}
		}
		return key{s.Func, s.Section}
	}
	queue := map[key][]int{} // new indexes of a key, in order, taken from the front
	for _, j := range news {
		if s := &c.new[j]; !byName || s.Func != "" {
			queue[keyOf(s)] = append(queue[keyOf(s)], j)
		}
	}
	for _, i := range olds {
		s := &c.old[i]
		k := keyOf(s)
		if js := queue[k]; len(js) > 0 && (!byName || s.Func != "") {
			c.pairOf[js[0]], c.moved[js[0]] = i, byName
			queue[k] = js[1:]
			continue
		}
		oldLeft = append(oldLeft, i)
	}
	for _, j := range news {
		if c.pairOf[j] < 0 {
			newLeft = append(newLeft, j)
		}
	}
	return oldLeft, newLeft
}

// compare records what changed between two matched sites.
func (r *Result) compare(o, n Site, at int, moved bool) {
	r.Matched++
	if moved {
		r.Moved = append(r.Moved, Move{o, n})
	}
	if o.Layout != n.Layout {
		r.Layouts = append(r.Layouts, Change{o, n, at})
	}
	for _, p := range n.Problems {
		if !hasCode(o.Problems, p.Code) {
			r.NewProblems = append(r.NewProblems, Gained{n, p, at})
		}
	}
}

func hasCode(ps []Problem, code string) bool {
	for _, p := range ps {
		if p.Code == code {
			return true
		}
	}
	return false
}

// The codes of the regressions that are not problem codes, for a caller's
// list of codes to accept (diff --ignore).
const (
	CodeLostSite     = "lost-site"     // Lost
	CodeLayoutChange = "layout-change" // a Change that LostLiteral
)

// Regressions counts what made the new build worse: sites lost, problems
// gained and literals lost, except the codes ignored accepts (a problem
// code, CodeLostSite, CodeLayoutChange; nil accepts none).
func (r *Result) Regressions(ignored func(code string) bool) int {
	if ignored == nil {
		ignored = func(string) bool { return false }
	}
	n := 0
	if !ignored(CodeLostSite) {
		n += len(r.Lost)
	}
	for _, g := range r.NewProblems {
		if !ignored(g.Problem.Code) {
			n++
		}
	}
	if !ignored(CodeLayoutChange) {
		for _, c := range r.Layouts {
			if c.LostLiteral() {
				n++
			}
		}
	}
	return n
}
