// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package verify

import (
	"errors"
	"testing"
	"time"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/verify/uc"
)

// A hook that panics during a site's run is ftpatch's bug, not the file's:
// the run's failure carries it (Check and RunIntermediates return it as an
// error), the process survives, and the engine runs the site again once
// the hook is gone.
func TestEngineHookPanicIsABug(t *testing.T) {
	src := testutil.Fixtures(t, "clang-callops-static.elf")[0]
	img, err := Load(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	e, err := newEngine(img, Options{MaxInsns: 10000})
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	s := &img.sites[0]
	h, err := e.mu.HookAdd(uc.HOOK_CODE, func(uc.Unicorn, uint64, uint32) { panic("hook bug") }, s.entry(), s.entry())
	if err != nil {
		t.Fatal(err)
	}
	f := e.run(s)
	var hp *uc.HookPanicError
	if f == nil || !errors.As(f.bug, &hp) || hp.Value != "hook bug" || hp.Addr != s.entry() {
		t.Fatalf("run with a panicking hook: %+v", f)
	}
	if err := e.mu.HookDel(h); err != nil {
		t.Fatal(err)
	}
	if f := e.run(s); f != nil {
		t.Fatalf("the site fails once the hook is gone: %+v", f)
	}
}

// A run the watchdog stopped at its slice runs once more on the fast path:
// a site that then behaves passes without a budget engine (a second engine
// and copies of the image's regions); one stopped again counts towards
// maxSliced.
func TestEngineSliceRetriedOnFastPath(t *testing.T) {
	ss := make([]synthSite, 4)
	for i := range ss {
		ss[i] = synthWords(elfscan.StateEnabled, 0)
	}
	img := buildSynth(t, ss, Options{}, nil)
	e, err := newEngine(img, Options{MaxInsns: 10000, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	s := &img.sites[0]
	var run uc.Run
	e.setRun(s, &run)
	res := uc.Result{Stopped: uc.StopSlice, Regs: [uc.BatchOut]uint64{rPC: s.entry()}}
	if f := e.judge(s, &run, &res); f != nil {
		t.Fatalf("a good site stopped once at its slice fails: %+v", f)
	}
	if e.budget.Load() != nil {
		t.Error("a budget engine was made for a site the fast path ran")
	}
	if res.Stopped != 0 || res.Regs[rPC] != run.Until {
		t.Errorf("result after the retry: stopped %d, pc %#x; want 0, %#x", res.Stopped, res.Regs[rPC], run.Until)
	}
}
