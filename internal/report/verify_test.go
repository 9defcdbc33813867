// SPDX-License-Identifier: Apache-2.0

package report

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/verify"
)

func sampleVerify() *verify.Report {
	return &verify.Report{
		File: "vmlinux", ELFType: elf.ET_DYN, Sites: 3, Passed: 2, Failed: 1,
		ByState: map[elfscan.State]int{elfscan.StateNop: 1, elfscan.StateEnabled: 2},
		Elapsed: 1500 * time.Millisecond,
		Failures: []verify.Failure{{Func: "f3", Address: 0x401068, State: elfscan.StateEnabled,
			Expected: "one call of op->func", Observed: "X19 = 0x0 (was 0x1)",
			Words: []encode.Placed{{Addr: 0x401058, Bits: 0xd503201f, Kind: encode.PlacedSpare},
				{Addr: 0x40105c, Bits: 0xffff000000401000, Kind: encode.PlacedLiteral},
				{Addr: 0x401068, Bits: 0xd503245f}, {Addr: 0x40106c, Bits: 0xaa1e03e9}, {Addr: 0x401070, Kind: encode.PlacedUnmapped}}}},
	}
}

func TestVerifyText(t *testing.T) {
	var b bytes.Buffer
	if err := VerifyText(&b, sampleVerify()); err != nil {
		t.Fatal(err)
	}
	want := `FAIL: vmlinux: DYN, 3 sites checked: 2 passed, 1 failed (nop 1, enabled 2) in 1.500s
  f3 at 0x401068 (enabled)
    expected: one call of op->func
    observed: X19 = 0x0 (was 0x1)
      0x401058: d503201f  nop (spare)
      0x40105c: ffff000000401000  .quad 0xffff000000401000
      0x401068: d503245f  bti c
      0x40106c: aa1e03e9  mov x9, x30
      0x401070: unmapped
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestVerifyJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteLine(&b, Verify(sampleVerify())); err != nil {
		t.Fatal(err)
	}
	if strings.Count(b.String(), "\n") != 1 {
		t.Fatalf("not one line: %q", b.String())
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"file", "elf_type", "sites", "passed", "failed", "by_state", "seconds", "failures", "skipped"} {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing from %s", k, b.String())
		}
	}
	f := m["failures"].([]any)[0].(map[string]any)
	if f["func"] != "f3" || f["address"] != "0x401068" || f["state"] != "enabled" || len(f["disasm"].([]any)) != 5 || f["disasm"].([]any)[1] != "0x40105c: ffff000000401000  .quad 0xffff000000401000" {
		t.Errorf("failure %v", f)
	}
}
