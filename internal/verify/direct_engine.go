// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package verify

// The emulator side of direct calls (direct.go): a hook on each direct
// trampoline's entry, and the check of a direct site's run.

import (
	"fmt"

	"github.com/ftpatch/ftpatch/internal/verify/uc"
)

// onDirect records an entry into a direct trampoline.
func (e *engine) onDirect(mu uc.Unicorn, addr uint64, _ uint32) {
	if _, ok := e.img.directs[addr]; !ok {
		return
	}
	e.directHits++
	e.directAt = addr
	x9, err1 := mu.RegRead(uc.ARM64_REG_X9)
	x30, err2 := mu.RegRead(uc.ARM64_REG_X30)
	if err1 != nil || err2 != nil {
		mu.Stop()
		return
	}
	e.directX9, e.directX30 = x9, x30
}

// checkDirectRun checks a direct site's run: one entry into the expected
// direct trampoline, with X9 = the parent and X30 = the return into the
// function, no op->func call, and back with X0-X8, X19-X29, SP as they
// were and X30 = the parent.
func (e *engine) checkDirectRun(s *site) *Failure {
	exp := fmt.Sprintf("one entry into direct trampoline %s at %#x with X9 = parent %#x, X30 = %#x", e.img.directs[s.direct], s.direct, e.img.sentinel, s.callSite()+4)
	switch {
	case e.directHits != 1:
		return &Failure{Expected: exp, Observed: fmt.Sprintf("%d entries into direct trampolines", e.directHits)}
	case e.directAt != s.direct:
		return &Failure{Expected: exp, Observed: fmt.Sprintf("entered direct trampoline at %#x", e.directAt)}
	case e.directX9 != e.img.sentinel || e.directX30 != s.callSite()+4:
		return &Failure{Expected: exp, Observed: fmt.Sprintf("entered with X9 = %#x, X30 = %#x", e.directX9, e.directX30)}
	}
	return e.check(s, "direct trampoline, no op->func; X0-X8, X19-X29, SP unchanged; X30 = parent", 0, callerKept)
}
