package elfscan_test

import (
	"bytes"
	"math/rand"
	"os"
	"testing"
	"time"

	"github.com/ftpatch/ftpatch/internal/elfscan"
)

// TestScanMutations feeds deterministic random corruptions of the fixtures
// (bytes, all-ones words, huge sizes) to Scan: no panic, no result with an
// error, and no input slower than 200ms.
func TestScanMutations(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	files := elfFixtures(t)
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
		st := time.Now()
		sf, err := elfscan.Scan(bytes.NewReader(b), "m")
		if err != nil && sf != nil {
			t.Fatal("result with error")
		}
		if d := time.Since(st); d > 200*time.Millisecond {
			os.WriteFile("/tmp/slow.bin", b, 0o644)
			t.Fatalf("slow input %v", d)
		}
	}
}
