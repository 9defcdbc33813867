// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package uc

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

const (
	codeBase = 0x10000
	nop      = 0xd503201f
	ret      = 0xd65f03c0
	bSelf    = 0x14000000 // B .
)

func words(ws ...uint32) []byte {
	b := make([]byte, 0, 4*len(ws))
	for _, w := range ws {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	return b
}

func newARM64(t testing.TB, code []byte) Unicorn {
	t.Helper()
	mu, err := NewUnicorn(ARCH_ARM64, MODE_ARM)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mu.Close() })
	if err := mu.MemMapProt(codeBase, 0x1000, PROT_READ|PROT_EXEC); err != nil {
		t.Fatal(err)
	}
	if err := mu.MemWrite(codeBase, code); err != nil {
		t.Fatal(err)
	}
	return mu
}

func TestRunReadsRegisters(t *testing.T) {
	// add x0, x0, #1; mov x1, #42; add x2, x0, x1
	mu := newARM64(t, words(0x91000400, 0xd2800541, 0x8b010002))
	if err := mu.RegWrite(ARM64_REG_X0, 99); err != nil {
		t.Fatal(err)
	}
	if err := mu.Start(codeBase, codeBase+12); err != nil {
		t.Fatal(err)
	}
	got, err := mu.RegReadBatch([]int{ARM64_REG_X0, ARM64_REG_X1, ARM64_REG_X2, ARM64_REG_PC})
	if err != nil {
		t.Fatal(err)
	}
	want := []uint64{100, 42, 142, codeBase + 12}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("reg %d = %d, want %d", i, got[i], want[i])
		}
	}
}

func TestBatchRoundTrip(t *testing.T) {
	mu := newARM64(t, words(nop))
	regs := []int{ARM64_REG_X0, ARM64_REG_X19, ARM64_REG_X29, ARM64_REG_X30, ARM64_REG_SP}
	vals := []uint64{1, 2, 3, 4, 0x8000}
	if err := mu.RegWriteBatch(regs, vals); err != nil {
		t.Fatal(err)
	}
	b, err := NewRegBatch(regs)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free()
	got := make([]uint64, len(regs))
	if err := mu.ReadBatch(b, got); err != nil {
		t.Fatal(err)
	}
	for i := range vals {
		if got[i] != vals[i] {
			t.Errorf("reg %d = %#x, want %#x", regs[i], got[i], vals[i])
		}
	}
}

func TestCodeHookRangeAndPCWrite(t *testing.T) {
	// 0: mov x0,#1; 4: bl 16; 8: add x0,x0,#2; 12: nop; 16: mov x0,#77 (hooked: skipped by RET emulation)
	mu := newARM64(t, words(0xd2800020, 0x94000003, 0x91000800, nop, 0xd28009a0, ret))
	var hits []uint64
	h, err := mu.HookAdd(HOOK_CODE, func(mu Unicorn, addr uint64, size uint32) {
		hits = append(hits, addr)
		lr, _ := mu.RegRead(ARM64_REG_X30)
		if err := mu.RegWrite(ARM64_REG_PC, lr); err != nil {
			t.Error(err)
		}
	}, codeBase+16, codeBase+16)
	if err != nil {
		t.Fatal(err)
	}
	for run := 0; run < 2; run++ {
		hits = nil
		if err := mu.Start(codeBase, codeBase+12); err != nil {
			t.Fatal(err)
		}
		x0, _ := mu.RegRead(ARM64_REG_X0)
		if x0 != 3 || len(hits) != 1 || hits[0] != codeBase+16 {
			t.Errorf("run %d: x0 = %d, hits %#x; want 3 and one hit at %#x", run, x0, hits, codeBase+16)
		}
	}
	if err := mu.HookDel(h); err != nil {
		t.Fatal(err)
	}
	if err := mu.Start(codeBase, codeBase+12); err != nil {
		t.Fatal(err)
	}
	if x0, _ := mu.RegRead(ARM64_REG_X0); x0 != 79 {
		t.Errorf("after HookDel x0 = %d, want 79 (the callee ran)", x0)
	}
}

func TestUnmappedFetch(t *testing.T) {
	// br x1 with x1 unmapped
	mu := newARM64(t, words(0xd61f0020))
	mu.RegWrite(ARM64_REG_X1, 0xdead0000)
	var fired bool
	if _, err := mu.HookAdd(HOOK_MEM_INVALID, func(mu Unicorn, access int, addr uint64, size int, value int64) bool {
		fired = access == MEM_FETCH_UNMAPPED && addr == 0xdead0000
		return false
	}, 1, 0); err != nil {
		t.Fatal(err)
	}
	err := mu.Start(codeBase, codeBase+4)
	var ue UcError
	if !errors.As(err, &ue) || ue != ERR_FETCH_UNMAPPED {
		t.Fatalf("err = %v, want ERR_FETCH_UNMAPPED", err)
	}
	if !strings.Contains(err.Error(), "Invalid memory fetch") {
		t.Errorf("error text %q does not come from uc_strerror", err)
	}
	if !fired {
		t.Error("invalid-memory hook did not fire")
	}
}

func TestCountStopsInfiniteLoop(t *testing.T) {
	mu := newARM64(t, words(bSelf))
	if err := mu.StartWithOptions(codeBase, codeBase+4, &UcOptions{Count: 1000}); err != nil {
		t.Fatal(err)
	}
	if pc, _ := mu.RegRead(ARM64_REG_PC); pc != codeBase {
		t.Errorf("pc = %#x", pc)
	}
}

func TestTimeoutStopsInfiniteLoop(t *testing.T) {
	mu := newARM64(t, words(bSelf))
	if err := mu.StartWithOptions(codeBase, codeBase+4, &UcOptions{Timeout: 20000}); err != nil {
		t.Fatal(err)
	}
	if to, err := mu.Query(QUERY_TIMEOUT); err != nil || to != 1 {
		t.Errorf("QUERY_TIMEOUT = %d, %v; want 1", to, err)
	}
}

func TestPageSize(t *testing.T) {
	mu := newARM64(t, words(nop))
	// verify rounds mappings to 4 KiB, which must be a multiple of the engine's page.
	if ps, err := mu.Query(QUERY_PAGE_SIZE); err != nil || ps == 0 || 4096%ps != 0 {
		t.Errorf("page size = %d, %v; want a divisor of 4096", ps, err)
	}
}

func benchStart(b *testing.B, o *UcOptions) {
	mu := newARM64(b, words(nop, nop, nop, nop))
	for b.Loop() {
		if err := mu.StartWithOptions(codeBase, codeBase+16, o); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStart(b *testing.B)        { benchStart(b, &UcOptions{}) }
func BenchmarkStartCount(b *testing.B)   { benchStart(b, &UcOptions{Count: 1000}) }
func BenchmarkStartTimeout(b *testing.B) { benchStart(b, &UcOptions{Timeout: 1000000}) }

// A write to code already translated must be seen by the next run: Unicorn
// invalidates the translation blocks of a page written through uc_mem_write.
func TestCodeWriteInvalidatesTranslation(t *testing.T) {
	mu := newARM64(t, words(0x91000400, nop)) // add x0, x0, #1
	for i, w := range []uint32{0x91000400, 0x91000800} {
		if err := mu.MemWrite(codeBase, words(w)); err != nil {
			t.Fatal(err)
		}
		mu.RegWrite(ARM64_REG_X0, 0)
		if err := mu.Start(codeBase, codeBase+8); err != nil {
			t.Fatal(err)
		}
		if x0, _ := mu.RegRead(ARM64_REG_X0); x0 != uint64(i+1) {
			t.Errorf("run %d: x0 = %d, want %d (stale translation)", i, x0, i+1)
		}
	}
}

func BenchmarkTBRemoveCache(b *testing.B) {
	mu := newARM64(b, words(nop, nop, nop, nop))
	for b.Loop() {
		mu.TBRemoveCache(codeBase, codeBase+16)
		if err := mu.Start(codeBase, codeBase+16); err != nil {
			b.Fatal(err)
		}
	}
}
