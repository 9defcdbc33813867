package elfscan

// Inputs as distributions ship them: kernel modules are often compressed
// (.ko.xz, .ko.zst, .ko.gz). Scan and verify read them through an Input,
// which decompresses into memory behind a size cap; patch commands refuse
// them (see RefuseCompressed), since they rewrite words in place.
//
// The compression is recognised by its magic bytes, never by the file name
// alone: a renamed module is still found, and a .gz that is not gzip is not
// mistaken for one.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compression formats, as reported by Input.Compression and SniffELF.
const (
	CompressionNone = ""
	CompressionXZ   = "xz"
	CompressionZstd = "zstd"
	CompressionGzip = "gzip"
)

// MaxDecompressed caps the decompressed size of one input (2 GiB): a kernel
// image with debug info is ~300 MB, so anything larger is treated as a
// decompression bomb.
const MaxDecompressed int64 = 2 << 30

// zstdMaxWindow caps the window a zstd frame may ask for (zstd --ultra -22
// and --long=27 use 128 MiB); larger windows are refused before allocation.
const zstdMaxWindow = 128 << 20

var (
	// ErrCompressed is returned (via *CompressedError) when a command that
	// rewrites files is given a compressed one.
	ErrCompressed = errors.New("compressed input")
	// ErrTooLarge is returned when an input decompresses to more than the cap.
	ErrTooLarge = errors.New("decompressed size exceeds the limit")
	// ErrCorrupt wraps every error from a decompressor: truncated or corrupt
	// streams, bad checksums.
	ErrCorrupt = errors.New("corrupt compressed data")
)

var magics = []struct {
	compression string
	magic       []byte
}{
	{CompressionXZ, []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}},
	{CompressionZstd, []byte{0x28, 0xB5, 0x2F, 0xFD}},
	{CompressionGzip, []byte{0x1F, 0x8B}},
}

// magicLen is how many leading bytes DetectCompression needs.
const magicLen = 6

var elfMagic = []byte{0x7F, 'E', 'L', 'F'}

// DetectCompression returns the compression whose magic head starts with,
// or CompressionNone.
func DetectCompression(head []byte) string {
	for _, m := range magics {
		if bytes.HasPrefix(head, m.magic) {
			return m.compression
		}
	}
	return CompressionNone
}

// Input is a file opened for reading, decompressed in memory when it is
// compressed. It is an io.ReaderAt over the (decompressed) ELF bytes.
type Input struct {
	Path        string
	Compression string // CompressionNone for a plain file
	Size        int64  // size of the (decompressed) contents

	r    io.ReaderAt
	file *os.File // plain files: read in place, closed by Close
}

// ReadAt reads from the decompressed contents.
func (in *Input) ReadAt(p []byte, off int64) (int, error) { return in.r.ReadAt(p, off) }

// Close releases the file (plain inputs) or the buffer (compressed ones).
func (in *Input) Close() error {
	in.r = bytes.NewReader(nil)
	if in.file != nil {
		f := in.file
		in.file = nil
		return f.Close()
	}
	return nil
}

// OpenInput opens path for reading. A plain file is read in place through
// its *os.File (never read whole into memory); an xz, zstd or gzip file is
// decompressed into memory, up to MaxDecompressed bytes. The caller closes
// the Input. Errors do not repeat the path unless they come from the OS.
func OpenInput(path string) (*Input, error) {
	return openInput(path, MaxDecompressed)
}

func openInput(path string, limit int64) (*Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	head := make([]byte, magicLen)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		f.Close()
		return nil, err
	}
	c := DetectCompression(head[:n])
	if c == CompressionNone {
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		return &Input{Path: path, Size: st.Size(), r: f, file: f}, nil
	}
	defer f.Close()
	b, err := decompress(c, io.MultiReader(bytes.NewReader(head[:n]), f), limit)
	if err != nil {
		return nil, err
	}
	return &Input{Path: path, Compression: c, Size: int64(len(b)), r: bytes.NewReader(b)}, nil
}

// openBytes is OpenInput over bytes already in memory (fuzzing, tests).
func openBytes(b []byte, limit int64) (*Input, error) {
	c := DetectCompression(b)
	if c == CompressionNone {
		return &Input{Size: int64(len(b)), r: bytes.NewReader(b)}, nil
	}
	d, err := decompress(c, bytes.NewReader(b), limit)
	if err != nil {
		return nil, err
	}
	return &Input{Compression: c, Size: int64(len(d)), r: bytes.NewReader(d)}, nil
}

// newDecoder returns a reader decompressing r in format c, and a function
// releasing the decoder's resources.
func newDecoder(c string, r io.Reader, limit int64) (io.Reader, func(), error) {
	switch c {
	case CompressionXZ:
		d, err := xz.NewReader(r)
		return d, func() {}, err
	case CompressionZstd:
		// One goroutine per decoder: callers already run files in parallel.
		d, err := zstd.NewReader(r,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
			// MaxMemory also bounds the window; the output size itself is
			// capped by decompress.
			zstd.WithDecoderMaxMemory(uint64(max(limit, zstdMaxWindow))))
		if err != nil {
			return nil, func() {}, err
		}
		return d, d.Close, nil
	case CompressionGzip:
		d, err := gzip.NewReader(r)
		if err != nil {
			return nil, func() {}, err
		}
		return d, func() { d.Close() }, nil
	}
	return nil, func() {}, fmt.Errorf("unknown compression %q", c)
}

// decompress reads all of r, compressed in format c, refusing more than
// limit bytes of output.
func decompress(c string, r io.Reader, limit int64) ([]byte, error) {
	d, release, err := newDecoder(c, r, limit)
	defer release()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, c, err)
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(d, limit+1))
	if err != nil {
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
			return nil, fmt.Errorf("%w (%d bytes) or window too large: %s: %w", ErrTooLarge, limit, c, err)
		}
		return nil, fmt.Errorf("%w: %s at decompressed byte %d: %w", ErrCorrupt, c, n, err)
	}
	if n > limit {
		return nil, fmt.Errorf("%w: %s data decompresses to more than %d bytes", ErrTooLarge, c, limit)
	}
	return buf.Bytes(), nil
}

// SniffELF reports whether the file at path is an ELF file, plain or
// compressed, reading only its first bytes (for a compressed file: only a
// small decompressed prefix). It is meant for directory walks: a file that
// is not ELF, or whose compressed stream is unreadable, is (false, c, nil);
// err is set only when the file cannot be read.
func SniffELF(path string) (isELF bool, compression string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, "", err
	}
	defer f.Close()
	head := make([]byte, magicLen)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return false, "", err
	}
	head = head[:n]
	c := DetectCompression(head)
	if c == CompressionNone {
		return bytes.HasPrefix(head, elfMagic), c, nil
	}
	return sniffCompressed(c, io.MultiReader(bytes.NewReader(head), f)), c, nil
}

// sniffCompressed decompresses just enough of r to see the ELF magic.
func sniffCompressed(c string, r io.Reader) bool {
	d, release, err := newDecoder(c, r, MaxDecompressed)
	defer release()
	if err != nil {
		return false
	}
	got := make([]byte, len(elfMagic))
	if _, err := io.ReadFull(d, got); err != nil {
		return false
	}
	return bytes.Equal(got, elfMagic)
}

// CompressedError says that a command that rewrites files was given a
// compressed one, and how to decompress it. errors.Is(err, ErrCompressed)
// holds. Its message names the file, so commands need not wrap it again.
type CompressedError struct {
	Path        string
	Compression string
}

func (e *CompressedError) Error() string {
	// No "file X" prefix: the command names the file once, as for any error.
	return fmt.Sprintf("is %s-compressed; patch commands need an uncompressed file: decompress it first (%s %s)",
		e.Compression, decompressCommand(e.Compression), e.Path)
}

// Is makes errors.Is(err, ErrCompressed) true.
func (e *CompressedError) Is(target error) bool { return target == ErrCompressed }

func decompressCommand(c string) string {
	switch c {
	case CompressionXZ:
		return "xz -d"
	case CompressionZstd:
		return "zstd -d --rm"
	case CompressionGzip:
		return "gzip -d"
	}
	return "decompress"
}

// RefuseCompressed returns a *CompressedError when the file at path starts
// with a compression magic, nil for a plain file, and the OS error when it
// cannot be read. Patch commands call it before opening a file for writing.
func RefuseCompressed(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, magicLen)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return err
	}
	if c := DetectCompression(head[:n]); c != CompressionNone {
		return &CompressedError{Path: path, Compression: c}
	}
	return nil
}
