// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package uc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// A closed engine answers ErrClosed from every method instead of handing
// Unicorn a NULL engine; Close is idempotent.
func TestClosedEngine(t *testing.T) {
	mu := newARM64(t, words(nop))
	b, err := NewRegBatch([]int{ARM64_REG_X0})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free()
	if err := mu.Close(); err != nil {
		t.Fatal(err)
	}
	dst := make([]uint64, 1)
	calls := map[string]func() error{
		"MemMap":        func() error { return mu.MemMap(0x20000, 0x1000) },
		"MemMapProt":    func() error { return mu.MemMapProt(0x20000, 0x1000, PROT_READ) },
		"MemMapPtr":     func() error { return mu.MemMapPtr(0x20000, 0x1000, PROT_READ, unsafe.Pointer(&dst[0])) },
		"MemProtect":    func() error { return mu.MemProtect(codeBase, 0x1000, PROT_READ) },
		"MemUnmap":      func() error { return mu.MemUnmap(codeBase, 0x1000) },
		"MemRead":       func() error { _, err := mu.MemRead(codeBase, 4); return err },
		"MemWrite":      func() error { return mu.MemWrite(codeBase, words(nop)) },
		"RegRead":       func() error { _, err := mu.RegRead(ARM64_REG_X0); return err },
		"RegWrite":      func() error { return mu.RegWrite(ARM64_REG_X0, 1) },
		"RegReadBatch":  func() error { _, err := mu.RegReadBatch([]int{ARM64_REG_X0}); return err },
		"RegWriteBatch": func() error { return mu.RegWriteBatch([]int{ARM64_REG_X0}, []uint64{1}) },
		"ReadBatch":     func() error { return mu.ReadBatch(b, dst) },
		"WriteBatch":    func() error { return mu.WriteBatch(b, dst) },
		"Start":         func() error { return mu.Start(codeBase, codeBase+4) },
		"Stop":          func() error { return mu.Stop() },
		"HookAdd": func() error {
			_, err := mu.HookAdd(HOOK_CODE, func(Unicorn, uint64, uint32) {}, 1, 0)
			return err
		},
		"HookDel":       func() error { return mu.HookDel(1) },
		"Query":         func() error { _, err := mu.Query(QUERY_PAGE_SIZE); return err },
		"TBFlush":       func() error { return mu.TBFlush() },
		"TBRemoveCache": func() error { return mu.TBRemoveCache(codeBase, codeBase+4) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s on a closed engine: %v, want ErrClosed", name, err)
		}
	}
	if err := mu.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A freed batch is refused, not read through a NULL pointer.
func TestFreedBatch(t *testing.T) {
	mu := newARM64(t, words(nop))
	b, err := NewRegBatch([]int{ARM64_REG_X0})
	if err != nil {
		t.Fatal(err)
	}
	b.Free()
	b.Free()
	if err := mu.ReadBatch(b, make([]uint64, 1)); !errors.Is(err, ErrBatchFreed) {
		t.Fatalf("ReadBatch of a freed batch: %v", err)
	}
	if err := mu.WriteBatch(b, make([]uint64, 1)); !errors.Is(err, ErrBatchFreed) {
		t.Fatalf("WriteBatch of a freed batch: %v", err)
	}
}

// An engine dropped without Close, hooks and all, is closed by its cleanup:
// hooks refer to it weakly, so nothing keeps it reachable.
func TestCleanupClosesForgottenEngine(t *testing.T) {
	before := openEngines.Load()
	func() {
		mu, err := NewUnicorn(ARCH_ARM64, MODE_ARM)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mu.HookAdd(HOOK_CODE, func(Unicorn, uint64, uint32) {}, codeBase, codeBase); err != nil {
			t.Fatal(err)
		}
		if openEngines.Load() != before+1 {
			t.Fatalf("open engines %d, want %d", openEngines.Load(), before+1)
		}
	}()
	// Cleanups run on their own goroutine after a GC finds the object
	// unreachable: bounded by GC cycles, not time.
	for i := 0; i < 50 && openEngines.Load() != before; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if n := openEngines.Load(); n != before {
		t.Fatalf("after 50 GCs %d engines still open, want %d: the cleanup did not close the forgotten one", n, before)
	}
}

// When calloc fails, NewRegBatch says so, frees what it got, and returns
// no batch.
func TestBatchAllocationFailure(t *testing.T) {
	real := calloc
	defer func() { calloc = real }()
	for fail := 0; fail < 3; fail++ {
		n := 0
		calloc = func(k, size int) unsafe.Pointer {
			n++
			if n-1 == fail {
				return nil
			}
			return real(k, size)
		}
		b, err := NewRegBatch([]int{ARM64_REG_X0, ARM64_REG_X1})
		if err == nil || b != nil || !strings.Contains(err.Error(), "cannot allocate") {
			t.Fatalf("allocation %d failing: batch %v, error %v", fail, b, err)
		}
	}
}

// A panicking hook stops the emulation: the run returns a HookPanicError
// naming the address, the process survives, and the engine runs again.
func TestHookPanicStopsEmulation(t *testing.T) {
	t.Run("code", func(t *testing.T) {
		mu := newARM64(t, words(nop, nop, bSelf))
		armed := true
		if _, err := mu.HookAdd(HOOK_CODE, func(_ Unicorn, addr uint64, _ uint32) {
			if armed {
				panic("boom")
			}
		}, codeBase+4, codeBase+4); err != nil {
			t.Fatal(err)
		}
		err := mu.StartWithOptions(codeBase, codeBase+8, &UcOptions{Count: 100})
		var hp *HookPanicError
		if !errors.As(err, &hp) || hp.Addr != codeBase+4 || hp.Value != "boom" || len(hp.Stack) == 0 {
			t.Fatalf("run with a panicking hook: %v", err)
		}
		armed = false
		if err := mu.Start(codeBase, codeBase+8); err != nil {
			t.Fatalf("the engine does not run after a recovered panic: %v", err)
		}
		if pc, _ := mu.RegRead(ARM64_REG_PC); pc != codeBase+8 {
			t.Fatalf("pc %#x, want %#x", pc, codeBase+8)
		}
	})
	t.Run("mem-invalid", func(t *testing.T) {
		// ldr x0, [x1]
		mu := newARM64(t, words(0xf9400020, nop))
		if err := mu.RegWrite(ARM64_REG_X1, 0x900000); err != nil {
			t.Fatal(err)
		}
		if _, err := mu.HookAdd(HOOK_MEM_INVALID, func(Unicorn, int, uint64, int, int64) bool { panic(fmt.Errorf("bad access")) }, 1, 0); err != nil {
			t.Fatal(err)
		}
		err := mu.Start(codeBase, codeBase+8)
		var hp *HookPanicError
		if !errors.As(err, &hp) || hp.Addr != 0x900000 {
			t.Fatalf("run with a panicking invalid-memory hook: %v", err)
		}
	})
}

// Under an address-space limit too small for Unicorn's translation buffer,
// NewUnicorn returns ErrAddressSpace naming what it needs, where Unicorn
// would exit(1). The limit is set in a child process (this test binary
// again), so the rest of the tests run unlimited.
func TestAddressSpaceLimit(t *testing.T) {
	if os.Getenv("FTPATCH_UC_AS_CHILD") == "1" {
		addressSpaceChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAddressSpaceLimit$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FTPATCH_UC_AS_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "child: ErrAddressSpace ok") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func addressSpaceChild() {
	// Room for the Go runtime to go on, not for 1 GiB more.
	size := vmSize()
	lim := syscall.Rlimit{Cur: size + 256<<20, Max: size + 256<<20}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &lim); err != nil {
		fmt.Println("child: setrlimit:", err)
		os.Exit(3)
	}
	mu, err := NewUnicorn(ARCH_ARM64, MODE_ARM)
	if err == nil {
		mu.Close()
		fmt.Println("child: NewUnicorn succeeded under a limit of", lim.Cur>>20, "MiB")
		os.Exit(4)
	}
	if !errors.Is(err, ErrAddressSpace) || !strings.Contains(err.Error(), "1024 MiB") || !strings.Contains(err.Error(), "ulimit -v") {
		fmt.Println("child: wrong error:", err)
		os.Exit(5)
	}
	fmt.Println("child: ErrAddressSpace ok:", err)
	os.Exit(0)
}

// vmSize is the process's mapped address space (VmSize), in bytes.
func vmSize() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmSize:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				panic(err)
			}
			return kb << 10
		}
	}
	panic("no VmSize in /proc/self/status")
}
