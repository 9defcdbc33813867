package uc

/*
#cgo LDFLAGS: -Wl,--as-needed
#cgo pkg-config: unicorn
#cgo LDFLAGS: -ldl
// -ldl: dlopen is in libc since glibc 2.34; older ones need libdl.
#include <stdlib.h>
#include "uc.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime/cgo"
	"sync"
	"unsafe"
)

// UcError is a uc_err code; Error returns uc_strerror's text.
type UcError C.uc_err

func (e UcError) Error() string {
	if load() != nil {
		return fmt.Sprintf("unicorn error %d", int(e))
	}
	return C.GoString(C.ftp_uc_strerror(C.uc_err(e)))
}

// Code returns the numeric uc_err value.
func (e UcError) Code() int { return int(e) }

func errReturn(e C.uc_err) error {
	if e != C.UC_ERR_OK {
		return UcError(e)
	}
	return nil
}

// UcOptions are the extra arguments of uc_emu_start.
type UcOptions struct {
	Timeout uint64 // microseconds; 0 means none. Each start with a timeout spawns a timer thread.
	Count   uint64 // instructions; 0 means no limit
}

// Hook identifies a registered hook.
type Hook uint64

// Unicorn is one emulator engine. It is not safe for concurrent use, except
// Stop, which may be called from any goroutine.
type Unicorn interface {
	MemMap(addr, size uint64) error
	MemMapProt(addr, size uint64, prot int) error
	MemMapPtr(addr, size uint64, prot int, ptr unsafe.Pointer) error
	MemProtect(addr, size uint64, prot int) error
	MemUnmap(addr, size uint64) error
	MemRead(addr, size uint64) ([]byte, error)
	MemReadInto(dst []byte, addr uint64) error
	MemWrite(addr uint64, data []byte) error
	RegRead(reg int) (uint64, error)
	RegReadBatch(regs []int) ([]uint64, error)
	RegWrite(reg int, value uint64) error
	RegWriteBatch(regs []int, vals []uint64) error
	// ReadBatch and WriteBatch move the registers of b without allocating.
	ReadBatch(b *RegBatch, dst []uint64) error
	WriteBatch(b *RegBatch, vals []uint64) error
	Start(begin, until uint64) error
	StartWithOptions(begin, until uint64, options *UcOptions) error
	Stop() error
	HookAdd(htype int, cb interface{}, begin, end uint64, extra ...int) (Hook, error)
	HookDel(hook Hook) error
	Query(queryType int) (uint64, error)
	// TBFlush drops every translated block (uc_ctl UC_CTL_TB_FLUSH). Unicorn
	// bakes the stop address of a run into the blocks it translates; code
	// translated during one run and reached from the start of another may
	// not stop at the new address until flushed.
	TBFlush() error
	// TBRemoveCache drops the translated blocks covering [begin, end)
	// (uc_ctl UC_CTL_TB_REMOVE_CACHE), much cheaper than TBFlush.
	TBRemoveCache(begin, end uint64) error
	Close() error
}

type unicorn struct {
	handle *C.uc_engine
	arch   int
	mode   int

	mu     sync.Mutex // guards hooks and closing against Stop
	hooks  map[Hook]cgo.Handle
	closed bool
}

// NewUnicorn opens an engine for arch (ARCH_ARM64, ...) in mode.
func NewUnicorn(arch, mode int) (Unicorn, error) {
	if err := load(); err != nil {
		return nil, err
	}
	var h *C.uc_engine
	if err := errReturn(C.ftp_uc_open(C.uc_arch(arch), C.uc_mode(mode), &h)); err != nil {
		return nil, err
	}
	return &unicorn{handle: h, arch: arch, mode: mode, hooks: map[Hook]cgo.Handle{}}, nil
}

func (u *unicorn) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil
	}
	u.closed = true
	err := errReturn(C.ftp_uc_close(u.handle))
	for _, h := range u.hooks {
		h.Delete()
	}
	u.hooks = nil
	u.handle = nil
	return err
}

func (u *unicorn) MemMap(addr, size uint64) error { return u.MemMapProt(addr, size, PROT_ALL) }

func (u *unicorn) MemMapProt(addr, size uint64, prot int) error {
	return errReturn(C.ftp_uc_mem_map(u.handle, C.uint64_t(addr), C.size_t(size), C.uint32_t(prot)))
}

// MemMapPtr maps host memory at ptr, which must not be Go-managed memory
// (use C or mmap'd memory) and must outlive the engine.
func (u *unicorn) MemMapPtr(addr, size uint64, prot int, ptr unsafe.Pointer) error {
	return errReturn(C.ftp_uc_mem_map_ptr(u.handle, C.uint64_t(addr), C.size_t(size), C.uint32_t(prot), ptr))
}

func (u *unicorn) MemProtect(addr, size uint64, prot int) error {
	return errReturn(C.ftp_uc_mem_protect(u.handle, C.uint64_t(addr), C.size_t(size), C.uint32_t(prot)))
}

func (u *unicorn) MemUnmap(addr, size uint64) error {
	return errReturn(C.ftp_uc_mem_unmap(u.handle, C.uint64_t(addr), C.size_t(size)))
}

func (u *unicorn) MemRead(addr, size uint64) ([]byte, error) {
	dst := make([]byte, size)
	return dst, u.MemReadInto(dst, addr)
}

func (u *unicorn) MemReadInto(dst []byte, addr uint64) error {
	if len(dst) == 0 {
		return nil
	}
	return errReturn(C.ftp_uc_mem_read(u.handle, C.uint64_t(addr), unsafe.Pointer(&dst[0]), C.size_t(len(dst))))
}

func (u *unicorn) MemWrite(addr uint64, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	return errReturn(C.ftp_uc_mem_write(u.handle, C.uint64_t(addr), unsafe.Pointer(&data[0]), C.size_t(len(data))))
}

func (u *unicorn) RegRead(reg int) (uint64, error) {
	var v C.uint64_t
	err := errReturn(C.ftp_uc_reg_read(u.handle, C.int(reg), unsafe.Pointer(&v)))
	return uint64(v), err
}

func (u *unicorn) RegWrite(reg int, value uint64) error {
	v := C.uint64_t(value)
	return errReturn(C.ftp_uc_reg_write(u.handle, C.int(reg), unsafe.Pointer(&v)))
}

func (u *unicorn) RegReadBatch(regs []int) ([]uint64, error) {
	b, err := NewRegBatch(regs)
	if err != nil {
		return nil, err
	}
	defer b.Free()
	out := make([]uint64, len(regs))
	return out, u.ReadBatch(b, out)
}

func (u *unicorn) RegWriteBatch(regs []int, vals []uint64) error {
	if len(regs) != len(vals) {
		return fmt.Errorf("uc: %d registers but %d values", len(regs), len(vals))
	}
	b, err := NewRegBatch(regs)
	if err != nil {
		return err
	}
	defer b.Free()
	return u.WriteBatch(b, vals)
}

// RegBatch is a list of registers held in C memory for batch register I/O
// with no allocation per call. Free it when done.
type RegBatch struct {
	regs *C.int
	ptrs *unsafe.Pointer
	vals *C.uint64_t
	n    int
}

// NewRegBatch prepares a batch for regs.
func NewRegBatch(regs []int) (*RegBatch, error) {
	n := len(regs)
	if n == 0 {
		return nil, errors.New("uc: empty register batch")
	}
	b := &RegBatch{
		regs: (*C.int)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.int(0))))),
		ptrs: (*unsafe.Pointer)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(unsafe.Pointer(nil))))),
		vals: (*C.uint64_t)(C.calloc(C.size_t(n), 8)),
		n:    n,
	}
	rs := unsafe.Slice(b.regs, n)
	ps := unsafe.Slice(b.ptrs, n)
	vs := unsafe.Slice(b.vals, n)
	for i, r := range regs {
		rs[i] = C.int(r)
		ps[i] = unsafe.Pointer(&vs[i])
	}
	return b, nil
}

// Len is the number of registers in the batch.
func (b *RegBatch) Len() int { return b.n }

// Free releases the batch's C memory.
func (b *RegBatch) Free() {
	if b == nil || b.regs == nil {
		return
	}
	C.free(unsafe.Pointer(b.regs))
	C.free(unsafe.Pointer(b.ptrs))
	C.free(unsafe.Pointer(b.vals))
	*b = RegBatch{}
}

func (u *unicorn) ReadBatch(b *RegBatch, dst []uint64) error {
	if len(dst) < b.n {
		return fmt.Errorf("uc: batch of %d registers, room for %d", b.n, len(dst))
	}
	if err := errReturn(C.ftp_uc_reg_read_batch(u.handle, b.regs, b.ptrs, C.int(b.n))); err != nil {
		return err
	}
	for i, v := range unsafe.Slice(b.vals, b.n) {
		dst[i] = uint64(v)
	}
	return nil
}

func (u *unicorn) WriteBatch(b *RegBatch, vals []uint64) error {
	if len(vals) < b.n {
		return fmt.Errorf("uc: batch of %d registers, %d values", b.n, len(vals))
	}
	vs := unsafe.Slice(b.vals, b.n)
	for i := range vs {
		vs[i] = C.uint64_t(vals[i])
	}
	return errReturn(C.ftp_uc_reg_write_batch(u.handle, b.regs, b.ptrs, C.int(b.n)))
}

func (u *unicorn) Start(begin, until uint64) error {
	return u.StartWithOptions(begin, until, &UcOptions{})
}

func (u *unicorn) StartWithOptions(begin, until uint64, o *UcOptions) error {
	if o == nil {
		o = &UcOptions{}
	}
	return errReturn(C.ftp_uc_emu_start(u.handle, C.uint64_t(begin), C.uint64_t(until), C.uint64_t(o.Timeout), C.size_t(o.Count)))
}

// Stop asks a running emulation to stop; safe from any goroutine.
func (u *unicorn) Stop() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil
	}
	return errReturn(C.ftp_uc_emu_stop(u.handle))
}

func (u *unicorn) TBFlush() error { return errReturn(C.ftp_tb_flush(u.handle)) }

func (u *unicorn) TBRemoveCache(begin, end uint64) error {
	return errReturn(C.ftp_tb_remove(u.handle, C.uint64_t(begin), C.uint64_t(end)))
}

func (u *unicorn) Query(queryType int) (uint64, error) {
	var v C.size_t
	err := errReturn(C.ftp_uc_query(u.handle, C.uc_query_type(queryType), &v))
	return uint64(v), err
}

// HookAdd registers cb for hooks of htype on addresses [begin, end] (all
// addresses when begin > end). Supported:
//
//	HOOK_CODE, HOOK_BLOCK:           func(mu Unicorn, addr uint64, size uint32)
//	HOOK_MEM_INVALID and its parts:  func(mu Unicorn, access int, addr uint64, size int, value int64) bool
func (u *unicorn) HookAdd(htype int, cb interface{}, begin, end uint64, extra ...int) (Hook, error) {
	var h C.uc_hook
	var err C.uc_err
	switch fn := cb.(type) {
	case func(Unicorn, uint64, uint32):
		if htype != HOOK_CODE && htype != HOOK_BLOCK {
			return 0, fmt.Errorf("uc: code callback for hook type %#x", htype)
		}
		ch := cgo.NewHandle(&hookEntry{mu: u, code: fn})
		err = C.ftp_hook_add_code(u.handle, &h, C.int(htype), C.uintptr_t(ch), C.uint64_t(begin), C.uint64_t(end))
		if err != C.UC_ERR_OK {
			ch.Delete()
			return 0, UcError(err)
		}
		u.keep(Hook(h), ch)
	case func(Unicorn, int, uint64, int, int64) bool:
		if htype&HOOK_MEM_INVALID == 0 || htype&^HOOK_MEM_INVALID != 0 {
			return 0, fmt.Errorf("uc: invalid-memory callback for hook type %#x", htype)
		}
		ch := cgo.NewHandle(&hookEntry{mu: u, memInvalid: fn})
		err = C.ftp_hook_add_mem_invalid(u.handle, &h, C.int(htype), C.uintptr_t(ch), C.uint64_t(begin), C.uint64_t(end))
		if err != C.UC_ERR_OK {
			ch.Delete()
			return 0, UcError(err)
		}
		u.keep(Hook(h), ch)
	default:
		return 0, fmt.Errorf("uc: unsupported hook callback type %T", cb)
	}
	return Hook(h), nil
}

func (u *unicorn) keep(h Hook, ch cgo.Handle) {
	u.mu.Lock()
	u.hooks[h] = ch
	u.mu.Unlock()
}

func (u *unicorn) HookDel(hook Hook) error {
	u.mu.Lock()
	ch, ok := u.hooks[hook]
	delete(u.hooks, hook)
	u.mu.Unlock()
	err := errReturn(C.ftp_uc_hook_del(u.handle, C.uc_hook(hook)))
	if ok {
		ch.Delete()
	}
	return err
}
