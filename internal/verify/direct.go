// SPDX-License-Identifier: Apache-2.0

package verify

// Direct calls (Linux 6.4+, ftrace_ops::direct_call). A site may call a
// direct trampoline instead of the common one: straight, by its BL, or
// through the common trampoline, which branches to a non-zero
// op->direct_call. Either way the direct trampoline is entered with X9 = the
// traced function's parent (its own return address) and X30 = the return
// into the traced function, and must come back there with X30 = X9 and the
// registers a call preserves as they were; op->func is not called.
//
// Options.Direct names the legal direct trampolines. The code at each runs:
// the file's, or for an address with no code (or an object's undefined
// symbol) a stand-in shaped as Linux's ftrace_stub_direct_tramp. A hook on
// each entry records X9 and X30, so a run shows it was reached, and how.

import (
	"fmt"
	"slices"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/livesafe"
	"github.com/ftpatch/ftpatch/internal/patch"
	"github.com/ftpatch/ftpatch/internal/verify/uc"
)

// offDirect is the stand-in direct trampoline in the stand-in code page.
const offDirect = 0xf00

// standinDirect is Linux's simplest direct trampoline: back into the
// traced function with X30 = the parent. Its operands are fixed (encode's
// tests cover the error), like stopBRK's.
var standinDirect, _ = encode.StubDirectTrampoline()

// placeStandinDirect writes the stand-in direct trampoline at addr.
func (img *Image) placeStandinDirect(addr uint64) {
	for i, w := range standinDirect.Words {
		img.write32(addr+4*uint64(i), w)
	}
}

// resolveDirects fills img.directs from opts.Direct. In a linked file a
// name is a symbol or an address; an address with no code gets a page of its
// own holding the stand-in. In an object, a defined symbol is its placed
// address; an undefined one (resolved when the module loads) is bound to
// the stand-in in verify's own page, see relDirect.
func (img *Image) resolveDirects(o *elfscan.Object, rel *relLayout, opts Options) error {
	if len(opts.Direct) == 0 {
		return nil
	}
	img.directs = map[uint64]string{}
	img.directRole = opts.Names.Say(patch.RoleDirect)
	img.standinDirectAt = img.standinBase + offDirect
	img.placeStandinDirect(img.standinDirectAt)
	for _, name := range opts.Direct {
		if rel != nil {
			a, ok := rel.definedSymbol(name)
			if !ok {
				if _, isAddr := parseAddr(name); isAddr {
					return directErr("%s %s: an object has no addresses; name the direct trampoline by symbol", patch.RoleDirect, name)
				}
				a = img.standinDirectAt
			}
			img.directs[a] = name
			continue
		}
		a, err := resolveLinked(o, name)
		if err != nil {
			return directErr("%s %s: %w", patch.RoleDirect, name, err)
		}
		if !img.isCode(a) {
			if img.find(a) != nil || a%4 != 0 {
				return directErr("%s %s: %#x is mapped but not code (or misaligned)", patch.RoleDirect, name, a)
			}
			page := a &^ (pageSize - 1)
			if _, err := img.addRegion(page, pageSize, uc.PROT_READ|uc.PROT_EXEC, "stand-in direct trampoline "+name); err != nil {
				return directErr("%s %s: %w", patch.RoleDirect, name, err)
			}
			if a+uint64(4*len(standinDirect.Words)) > page+pageSize {
				return directErr("%s %s: %#x: the stand-in does not fit before the page end", patch.RoleDirect, name, a)
			}
			img.placeStandinDirect(a)
		}
		img.directs[a] = name
	}
	return nil
}

// directErr is a mistake in Options.Direct: a *patch.RoleError, so that a
// command names its flag.
func directErr(format string, args ...any) error {
	return &patch.RoleError{Role: patch.RoleDirect, Words: patch.Say(format, args...)}
}

// inFile says err is about the file at path, keeping a *patch.RoleError
// one a command can still name its flags in.
func inFile(path string, err error) error {
	if re, ok := err.(*patch.RoleError); ok {
		return &patch.RoleError{Role: re.Role, Words: patch.Say("file %s: %w", path, re.Words)}
	}
	return fmt.Errorf("file %s: %w", path, err)
}

// definedSymbol returns the placed address of a defined symbol name.
func (rl *relLayout) definedSymbol(name string) (uint64, bool) {
	s, err := rl.o.Lookup(name)
	if err != nil {
		return 0, false
	}
	a, _, ok := rl.symbol(s.Index)
	return a, ok
}

// relDirect is where a CALL26 against the undefined symbol name goes, when
// name is a direct trampoline.
func (img *Image) relDirect(name string) (uint64, bool) {
	for a, n := range img.directs {
		if n == name {
			return a, true
		}
	}
	return 0, false
}

// checkDirect decides, for an enabled call-ops site whose BL goes to to,
// whether it is a direct site: to is a direct trampoline (straight), or to
// is the common trampoline and op->direct_call is set (through it). It
// returns true when it settled the site (s.direct set, or s failed).
func (img *Image) checkDirect(s *site, to uint64) bool {
	if img.directs == nil {
		return false
	}
	if _, ok := img.directs[to]; ok && to != img.tramp {
		s.direct = to
		return true
	}
	common := img.tramp
	if img.usesAltEntry(s) {
		common = img.trampAlt // the entry that finds this site's literal
	}
	if to != common || common == 0 || s.literal() == 0 || s.literal()%8 != 0 {
		// Only the common trampoline reads op->direct_call; any other
		// target fails in checkStatic.
		return false
	}
	op, ok := img.read64(s.literal())
	if !ok || op == 0 {
		return false
	}
	dc, ok := img.read64(op + uint64(img.directOff))
	if !ok || dc == 0 {
		return false
	}
	if _, legal := img.directs[dc]; !legal {
		s.fail(fmt.Sprintf("op->direct_call (op %#x + %d) 0 or a direct trampoline named by %s", op, img.directOff, img.directRole),
			fmt.Sprintf("op->direct_call = %#x", dc))
		return true
	}
	s.direct = dc
	return true
}

// directNames lists the legal direct trampolines for a failure message.
func (img *Image) directNames() string {
	if len(img.directs) == 0 {
		return ""
	}
	var as []uint64
	for a := range img.directs {
		as = append(as, a)
	}
	slices.Sort(as)
	s := " or a direct trampoline:"
	for _, a := range as {
		s += fmt.Sprintf(" %s (%#x)", img.directs[a], a)
	}
	return s
}

// provenDirect says how an intermediate state that ran and behaved is
// proven (livesafe.ProofNone: it is not). Only for a literal-first change of a call-ops site in a
// linked file (an object's BL targets are relocations) whose BL moves
// between the common trampoline and a direct trampoline D, and whose run
// entered D:
//   - old BL to the common trampoline, new BL to D: with the new literal the
//     common trampoline's direct-call path went to D, so the old call
//     reading the new ops does what the new state does (Linux switches a
//     site to a direct ops this way);
//   - old BL straight to D: it reads no literal at all, so the new literal
//     cannot change what it does.
func provenDirect(ic *livesafe.Intermediate, s *site) livesafe.RunProof {
	if s.direct == 0 || ic.Order != livesafe.OrderLiteralFirst || !encode.IsBL(ic.Words.Slot2) || !encode.IsBL(ic.Next.Slot2) ||
		ic.Words.Target != nil && ic.Words.Target.SymIndex != 0 {
		return livesafe.ProofNone
	}
	from, to := encode.BLTarget(ic.Words.Slot2, s.callSite()), encode.BLTarget(ic.Next.Slot2, s.callSite())
	switch {
	case from == to:
		return livesafe.ProofNone
	case to == s.direct:
		return livesafe.ProofThroughDirectCall
	case from == s.direct:
		return livesafe.ProofStraightToDirect
	}
	return livesafe.ProofNone
}
