// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package verify

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/verify/uc"
)

// synDirect is a direct trampoline in the synthetic image's code.
const synDirect = synCode + 0xa00

// Direct sites on the synthetic image: every enabled site BLs to the
// direct trampoline at synDirect (words given per case); verify --direct
// must pass the right one and catch each defect.
func TestSynthDirect(t *testing.T) {
	good := []uint32{encode.BTIC, 0xaa1e03ea /* mov x10, x30 */, 0xaa0903fe /* mov x30, x9 */, 0xd65f0140 /* ret x10 */}
	tests := []struct {
		name  string
		tramp []uint32
		site  func(img *Image, i int) // extra change at site i
		want  string                  // "" = pass
	}{
		{"good", good, nil, ""},
		{"returns-with-x30-unchanged", []uint32{encode.BTIC, 0xd65f03c0 /* ret */}, nil, "X30 = "},
		{"clobbers-x19", []uint32{encode.BTIC, 0xd2800013 /* mov x19, #0 */, 0xaa1e03ea, 0xaa0903fe, 0xd65f0140}, nil, "X19 = "},
		{"site-without-mov-x9", good, func(img *Image, i int) {
			img.write32(synSites+uint64(i)*siteSize+12, encode.NOP)
		}, "entered with X9 = "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ss := make([]synthSite, 8)
			for i := range ss {
				ss[i] = synthWords(elfscan.StateEnabled, 0)
			}
			opts := Options{Jobs: 2, Direct: []string{fmt.Sprintf("%#x", synDirect)}}
			img := buildSynth(t, ss, opts, func(img *Image) {
				for i, w := range tc.tramp {
					img.write32(synDirect+4*uint64(i), w)
				}
				for i := range ss {
					call := synSites + uint64(i)*siteSize + 16
					img.write32(call, blWord(call, synDirect))
					if tc.site != nil && i == 3 {
						tc.site(img, i)
					}
				}
				if err := img.resolveDirects(nil, nil, opts); err != nil {
					t.Fatal(err)
				}
			})
			rep, err := Check(img, opts)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if rep.Failed != 0 {
					t.Fatalf("failures: %+v", rep.Failures)
				}
				return
			}
			if rep.Failed == 0 {
				t.Fatalf("defect not caught: %+v", rep)
			}
			for _, f := range rep.Failures {
				if !strings.Contains(f.Observed, tc.want) {
					t.Errorf("%s: observed %q, want %q", f.Func, f.Observed, tc.want)
				}
			}
		})
	}
}

func blWord(from, to uint64) uint32 {
	w, err := encode.BL{From: from, To: to}.Encode()
	if err != nil {
		panic(err)
	}
	return w
}

// A direct site whose run was stopped at its slice after it had entered
// its direct trampoline runs again on the fast path (engine.retry), and
// the entry of the stopped run is not counted with the retry's.
func TestDirectSliceRetryCountsOnce(t *testing.T) {
	good := []uint32{encode.BTIC, 0xaa1e03ea /* mov x10, x30 */, 0xaa0903fe /* mov x30, x9 */, 0xd65f0140 /* ret x10 */}
	ss := []synthSite{synthWords(elfscan.StateEnabled, 0)}
	opts := Options{Jobs: 1, Direct: []string{fmt.Sprintf("%#x", synDirect)}}
	img := buildSynth(t, ss, opts, func(img *Image) {
		for i, w := range good {
			img.write32(synDirect+4*uint64(i), w)
		}
		call := uint64(synSites + 16)
		img.write32(call, blWord(call, synDirect))
		if err := img.resolveDirects(nil, nil, opts); err != nil {
			t.Fatal(err)
		}
	})
	e, err := newEngine(img, Options{MaxInsns: 10000, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	s := &img.sites[0]
	if s.direct == 0 {
		t.Fatal("the site has no direct trampoline")
	}
	var run uc.Run
	e.setRun(s, &run)
	// The stopped run had entered the direct trampoline.
	e.directHits, e.directAt = 1, synDirect
	res := uc.Result{Stopped: uc.StopSlice, Regs: [uc.BatchOut]uint64{rPC: synDirect}}
	if f := e.judge(s, &run, &res); f != nil {
		t.Fatalf("a good direct site stopped once at its slice fails: %s / %s", f.Expected, f.Observed)
	}
	if e.budget.Load() != nil {
		t.Error("a budget engine was made for a site the fast path ran")
	}
}
