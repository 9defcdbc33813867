// SPDX-License-Identifier: Apache-2.0

// Package uc is a small cgo binding to the Unicorn CPU emulator (Debian's
// libunicorn-dev 2.0.x), shaped like the official Go bindings
// (github.com/unicorn-engine/unicorn/bindings/go/unicorn) so that it could be
// swapped for them: NewUnicorn, MemMap, MemWrite, RegRead/RegWrite, Start
// with until and count, HookAdd, Close. The official bindings cannot be
// fetched from the module proxy this project reaches.
//
// Beyond them it offers RegBatch, a register list kept in C memory so a
// batch read or write costs one cgo call and no allocation, which verify
// uses once per patch site.
//
// Errors are UcError values carrying the uc_err code; their text is
// uc_strerror's. A closed engine's methods return ErrClosed; a panic in a
// hook stops the emulation, which then returns a *HookPanicError.
//
// libunicorn (19 MB) is not a link-time dependency: the headers come from
// libunicorn-dev through pkg-config, but --as-needed drops the library from
// the link since no object refers to it, and NewUnicorn dlopens it on first
// use (see load.go, uc.h). Commands that never emulate start without it, and
// a missing library is an error from NewUnicorn, not a failure to start.
//
// Without cgo only this file is built: the memory protections, which
// verify's loader (pure Go) uses to lay out an image.
package uc

// Memory protections, as unicorn.h defines them (UC_PROT_*); const.go
// takes them from the header in cgo builds and a test checks they agree.
const (
	protNone  = 0
	protRead  = 1
	protWrite = 2
	protExec  = 4
	protAll   = 7
)
