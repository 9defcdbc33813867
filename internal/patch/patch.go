// SPDX-License-Identifier: Apache-2.0

// Package patch turns the sites elfscan found, plus a Request (init, enable
// or disable), into a Plan of word writes and, for relocatable objects,
// relocation and symbol edits; Apply writes a plan to a new file atomically.
//
// Invariants:
//   - Planning reads only; it decides every write up front, or fails as a
//     whole (a site in an unexpected state, an unknown symbol, a BL out of
//     range) and nothing is written.
//   - Each write carries the bytes it expects to replace, as Linux's
//     ftrace_modify_code does; Apply checks them again before writing.
//   - Only the literal (one aligned 64-bit value) and the two slots after
//     the entry are ever touched. In ET_REL files the literal's value and
//     the BL's target live in relocations (R_AARCH64_ABS64 and
//     R_AARCH64_CALL26); missing symbols are appended to .symtab as
//     undefined globals and missing .rela sections are appended after the
//     last section header, so no existing index changes.
//   - Plans are deterministic: sites in scan order, and within a site the
//     order Linux uses at run time: enable writes the literal before the BL
//     (ftrace_make_call), disable removes the BL before the literal.
//
// The states and their words (call-ops layout; classic has no literal):
//
//	          literal        slot1        slot2
//	nop       NOP NOP        NOP          NOP
//	init      default ops    MOV X9,X30   NOP
//	enabled   ops            MOV X9,X30   BL trampoline
//
// init refuses enabled sites (Linux never initialises an enabled site:
// disable it first); init of an init site only updates the literal if the
// default ops differ, so init is idempotent. disable of a nop or init site
// writes nothing but the literal, when the default ops differ.
package patch

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Op is what a request does.
type Op string

const (
	OpInit    Op = "init"
	OpEnable  Op = "enable"
	OpDisable Op = "disable"
)

// DefaultTrampoline is the symbol enable branches to unless told otherwise.
const DefaultTrampoline = "ftrace_caller"

// Sentinel errors; test with errors.Is.
var (
	ErrState      = errors.New("site in an unexpected state")
	ErrSymbol     = errors.New("symbol not usable")
	ErrRange      = errors.New("BL out of range")
	ErrClassic    = errors.New("classic sites have no literal")
	ErrAbsolute   = errors.New("absolute address in a position-independent file")
	ErrMisaligned = errors.New("misaligned literal")
	ErrChanged    = errors.New("file changed since it was scanned")
	ErrRequest    = errors.New("bad request")
)

// Value is a symbol name (Sym != "") or an absolute address.
type Value struct {
	Sym  string
	Addr uint64
}

// ParseValue reads SYM or a 0x… address.
func ParseValue(s string) (Value, error) {
	if s == "" {
		return Value{}, fmt.Errorf("%w: empty symbol or address", ErrRequest)
	}
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		v, err := strconv.ParseUint(s[2:], 16, 64)
		if err != nil {
			return Value{}, fmt.Errorf("%w: bad address %q", ErrRequest, s)
		}
		return Value{Addr: v}, nil
	}
	if s == "0" {
		return Value{}, nil
	}
	if strings.ContainsAny(s, " \t\n\x00") {
		return Value{}, fmt.Errorf("%w: bad symbol name %q", ErrRequest, s)
	}
	return Value{Sym: s}, nil
}

func (v Value) String() string {
	if v.Sym != "" {
		return v.Sym
	}
	return fmt.Sprintf("%#x", v.Addr)
}

// IsZero reports whether v is the address 0 (no ops).
func (v Value) IsZero() bool { return v.Sym == "" && v.Addr == 0 }

// Request says what to do to which sites.
type Request struct {
	Op         Op
	DefaultOps Value    // init, disable: the literal's idle value (default 0)
	Ops        *Value   // enable: the literal's value; required for call-ops sites
	Trampoline Value    // enable: the BL target; zero means DefaultTrampoline
	Funcs      []string // path.Match globs on the function name; none = all
	Exclude    []string // globs of functions to leave alone
	InitToo    bool     // enable: also initialise nop sites
	// SkipMisaligned leaves sites with a misaligned literal untouched
	// (enable); they are listed in Plan.Skipped.
	SkipMisaligned bool
	// AllowAbsolute lets enable store an absolute ops address in an ET_DYN
	// file, which has no dynamic relocation for it.
	AllowAbsolute bool
	// Direct (enable) is a direct trampoline: the BL goes straight to it
	// when in reach, else to Trampoline, and then Ops must have a non-zero
	// direct_call at DirectCallOffset (0: encode.DefaultDirectCallOffset).
	Direct           *Value
	DirectCallOffset int64
}

// Check validates the globs.
func (r *Request) Check() error {
	for _, g := range append(append([]string(nil), r.Funcs...), r.Exclude...) {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("%w: bad glob %q: %w", ErrRequest, g, err)
		}
	}
	switch r.Op {
	case OpInit, OpEnable, OpDisable:
	default:
		return fmt.Errorf("%w: unknown operation %q", ErrRequest, r.Op)
	}
	return nil
}

// Selects reports whether the request touches function fn.
func (r *Request) Selects(fn string) bool { return SelectsFunc(r.Funcs, r.Exclude, fn, nil) }

// SelectsFunc is the one selection rule of every command: fn is selected
// when it matches some glob of funcs (or funcs is empty) and none of
// exclude (path.Match syntax). hit, when not nil, is called for every glob
// that matched, so callers can tell which patterns did their part.
func SelectsFunc(funcs, exclude []string, fn string, hit func(exclude bool, glob string)) bool {
	in := len(funcs) == 0
	for _, g := range funcs {
		if m, _ := path.Match(g, fn); m {
			in = true
			if hit == nil {
				break
			}
			hit(false, g)
		}
	}
	if !in && hit == nil {
		return false
	}
	out := false
	for _, g := range exclude {
		if m, _ := path.Match(g, fn); m {
			out = true
			if hit == nil {
				break
			}
			hit(true, g)
		}
	}
	return in && !out
}
