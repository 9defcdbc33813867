// SPDX-License-Identifier: Apache-2.0

// Package render owns how ftpatch writes values for people and scripts:
// the one hex form of addresses and offsets ("0x" and lower-case hex, in
// every --json shape and message), a place in a file (an address, or
// section+offset in a relocatable file), a relocation expression, a word as
// stored, the JSON string quoting that the hand-written encoders share
// with encoding/json, and the name of a file's kind in messages that refuse
// anything but a regular file (input and safefile). Disassembly is
// encode.Disasm; whole shapes and reports are package report's. It depends
// on nothing of ftpatch, so every package can use it, the data packages
// for their messages included.
package render

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// Hex is an address, offset or value written as "0x" and lower-case hex;
// in JSON, that text as a string.
type Hex uint64

// String returns "0x…": 0 is "0x0".
func (h Hex) String() string { return string(h.Append(nil)) }

// Append appends h's text to b.
func (h Hex) Append(b []byte) []byte {
	return strconv.AppendUint(append(b, '0', 'x'), uint64(h), 16)
}

// MarshalJSON writes "0x…" as a JSON string.
func (h Hex) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 20)
	b = append(h.Append(append(b, '"')), '"')
	return b, nil
}

// UnmarshalJSON reads a "0x…" string (or "0X…").
func (h *Hex) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("hex value %s: not a JSON string", b)
	}
	v, err := ParseHex(s)
	if err != nil {
		return err
	}
	*h = Hex(v)
	return nil
}

// ParseHex parses "0x…" (or "0X…") hex text.
func ParseHex(s string) (uint64, error) {
	if len(s) < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return 0, fmt.Errorf("hex value %q: want 0x followed by hex digits", s)
	}
	v, err := strconv.ParseUint(s[2:], 16, 64)
	if err != nil {
		return 0, fmt.Errorf("hex value %q: %w", s, err)
	}
	return v, nil
}

// Place names where a thing is: section+0x10 in a relocatable (ET_REL)
// file, whose addresses are offsets in their section; 0x… otherwise.
func Place(rel bool, section string, a uint64) string {
	if rel {
		return section + "+" + Hex(a).String()
	}
	return Hex(a).String()
}

// FuncName is the function f, or "<no function>" for a site in none.
func FuncName(f string) string {
	if f == "" {
		return "<no function>"
	}
	return f
}

// RelExpr formats a relocation's symbol and addend: "sym", "sym+0x10",
// "sym-0x8".
func RelExpr(sym string, addend int64) string {
	return string(AppendRelExpr(nil, sym, addend))
}

// AppendRelExpr appends RelExpr(sym, addend) to b.
func AppendRelExpr(b []byte, sym string, addend int64) []byte {
	b = append(b, sym...)
	switch {
	case addend > 0:
		b = Hex(addend).Append(append(b, '+'))
	case addend < 0:
		b = Hex(-addend).Append(append(b, '-'))
	}
	return b
}

// Word writes a 4- or 8-byte little-endian word as stored, zero-padded
// ("d503201f", "0000000000401000"); other lengths as their bytes in hex.
func Word(b []byte) string {
	switch len(b) {
	case 8:
		return fmt.Sprintf("%016x", binary.LittleEndian.Uint64(b))
	case 4:
		return fmt.Sprintf("%08x", binary.LittleEndian.Uint32(b))
	}
	return fmt.Sprintf("%x", b)
}
