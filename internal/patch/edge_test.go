// SPDX-License-Identifier: Apache-2.0

package patch_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/patch"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// Disable touches enabled sites only: a site that was initialised with some
// default ops and never enabled keeps its literal, even when disable is run
// without --default-ops.
func TestDisableLeavesNeverEnabledSites(t *testing.T) {
	for _, fx := range testutil.Fixtures(t, "*-callops-obj.o") {
		t.Run(filepath.Base(fx), func(t *testing.T) {
			dir := t.TempDir()
			initd, en, dis := filepath.Join(dir, "i.o"), filepath.Join(dir, "e.o"), filepath.Join(dir, "d.o")
			apply(t, fx, initd, patch.Request{Op: patch.OpInit, DefaultOps: patch.Value{Sym: "ops"}, SkipMisaligned: true})
			sites := scan(t, initd).Sites
			enabled := sites[0].Func
			apply(t, initd, en, enableReq(fx, enabled))
			apply(t, en, dis, patch.Request{Op: patch.OpDisable})
			before := map[uint64]elfscan.Site{}
			for _, s := range sites {
				before[s.Entry()] = s
			}
			for _, s := range scan(t, dis).Sites {
				if s.Func == enabled {
					if s.State != elfscan.StateInit || s.Ops() != nil {
						t.Errorf("%s: after disable state %s ops %+v, want init with default ops 0", s.Func, s.State, s.Ops())
					}
					continue
				}
				b := before[s.Entry()]
				if s.State != b.State || (s.Ops() == nil) != (b.Ops() == nil) || (s.Ops() != nil && s.Ops().Sym != b.Ops().Sym) {
					t.Errorf("%s: never enabled, but disable changed it: state %s ops %+v, was %s ops %+v", s.Func, s.State, s.Ops(), b.State, b.Ops())
				}
			}
		})
	}
}

// An enable whose --func matches nothing changes nothing, not even the
// symbol table.
func TestEnableMatchingNothingAddsNoSymbols(t *testing.T) {
	for _, fx := range testutil.Fixtures(t, "*-callops-obj.o") {
		t.Run(filepath.Base(fx), func(t *testing.T) {
			initd := filepath.Join(t.TempDir(), "i.o")
			apply(t, fx, initd, patch.Request{Op: patch.OpInit, SkipMisaligned: true})
			in, err := patch.Open(initd)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			c, err := patch.Plan(in, enableReq(fx, "no_such_function*"))
			if err != nil {
				t.Fatal(err)
			}
			if !c.Empty() || len(c.NewSyms) != 0 {
				t.Fatalf("plan for no matching function: %d writes, %d relocations, symbols %q; want nothing", c.Words(), len(c.Relocs), c.NewSyms)
			}
		})
	}
}

// A non-zero default ops in a PIE needs --allow-absolute for init too.
func TestInitAbsoluteInPIE(t *testing.T) {
	fx := testutil.Fixtures(t, "gcc-callops-pie.elf")[0]
	in, err := patch.Open(fx)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	req := patch.Request{Op: patch.OpInit, DefaultOps: patch.Value{Sym: "ops"}, SkipMisaligned: true}
	if _, err := patch.Plan(in, req); !errors.Is(err, patch.ErrAbsolute) {
		t.Fatalf("init --default-ops ops on a PIE: %v, want ErrAbsolute", err)
	}
	req.AllowAbsolute = true
	out := filepath.Join(t.TempDir(), "p.elf")
	apply(t, fx, out, req)
	orig, _ := os.ReadFile(fx)
	got, _ := os.ReadFile(out)
	if bytes.Equal(orig, got) {
		t.Fatal("init --allow-absolute wrote nothing")
	}
	for _, s := range scan(t, out).Sites {
		if s.HasProblem(elfscan.CodeMisalignedLiteral) { // left alone (SkipMisaligned)
			continue
		}
		if s.State != elfscan.StateInit || s.Ops() == nil || s.Ops().Sym != "ops" {
			t.Errorf("%s: state %s ops %+v, want init with ops", s.Func, s.State, s.Ops())
		}
	}
}
