// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package verify

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/livesafe"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// interAgainst runs livesafe.Compare and then RunIntermediates on a pair.
func interAgainst(t testing.TB, orig, patched string) *livesafe.Report {
	t.Helper()
	r, err := compareRun(orig, patched, Options{Jobs: 2})
	if err != nil {
		t.Fatalf("compare and RunIntermediates(%s, %s): %v", orig, patched, err)
	}
	return r
}

// interAllBehave fails unless every intermediate of r ran and behaved, and
// there are want of them.
func interAllBehave(t *testing.T, r *livesafe.Report, want int) {
	t.Helper()
	if r.Failed() || r.Counts.Intermediates != want || r.Counts.Ran != want || r.Counts.RunFailed != 0 {
		agDump(t, r)
		t.Fatalf("want %d intermediates, all run and behaving: counts %+v", want, r.Counts)
	}
	for _, ic := range r.Intermediates {
		if !ic.RunWanted || !ic.Ran || !ic.Behaves || ic.Fail != nil {
			t.Fatalf("%s: %+v", ic.Func, ic)
		}
	}
}

// Every linked call-ops fixture, nop -> init -> enabled -> init (disable)
// and nop -> enabled: each enable's literal-first intermediate behaves as
// the old state, each disable's call-first one as the new state.
func TestIntermediatesRunLinked(t *testing.T) {
	for _, src := range testutil.Fixtures(t, "*callops*.elf") {
		t.Run(filepath.Base(src), func(t *testing.T) {
			f := agScan(t, src)
			_, lit := agEligibleCount(f)
			ops, tramp := testutil.SymbolAddr(t, src, "ops"), testutil.SymbolAddr(t, src, "ftrace_caller")
			init := agLinked(t, src, "init", elfscan.StateInit, 0, tramp)
			enabled := agLinked(t, src, "enabled", elfscan.StateEnabled, ops, tramp)
			interAllBehave(t, interAgainst(t, src, init), 0)
			r := interAgainst(t, init, enabled)
			interAllBehave(t, r, lit)
			for _, ic := range r.Intermediates {
				if ic.Like != "old" || ic.State != elfscan.StateInit {
					t.Fatalf("enable: %+v", ic)
				}
			}
			interAllBehave(t, interAgainst(t, src, enabled), lit)
			r = interAgainst(t, enabled, init)
			interAllBehave(t, r, lit)
			for _, ic := range r.Intermediates {
				if ic.Like != "new" || ic.Order != livesafe.OrderCallFirst {
					t.Fatalf("disable: %+v", ic)
				}
			}
			// The file itself passes in every state, so the pairs are real.
			for _, p := range []string{init, enabled} {
				if rep, err := File(p, Options{Jobs: 1}); err != nil || rep.Failed != 0 {
					t.Fatalf("%s: %+v %v", p, rep, err)
				}
			}
		})
	}
}

// Every call-ops object and module, nop -> enabled with new relocations
// and an added ops symbol (bound to verify's stand-in op).
func TestIntermediatesRunRelocatable(t *testing.T) {
	files := append(testutil.Fixtures(t, "*callops*.o"), testutil.Fixtures(t, "*callops*.ko")...)
	for _, src := range files {
		t.Run(filepath.Base(src), func(t *testing.T) {
			f := agScan(t, src)
			_, lit := agEligibleCount(f)
			o := agReadObj(t, src)
			agRelEnable(t, o, f, nil)
			enabled := filepath.Join(t.TempDir(), "enabled.o")
			o.Write(t, enabled)
			interAllBehave(t, interAgainst(t, src, enabled), lit)
			if rep, err := File(enabled, Options{Jobs: 1}); err != nil || rep.Failed != 0 {
				t.Fatalf("%+v %v", rep, err)
			}
		})
	}
}

// interFindProblem returns the intermediate-run problem naming fn.
func interFindProblem(r *livesafe.Report, fn string) *livesafe.Problem {
	for i, p := range r.Problems {
		if p.Func == fn && p.Run != nil {
			return &r.Problems[i]
		}
	}
	return nil
}

// Bad intermediates are reported with the function named.
func TestIntermediatesBadCaught(t *testing.T) {
	src := testutil.Fixtures(t, "gcc-callops-bti-static.elf")[0]
	f := agScan(t, src)
	ops, other, tramp := testutil.SymbolAddr(t, src, "ops"), testutil.SymbolAddr(t, src, "ftrace_list_ops"), testutil.SymbolAddr(t, src, "ftrace_caller")
	s := agPick(t, f, true)

	// ORIG's BL goes to the wrong place (a function); FILE retargets it to
	// the trampoline and writes a new literal first: between the writes the
	// old, wrong BL runs with the new literal. FILE alone is fine.
	t.Run("old BL wrong, new literal", func(t *testing.T) {
		orig := agLinked(t, src, "orig", elfscan.StateEnabled, ops, s.Entry())
		file := agLinked(t, src, "file", elfscan.StateEnabled, other, tramp)
		if rep, err := File(file, Options{Jobs: 1}); err != nil || rep.Failed != 0 {
			t.Fatalf("FILE alone must pass: %+v %v", rep, err)
		}
		r := interAgainst(t, orig, file)
		if p := interFindProblem(r, s.Func); p == nil || !strings.Contains(ProblemText(*p), "BL to trampoline") {
			agDump(t, r)
			t.Fatalf("no intermediate failure for %s", s.Func)
		}
		if r.Counts.RunFailed == 0 || r.LiveSafe {
			t.Fatalf("counts %+v live-safe %v", r.Counts, r.LiveSafe)
		}
	})

	// A retarget with a junk literal written first: the old BL, still to
	// the trampoline, reads junk as its op.
	t.Run("retarget with junk literal", func(t *testing.T) {
		orig := agLinked(t, src, "orig", elfscan.StateEnabled, ops, tramp)
		file := agCopy(t, orig, "file")
		bl, _ := encode.BL{From: s.CallSite(), To: tramp + 4}.Encode()
		agPatchBytes(t, file, s.LiteralOff(), binary.LittleEndian.AppendUint64(nil, 0x0bad_0bad_0bad_0bad))
		agPatchBytes(t, file, s.Slot2Off(), binary.LittleEndian.AppendUint32(nil, bl))
		r := interAgainst(t, orig, file)
		if p := interFindProblem(r, s.Func); p == nil || !strings.Contains(ProblemText(*p), "observed literal") {
			agDump(t, r)
			t.Fatalf("no intermediate failure for %s", s.Func)
		}
		var b strings.Builder
		AgainstText(&b, r)
		if !strings.Contains(b.String(), "1 failed") || !strings.Contains(b.String(), s.Func) {
			t.Fatalf("text report:\n%s", b.String())
		}
	})

	// A good retarget with a valid new literal runs as enabled (calls the
	// new op) but stays statically unproven.
	t.Run("retarget with valid literal", func(t *testing.T) {
		orig := agLinked(t, src, "orig", elfscan.StateEnabled, ops, tramp)
		file := agCopy(t, orig, "file")
		bl, _ := encode.BL{From: s.CallSite(), To: s.Entry()}.Encode()
		agPatchBytes(t, file, s.LiteralOff(), binary.LittleEndian.AppendUint64(nil, other))
		agPatchBytes(t, file, s.Slot2Off(), binary.LittleEndian.AppendUint32(nil, bl))
		r := interAgainst(t, orig, file)
		if interFindProblem(r, s.Func) != nil || r.Counts.Ran != 1 || r.Counts.Unproven != 1 {
			agDump(t, r)
			t.Fatalf("counts %+v", r.Counts)
		}
	})
}
