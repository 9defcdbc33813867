// SPDX-License-Identifier: Apache-2.0

package uc

/*
#cgo LDFLAGS: -Wl,--as-needed
#cgo pkg-config: unicorn
#include <stdlib.h>
#include "uc.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
	"weak"
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
	arch, mode int
	eng        *engineRes
	cleanup    runtime.Cleanup // closes eng if Close is never called
}

// engineRes is what an engine holds outside Go's heap: the uc_engine and
// the handles its hooks' user data refer to. It is apart from unicorn so
// that a cleanup can release it once the unicorn is unreachable (a cleanup's
// argument must not reach its object). Hooks refer to the unicorn weakly,
// so a forgotten engine with hooks is collected too.
type engineRes struct {
	mu     sync.Mutex // guards hooks, handle and closing against Stop
	handle *C.uc_engine
	hooks  map[Hook]cgo.Handle
	panic  error  // set by a hook that panicked; returned by the run
	abort  *C.int // C memory: set by a hook that panicked, for Runner's loop in C
}

// ErrClosed is returned by every method of an engine after Close.
var ErrClosed = errors.New("uc: engine is closed")

// ErrAddressSpace reports that the process cannot map the translation
// buffer Unicorn allocates for each engine (for instance under ulimit -v);
// Unicorn itself would print a message and exit(1).
var ErrAddressSpace = errors.New("uc: not enough address space for the emulator")

// TranslationBuffer is the address space Unicorn 2.0 maps for each engine's
// translated code (QEMU's code_gen_buffer: 1 GiB, read-write-execute,
// private anonymous), whether or not it is used.
const TranslationBuffer = 1 << 30

// openEngines counts engines not yet closed (tests check the cleanup).
var openEngines atomic.Int64

// OpenEngines reports how many engines are open (not yet closed), for
// tests that check none is left behind.
func OpenEngines() int64 { return openEngines.Load() }

// openMu makes the address-space check and the engine's allocation one
// step, so two engines opened at once do not both pass the check and one
// then exit the process.
var openMu sync.Mutex

// reserve checks that TranslationBuffer bytes of address space can be
// mapped now, the way Unicorn maps them, and gives them back.
var reserve = func() error {
	m, err := syscall.Mmap(-1, 0, TranslationBuffer, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		limit := "no limit"
		var rl syscall.Rlimit
		if syscall.Getrlimit(syscall.RLIMIT_AS, &rl) == nil && rl.Cur != ^uint64(0) {
			limit = fmt.Sprintf("the limit (ulimit -v) is %d MiB", rl.Cur>>20)
		}
		return fmt.Errorf("%w: each engine (one per verify worker) needs %d MiB of address space for Unicorn's translation buffer, and mapping it failed (%v; %s): raise ulimit -v, or run fewer workers (-j)",
			ErrAddressSpace, TranslationBuffer>>20, err, limit)
	}
	return syscall.Munmap(m)
}

// NewUnicorn opens an engine for arch (ARCH_ARM64, ...) in mode. It
// returns an ErrAddressSpace error when Unicorn could not map its
// translation buffer, rather than letting Unicorn exit the process.
func NewUnicorn(arch, mode int) (Unicorn, error) {
	if err := load(); err != nil {
		return nil, err
	}
	openMu.Lock()
	defer openMu.Unlock()
	if err := reserve(); err != nil {
		return nil, err
	}
	var h *C.uc_engine
	if err := errReturn(C.ftp_uc_open(C.uc_arch(arch), C.uc_mode(mode), &h)); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("uc: uc_open returned no engine")
	}
	// Unicorn allocates lazily, on an engine's first use: make that happen
	// now, while the address space checked above is free.
	var ps C.size_t
	if err := errReturn(C.ftp_uc_query(h, C.UC_QUERY_PAGE_SIZE, &ps)); err != nil {
		C.ftp_uc_close(h)
		return nil, err
	}
	abort := (*C.int)(C.calloc(1, C.size_t(unsafe.Sizeof(C.int(0)))))
	if abort == nil {
		C.ftp_uc_close(h)
		return nil, errors.New("uc: cannot allocate an engine")
	}
	eng := &engineRes{handle: h, hooks: map[Hook]cgo.Handle{}, abort: abort}
	openEngines.Add(1)
	u := &unicorn{arch: arch, mode: mode, eng: eng}
	u.cleanup = runtime.AddCleanup(u, func(r *engineRes) { r.close() }, eng)
	return u, nil
}

// close releases the engine and its hooks' handles; later calls do nothing.
func (r *engineRes) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.handle == nil {
		return nil
	}
	err := errReturn(C.ftp_uc_close(r.handle))
	r.handle = nil
	openEngines.Add(-1)
	for _, h := range r.hooks {
		h.Delete()
	}
	r.hooks = nil
	C.free(unsafe.Pointer(r.abort))
	r.abort = nil
	return err
}

// h returns the engine handle, or ErrClosed. Callers keep u alive
// (runtime.KeepAlive) until their C call returns: the cleanup closes the
// handle once u is unreachable.
func (u *unicorn) h() (*C.uc_engine, error) {
	if u.eng.handle == nil {
		return nil, ErrClosed
	}
	return u.eng.handle, nil
}

func (u *unicorn) Close() error {
	u.cleanup.Stop()
	return u.eng.close()
}

func (u *unicorn) MemMap(addr, size uint64) error { return u.MemMapProt(addr, size, PROT_ALL) }

func (u *unicorn) MemMapProt(addr, size uint64, prot int) error {
	h, err := u.h()
	if err != nil {
		return err
	}
	defer runtime.KeepAlive(u)
	return errReturn(C.ftp_uc_mem_map(h, C.uint64_t(addr), C.size_t(size), C.uint32_t(prot)))
}

// MemMapPtr maps host memory at ptr, which must not be Go-managed memory
// (use C or mmap'd memory) and must outlive the engine.
func (u *unicorn) MemMapPtr(addr, size uint64, prot int, ptr unsafe.Pointer) error {
	h, err := u.h()
	if err != nil {
		return err
	}
	if ptr == nil {
		return errors.New("uc: MemMapPtr of a nil pointer")
	}
	defer runtime.KeepAlive(u)
	return errReturn(C.ftp_uc_mem_map_ptr(h, C.uint64_t(addr), C.size_t(size), C.uint32_t(prot), ptr))
}

func (u *unicorn) MemProtect(addr, size uint64, prot int) error {
	h, err := u.h()
	if err != nil {
		return err
	}
	defer runtime.KeepAlive(u)
	return errReturn(C.ftp_uc_mem_protect(h, C.uint64_t(addr), C.size_t(size), C.uint32_t(prot)))
}

func (u *unicorn) MemUnmap(addr, size uint64) error {
	h, err := u.h()
	if err != nil {
		return err
	}
	defer runtime.KeepAlive(u)
	return errReturn(C.ftp_uc_mem_unmap(h, C.uint64_t(addr), C.size_t(size)))
}

func (u *unicorn) MemRead(addr, size uint64) ([]byte, error) {
	dst := make([]byte, size)
	return dst, u.MemReadInto(dst, addr)
}

func (u *unicorn) MemReadInto(dst []byte, addr uint64) error {
	h, err := u.h()
	if err != nil || len(dst) == 0 {
		return err
	}
	defer runtime.KeepAlive(u)
	return errReturn(C.ftp_uc_mem_read(h, C.uint64_t(addr), unsafe.Pointer(&dst[0]), C.size_t(len(dst))))
}

func (u *unicorn) MemWrite(addr uint64, data []byte) error {
	h, err := u.h()
	if err != nil || len(data) == 0 {
		return err
	}
	defer runtime.KeepAlive(u)
	return errReturn(C.ftp_uc_mem_write(h, C.uint64_t(addr), unsafe.Pointer(&data[0]), C.size_t(len(data))))
}

func (u *unicorn) RegRead(reg int) (uint64, error) {
	h, err := u.h()
	if err != nil {
		return 0, err
	}
	defer runtime.KeepAlive(u)
	var v C.uint64_t
	err = errReturn(C.ftp_uc_reg_read(h, C.int(reg), unsafe.Pointer(&v)))
	return uint64(v), err
}

func (u *unicorn) RegWrite(reg int, value uint64) error {
	h, err := u.h()
	if err != nil {
		return err
	}
	defer runtime.KeepAlive(u)
	v := C.uint64_t(value)
	return errReturn(C.ftp_uc_reg_write(h, C.int(reg), unsafe.Pointer(&v)))
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
// with no allocation per call. Free it when done; a cleanup frees a batch
// that is dropped without Free.
type RegBatch struct {
	batchMem
	n       int
	cleanup runtime.Cleanup
}

// batchMem is a batch's C memory, apart so that a cleanup can free it.
type batchMem struct {
	regs *C.int
	ptrs *unsafe.Pointer
	vals *C.uint64_t
}

func (m batchMem) free() {
	C.free(unsafe.Pointer(m.regs))
	C.free(unsafe.Pointer(m.ptrs))
	C.free(unsafe.Pointer(m.vals))
}

// calloc is C's calloc; tests replace it to make allocation fail.
var calloc = func(n, size int) unsafe.Pointer { return C.calloc(C.size_t(n), C.size_t(size)) }

// NewRegBatch prepares a batch for regs.
func NewRegBatch(regs []int) (*RegBatch, error) {
	n := len(regs)
	if n == 0 {
		return nil, errors.New("uc: empty register batch")
	}
	m := batchMem{
		regs: (*C.int)(calloc(n, int(unsafe.Sizeof(C.int(0))))),
		ptrs: (*unsafe.Pointer)(calloc(n, int(unsafe.Sizeof(unsafe.Pointer(nil))))),
		vals: (*C.uint64_t)(calloc(n, 8)),
	}
	if m.regs == nil || m.ptrs == nil || m.vals == nil {
		m.free() // free(NULL) is a no-op
		return nil, fmt.Errorf("uc: cannot allocate a batch of %d registers", n)
	}
	rs := unsafe.Slice(m.regs, n)
	ps := unsafe.Slice(m.ptrs, n)
	vs := unsafe.Slice(m.vals, n)
	for i, r := range regs {
		rs[i] = C.int(r)
		ps[i] = unsafe.Pointer(&vs[i])
	}
	b := &RegBatch{batchMem: m, n: n}
	b.cleanup = runtime.AddCleanup(b, batchMem.free, m)
	return b, nil
}

// Len is the number of registers in the batch.
func (b *RegBatch) Len() int { return b.n }

// Free releases the batch's C memory.
func (b *RegBatch) Free() {
	if b == nil || b.regs == nil {
		return
	}
	b.cleanup.Stop()
	b.batchMem.free()
	*b = RegBatch{}
}

// ErrBatchFreed is returned for a batch used after Free.
var ErrBatchFreed = errors.New("uc: register batch used after Free")

func (u *unicorn) ReadBatch(b *RegBatch, dst []uint64) error {
	h, err := u.h()
	if err != nil {
		return err
	}
	if b == nil || b.regs == nil {
		return ErrBatchFreed
	}
	if len(dst) < b.n {
		return fmt.Errorf("uc: batch of %d registers, room for %d", b.n, len(dst))
	}
	defer runtime.KeepAlive(u)
	defer runtime.KeepAlive(b)
	if err := errReturn(C.ftp_uc_reg_read_batch(h, b.regs, b.ptrs, C.int(b.n))); err != nil {
		return err
	}
	for i, v := range unsafe.Slice(b.vals, b.n) {
		dst[i] = uint64(v)
	}
	return nil
}

func (u *unicorn) WriteBatch(b *RegBatch, vals []uint64) error {
	h, err := u.h()
	if err != nil {
		return err
	}
	if b == nil || b.regs == nil {
		return ErrBatchFreed
	}
	if len(vals) < b.n {
		return fmt.Errorf("uc: batch of %d registers, %d values", b.n, len(vals))
	}
	defer runtime.KeepAlive(u)
	defer runtime.KeepAlive(b)
	vs := unsafe.Slice(b.vals, b.n)
	for i := range vs {
		vs[i] = C.uint64_t(vals[i])
	}
	return errReturn(C.ftp_uc_reg_write_batch(h, b.regs, b.ptrs, C.int(b.n)))
}

func (u *unicorn) Start(begin, until uint64) error {
	return u.StartWithOptions(begin, until, &UcOptions{})
}

// StartWithOptions runs from begin until until (or a limit). When a hook
// panicked during the run, the emulation was stopped and the result is a
// *HookPanicError.
func (u *unicorn) StartWithOptions(begin, until uint64, o *UcOptions) error {
	h, err := u.h()
	if err != nil {
		return err
	}
	if o == nil {
		o = &UcOptions{}
	}
	defer runtime.KeepAlive(u)
	u.eng.setPanic(nil)
	err = errReturn(C.ftp_uc_emu_start(h, C.uint64_t(begin), C.uint64_t(until), C.uint64_t(o.Timeout), C.size_t(o.Count)))
	if p := u.eng.takePanic(); p != nil {
		return p
	}
	return err
}

// HookPanicError is a panic in a hook callback, recovered: the emulation
// was stopped there.
type HookPanicError struct {
	Addr  uint64 // the address the hook was called for
	Value any    // what the hook panicked with
	Stack []byte
}

func (e *HookPanicError) Error() string {
	return fmt.Sprintf("uc: hook at %#x panicked: %v", e.Addr, e.Value)
}

func (r *engineRes) setPanic(err error) {
	r.mu.Lock()
	r.panic = err
	r.mu.Unlock()
}

func (r *engineRes) takePanic() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.panic
	r.panic = nil
	return err
}

// Stop asks a running emulation to stop; safe from any goroutine.
func (u *unicorn) Stop() error {
	u.eng.mu.Lock()
	defer u.eng.mu.Unlock()
	if u.eng.handle == nil {
		return ErrClosed
	}
	return errReturn(C.ftp_uc_emu_stop(u.eng.handle))
}

func (u *unicorn) TBFlush() error {
	h, err := u.h()
	if err != nil {
		return err
	}
	defer runtime.KeepAlive(u)
	return errReturn(C.ftp_tb_flush(h))
}

func (u *unicorn) TBRemoveCache(begin, end uint64) error {
	h, err := u.h()
	if err != nil {
		return err
	}
	defer runtime.KeepAlive(u)
	return errReturn(C.ftp_tb_remove(h, C.uint64_t(begin), C.uint64_t(end)))
}

func (u *unicorn) Query(queryType int) (uint64, error) {
	h, err := u.h()
	if err != nil {
		return 0, err
	}
	defer runtime.KeepAlive(u)
	var v C.size_t
	err = errReturn(C.ftp_uc_query(h, C.uc_query_type(queryType), &v))
	return uint64(v), err
}

// HookAdd registers cb for hooks of htype on addresses [begin, end] (all
// addresses when begin > end). Supported:
//
//	HOOK_CODE, HOOK_BLOCK:           func(mu Unicorn, addr uint64, size uint32)
//	HOOK_MEM_INVALID and its parts:  func(mu Unicorn, access int, addr uint64, size int, value int64) bool
//
// A callback that panics stops the emulation; the run returns a
// *HookPanicError.
func (u *unicorn) HookAdd(htype int, cb interface{}, begin, end uint64, extra ...int) (Hook, error) {
	hd, err := u.h()
	if err != nil {
		return 0, err
	}
	defer runtime.KeepAlive(u)
	var h C.uc_hook
	var cerr C.uc_err
	entry := &hookEntry{mu: weak.Make(u), eng: u.eng}
	switch fn := cb.(type) {
	case func(Unicorn, uint64, uint32):
		if htype != HOOK_CODE && htype != HOOK_BLOCK {
			return 0, fmt.Errorf("uc: code callback for hook type %#x", htype)
		}
		entry.code = fn
		ch := cgo.NewHandle(entry)
		cerr = C.ftp_hook_add_code(hd, &h, C.int(htype), C.uintptr_t(ch), C.uint64_t(begin), C.uint64_t(end))
		if cerr != C.UC_ERR_OK {
			ch.Delete()
			return 0, UcError(cerr)
		}
		u.keep(Hook(h), ch)
	case func(Unicorn, int, uint64, int, int64) bool:
		if htype&HOOK_MEM_INVALID == 0 || htype&^HOOK_MEM_INVALID != 0 {
			return 0, fmt.Errorf("uc: invalid-memory callback for hook type %#x", htype)
		}
		entry.memInvalid = fn
		ch := cgo.NewHandle(entry)
		cerr = C.ftp_hook_add_mem_invalid(hd, &h, C.int(htype), C.uintptr_t(ch), C.uint64_t(begin), C.uint64_t(end))
		if cerr != C.UC_ERR_OK {
			ch.Delete()
			return 0, UcError(cerr)
		}
		u.keep(Hook(h), ch)
	default:
		return 0, fmt.Errorf("uc: unsupported hook callback type %T", cb)
	}
	return Hook(h), nil
}

func (u *unicorn) keep(h Hook, ch cgo.Handle) {
	u.eng.mu.Lock()
	u.eng.hooks[h] = ch
	u.eng.mu.Unlock()
}

func (u *unicorn) HookDel(hook Hook) error {
	hd, err := u.h()
	if err != nil {
		return err
	}
	defer runtime.KeepAlive(u)
	u.eng.mu.Lock()
	ch, ok := u.eng.hooks[hook]
	delete(u.eng.hooks, hook)
	u.eng.mu.Unlock()
	err = errReturn(C.ftp_uc_hook_del(hd, C.uc_hook(hook)))
	if ok {
		ch.Delete()
	}
	return err
}
