// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package uc

/*
#include "uc.h"
*/
import "C"

import (
	"runtime/cgo"
	"runtime/debug"
	"weak"
)

// hookEntry is what a cgo.Handle passed as a hook's user data refers to. It
// holds its engine weakly (see engineRes), and the engine's resources for
// recording a panic.
type hookEntry struct {
	mu         weak.Pointer[unicorn]
	eng        *engineRes
	code       func(Unicorn, uint64, uint32)
	memInvalid func(Unicorn, int, uint64, int, int64) bool
}

// recover ends a hook: a panic must not unwind through Unicorn's C frames
// (the process would die), so it is recorded for the run to return and
// the emulation stopped.
func (e *hookEntry) recover(uc *C.uc_engine, addr uint64) {
	p := recover()
	if p == nil {
		return
	}
	e.eng.setPanic(&HookPanicError{Addr: addr, Value: p, Stack: debug.Stack()})
	if e.eng.abort != nil { // the engine runs: it is not closed
		*e.eng.abort = 1
	}
	C.ftp_uc_emu_stop(uc)
}

//export goHookCode
func goHookCode(uc *C.uc_engine, addr C.uint64_t, size C.uint32_t, user C.uintptr_t) {
	e := cgo.Handle(user).Value().(*hookEntry)
	defer e.recover(uc, uint64(addr))
	u := e.mu.Value()
	if u == nil {
		return
	}
	e.code(u, uint64(addr), uint32(size))
}

//export goHookMemInvalid
func goHookMemInvalid(uc *C.uc_engine, typ C.uc_mem_type, addr C.uint64_t, size C.int, value C.int64_t, user C.uintptr_t) (handled C.bool) {
	e := cgo.Handle(user).Value().(*hookEntry)
	defer e.recover(uc, uint64(addr)) // handled stays false: the access fails
	u := e.mu.Value()
	if u == nil {
		return false
	}
	return C.bool(e.memInvalid(u, int(typ), uint64(addr), int(size), int64(value)))
}
