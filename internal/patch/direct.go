// SPDX-License-Identifier: Apache-2.0

package patch

import (
	"debug/elf"
	"errors"
	"fmt"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
)

// ErrDirect reports a direct call enable cannot make (Request.Direct).
var ErrDirect = errors.New("direct call not possible")

// direct is what Plan resolves once for Request.Direct.
type direct struct {
	addr uint64        // linked files: the direct trampoline
	rel  *elfscan.Rela // ET_REL: CALL26 against its symbol
	// opsDirect is op->direct_call of --ops in a linked file (0 when
	// unset or unknown), for sites the direct trampoline is out of reach of.
	opsDirect uint64
	opsErr    *Words // why opsDirect could not be read
}

// resolveDirect resolves Request.Direct and reads --ops' direct_call.
func (p *planner) resolveDirect(ops literal) error {
	v := *p.req.Direct
	if v.IsZero() {
		return roleErr(RoleDirect, "%w: %s 0: a BL to address 0 is not a direct trampoline", ErrRequest, RoleDirect)
	}
	if p.rel {
		if v.Sym == "" {
			return fmt.Errorf("%w: direct trampoline %s: a relocatable object has no addresses; name it by symbol", ErrSymbol, v)
		}
		idx, err := p.relSymbol(v.Sym)
		if err != nil {
			return err
		}
		p.direct = &direct{rel: &elfscan.Rela{Type: elf.R_AARCH64_CALL26, Sym: idx}}
		return nil
	}
	a, err := p.resolve(v)
	if err != nil {
		return err
	}
	d := &direct{addr: a}
	off, err := encode.DirectCallOffset(p.req.DirectCallOffset)
	if err != nil {
		return roleErr(RoleDirectCallOffset, "%w: %w", ErrRequest, err)
	}
	if ops.bytes == 0 {
		d.opsErr = &Words{"%s is 0", []any{RoleOps}}
	} else if d.opsDirect, err = p.in.Obj.Load64(ops.bytes + uint64(off)); err != nil {
		d.opsErr = &Words{"%s", []any{err.Error()}}
	} else if d.opsDirect == 0 {
		d.opsErr = &Words{"its direct_call (offset %d) is 0", []any{off}}
	}
	p.direct = d
	return nil
}

// directCall is the call word of an enabled direct site: BL straight to the
// direct trampoline when it is in reach (the literal still holds --ops, as
// Linux writes it), otherwise BL to the common trampoline, which branches
// to the op's direct_call: so --ops must have one.
func (p *planner) directCall(s *elfscan.Site, tramp uint64, name func() string) (call, bool) {
	d := p.direct
	if p.rel {
		r := *d.rel
		r.Off = s.CallSite()
		return call{word: encode.BLZero, rel: &r, sym: p.req.Direct.Sym}, true
	}
	if w, err := (encode.BL{From: s.CallSite(), To: d.addr}).Encode(); err == nil {
		return call{word: w}, true
	}
	where := p.req.Direct.String()
	if p.req.Direct.Sym != "" {
		where += fmt.Sprintf(" at %#x", d.addr)
	}
	if !s.Layout.HasLiteral() {
		p.is.add(ErrDirect, s, name(), "direct trampoline %s is out of BL range of %#x, and a classic site has no literal to reach it through the common trampoline",
			where, s.CallSite())
		return call{}, false
	}
	if d.opsErr != nil {
		p.is.add(ErrDirect, s, name(), "direct trampoline %s is out of BL range of %#x, so the site must call %s with an ops whose direct_call is set, "+
			"but ops %s: %s (pass %s naming the direct ops, or %s N for your struct ftrace_ops)",
			where, s.CallSite(), p.req.Trampoline, p.req.Ops, *d.opsErr, RoleOps, RoleDirectCallOffset)
		return call{}, false
	}
	w, err := encode.BL{From: s.CallSite(), To: tramp}.Encode()
	if err != nil {
		p.is.add(ErrRange, s, name(), "trampoline %s: %v", p.req.Trampoline, err)
		return call{}, false
	}
	return call{word: w}, true
}
