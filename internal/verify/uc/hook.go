package uc

/*
#include "uc.h"
*/
import "C"

import "runtime/cgo"

// hookEntry is what a cgo.Handle passed as a hook's user data refers to.
type hookEntry struct {
	mu         *unicorn
	code       func(Unicorn, uint64, uint32)
	memInvalid func(Unicorn, int, uint64, int, int64) bool
}

//export goHookCode
func goHookCode(_ *C.uc_engine, addr C.uint64_t, size C.uint32_t, user C.uintptr_t) {
	e := cgo.Handle(user).Value().(*hookEntry)
	e.code(e.mu, uint64(addr), uint32(size))
}

//export goHookMemInvalid
func goHookMemInvalid(_ *C.uc_engine, typ C.uc_mem_type, addr C.uint64_t, size C.int, value C.int64_t, user C.uintptr_t) C.bool {
	e := cgo.Handle(user).Value().(*hookEntry)
	return C.bool(e.memInvalid(e.mu, int(typ), uint64(addr), int(size), int64(value)))
}
