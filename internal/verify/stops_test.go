// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package verify

import (
	"bytes"
	"encoding/binary"
	"maps"
	"slices"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
)

func regionBytes(img *Image) [][]byte {
	var out [][]byte
	for _, r := range img.regions {
		out = append(out, bytes.Clone(r.mem))
	}
	return out
}

// plantedWords is every word st's BRKs replaced, in planting order.
func plantedWords(st *stopSet) []plantAt {
	var out []plantAt
	st.replaced(func(a uint64, w uint32) { out = append(out, plantAt{addr: a, word: w}) })
	slices.Reverse(out)
	return out
}

func allSites(img *Image) []int {
	run := make([]int, len(img.sites))
	for i := range run {
		run[i] = i
	}
	return run
}

// plantStops puts a BRK at every nop and init site's stop address and over
// the tool's trampolines' RET X9, none at an enabled site's (its run ends at
// the RET X9's), budget engines see none of them, and restore gives back
// the image byte for byte, also where a stop was planted twice.
func TestStopsPlantedAndRestored(t *testing.T) {
	var ss []synthSite
	for _, st := range []elfscan.State{elfscan.StateNop, elfscan.StateInit, elfscan.StateEnabled} {
		for range 3 {
			ss = append(ss, synthWords(st, 0))
		}
	}
	img := buildSynth(t, ss, Options{}, nil)
	before := regionBytes(img)
	// Site 0 twice: two records of one site share a stop address.
	st := img.plantStops(append(allSites(img), 0), Options{})
	if st == nil {
		t.Fatal("nothing planted")
	}
	if len(img.retX9) != 2 || len(st.retTraps) != 2 { // call-ops and classic trampolines
		t.Errorf("RET X9 words %#x, traps %#x; want the two trampolines' returns", img.retX9, st.retTraps)
	}
	for i := range img.sites {
		s := &img.sites[i]
		w, _ := img.read32(s.callSite() + 4)
		if !st.chained[i] || (w == stopBRK) != (s.State != elfscan.StateEnabled) {
			t.Errorf("site %d (%s): chained %v, word at stop %#08x", i, s.State, st.chained[i], w)
		}
	}
	for _, a := range st.retTraps {
		if w, _ := img.read32(a); w != stopBRK {
			t.Errorf("return trap at %#x holds %#08x", a, w)
		}
	}
	for ri, r := range img.regions {
		p, err := st.pristine(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p, before[ri]) {
			t.Errorf("budget engines' copy of %s differs from the image", r.name)
		}
	}
	st.restore()
	for ri, r := range img.regions {
		if !bytes.Equal(r.mem, before[ri]) {
			t.Errorf("%s not restored", r.name)
		}
	}
	// Check plants and restores the same way.
	rep, err := Check(img, Options{})
	if err != nil || rep.Failed != 0 {
		t.Fatalf("check: %v, %+v", err, rep)
	}
	if img.stops != nil {
		t.Error("stops left after Check")
	}
	for ri, r := range img.regions {
		if !bytes.Equal(r.mem, before[ri]) {
			t.Errorf("%s changed by Check", r.name)
		}
	}
}

// No BRK goes where a passing run reads data: an enabled site's literal
// and its op's first word (op->func); nor on the trampoline entry verify
// redirected. Runs of the file's trampoline, or with direct trampolines,
// are not chained at all.
func TestStopsKeepReadWords(t *testing.T) {
	ss := []synthSite{synthWords(elfscan.StateNop, 0), synthWords(elfscan.StateEnabled, 0), synthWords(elfscan.StateEnabled, 0), synthWords(elfscan.StateNop, 0)}
	img := buildSynth(t, ss, Options{}, nil)
	// As if site 1's literal were at site 0's stop address (a function of
	// two words followed by the next's literal), and site 2's op at site
	// 3's, a word after it.
	moved := *img.sites[1].Site // a 4,2 site's literal is its record
	moved.Record = img.sites[0].callSite() + 4
	img.sites[1].Site = &moved
	img.sites[2].op = img.sites[3].callSite()
	st := img.plantStops(allSites(img), Options{})
	defer st.restore()
	if want := []bool{false, true, true, false}; !equalBools(st.chained, want) {
		t.Errorf("chained %v, want %v", st.chained, want)
	}
	if w, _ := img.read32(img.sites[0].callSite() + 4); w == stopBRK {
		t.Error("BRK on a literal")
	}
	for _, o := range []Options{{RunFileTrampoline: true}} {
		if st := img.plantStops(allSites(img), o); st != nil {
			st.restore()
			t.Errorf("planted with %+v", o)
		}
	}
	img.directOff = encode.DefaultDirectCallOffset // the trampoline reads op->direct_call
	if st := img.plantStops(allSites(img), Options{}); st != nil {
		st.restore()
		t.Error("planted with the direct-call path")
	}
	img.directOff = 0
	for _, tc := range []struct {
		starts []uint64
		n, w   uint64
		want   bool
	}{
		{[]uint64{0x100}, 8, 0xfc, false},
		{[]uint64{0x100}, 8, 0x100, true},
		{[]uint64{0x100}, 8, 0x104, true},
		{[]uint64{0x100}, 8, 0x108, false},
		{[]uint64{0x102}, 8, 0x100, true}, // a misaligned literal
		{[]uint64{0x100}, 4, 0x104, false},
		{[]uint64{0x0}, 8, 0x4, true},
		{nil, 8, 0x4, false},
	} {
		if got := meets(tc.starts, tc.n, tc.w); got != tc.want {
			t.Errorf("meets(%#x, %d, %#x) = %v", tc.starts, tc.n, tc.w, got)
		}
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A chained run that goes wrong (here: into the next site's stop address,
// which holds that site's BRK) is reported exactly as a run on an engine
// without BRKs reports it: its budget engine maps the image's own bytes.
func TestStopsFailureAsUnchained(t *testing.T) {
	ss := []synthSite{synthWords(elfscan.StateNop, 0), synthWords(elfscan.StateNop, 0), synthWords(elfscan.StateEnabled, 0)}
	mutate := func(img *Image) {
		b, _ := encode.B{From: synSites + 12, To: synSites + siteSize + 20}.Encode()
		img.write32(synSites+12, b) // f0's slot1: B to f1's stop address
		// f2's BL goes on into a loop after the trampoline returns.
		img.write32(synSites+2*siteSize+20, 0x14000000)
	}
	img := buildSynth(t, ss, Options{Jobs: 1}, mutate)
	rep, err := Check(img, Options{Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 1 || rep.Failures[0].Func != "f0" {
		t.Fatalf("failures %+v, want f0", rep.Failures)
	}
	plain := buildSynth(t, ss, Options{Jobs: 1}, mutate)
	e, err := newEngine(plain, Options{MaxInsns: 10000})
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	want := e.run(&plain.sites[0])
	if want == nil {
		t.Fatal("f0 passes without BRKs")
	}
	if got := rep.Failures[0]; got.Expected != want.Expected || got.Observed != want.Observed {
		t.Errorf("chained: %s / %s\nwant:    %s / %s", got.Expected, got.Observed, want.Expected, want.Observed)
	}
	var w [4]byte
	binary.LittleEndian.PutUint32(w[:], stopBRK)
	for _, r := range img.regions {
		if bytes.Contains(r.mem, w[:]) {
			t.Errorf("a BRK left in %s", r.name)
		}
	}
}

// splitPages must cover its span exactly, in at most n parts, each after
// the first starting on a page: populateStops madvises each part at once.
func TestSplitPages(t *testing.T) {
	const page = 4096
	for _, c := range []struct {
		start, end uint64
		n          int
	}{
		{0x10000, 0x10004, 8},                // a span smaller than n bytes
		{0x10000, 0x10000 + 5*page + 12, 2},  // an odd tail
		{0x10000, 0x10000 + 25<<20, 2},       // a kernel's text
		{0x10000, 0x10000 + 3*page, 1},       // -j 1: one part
		{0x10000, 0x10000 + 3*page, 0},       // no jobs: one part
		{0x10000, 0x10000 + 3*page, 16},      // more jobs than pages
		{0xfffff000, 0xfffff000 + 2*page, 2}, // across 4 GiB
	} {
		parts := splitPages(c.start, c.end, page, c.n)
		if len(parts) == 0 || len(parts) > max(c.n, 1) {
			t.Errorf("%#x-%#x in %d: %d parts", c.start, c.end, c.n, len(parts))
			continue
		}
		at := c.start
		for k, p := range parts {
			if p[0] != at || p[1] <= p[0] || k > 0 && p[0]%page != 0 {
				t.Errorf("%#x-%#x in %d: part %d is %#x-%#x, after %#x", c.start, c.end, c.n, k, p[0], p[1], at)
			}
			at = p[1]
		}
		if at != c.end {
			t.Errorf("%#x-%#x in %d: parts end at %#x", c.start, c.end, c.n, at)
		}
	}
}

// With code over several of plantAll's chunks and parts (-j 3), every nop
// and init site still gets its BRK and no other word changes, a stop
// planted twice is restored to the image's own word, and Check passes.
func TestStopsPlantedInParts(t *testing.T) {
	var ss []synthSite
	for i := range 3 * populateChunk / siteSize {
		st := []elfscan.State{elfscan.StateNop, elfscan.StateInit, elfscan.StateNop, elfscan.StateEnabled}[i%4]
		ss = append(ss, synthWords(st, 0))
	}
	img := buildSynth(t, ss, Options{}, nil)
	before := regionBytes(img)
	opts := Options{Jobs: 3}
	dup := len(img.sites) - 2                                 // a nop site, as is site 0
	st := img.plantStops(append(allSites(img), dup, 0), opts) // two stops planted twice
	if st == nil {
		t.Fatal("nothing planted")
	}
	brks := 0
	for i := range img.sites {
		s := &img.sites[i]
		w, _ := img.read32(s.callSite() + 4)
		if !st.chained[i] || (w == stopBRK) != (s.State != elfscan.StateEnabled) {
			t.Fatalf("site %d of %d (%s): chained %v, word at stop %#08x", i, len(img.sites), s.State, st.chained[i], w)
		}
		if w == stopBRK {
			brks++
		}
	}
	if got, want := len(plantedWords(st)), brks+2+len(st.retTraps); got != want {
		t.Errorf("%d words planted, want %d", got, want)
	}
	diff := 0 // words changed anywhere: the BRKs and the return traps
	for ri, r := range img.regions {
		for k := 0; k < len(r.mem); k += 4 {
			if !bytes.Equal(r.mem[k:k+4], before[ri][k:k+4]) {
				diff++
			}
		}
	}
	if diff != brks+len(st.retTraps) {
		t.Errorf("%d words changed, for %d BRKs and %d return traps", diff, brks, len(st.retTraps))
	}
	st.restore()
	for ri, r := range img.regions {
		if !bytes.Equal(r.mem, before[ri]) {
			t.Errorf("%s not restored", r.name)
		}
	}
	rep, err := Check(img, opts)
	if err != nil || rep.Failed != 0 || rep.Sites != len(ss) {
		t.Fatalf("check: %v, %+v", err, rep)
	}
}

// plantAll in parts, some of whose stops take no BRK (a passing run reads
// the word there): it records exactly the words it replaced, in address
// order, and restore gives the image back.
func TestStopsPlantAllSkipsReadWords(t *testing.T) {
	var ss []synthSite
	for range 3 * populateChunk / siteSize {
		ss = append(ss, synthWords(elfscan.StateNop, 0))
	}
	img := buildSynth(t, ss, Options{}, nil)
	before := regionBytes(img)
	st := &stopSet{img: img, chained: make([]bool, len(img.sites))}
	read := map[uint64]bool{}
	var want []plantAt
	for i := range img.sites {
		a := img.sites[i].callSite() + 4
		st.stops, st.addrs = append(st.stops, int32(i)), append(st.addrs, a)
		if i%7 == 3 {
			read[a] = true
			continue
		}
		w, _ := img.read32(a)
		want = append(want, plantAt{addr: a, word: w})
	}
	st.plantAll(func(a uint64) bool { return read[a] }, 3)
	if got := plantedWords(st); !slices.Equal(got, want) {
		t.Fatalf("%d words planted, want %d (first %v, want %v)", len(got), len(want), got[:min(2, len(got))], want[:2])
	}
	for i := range img.sites {
		if a := img.sites[i].callSite() + 4; st.chained[i] == read[a] {
			t.Fatalf("site %d: chained %v, its stop read by a run %v", i, st.chained[i], read[a])
		}
	}
	st.restore()
	for ri, r := range img.regions {
		if !bytes.Equal(r.mem, before[ri]) {
			t.Errorf("%s not restored", r.name)
		}
	}
}

// Check reports static failures and the runs' in site order, counted from
// bind's tally; with Options.Closing it leaves its BRKs in an image whose
// runs all passed (the caller only closes it), but puts the image's words
// back when a failure is to show them.
func TestCheckClosing(t *testing.T) {
	ss := []synthSite{synthWords(elfscan.StateNop, 0), synthWords(elfscan.StateNop, 0),
		{state: elfscan.StateUnknown, slot1: encode.NOP, slot2: encode.NOP},
		synthWords(elfscan.StateNop, 0), synthWords(elfscan.StateEnabled, 0)}
	var w [4]byte
	binary.LittleEndian.PutUint32(w[:], stopBRK)
	brks := func(img *Image) int {
		n := 0
		for _, r := range img.regions {
			n += bytes.Count(r.mem, w[:])
		}
		return n
	}

	passing := slices.Delete(slices.Clone(ss), 2, 3)
	for _, closing := range []bool{false, true} {
		img := buildSynth(t, passing, Options{Jobs: 1}, nil)
		rep, err := Check(img, Options{Jobs: 1, Closing: closing})
		if err != nil || rep.Failed != 0 || rep.Passed != 4 {
			t.Fatalf("closing %v: %v, %+v", closing, err, rep)
		}
		// Closing: the three nop sites' stops and the trampolines' RET X9.
		if n, want := brks(img), map[bool]int{false: 0, true: 3 + len(img.retX9)}[closing]; n != want {
			t.Errorf("closing %v: %d BRKs left after Check, want %d", closing, n, want)
		}
		if img.stops != nil {
			t.Error("stops left after Check")
		}
	}

	mutate := func(img *Image) {
		b, _ := encode.B{From: synSites + 12, To: synSites + siteSize + 20}.Encode()
		img.write32(synSites+12, b)                     // f0: B to f1's stop address
		img.write32(synSites+3*siteSize+12, 0x91000400) // f3: ADD X0, X0, #1
	}
	img := buildSynth(t, ss, Options{Jobs: 1}, mutate)
	before := regionBytes(img)
	rep, err := Check(img, Options{Jobs: 1, Closing: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range rep.Failures {
		got = append(got, f.Func)
	}
	want := map[elfscan.State]int{elfscan.StateNop: 3, elfscan.StateUnknown: 1, elfscan.StateEnabled: 1}
	if !slices.Equal(got, []string{"f0", "f2", "f3"}) || rep.Passed != 2 || rep.Sites != 5 || !maps.Equal(rep.ByState, want) {
		t.Errorf("failures %v, passed %d of %d, by state %v; want f0 f2 f3, 2 of 5, %v", got, rep.Passed, rep.Sites, rep.ByState, want)
	}
	for ri, r := range img.regions {
		if !bytes.Equal(r.mem, before[ri]) {
			t.Errorf("%s not restored after a Closing Check with failures", r.name)
		}
	}
}
