// SPDX-License-Identifier: Apache-2.0

package input

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// withGoXZ is withGo for xz.
func withGoXZ(t *testing.T, goXZ bool, f func(t *testing.T)) { t.Helper(); withGo(t, XZ, goXZ, f) }

// withGo runs f with format c decoded by its pure-Go decoder (goDec true)
// or by its library (liblzma, libzstd, zlib) when it loads, starting from
// an empty decoder pool.
func withGo(t *testing.T, c string, goDec bool, f func(t *testing.T)) {
	t.Helper()
	name := c + "-native"
	if goDec {
		name = c + "-go"
	} else if d, err := newNative(c); err != nil {
		// CI installs the libraries (scripts/deps.sh): there, a missing
		// one would leave the native decoders untested.
		if testutil.InCI() && !errors.Is(err, errNoCgo) {
			t.Fatalf("the %s library is not available under CI=true (%v); scripts/deps.sh installs it", c, err)
		}
		t.Logf("the %s library is not available (%v): the pure-Go decoder runs twice", c, err)
	} else if _, ok := d.(*nativeDecoder); !ok {
		t.Fatalf("%s: native decoder %T", c, d)
	}
	t.Run(name, func(t *testing.T) {
		old := forceGo[c]
		forceGo[c] = goDec
		decoderPools[c] = &sync.Pool{}
		defer func() { forceGo[c] = old; decoderPools[c] = &sync.Pool{} }()
		f(t)
	})
}

// newNative is format c's native decoder.
func newNative(c string) (decoder, error) {
	return map[string]func() (decoder, error){XZ: newLzmaDecoder, Zstd: newZstdDecoder, Gzip: newZlibDecoder}[c]()
}

// zeroStream compresses n bytes of zeros in format c: an ELF magic first,
// so that the bomb passes for a module in a folder walk.
func zeroStream(t testing.TB, c string, n int) []byte {
	t.Helper()
	src := io.MultiReader(bytes.NewReader(elfMagic), io.LimitReader(zeroReader{}, int64(n-len(elfMagic))))
	var buf bytes.Buffer
	switch c {
	case XZ:
		// xz -0 compresses zeros at hundreds of MB/s; the Go encoder would
		// take seconds.
		cmd := exec.Command(testutil.NeedTool(t, "xz"), "-0", "-T1", "-c")
		cmd.Stdin, cmd.Stdout = src, &buf
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		return buf.Bytes()
	case Zstd:
		w, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, src); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case Gzip:
		w, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		if _, err := io.Copy(w, src); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// bomb is a stream of about 1 GiB of zeros: one 16 MiB stream, repeated
// (xz, zstd and gzip all decode concatenated streams as one).
func bomb(t testing.TB, c string) []byte {
	return bytes.Repeat(zeroStream(t, c, 16<<20), 64)
}

// A bomb is refused at the cap, and what decompression allocated stays
// within the cap and a little more (chunks of at most 8 MiB; the zstd
// window; buffers), never a multiple of it. Go's allocations are counted
// (runtime TotalAlloc); liblzma's are bounded by TestBombPeakRSS.
func TestBombAllocation(t *testing.T) {
	const limit = 32 << 20
	const slack = 40 << 20
	for _, c := range compressions {
		t.Run(c, func(t *testing.T) {
			b := bomb(t, c)
			path := filepath.Join(t.TempDir(), "bomb.ko")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			check := func(t *testing.T) {
				if ok, got, err := Sniff(path); !ok || got != c || err != nil {
					t.Fatalf("Sniff(bomb) = %v, %q, %v; want an ELF file", ok, got, err)
				}
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				f, err := openLimit(path, limit)
				runtime.ReadMemStats(&after)
				if !errors.Is(err, ErrTooLarge) || f != nil {
					t.Fatalf("openLimit(%d MiB bomb, %d MiB) = %v, %v; want ErrTooLarge", len(b)>>20, limit>>20, f, err)
				}
				if alloc := after.TotalAlloc - before.TotalAlloc; alloc > limit+slack {
					t.Errorf("refusing the bomb allocated %d MiB, want at most %d MiB (the cap + %d MiB)", alloc>>20, (limit+slack)>>20, slack>>20)
				}
			}
			withGo(t, c, false, check)
			withGo(t, c, true, check)
		})
	}
}

// The peak memory of a process refusing a bomb is at most the cap plus
// 256 MiB (issue 9.3), liblzma's dictionary included: the child is this
// test binary, its peak resident set size from the kernel (ru_maxrss). The
// pure-Go xz decoder's allocations are bounded by TestBombAllocation.
func TestBombPeakRSS(t *testing.T) {
	if p := os.Getenv("FTPATCH_BOMB_CHILD"); p != "" {
		limit, _ := strconv.ParseInt(os.Getenv("FTPATCH_BOMB_LIMIT"), 10, 64)
		f, err := openLimit(p, limit)
		if !errors.Is(err, ErrTooLarge) || f != nil {
			fmt.Printf("openLimit = %v, %v; want ErrTooLarge\n", f, err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	const limit = 256 << 20
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range compressions {
		path := filepath.Join(t.TempDir(), "bomb.ko")
		if err := os.WriteFile(path, bomb(t, c), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Run(c, func(t *testing.T) {
			cmd := exec.Command(exe, "-test.run=^TestBombPeakRSS$")
			cmd.Env = append(os.Environ(), "FTPATCH_BOMB_CHILD="+path, "FTPATCH_BOMB_LIMIT="+strconv.Itoa(limit))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			peak := ru.Maxrss << 10 // KiB on Linux
			t.Logf("%s bomb refused at %d MiB, peak RSS %d MiB", c, limit>>20, peak>>20)
			bound := int64(limit + 256<<20)
			if testutil.Race {
				// The race detector's shadow memory: measured 3.1x here
				// (Go's documentation says 5-10x for typical programs).
				// Before the chunked output a bomb cost 3x the cap.
				bound *= 4
			}
			if peak > bound {
				t.Errorf("peak RSS %d MiB, want at most %d MiB (the cap + 256 MiB, x4 under -race)", peak>>20, bound>>20)
			}
		})
	}
}

// An xz stream whose header asks for a 4 GiB dictionary is refused before
// the dictionary is allocated, by both decoders.
func TestXZHugeDictionary(t *testing.T) {
	small := zeroStream(t, XZ, 1<<10)
	// xz -0 writes one block: its header at byte 12 is the size byte, flags
	// 0 (one filter, no sizes), filter id 0x21 (LZMA2), 1 byte of
	// properties (the dictionary size) and a CRC32 of the header.
	hs := (int(small[12]) + 1) * 4
	h := small[12 : 12+hs]
	if h[1] != 0 || h[2] != 0x21 || h[3] != 1 {
		t.Fatalf("unexpected block header % x", h)
	}
	huge := bytes.Clone(small)
	h = huge[12 : 12+hs]
	h[4] = 40 // 4 GiB - 1
	binary.LittleEndian.PutUint32(h[hs-4:], crc32.ChecksumIEEE(h[:hs-4]))
	for _, goXZ := range []bool{false, true} {
		withGoXZ(t, goXZ, func(t *testing.T) {
			if f, err := openBytes(small, DefaultMaxDecompressed); err != nil || f.Size != 1<<10 {
				t.Fatalf("the original: %v, %v", f, err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			f, err := openBytes(huge, DefaultMaxDecompressed)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) || f != nil {
				t.Fatalf("4 GiB dictionary: %v, %v; want ErrTooLarge", f, err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Errorf("allocated %d MiB before refusing", alloc>>20)
			}
		})
	}
}

// openLimit is Open with an explicit cap on the decompressed size.
func openLimit(path string, limit int64) (*File, error) { return open(path, limit, false) }
