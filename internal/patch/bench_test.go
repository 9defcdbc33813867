// SPDX-License-Identifier: Apache-2.0

package patch_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ftpatch/ftpatch/internal/patch"
	"github.com/ftpatch/ftpatch/internal/safefile"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// benchSize is the size of the synthetic linked file: a static fixture
// followed by padding that no header points at (ignored by every reader,
// but copied like any other byte).
const benchSize = 256 << 20

func bigFile(b *testing.B) string {
	b.Helper()
	src, err := os.ReadFile(testutil.Fixtures(b, "gcc-callops-bti-static.elf")[0])
	if err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(b.TempDir(), "big.elf")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Write(src); err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	for n := len(src); n < benchSize; n += len(chunk) {
		if _, err := f.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	f.Close()
	return p
}

// BenchmarkApplyLinked is open + scan + plan + write of init + enable on a
// large linked file (each to a new output), to compare with BenchmarkCopy.
func BenchmarkApplyLinked(b *testing.B) {
	p := bigFile(b)
	mid, out := filepath.Join(filepath.Dir(p), "mid.elf"), filepath.Join(filepath.Dir(p), "out.elf")
	b.SetBytes(benchSize * 2)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, step := range []struct {
			in, out string
			req     patch.Request
		}{
			{p, mid, patch.Request{Op: patch.OpInit, SkipMisaligned: true}},
			{mid, out, patch.Request{Op: patch.OpEnable, Ops: &patch.Value{Sym: "ops"}}},
		} {
			in, err := patch.Open(step.in)
			if err != nil {
				b.Fatal(err)
			}
			c, err := patch.Plan(in, step.req)
			var out *safefile.Target
			if err == nil {
				out, err = safefile.Lock(step.out, safefile.Options{})
			}
			if err == nil {
				err = patch.Apply(in, c, out)
				out.Close()
			}
			in.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCopyLinked is `cp` of the same file twice, the target's yardstick.
func BenchmarkCopyLinked(b *testing.B) {
	cp := testutil.NeedTool(b, "cp")
	p := bigFile(b)
	out := filepath.Join(filepath.Dir(p), "copy.elf")
	b.SetBytes(benchSize * 2)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := 0; k < 2; k++ {
			if err := exec.Command(cp, p, out).Run(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCopySyncLinked is `cp` then `sync FILE` (fsync), twice: the fair
// yardstick for a write that must survive a crash, as Apply's does.
func BenchmarkCopySyncLinked(b *testing.B) {
	cp, sync := testutil.NeedTool(b, "cp"), testutil.NeedTool(b, "sync")
	p := bigFile(b)
	out := filepath.Join(filepath.Dir(p), "copy.elf")
	b.SetBytes(benchSize * 2)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := 0; k < 2; k++ {
			if err := exec.Command(cp, p, out).Run(); err != nil {
				b.Fatal(err)
			}
			if err := exec.Command(sync, out).Run(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
