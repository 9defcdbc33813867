// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package verify

import (
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/livesafe"
	"github.com/ftpatch/ftpatch/internal/testutil/pairtest"
)

// Pairs of files for the intermediate-state and mutation tests come from
// pairtest, shared with livesafe's tests.
var (
	agScan          = pairtest.Scan
	agCopy          = pairtest.Copy
	agEligible      = pairtest.Eligible
	agEligibleCount = pairtest.EligibleCount
	agLinked        = pairtest.Linked
	agPatchBytes    = pairtest.PatchBytes
	agPick          = pairtest.Pick
	agReadObj       = pairtest.ReadObj
	agCString       = pairtest.CString
	agRelEnable     = pairtest.RelEnable
	agAltSite       = pairtest.AltSite
)

type agObj = pairtest.Obj

// compareRun compares orig with patched (livesafe.Compare), then runs the
// intermediate states with opts; ORIG is opened once for both.
func compareRun(orig, patched string, opts Options) (*livesafe.Report, error) {
	o, p, done, err := pairtest.Open(orig, patched)
	if err != nil {
		return nil, err
	}
	defer done()
	r, err := livesafe.Compare(o, p, livesafe.Options{})
	if err != nil {
		return nil, err
	}
	return r, RunIntermediates(r, o, opts)
}

func agDump(t testing.TB, r *livesafe.Report) {
	t.Helper()
	var b strings.Builder
	AgainstText(&b, r)
	t.Log("\n" + b.String())
}
