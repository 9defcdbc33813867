// SPDX-License-Identifier: Apache-2.0

package input

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

const inputTestC = `
struct ops { void (*func)(void); };
void cb(void) {}
struct ops my_ops = { cb };
int work(int a) { return a * 3 + 1; }
__attribute__((cold)) int rare(int a) { return a - 7; }
int main(void) { return work(1) + rare(2); }
`

// testELFs returns real aarch64 ELF files: an object and an executable
// compiled here, and testdata/fixtures/* when present.
func testELFs(t *testing.T) map[string][]byte {
	t.Helper()
	gcc := testutil.NeedTool(t, "aarch64-linux-gnu-gcc")
	dir := t.TempDir()
	src := filepath.Join(dir, "t.c")
	if err := os.WriteFile(src, []byte(inputTestC), 0o644); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"t.o", []string{"-c"}},
		{"t.exe", []string{"-static", "-nostdlib", "-Wl,-e,main"}},
	} {
		dst := filepath.Join(dir, c.name)
		args := append([]string{"-O2", "-fpatchable-function-entry=4,2", "-falign-functions=8", "-o", dst, src}, c.args...)
		if b, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %v: %v\n%s", args, err, b)
		}
		b, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		out[c.name] = b
	}
	fixtures, _ := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "testdata", "fixtures", "*"))
	for _, p := range fixtures {
		b, err := os.ReadFile(p)
		if err == nil && bytes.HasPrefix(b, elfMagic) {
			out[filepath.Base(p)] = b
		}
	}
	return out
}

// goCompress compresses b in format c with the Go libraries.
func goCompress(t testing.TB, c string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch c {
	case XZ:
		w, err = xz.NewWriter(&buf)
	case Zstd:
		w, err = zstd.NewWriter(&buf)
	case Gzip:
		w = gzip.NewWriter(&buf)
	default:
		t.Fatalf("bad compression %q", c)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(t *testing.T, in *File) []byte {
	t.Helper()
	b := make([]byte, in.Size)
	if _, err := in.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

var compressions = []string{XZ, Zstd, Gzip}

// The real command-line tools; kbuild's modules_install compresses with
// xz --check=crc32 --lzma2=dict=1MiB, zstd and gzip -n.
var toolCommands = []struct {
	name, compression, ext string
	args                   []string
}{
	{"xz", XZ, ".xz", []string{"-c"}},
	{"xz", XZ, ".kmod.xz", []string{"-c", "--check=crc32", "--lzma2=dict=1MiB"}},
	{"zstd", Zstd, ".zst", []string{"-q", "-c"}},
	{"zstd", Zstd, ".19.zst", []string{"-q", "-c", "-19"}},
	{"gzip", Gzip, ".gz", []string{"-c", "-n", "-9"}},
}

func TestOpenInputRoundTripTools(t *testing.T) {
	elfs := testELFs(t)
	for _, tc := range toolCommands {
		tool := testutil.NeedTool(t, tc.name)
		for name, want := range elfs {
			t.Run(name+tc.ext, func(t *testing.T) {
				dir := t.TempDir()
				plain := filepath.Join(dir, name)
				if err := os.WriteFile(plain, want, 0o644); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(tool, append(tc.args, plain)...)
				compressed, err := cmd.Output()
				if err != nil {
					t.Fatalf("%s: %v", cmd, err)
				}
				path := plain + tc.ext
				if err := os.WriteFile(path, compressed, 0o644); err != nil {
					t.Fatal(err)
				}
				// By magic, not by name.
				renamed := filepath.Join(dir, "renamed.ko")
				if err := os.Link(path, renamed); err != nil {
					t.Fatal(err)
				}
				check := func(t *testing.T) {
					checkInput(t, path, tc.compression, want)
					checkInput(t, renamed, tc.compression, want)
				}
				// Through the library and through the pure-Go decoder.
				withGo(t, tc.compression, false, check)
				withGo(t, tc.compression, true, check)
				// The tool wrote the size in the stream's headers (zstd's
				// frame, gzip's ISIZE, xz's index): the output is one
				// buffer of that size, read in place.
				if h := sizeHint(tc.compression, bytes.NewReader(compressed), int64(len(compressed))); h != int64(len(want)) {
					t.Errorf("sizeHint = %d, want %d (the size %s wrote)", h, len(want), tc.name)
				}
				in, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				if b := in.Bytes(); !bytes.Equal(b, want) {
					t.Errorf("Bytes() = %d bytes, want the %d decompressed in one buffer", len(b), len(want))
				}
				in.Close()
			})
		}
	}
}

func checkInput(t *testing.T, path, compression string, want []byte) {
	t.Helper()
	in, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	defer in.Close()
	if in.Compression != compression || in.Size != int64(len(want)) || in.Path != path {
		t.Errorf("Open(%s) = {%q, %q, %d}, want {%q, %q, %d}", path, in.Path, in.Compression, in.Size, path, compression, len(want))
	}
	if got := readAll(t, in); !bytes.Equal(got, want) {
		t.Errorf("Open(%s): contents differ from the original", path)
	}
	if _, err := elf.NewFile(in); err != nil {
		t.Errorf("debug/elf over Open(%s): %v", path, err)
	}
	isELF, c, err := Sniff(path)
	if err != nil || !isELF || c != compression {
		t.Errorf("Sniff(%s) = %v, %q, %v; want true, %q, nil", path, isELF, c, err, compression)
	}
	if compression == None {
		if err := RefuseCompressed(path); err != nil {
			t.Errorf("RefuseCompressed(%s) = %v, want nil", path, err)
		}
	} else if err := RefuseCompressed(path); !errors.Is(err, ErrCompressed) {
		t.Errorf("RefuseCompressed(%s) = %v, want ErrCompressed", path, err)
	}
}

func TestOpenInputRoundTripGo(t *testing.T) {
	for name, want := range testELFs(t) {
		for _, c := range compressions {
			t.Run(name+"."+c, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), name+"."+c)
				if err := os.WriteFile(path, goCompress(t, c, want), 0o644); err != nil {
					t.Fatal(err)
				}
				checkInput(t, path, c, want)
			})
		}
	}
}

// A plain file of at most plainWholeMax bytes is read whole, in one call, and
// its bytes are the File's (Bytes); a larger one is read in place through
// its file, never whole. Both read back the file's bytes.
func TestOpenInputPlainWholeOrInPlace(t *testing.T) {
	defer func(m int64) { plainWholeMax = m }(plainWholeMax)
	for name, want := range testELFs(t) {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, whole := range []bool{true, false} {
			plainWholeMax = int64(len(want))
			if !whole {
				plainWholeMax = int64(len(want)) - 1
			}
			checkInput(t, path, None, want)
			in, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			switch b := in.Bytes(); {
			case whole && !bytes.Equal(b, want):
				t.Errorf("%s (%d bytes, plainWholeMax %d): Bytes() is not the file's bytes", name, len(want), plainWholeMax)
			case !whole && (b != nil || in.file == nil || in.r != io.ReaderAt(in.file)):
				t.Errorf("%s (%d bytes, plainWholeMax %d): not read in place through its file", name, len(want), plainWholeMax)
			}
			// Map: the file's own bytes when read in place (any offset,
			// page-aligned or not), nothing otherwise or out of range;
			// what it mapped stays readable after Close.
			n := int64(len(want))
			var mapped [][2]int64
			for _, r := range [][2]int64{{0, n}, {1, n - 1}, {n/2 | 1, n / 3}, {n - 1, 1}} {
				m := in.Map(r[0], r[1])
				switch {
				case whole && m != nil:
					t.Errorf("%s: Map(%d, %d) of a file read whole: %d bytes, want nil", name, r[0], r[1], len(m))
				case !whole && !bytes.Equal(m, want[r[0]:r[0]+r[1]]):
					t.Errorf("%s: Map(%d, %d) is not the file's bytes", name, r[0], r[1])
				}
				mapped = append(mapped, r)
			}
			for _, r := range [][2]int64{{-1, 2}, {0, n + 1}, {n, 1}, {1, 0}, {n / 2, 1 << 62}} {
				if m := in.Map(r[0], r[1]); m != nil {
					t.Errorf("%s: Map(%d, %d) out of range: %d bytes, want nil", name, r[0], r[1], len(m))
				}
			}
			// An Object maps its tables from several goroutines at once.
			views := make([][]byte, len(mapped))
			if !whole {
				var wg sync.WaitGroup
				for k, r := range mapped {
					wg.Go(func() { views[k] = in.Map(r[0], r[1]) })
				}
				wg.Wait()
			}
			if err := in.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			for k, v := range views {
				if r := mapped[k]; !whole && !bytes.Equal(v, want[r[0]:r[0]+r[1]]) {
					t.Errorf("%s: Map(%d, %d) after Close is not the file's bytes", name, r[0], r[1])
				}
			}
			if m := in.Map(0, n); m != nil {
				t.Errorf("%s: Map after Close: %d bytes, want nil", name, len(m))
			}
			if err := in.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		}
	}
}

// Corrupt and truncated streams: an error, no Input, no panic.
func TestOpenInputCorrupt(t *testing.T) {
	payload := bytes.Repeat([]byte("\x7fELF not really an elf, but long enough to span blocks. "), 2000)
	for _, c := range compressions {
		good := goCompress(t, c, payload)
		cases := map[string][]byte{
			"magic only":    good[:magicLen],
			"truncated 1/2": good[:len(good)/2],
			"truncated -1":  good[:len(good)-1],
			"truncated -5":  good[:len(good)-5],
		}
		for _, off := range []int{len(good) / 3, len(good) / 2, len(good) - 6} {
			bad := bytes.Clone(good)
			bad[off] ^= 0x55
			cases["flipped at "+strconv.Itoa(off)] = bad
		}
		for name, b := range cases {
			t.Run(c+"/"+name, func(t *testing.T) {
				in, err := openBytes(b, DefaultMaxDecompressed)
				if err == nil {
					// The formats' checksums (xz CRC64, zstd XXH64, gzip
					// CRC32) catch a flipped byte.
					t.Fatalf("openBytes(%s %s) = %d bytes, want an error", c, name, in.Size)
				}
				if in != nil {
					t.Errorf("openBytes returned an Input with error %v", err)
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("error %v is not ErrCorrupt", err)
				}
				path := filepath.Join(t.TempDir(), "m.ko")
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				if in, err := Open(path); !errors.Is(err, ErrCorrupt) || in != nil {
					t.Errorf("Open(%s %s) = %v, %v; want nil, ErrCorrupt", c, name, in, err)
				}
				// Sniff says ELF (the magic came out) or the decode error
				// (issue 22.5), never "not ELF" for a corrupt stream.
				isELF, _, err := Sniff(path)
				if !isELF && !errors.Is(err, ErrCorrupt) || name == "magic only" && isELF {
					t.Errorf("Sniff(%s %s) = %v, %v", c, name, isELF, err)
				}
			})
		}
	}
}

func TestOpenInputSizeCap(t *testing.T) {
	zeros := make([]byte, 1<<20)
	for _, c := range compressions {
		t.Run(c, func(t *testing.T) {
			bomb := goCompress(t, c, zeros)
			if in, err := openBytes(bomb, 1<<20-1); !errors.Is(err, ErrTooLarge) || in != nil {
				t.Errorf("limit-1: openBytes = %v, %v; want ErrTooLarge", in, err)
			}
			if in, err := openBytes(bomb, 4096); !errors.Is(err, ErrTooLarge) || in != nil {
				t.Errorf("limit 4096: openBytes = %v, %v; want ErrTooLarge", in, err)
			}
			in, err := openBytes(bomb, 1<<20)
			if err != nil || in.Size != 1<<20 {
				t.Fatalf("at the limit: openBytes = %v, %v; want 1 MiB", in, err)
			}
		})
	}
}

func TestSniff(t *testing.T) {
	dir := t.TempDir()
	elfHead := append(bytes.Clone(elfMagic), make([]byte, 60)...)
	text := []byte("#include <linux/module.h>\n")
	files := []struct {
		name        string
		data        []byte
		isELF       bool
		compression string
	}{
		{"empty", nil, false, ""},
		{"short", []byte{0x7F, 'E'}, false, ""},
		{"plain.ko", elfHead, true, ""},
		{"source.c", text, false, ""},
	}
	for _, c := range compressions {
		files = append(files,
			struct {
				name        string
				data        []byte
				isELF       bool
				compression string
			}{"elf." + c, goCompress(t, c, elfHead), true, c},
			struct {
				name        string
				data        []byte
				isELF       bool
				compression string
			}{"text." + c, goCompress(t, c, text), false, c},
		)
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
		isELF, c, err := Sniff(path)
		if err != nil || isELF != f.isELF || c != f.compression {
			t.Errorf("Sniff(%s) = %v, %q, %v; want %v, %q, nil", f.name, isELF, c, err, f.isELF, f.compression)
		}
	}
	// A compression magic and nothing after it: a cut stream, an error
	// as in every format (not "not ELF").
	magicOnly := filepath.Join(dir, "gz-magic-only")
	if err := os.WriteFile(magicOnly, []byte{0x1F, 0x8B}, 0o644); err != nil {
		t.Fatal(err)
	}
	if isELF, c, err := Sniff(magicOnly); isELF || c != Gzip || !errors.Is(err, ErrCorrupt) {
		t.Errorf("Sniff(gz-magic-only) = %v, %q, %v; want false, gzip, ErrCorrupt", isELF, c, err)
	}
	if _, _, err := Sniff(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Sniff(missing) error = %v, want ErrNotExist", err)
	}
}

func TestRefuseCompressedMessage(t *testing.T) {
	for _, tc := range []struct{ c, cmd string }{
		{XZ, "xz -d"}, {Zstd, "zstd -d"}, {Gzip, "gzip -d"},
	} {
		path := filepath.Join(t.TempDir(), "m.ko.x")
		if err := os.WriteFile(path, goCompress(t, tc.c, elfMagic), 0o644); err != nil {
			t.Fatal(err)
		}
		err := RefuseCompressed(path)
		var ce *CompressedError
		if !errors.As(err, &ce) || ce.Compression != tc.c || !errors.Is(err, ErrCompressed) {
			t.Fatalf("RefuseCompressed(%s) = %v", tc.c, err)
		}
		msg := err.Error()
		for _, want := range []string{path, tc.c + "-compressed", tc.cmd, "patch commands need an uncompressed file"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q lacks %q", msg, want)
			}
		}
	}
	if err := RefuseCompressed(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("RefuseCompressed(missing) = %v, want ErrNotExist", err)
	}
}

// FuzzOpen: error ⇒ no result; never a panic; a result is never larger
// than the limit, and a plain input is returned unchanged.
func FuzzOpen(f *testing.F) {
	const limit = 1 << 20
	seeds := [][]byte{nil, elfMagic, {0x1F, 0x8B}, {0x28, 0xB5, 0x2F, 0xFD}, {0xFD, '7', 'z', 'X', 'Z', 0}}
	fixtures, _ := filepath.Glob(filepath.Join(testutil.RepoRoot(f), "testdata", "fixtures", "*"))
	for _, p := range fixtures {
		if b, err := os.ReadFile(p); err == nil && len(b) < 64<<10 {
			seeds = append(seeds, b)
		}
	}
	payload := append(bytes.Clone(elfMagic), bytes.Repeat([]byte{2, 1, 1, 0}, 64)...)
	for _, c := range compressions {
		z := goCompress(f, c, payload)
		seeds = append(seeds, z, z[:len(z)/2])
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := openBytes(b, limit)
		if err != nil {
			if in != nil {
				t.Fatalf("error %v with a result", err)
			}
			return
		}
		if in.Size > limit {
			t.Fatalf("size %d over the limit", in.Size)
		}
		got := make([]byte, in.Size)
		if n, err := in.ReadAt(got, 0); int64(n) != in.Size || (err != nil && err != io.EOF) {
			t.Fatalf("ReadAt = %d, %v; size %d", n, err, in.Size)
		}
		if in.Compression == None && !bytes.Equal(got, b) {
			t.Fatal("plain input changed")
		}
		if DetectCompression(b) != in.Compression {
			t.Fatalf("compression %q, magic says %q", in.Compression, DetectCompression(b))
		}
		// Where the library and the pure-Go decoder both accept the
		// stream, they agree (the library is the reference; the Go xz
		// decoder refuses filters it lacks).
		if in.Compression == None {
			return
		}
		d, err := newGoDecoder(in.Compression)
		if err != nil {
			t.Fatal(err)
		}
		if d.reset(bufio.NewReader(bytes.NewReader(b))) == nil {
			cl := runBudget.start()
			defer cl.end()
			if c, _, err := readChunks(d, -1, limit, false, cl); err == nil {
				alt := make([]byte, c.size)
				c.ReadAt(alt, 0)
				if !bytes.Equal(alt, got) {
					t.Fatalf("the Go %s decoder gives %d bytes, the default one %d, and they differ", in.Compression, len(alt), len(got))
				}
			}
		}
	})
}

// OpenFound sniffs what it opens: a file that is not ELF, plain or
// compressed, is refused with ErrNotELF (a folder walk skips it); one whose
// stream fails, before the ELF magic comes out or after it, is corrupt in
// every format, not skipped (issue 22.5: a cut .ko.zst, whose first block
// comes out whole or not at all, used to be skipped where xz and gzip were
// errors); an ELF file opens as with Open. Sniff agrees.
func TestOpenFound(t *testing.T) {
	elfs := testELFs(t)
	want := elfs["t.o"]
	text := bytes.Repeat([]byte("not an ELF file at all\n"), 500)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	check := func(t *testing.T, path string, wantErr error, isNotELF bool) {
		t.Helper()
		in, err := OpenFound(path)
		switch {
		case wantErr == nil && err != nil:
			t.Errorf("OpenFound(%s): %v", filepath.Base(path), err)
		case wantErr == nil:
			if got := readAll(t, in); !bytes.Equal(got, want) {
				t.Errorf("OpenFound(%s): contents differ", filepath.Base(path))
			}
			in.Close()
		case !errors.Is(err, wantErr) || errors.Is(err, ErrNotELF) != isNotELF || in != nil:
			t.Errorf("OpenFound(%s) = %v, %v; want %v (ErrNotELF %v)", filepath.Base(path), in, err, wantErr, isNotELF)
		}
	}
	check(t, write("plain.o", want), nil, false)
	check(t, write("plain.txt", text), ErrNotELF, true)
	check(t, write("empty", nil), ErrNotELF, true)
	// Many blocks of every format (incompressible bytes): a stream cut
	// late fails after its first blocks have come out.
	big := append(bytes.Clone(elfMagic), make([]byte, 1<<20)...)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := len(elfMagic); i < len(big); i++ {
		big[i] = byte(rng.Uint32())
	}
	for _, c := range compressions {
		elfZ := goCompress(t, c, want)
		textZ := goCompress(t, c, text)
		bigZ := goCompress(t, c, big)
		paths := map[string]string{
			"elf":  write("elf."+c, elfZ),
			"text": write("text."+c, textZ),
			// The header only: the stream fails before any byte comes out.
			"cut-early": write("early."+c, elfZ[:len(DetectMagic(c))+2]),
			// Cut in half: for zstd, before its one block comes out.
			"cut-half": write("half."+c, elfZ[:len(elfZ)/2]),
			// Cut after its first blocks: the magic comes out, then it fails.
			"cut-late": write("late."+c, bigZ[:len(bigZ)*3/4]),
		}
		for _, goDec := range []bool{false, true} {
			withGo(t, c, goDec, func(t *testing.T) {
				check(t, paths["elf"], nil, false)
				check(t, paths["text"], ErrNotELF, true)
				for _, cut := range []string{"cut-early", "cut-half", "cut-late"} {
					check(t, paths[cut], ErrCorrupt, false)
					// ELF, if the magic came out (the open then fails), or
					// the decode error; never "not ELF".
					if isELF, _, err := Sniff(paths[cut]); !isELF && !errors.Is(err, ErrCorrupt) {
						t.Errorf("Sniff(%s) = %v, %v; want ELF or ErrCorrupt", cut, isELF, err)
					}
				}
				if isELF, _, err := Sniff(paths["text"]); isELF || err != nil {
					t.Errorf("Sniff(text) = %v, %v; want not ELF, no error", isELF, err)
				}
			})
		}
	}
}

// DetectMagic is the magic of compression c (test helper).
func DetectMagic(c string) []byte {
	for _, m := range magics {
		if m.compression == c {
			return m.magic
		}
	}
	return nil
}
