// SPDX-License-Identifier: Apache-2.0
package cli

import (
	"runtime"
	"runtime/debug"
	"syscall"
	"unsafe"
)

// hugeHeapInput is the size of a single input from which verify calls
// hugeHeap: it costs a garbage collection (~5-7 ms of cpu, the process's
// first), worth it for a kernel-sized image, not for a module.
const hugeHeapInput = 2 << 20

// madvHugepage is Linux's MADV_HUGEPAGE (the syscall package has no name
// for it).
const madvHugepage = 14

// hugeHeap asks the kernel to back the next n bytes of the Go heap with
// transparent huge pages where the system leaves that to the program (THP
// "madvise" mode, Debian's default): it has the runtime map n bytes at
// once, marks them (madvise MADV_HUGEPAGE), and gives them back to the
// heap, whose next allocations reuse them. verify's heap (the scan's sites
// and symbols, its own per-site data: ~15 MiB for 53k sites) is touched
// once; a fresh 4 KiB page costs a fault (~13 µs on the paravirtualised
// machine the bench ran on, ~0.5 µs on bare metal), a 2 MiB one one fault
// for 512 of them: verify -j1 of the 53k-site bench image took 7,086 page
// faults, 3,435 with this. Best effort: without THP nothing changes.
func hugeHeap(n int) {
	// No collection for the allocation itself (the heap's goal is a few
	// MiB): the one below is enough, and the two cost ~1 ms of cpu more.
	pct := debug.SetGCPercent(-1)
	b := make([]byte, n) // fresh pages from the OS: not touched here
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	const huge = 2 << 20
	if start, end := (lo+huge-1)&^(huge-1), (lo+uintptr(n))&^(huge-1); start < end {
		syscall.Syscall(syscall.SYS_MADVISE, start, end-start, madvHugepage)
	}
	runtime.KeepAlive(b)
	b = nil
	debug.SetGCPercent(pct)
	runtime.GC() // the pages go back to the heap, for its next allocations
}
