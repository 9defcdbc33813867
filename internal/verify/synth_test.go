// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package verify

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/verify/uc"
)

// A synthetic linked image built in memory, without ELF: a callback (the
// file's op->func), a file trampoline, an ops object and n call-ops sites
// of 32 bytes each:
//
//	+0  literal (8)   +8 BTI C   +12 slot1   +16 slot2   +20 RET
const (
	synCode     = 0x400000
	synCallback = synCode          // RET
	synTramp    = synCode + 0x100  // "ftrace_caller": the tool's trampoline, as linked
	synBadTramp = synCode + 0x800  // MOV X19, #0; B synTramp
	synSites    = synCode + 0x1000 // first site
	siteSize    = 32
)

type synthSite struct {
	state   elfscan.State
	literal uint64
	slot1   uint32
	slot2   uint32
	bti     bool
}

func synthWords(st elfscan.State, ops uint64) synthSite {
	switch st {
	case elfscan.StateInit:
		return synthSite{state: st, slot1: encode.MovX9X30, slot2: encode.NOP, bti: true}
	case elfscan.StateEnabled:
		return synthSite{state: st, literal: ops, slot1: encode.MovX9X30, slot2: 1, bti: true} // slot2 1: BL to trampoline
	}
	return synthSite{state: elfscan.StateNop, slot1: encode.NOP, slot2: encode.NOP, bti: true}
}

// buildSynth lays out ss and binds them; mutate may change memory before bind.
func buildSynth(t testing.TB, ss []synthSite, opts Options, mutate func(img *Image)) *Image {
	t.Helper()
	if opts.Trampoline == "" {
		opts.Trampoline = fmt.Sprintf("%#x", synTramp)
	}
	img := &Image{Path: "synthetic", Type: elf.ET_EXEC, trampName: opts.Trampoline, funcs: map[uint64]bool{}}
	t.Cleanup(func() { img.Close() })
	codeSize := uint64(0x1000+siteSize*len(ss)+0xfff) &^ 0xfff
	if _, err := img.addRegion(synCode, codeSize, uc.PROT_READ|uc.PROT_EXEC, "code"); err != nil {
		t.Fatal(err)
	}
	dataAddr := synCode + codeSize + 0x10000
	if _, err := img.addRegion(dataAddr, 0x1000, uc.PROT_READ, "data"); err != nil {
		t.Fatal(err)
	}
	ops := dataAddr
	img.write64(ops, synCallback)
	img.write32(synCallback, 0xd65f03c0)
	tr, err := encode.Trampoline(encode.TrampolineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range tr.Words {
		img.write32(synTramp+4*uint64(i), w)
	}
	img.write32(synBadTramp, 0xd2800013) // mov x19, #0
	b, _ := encode.B{From: synBadTramp + 4, To: synTramp}.Encode()
	img.write32(synBadTramp+4, b)
	sites := make([]elfscan.Site, len(ss))
	for i, s := range ss {
		rec := synSites + uint64(i)*siteSize
		entry := rec + 8
		call := entry + 8
		lit := s.literal
		if s.state == elfscan.StateEnabled && lit == 0 {
			lit = ops
		}
		img.write64(rec, lit)
		img.write32(entry, encode.BTIC)
		img.write32(entry+4, s.slot1)
		slot2 := s.slot2
		if slot2 == 1 {
			slot2, _ = encode.BL{From: call, To: synTramp}.Encode()
		}
		img.write32(call, slot2)
		img.write32(call+4, 0xd65f03c0)
		sites[i] = elfscan.Site{Func: fmt.Sprintf("f%d", i), Section: ".text", Record: rec,
			Layout: elfscan.LayoutCallOps, BTI: true, State: s.state}
		if sites[i].Entry() != entry || sites[i].CallSite() != call {
			t.Fatalf("synthetic site %d: entry %#x call %#x, but the site says %#x %#x", i, entry, call, sites[i].Entry(), sites[i].CallSite())
		}
	}
	if err := img.addStandins(); err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(img)
	}
	img.bind(nil, nil, nil, sites, opts)
	return img
}

func checkSynth(t testing.TB, ss []synthSite, opts Options, mutate func(img *Image)) *Report {
	t.Helper()
	img := buildSynth(t, ss, opts, mutate)
	rep, err := Check(img, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestSynthStatesPass(t *testing.T) {
	for _, runFile := range []bool{false, true} {
		for _, st := range []elfscan.State{elfscan.StateNop, elfscan.StateInit, elfscan.StateEnabled} {
			t.Run(fmt.Sprintf("%s/runfile=%v", st, runFile), func(t *testing.T) {
				ss := make([]synthSite, 300)
				for i := range ss {
					ss[i] = synthWords(st, 0)
				}
				rep := checkSynth(t, ss, Options{Jobs: 2, RunFileTrampoline: runFile}, nil)
				if rep.Failed != 0 || rep.Passed != len(ss) || rep.ByState[st] != len(ss) {
					t.Fatalf("report %+v; first failure %+v", rep, rep.Failures[:min(1, len(rep.Failures))])
				}
			})
		}
	}
}

// Each defect must be caught at the mutated site, with the function named.
func TestSynthDefectsCaught(t *testing.T) {
	const victim = 3
	at := func(off uint64) uint64 { return synSites + victim*siteSize + off }
	tests := []struct {
		name   string
		opts   Options
		state  elfscan.State
		mutate func(img *Image)
		want   string // in Observed
	}{
		{"nop/infinite-loop", Options{}, elfscan.StateNop, func(img *Image) { img.write32(at(12), 0x14000000) }, "instruction limit"},
		{"nop/jump-unmapped", Options{}, elfscan.StateNop, func(img *Image) { img.write32(at(12), 0xd61f0000) }, "emulation error"},
		{"nop/clobber-x0", Options{}, elfscan.StateNop, func(img *Image) { img.write32(at(12), 0x91000400) }, "X0 ="},
		{"init/missing-mov", Options{}, elfscan.StateInit, func(img *Image) { img.write32(at(12), encode.NOP) }, "X9 ="},
		{"enabled/missing-mov", Options{}, elfscan.StateEnabled, func(img *Image) { img.write32(at(12), encode.NOP) }, "wrong parent_ip"},
		{"enabled/bl-wrong-target", Options{}, elfscan.StateEnabled, func(img *Image) {
			w, _ := encode.BL{From: at(16), To: synCallback}.Encode()
			img.write32(at(16), w)
		}, "BL to 0x400000"},
		{"enabled/literal-junk", Options{}, elfscan.StateEnabled, func(img *Image) { img.write64(at(0), 0x1234) }, "literal 0x1234"},
		{"enabled/literal-to-data-not-code", Options{}, elfscan.StateEnabled, func(img *Image) { img.write64(at(0), synSites) }, "not code"},
		{"enabled/infinite-loop", Options{}, elfscan.StateEnabled, func(img *Image) { img.write32(at(20), 0x14000000) }, ""},
		{"enabled/trampoline-clobbers-x19", Options{RunFileTrampoline: true, Trampoline: fmt.Sprintf("%#x", synBadTramp)}, elfscan.StateEnabled, func(img *Image) {
			for i := range 8 { // every site calls the bad trampoline
				w, _ := encode.BL{From: synSites + uint64(i)*siteSize + 16, To: synBadTramp}.Encode()
				img.write32(synSites+uint64(i)*siteSize+16, w)
			}
		}, "X19 ="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ss := make([]synthSite, 8)
			for i := range ss {
				ss[i] = synthWords(tc.state, 0)
			}
			rep := checkSynth(t, ss, tc.opts, tc.mutate)
			if tc.name == "enabled/infinite-loop" {
				// The RET after the site is outside the run: a loop there is harmless.
				if rep.Failed != 0 {
					t.Fatalf("failures %+v", rep.Failures)
				}
				return
			}
			if rep.Failed == 0 {
				t.Fatalf("defect not caught: %+v", rep)
			}
			f := rep.Failures[0]
			if tc.name != "enabled/trampoline-clobbers-x19" && (rep.Failed != 1 || f.Func != fmt.Sprintf("f%d", victim)) {
				t.Errorf("failures %+v, want only f%d", rep.Failures, victim)
			}
			if !strings.Contains(f.Observed, tc.want) {
				t.Errorf("observed %q, want %q", f.Observed, tc.want)
			}
			if len(f.Words) < 3 {
				t.Errorf("words %+v", f.Words)
			}
			t.Logf("%s: expected %s; observed %s; %+v", f.Func, f.Expected, f.Observed, f.Words)
		})
	}
}

func TestSynthUnknownStateFails(t *testing.T) {
	ss := []synthSite{synthWords(elfscan.StateNop, 0), {state: elfscan.StateUnknown, slot1: encode.NOP, slot2: encode.NOP}}
	rep := checkSynth(t, ss, Options{}, nil)
	if rep.Failed != 1 || rep.Failures[0].Func != "f1" {
		t.Fatalf("report %+v", rep)
	}
}

func TestSynthSeedReproducible(t *testing.T) {
	ss := []synthSite{synthWords(elfscan.StateNop, 0)}
	img := buildSynth(t, ss, Options{}, func(img *Image) { img.write32(synSites+12, 0x91000400) })
	var got []string
	for range 2 {
		rep, err := Check(img, Options{Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rep.Failures[0].Observed)
	}
	if got[0] != got[1] {
		t.Errorf("same seed, different values: %q", got)
	}
}

// BenchmarkVerifySites runs a whole Check over 40,000 synthetic sites with
// 2 workers (engine set-up included) and reports sites/s: all in one state,
// and mixed (a third in each).
func BenchmarkVerifySites(b *testing.B) {
	const n = 40000
	for _, name := range []string{"mixed", "nop", "init", "enabled"} {
		b.Run(name, func(b *testing.B) {
			ss := make([]synthSite, n)
			states := []elfscan.State{elfscan.StateNop, elfscan.StateInit, elfscan.StateEnabled}
			one := slices.IndexFunc(states, func(st elfscan.State) bool { return st.String() == name })
			if one < 0 && name != "mixed" {
				b.Fatalf("no state %q", name)
			}
			for i := range ss {
				st := states[i%3]
				if one >= 0 {
					st = states[one]
				}
				ss[i] = synthWords(st, 0)
			}
			img := buildSynth(b, ss, Options{}, nil)
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for b.Loop() {
				rep, err := Check(img, Options{Jobs: 2})
				if err != nil || rep.Failed != 0 {
					b.Fatal(err, rep.Failures[:min(1, len(rep.Failures))])
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "sites/s")
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(n*b.N), "cpu-µs/site")
		})
	}
}

// cpuTime is the process's CPU time (user and system) so far: on a shared
// machine the CPU a run takes varies less than its wall time.
func cpuTime(b testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// With no useful instruction limit, the watchdog's timeout ends a loop.
func TestSynthTimeout(t *testing.T) {
	ss := []synthSite{synthWords(elfscan.StateNop, 0), synthWords(elfscan.StateNop, 0)}
	rep := checkSynth(t, ss, Options{MaxInsns: 1 << 62, Timeout: 50 * time.Millisecond, Jobs: 1}, func(img *Image) {
		img.write32(synSites+12, 0x14000000)
	})
	if rep.Failed != 1 || rep.Failures[0].Func != "f0" || !strings.Contains(rep.Failures[0].Observed, "timed out") {
		t.Fatalf("failures %+v", rep.Failures)
	}
	// The other site ran to its end: the watchdog stopped only the loop.
	if rep.Passed != 1 {
		t.Errorf("passed %d, want 1", rep.Passed)
	}
}

// Many looping sites: the first few are stopped at the CPU slice and run
// again counting instructions, the rest go straight to the count (see
// maxSliced); every one reports the instruction limit, as when every run
// counted.
func TestSynthManyLoops(t *testing.T) {
	ss := make([]synthSite, 3*maxSliced)
	for i := range ss {
		ss[i] = synthWords(elfscan.StateNop, 0)
	}
	rep := checkSynth(t, ss, Options{Jobs: 1}, func(img *Image) {
		for i := range ss {
			img.write32(synSites+uint64(i)*siteSize+12, 0x14000000) // slot1: B .
		}
	})
	if rep.Failed != len(ss) {
		t.Fatalf("%d of %d looping sites failed", rep.Failed, len(ss))
	}
	for _, f := range rep.Failures {
		if !strings.Contains(f.Observed, "instruction limit") {
			t.Errorf("%s: observed %q, want the instruction limit", f.Func, f.Observed)
		}
	}
}

// A hostile site that runs into the next function's body must not leave
// translations behind that make the next site overshoot its stop address:
// Unicorn bakes the stop address into translated blocks.
func TestSynthNoStaleTranslation(t *testing.T) {
	ss := []synthSite{synthWords(elfscan.StateNop, 0), synthWords(elfscan.StateNop, 0), synthWords(elfscan.StateNop, 0)}
	rep := checkSynth(t, ss, Options{Jobs: 1}, func(img *Image) {
		b, _ := encode.B{From: synSites + 12, To: synSites + siteSize + 8}.Encode()
		img.write32(synSites+12, b) // f0: B f1
	})
	if rep.Failed != 1 || rep.Failures[0].Func != "f0" {
		t.Fatalf("failures %+v, want f0 only", rep.Failures)
	}
}

// The C side's judge (check.h, which passes runs without the Go side) and
// Go's (engine.failure, which also says why) fail the same sites, defect by
// defect: a run C passes is one Go would pass.
func TestJudgesAgree(t *testing.T) {
	const victim = 2
	at := func(off uint64) uint64 { return synSites + victim*siteSize + off }
	tests := []struct {
		name   string
		opts   Options
		state  elfscan.State
		mutate func(img *Image)
	}{
		{"nop/none", Options{}, elfscan.StateNop, nil},
		{"nop/clobber-x0", Options{}, elfscan.StateNop, func(img *Image) { img.write32(at(12), 0x91000400) }},
		{"nop/clobber-nzcv", Options{}, elfscan.StateNop, func(img *Image) { img.write32(at(12), 0xeb1f001f) }}, // cmp x0, xzr
		{"nop/loop", Options{}, elfscan.StateNop, func(img *Image) { img.write32(at(12), 0x14000000) }},
		{"init/none", Options{}, elfscan.StateInit, nil},
		{"init/mov-x9-x29", Options{}, elfscan.StateInit, func(img *Image) { img.write32(at(12), movX9X29) }},
		{"init/sp", Options{}, elfscan.StateInit, func(img *Image) { img.write32(at(16), subSP16) }},
		{"enabled/none", Options{}, elfscan.StateEnabled, nil},
		{"enabled/missing-mov", Options{}, elfscan.StateEnabled, func(img *Image) { img.write32(at(12), encode.NOP) }},
		{"enabled/mov-x10", Options{}, elfscan.StateEnabled, func(img *Image) { img.write32(at(12), movX10) }},
		{"enabled/trampoline-clobbers-x19", Options{RunFileTrampoline: true, Trampoline: fmt.Sprintf("%#x", synBadTramp)}, elfscan.StateEnabled, func(img *Image) {
			for i := range 6 {
				w, _ := encode.BL{From: synSites + uint64(i)*siteSize + 16, To: synBadTramp}.Encode()
				img.write32(synSites+uint64(i)*siteSize+16, w)
			}
		}},
		{"enabled/tool-trampoline-clobbers-x20", Options{}, elfscan.StateEnabled, func(img *Image) { mutPlantTrampoline(t, img, movz(20, 1)) }},
		{"enabled/tool-trampoline-moves-sp", Options{}, elfscan.StateEnabled, func(img *Image) { mutPlantTrampoline(t, img, subSP16) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ss := make([]synthSite, 6)
			for i := range ss {
				ss[i] = synthWords(tc.state, 0)
			}
			var failed [2][]string
			for k, goJudge := range []bool{false, true} {
				opts := tc.opts
				opts.goJudge = goJudge
				img := buildSynth(t, ss, opts, tc.mutate)
				rep, err := Check(img, opts)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range rep.Failures {
					failed[k] = append(failed[k], f.Func+": "+f.Observed)
				}
			}
			if !slices.Equal(failed[0], failed[1]) {
				t.Errorf("judged in C: %q\njudged in Go: %q", failed[0], failed[1])
			}
			if (tc.mutate == nil) != (len(failed[1]) == 0) {
				t.Errorf("failures %q", failed[1])
			}
		})
	}
}

// Engines replaced every few sites (runPool's recycling, here every 64)
// run every site as one engine does: defects are caught at the same sites,
// a budget engine made before a replacement does not outlive its engine,
// and every engine is closed.
func TestEnginesRecycled(t *testing.T) {
	ss := make([]synthSite, 3*batchSites+100) // four chunks: three engines on one worker
	for i := range ss {
		ss[i] = synthWords([]elfscan.State{elfscan.StateNop, elfscan.StateInit, elfscan.StateEnabled}[i%3], 0)
	}
	bad := []int{5, batchSites + 130, batchSites + 131, 3*batchSites + 40}
	mutate := func(img *Image) {
		for _, i := range bad {
			img.write32(synSites+uint64(i)*siteSize+12, 0xd2800013) // slot1: mov x19, #0
		}
	}
	before := uc.OpenEngines()
	var got [2][]string
	for k, recycle := range []int{0, 64} {
		opts := Options{Jobs: 1, recycle: recycle}
		rep := checkSynth(t, ss, opts, mutate)
		for _, f := range rep.Failures {
			got[k] = append(got[k], f.Func)
		}
		slices.Sort(got[k])
	}
	if len(got[0]) != len(bad) || !slices.Equal(got[0], got[1]) {
		t.Errorf("failures: %q with one engine each, %q recycled every 64 sites", got[0], got[1])
	}
	if n := uc.OpenEngines(); n != before {
		t.Errorf("%d engines left open", n-before)
	}
}

// A replacement engine takes its predecessor's batch arrays instead of
// making its own (fresh memory, seven times on a 53k-site image), and runs
// on them what the first engine would.
func TestRecycledEngineKeepsBatchArrays(t *testing.T) {
	ss := make([]synthSite, 2*batchSites)
	for i := range ss {
		ss[i] = synthWords([]elfscan.State{elfscan.StateNop, elfscan.StateInit, elfscan.StateEnabled}[i%3], 0)
	}
	opts, err := Options{Jobs: 1}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	img := buildSynth(t, ss, opts, nil)
	e, err := newEngine(img, opts)
	if err != nil {
		t.Fatal(err)
	}
	if fs := e.runRange(0, batchSites); len(fs) != 0 {
		t.Fatalf("first engine: %d failures", len(fs))
	}
	runs, res := &e.runs[0], &e.res[0]
	ne, err := e.recycle(img, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ne.close()
	if len(ne.runs) != batchSites || &ne.runs[0] != runs || &ne.res[0] != res {
		t.Error("the new engine made batch arrays of its own")
	}
	if fs := ne.runRange(batchSites, 2*batchSites); len(fs) != 0 {
		t.Errorf("new engine: %d failures, the first at site %d", len(fs), fs[0].i)
	}
}

// A replacement engine that cannot be made stops the run: Check returns
// why, the BRKs leave the image, and no engine is left open.
func TestEngineNotReplaced(t *testing.T) {
	ss := make([]synthSite, 3*batchSites+100)
	for i := range ss {
		ss[i] = synthWords(elfscan.StateNop, 0)
	}
	want := errors.New("no engine today")
	opts := Options{Jobs: 1, recycle: 64, recycleErr: want}
	img := buildSynth(t, ss, opts, nil)
	pristine := slices.Clone(img.bytes(synSites, uint64(len(ss))*siteSize))
	if len(pristine) == 0 {
		t.Fatal("no sites' words in the image")
	}
	before := uc.OpenEngines()
	rep, err := Check(img, opts)
	if rep != nil || !errors.Is(err, want) {
		t.Fatalf("Check: %v, %v; want the replacement's error", rep, err)
	}
	if !bytes.Equal(img.bytes(synSites, uint64(len(ss))*siteSize), pristine) {
		t.Error("the image's words are not its own after the run")
	}
	if n := uc.OpenEngines(); n != before {
		t.Errorf("%d engines left open", n-before)
	}
}

// bind checks a large image's sites on several goroutines: the sites,
// their static failures and the op->func addresses are what one goroutine
// makes (run under -race, it also shows the goroutines share nothing
// unguarded).
func TestBindParallel(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("one CPU")
	}
	ss := make([]synthSite, 2*bindPart+100)
	for i := range ss {
		ss[i] = synthWords([]elfscan.State{elfscan.StateEnabled, elfscan.StateNop}[i%2], 0)
	}
	mutate := func(img *Image) {
		for _, i := range []int{2, bindPart + 2, 2*bindPart + 50} {
			img.write64(synSites+uint64(i)*siteSize, 0x1234) // a junk literal
		}
	}
	bound := func(procs int) (*Image, []string) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		img := buildSynth(t, ss, Options{}, mutate)
		var static []string
		for i := range img.sites {
			if f := img.sites[i].static; f != nil {
				static = append(static, fmt.Sprintf("%d: %s", i, f.Observed))
			}
		}
		return img, static
	}
	one, want := bound(1)
	many, got := bound(2)
	if len(want) != 3 || !slices.Equal(got, want) {
		t.Errorf("static failures: %q on one goroutine, %q on several", want, got)
	}
	if !maps.Equal(one.funcs, many.funcs) || len(many.funcs) == 0 {
		t.Errorf("op->func addresses %v on one goroutine, %v on several", one.funcs, many.funcs)
	}
	for i := range one.sites {
		if a, b := &one.sites[i], &many.sites[i]; a.op != b.op || a.skip != b.skip || a.index != b.index {
			t.Fatalf("site %d: %+v on one goroutine, %+v on several", i, *a, *b)
		}
	}
}
