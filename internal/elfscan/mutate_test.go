// SPDX-License-Identifier: Apache-2.0

package elfscan_test

import (
	"bytes"
	"math/rand"
	"os"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
)

// countingReader counts the bytes ReadAt hands out.
type countingReader struct {
	r *bytes.Reader
	n atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// Work bounds for one corrupt input of n bytes, instead of a wall-clock
// limit: what Scan reads and allocates grows with the file, never with the
// sizes and counts its headers claim. Valid fixtures stay far below (the
// largest ratios seen are in the failure message when a bound is crossed).
const (
	mutReadFactor  = 64  // bytes read per input byte
	mutAllocFactor = 256 // bytes allocated per input byte
	// plus fixed buffers: debug/elf.NewFile itself reads the section-name
	// table in one allocation sized by the header, up to 10 MiB (its
	// saferio chunk); ours are a few KiB.
	mutAllocSlack = 10<<20 + 1<<20
)

// TestScanMutations feeds deterministic random corruptions of the fixtures
// (bytes, all-ones words, huge sizes) to Scan: no panic, no result with an
// error, and no input that makes Scan read or allocate far more than its
// size.
func TestScanMutations(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	files := elfFixtures(t)
	var ms runtime.MemStats
	var maxRead, maxAlloc float64
	for it := 0; it < 20000; it++ {
		b, _ := os.ReadFile(files[rng.Intn(len(files))])
		for k := 0; k < 1+rng.Intn(4); k++ {
			i := rng.Intn(len(b))
			switch rng.Intn(3) {
			case 0:
				b[i] = byte(rng.Intn(256))
			case 1:
				b[i] = 0xff
			case 2:
				if i+8 < len(b) {
					copy(b[i:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
				}
			}
		}
		r := &countingReader{r: bytes.NewReader(b)}
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		sf, err := elfscan.Scan(r, "m")
		runtime.ReadMemStats(&ms)
		alloc := ms.TotalAlloc - before
		if err != nil && sf != nil {
			t.Fatal("result with error")
		}
		maxRead = max(maxRead, float64(r.n.Load())/float64(len(b)))
		maxAlloc = max(maxAlloc, float64(alloc)/float64(len(b)))
		if r.n.Load() > mutReadFactor*int64(len(b)) || alloc > mutAllocFactor*uint64(len(b))+mutAllocSlack {
			os.WriteFile("/tmp/heavy.bin", b, 0o644)
			t.Fatalf("input %d (%d bytes, saved to /tmp/heavy.bin): read %d bytes, allocated %d", it, len(b), r.n.Load(), alloc)
		}
	}
	t.Logf("largest per-input-byte ratios: read %.1f, allocated %.1f", maxRead, maxAlloc)
}
