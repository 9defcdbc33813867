// SPDX-License-Identifier: Apache-2.0

// Package input opens the files ftpatch reads. It owns one concern: turning
// a path into the bytes of an ELF file, an io.ReaderAt with its size.
//
//   - Only regular files are opened. A FIFO, socket or device is refused by
//     name from its stat, before any open for reading (a FIFO would block
//     forever); the open itself is non-blocking as a second guard.
//   - Kernel modules are often compressed (.ko.xz, .ko.zst, .ko.gz). Scan and
//     verify read them decompressed into memory behind a size cap (see
//     SetMaxDecompressed); patch commands refuse them (OpenPlain),
//     since they rewrite words in place.
//   - The compression is recognised by its magic bytes, never by the file
//     name: a renamed module is still found, and a .gz that is not gzip is not
//     mistaken for one.
//   - Decompression runs at the speed of the reference decoders: xz, zstd
//     and gzip through liblzma, libzstd and zlib when the binary was built
//     with cgo and the library loads (each is dlopened on first use, so a
//     binary without them still starts, and none is a DT_NEEDED entry),
//     else the pure-Go decoders (ulikunitz/xz, klauspost/compress).
//   - A compressed module is read whole in one call and decoded into one
//     buffer sized from the stream's own size field (zstd frame content
//     size, gzip ISIZE, xz index), in short calls (see nativeDecoder):
//     File.Bytes gives the decompressed bytes in place. A plain module (at
//     most 1 MiB) is read whole in one call too, and File.Bytes gives it;
//     a larger plain file is read in place, never whole. Decoders and
//     buffers are pooled, so a folder of thousands of modules reuses one
//     of each per worker. A file is opened, fstat'ed, read and closed: no
//     other system call.
//   - A folder walk need not sniff a file before it is opened: OpenFound
//     sniffs while it opens, and decompresses a compressed file once.
//   - One decode-error rule for every format: a compressed file is "not
//     ELF" (a folder walk skips it) only when its decoded bytes show it
//     (they start otherwise, or the stream ends cleanly before 4 bytes);
//     a corrupt header, or a stream cut before its first bytes come out,
//     is ErrCorrupt, as a stream cut after them is.
//   - A decompression bomb costs at most the cap plus a window (xz
//     dictionary, zstd window: both checked before they are allocated) plus
//     one output chunk: a size field is trusted only to size the first
//     buffer (at most the cap, and 1024 times the compressed size); what
//     does not fit goes to chunks, never to a buffer that doubles.
//
// Invariant: a File's bytes are exactly the file's (plain) or the
// decompressed stream's (compressed); an error means no File.
package input

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ftpatch/ftpatch/internal/render"
)

// Compression formats, as reported by File.Compression.
const (
	None = ""
	XZ   = "xz"
	Zstd = "zstd"
	Gzip = "gzip"
)

// DefaultMaxDecompressed is the default cap on the decompressed size of one
// input (2 GiB): a kernel image with debug info is ~300 MB, so anything
// larger is treated as a decompression bomb.
const DefaultMaxDecompressed int64 = 2 << 30

var maxDecompressed atomic.Int64

func init() { maxDecompressed.Store(DefaultMaxDecompressed) }

// SetMaxDecompressed sets the cap Open applies to compressed inputs (the
// --max-decompressed flag); n <= 0 restores the default.
func SetMaxDecompressed(n int64) {
	if n <= 0 {
		n = DefaultMaxDecompressed
	}
	maxDecompressed.Store(n)
}

// MaxDecompressed returns the cap Open applies.
func MaxDecompressed() int64 { return maxDecompressed.Load() }

var (
	// ErrCompressed is returned (via *CompressedError) when a command that
	// rewrites files is given a compressed one.
	ErrCompressed = errors.New("compressed input")
	// ErrTooLarge is returned when an input decompresses to more than the
	// cap, or asks for a window (xz dictionary, zstd window) larger than the
	// decoder allows.
	ErrTooLarge = errors.New("decompressed size exceeds the limit")
	// ErrCorrupt wraps every error from a decompressor: truncated or corrupt
	// streams, bad checksums.
	ErrCorrupt = errors.New("corrupt compressed data")
	// ErrNotRegular is returned for a path that is not a regular file (a
	// FIFO, socket, device or directory), which is never opened for reading.
	ErrNotRegular = errors.New("not a regular file")
	// ErrNotELF is wrapped by OpenFound's error for a file that does not
	// start with the ELF magic, or whose decompressed bytes are shown not
	// to (see shownNotELF): a file a folder walk skips.
	ErrNotELF = errors.New("not an ELF file")
)

// notELF marks err as ErrNotELF without changing its message.
type notELF struct{ err error }

func (e notELF) Error() string        { return e.err.Error() }
func (e notELF) Unwrap() error        { return e.err }
func (e notELF) Is(target error) bool { return target == ErrNotELF }

var magics = []struct {
	compression string
	magic       []byte
}{
	{XZ, []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}},
	{Zstd, []byte{0x28, 0xB5, 0x2F, 0xFD}},
	{Gzip, []byte{0x1F, 0x8B}},
}

// magicLen is how many leading bytes DetectCompression needs.
const magicLen = 6

// elfMagic starts every ELF file.
var elfMagic = []byte{0x7F, 'E', 'L', 'F'}

// DetectCompression returns the compression whose magic head starts with,
// or None.
func DetectCompression(head []byte) string {
	for _, m := range magics {
		if bytes.HasPrefix(head, m.magic) {
			return m.compression
		}
	}
	return None
}

// File is a file opened for reading, decompressed in memory when it is
// compressed. It is an io.ReaderAt over the (decompressed) ELF bytes.
type File struct {
	Path        string
	Compression string // None for a plain file
	Size        int64  // size of the (decompressed) contents

	r    io.ReaderAt
	file *fdFile    // large plain files: read in place, closed by Close
	buf  *chunks    // the bytes in memory: decompressed, or a small plain file's
	mu   sync.Mutex // guards maps: an Object maps its tables from several goroutines
	maps [][]byte   // what Map mapped: never unmapped (see Map)
}

// ReadAt reads from the (decompressed) contents.
func (f *File) ReadAt(p []byte, off int64) (int, error) { return f.r.ReadAt(p, off) }

// Fd returns the descriptor of a plain file read in place (one larger than
// what Open reads whole), for a caller that maps the file rather than
// reading it; ok is false when the contents are in memory (a compressed
// file, a small one) or the File is closed. The descriptor belongs to the
// File: it is valid until Close (a mapping made from it outlives that).
func (f *File) Fd() (fd int, ok bool) {
	if f.file == nil || f.file.fd < 0 {
		return -1, false
	}
	return f.file.fd, true
}

// Map returns the n bytes at off of a plain file read in place (see Fd),
// mapped read-only from the page cache, or nil when the File has no
// descriptor (its contents are in memory) or the range is not in the file.
// The bytes are the file's own, never a copy: a table read this way costs
// no fresh memory (verify of a 6.12 vmlinux copied ~8.5 MiB of .symtab
// and .strtab into new pages, which are cleared first). The mapping is
// never unmapped, so what points into it (symbol names) stays valid after
// Close; Close drops its pages from the process (they stay in the page
// cache and come back on the next read). The bytes must not be modified.
func (f *File) Map(off, n int64) []byte {
	if f.file == nil || f.file.fd < 0 || off < 0 || n <= 0 || off > f.Size-n {
		return nil
	}
	pg := int64(os.Getpagesize())
	lo := off &^ (pg - 1)
	m, err := syscall.Mmap(f.file.fd, lo, int(off-lo+n), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		return nil
	}
	f.mu.Lock()
	f.maps = append(f.maps, m)
	f.mu.Unlock()
	return m[off-lo:][:n:n]
}

// Bytes returns the decompressed contents when they are in memory as one
// slice (a compressed file whose headers gave its size: the usual case),
// else nil. The slice belongs to the File: it must not be modified, and
// must not be used after Close, which hands it to the next input.
func (f *File) Bytes() []byte {
	if f.buf == nil {
		return nil
	}
	return f.buf.bytes()
}

// Close releases the file (plain inputs) or returns the decompressed bytes
// to the pool (compressed ones). The File must not be read afterwards.
func (f *File) Close() error {
	f.r = bytes.NewReader(nil)
	if f.buf != nil {
		f.buf.release()
		f.buf = nil
	}
	f.mu.Lock()
	for _, m := range f.maps {
		syscall.Madvise(m, syscall.MADV_DONTNEED)
	}
	f.maps = nil
	f.mu.Unlock()
	if f.file != nil {
		file := f.file
		f.file = nil
		return file.Close()
	}
	return nil
}

// Open opens path for reading. A plain file is read in place (never read
// whole into memory) unless it is small (see openWhole); an xz, zstd or gzip file is
// decompressed into memory, up to MaxDecompressed() bytes. A path that is not
// a regular file is refused (ErrNotRegular) without being opened for
// reading. The caller closes the File. Errors do not repeat the path unless
// they come from the OS.
func Open(path string) (*File, error) { return open(path, MaxDecompressed(), false) }

// OpenFound is Open for a file that a folder walk found and did not
// sniff: opening it sniffs it, and a compressed one is decompressed once,
// not once to sniff and again to read. When it does not start with the
// ELF magic, or (compressed) its first decompressed buffer does not (the
// whole file when its headers give its size, else 64 KiB; see
// shownNotELF), the error wraps ErrNotELF, and nothing more is decoded:
// the walk skips the file. A stream that fails before it shows its first
// bytes is ErrCorrupt, as Identify says. The walk
// checked the kind of file from its directory entry (or its stat, for a
// symlink), so the file is not stat'ed again before the open (the opened
// file is still checked).
func OpenFound(path string) (*File, error) { return open(path, MaxDecompressed(), true) }

func open(path string, limit int64, needELF bool) (*File, error) {
	f, size, err := openRegular(path, !needELF)
	if err != nil {
		return nil, err
	}
	if size <= plainWholeMax {
		return openWhole(f, path, size, limit, needELF)
	}
	var head [magicLen]byte
	n, err := f.ReadAt(head[:], 0)
	if err != nil && err != io.EOF {
		f.Close()
		return nil, err
	}
	c := DetectCompression(head[:n])
	if c == None {
		if needELF && !bytes.HasPrefix(head[:n], elfMagic) {
			f.Close()
			return nil, notELFHead(head[:n])
		}
		return &File{Path: path, Size: size, r: f, file: f}, nil
	}
	if size <= wholeMax {
		return openWhole(f, path, size, limit, needELF)
	}
	defer f.Close()
	// Read to the end, wherever it is now.
	src := func() io.Reader { return io.NewSectionReader(f, 0, 1<<62) }
	buf, err := decompress(c, src, hintFor(c, f, size), limit, needELF)
	if err != nil {
		return nil, err
	}
	return &File{Path: path, Compression: c, Size: buf.size, r: buf, buf: buf}, nil
}

// notELFHead is OpenFound's error for a file that starts with head.
func notELFHead(head []byte) error {
	return fmt.Errorf("%w: it starts with %q", ErrNotELF, head[:min(len(head), magicLen)])
}

// openWhole is open for a small file (a module: plain, of at most
// plainWholeMax bytes, or compressed, of at most wholeMax): it is read
// whole in one call into a pooled buffer, its compression told from the
// buffer's first bytes. A plain one is the File's bytes (File.Bytes) until
// Close, read in place by the ELF reader: one read, not one per header and
// section. A compressed one is decoded from memory (no reads of the read
// buffer's size, nor one more to see the end). f is closed either way.
func openWhole(f *fdFile, path string, size, limit int64, needELF bool) (*File, error) {
	p := getWhole(size)
	b := *p
	n, err := f.ReadAt(b, 0)
	f.Close()
	if err != nil && err != io.EOF {
		wholePool.Put(p)
		return nil, err
	}
	b = b[:n]
	c := DetectCompression(b)
	if c == None {
		if needELF && !bytes.HasPrefix(b, elfMagic) {
			err := notELFHead(b) // before the buffer goes back: the error quotes its head
			wholePool.Put(p)
			return nil, err
		}
		buf := chunksPool.Get().(*chunks)
		buf.bufs, buf.start, buf.size, buf.whole = append(buf.bufs, b), append(buf.start, 0), int64(n), p
		return &File{Path: path, Size: int64(n), r: buf, buf: buf}, nil
	}
	defer wholePool.Put(p)
	src := func() io.Reader { return bytes.NewReader(b) }
	buf, err := decompress(c, src, hintFor(c, bytes.NewReader(b), int64(n)), limit, needELF)
	if err != nil {
		return nil, err
	}
	return &File{Path: path, Compression: c, Size: buf.size, r: buf, buf: buf}, nil
}

// wholeMax is the largest compressed file read whole into memory in one
// call before it is decoded; a larger one is read as it is decoded.
const wholeMax = 8 << 20

// plainWholeMax is the largest plain file read whole into memory in one
// call (see openWhole); a larger one is read as it is parsed, never whole:
// a kernel image, or a module with debug info, is mostly sections a scan
// does not read. A variable for tests.
var plainWholeMax int64 = 1 << 20

// wholePool holds the buffers files are read whole into, one per worker,
// the largest seen so far.
var wholePool sync.Pool

// getWhole returns a pooled buffer of n bytes.
func getWhole(n int64) *[]byte {
	p, _ := wholePool.Get().(*[]byte)
	if p == nil || int64(cap(*p)) < n {
		b := make([]byte, n, (n+sizedRound-1)/sizedRound*sizedRound)
		return &b
	}
	*p = (*p)[:n]
	return p
}

// openBytes is Open over bytes already in memory (fuzzing, tests).
func openBytes(b []byte, limit int64) (*File, error) {
	c := DetectCompression(b)
	if c == None {
		return &File{Size: int64(len(b)), r: bytes.NewReader(b)}, nil
	}
	buf, err := decompress(c, func() io.Reader { return bytes.NewReader(b) }, hintFor(c, bytes.NewReader(b), int64(len(b))), limit, false)
	if err != nil {
		return nil, err
	}
	return &File{Compression: c, Size: buf.size, r: buf, buf: buf}, nil
}

// maxRatio bounds the size hint of a compressed file of n bytes to
// max(1 MiB, maxRatio*n): a few bytes claiming gigabytes do not get a
// buffer of that size (the output then goes to growing chunks, up to the
// cap, as for a stream that gives no size).
const maxRatio = 1024

// hintFor is sizeHint bounded by maxRatio.
func hintFor(c string, r io.ReaderAt, n int64) int64 {
	return min(sizeHint(c, r, n), max(1<<20, maxRatio*n))
}

// openRegular opens path for reading if it is a regular file (symlinks
// followed), and returns its size. With stat, the kind of file is checked
// from its stat before the open, so a FIFO, socket or device is never
// opened; a folder walk, which found the file by its directory entry's
// type (or its stat, for a symlink), passes false. O_NONBLOCK guards the
// window between the two (a FIFO swapped in would not block the open), and
// the opened file is checked again. The file is opened with a bare open(2),
// not os.OpenFile, which would also try (and fail) to register a regular
// file with the network poller.
func openRegular(path string, stat bool) (*fdFile, int64, error) {
	if stat {
		st, err := os.Stat(path)
		if err != nil {
			return nil, 0, err
		}
		if err := checkRegular(st); err != nil {
			return nil, 0, err
		}
	}
	var fd int
	var err error
	for {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return nil, 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := &fdFile{fd: fd, path: path}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, 0, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if err := checkRegularMode(st.Mode); err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size, nil
}

// fdFile is an open file read with pread(2): an io.ReaderAt as *os.File's
// ReadAt, without its poller registration and locking.
type fdFile struct {
	fd   int // -1 once closed
	path string
}

// ReadAt reads len(p) bytes at off, or fewer and an error (io.EOF at the
// end of the file).
func (f *fdFile) ReadAt(p []byte, off int64) (int, error) {
	if f.fd < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.path, Err: fs.ErrClosed}
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "readat", Path: f.path, Err: errors.New("negative offset")}
	}
	n := 0
	for n < len(p) {
		m, err := syscall.Pread(f.fd, p[n:], off+int64(n))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return n, &fs.PathError{Op: "read", Path: f.path, Err: err}
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}

// Close closes the file; a second Close does nothing.
func (f *fdFile) Close() error {
	if f.fd < 0 {
		return nil
	}
	fd := f.fd
	f.fd = -1
	if err := syscall.Close(fd); err != nil {
		return &fs.PathError{Op: "close", Path: f.path, Err: err}
	}
	return nil
}

// openRegularFile is openRegular (with the stat first) for a caller that
// needs an *os.File: the patch commands (OpenPlain).
func openRegularFile(path string) (*os.File, fs.FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if err := checkRegular(st); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err = f.Stat()
	if err == nil {
		err = checkRegular(st)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, st, nil
}

// checkRegularMode is checkRegular for a stat(2) mode.
func checkRegularMode(mode uint32) error {
	var m fs.FileMode
	switch mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		return nil
	case syscall.S_IFDIR:
		m = fs.ModeDir
	case syscall.S_IFIFO:
		m = fs.ModeNamedPipe
	case syscall.S_IFSOCK:
		m = fs.ModeSocket
	case syscall.S_IFCHR:
		m = fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFBLK:
		m = fs.ModeDevice
	default:
		m = fs.ModeIrregular
	}
	return checkMode(m)
}

// checkRegular returns an error wrapping ErrNotRegular that names the kind
// of file, or nil for a regular file.
func checkRegular(st fs.FileInfo) error { return checkMode(st.Mode()) }

// checkMode is checkRegular for a file mode.
func checkMode(m fs.FileMode) error {
	if m.IsRegular() {
		return nil
	}
	return fmt.Errorf("is %s, %w: ftpatch reads only ELF files (plain or compressed)", render.FileKind(m), ErrNotRegular)
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
	return fmt.Sprintf("is %s-compressed; patch commands need an uncompressed file: decompress it first (%s %s), or patch the module of the kernel build tree",
		e.Compression, decompressCommand(e.Compression), e.Path)
}

// Is makes errors.Is(err, ErrCompressed) true.
func (e *CompressedError) Is(target error) bool { return target == ErrCompressed }

func decompressCommand(c string) string {
	switch c {
	case XZ:
		return "xz -d"
	case Zstd:
		return "zstd -d --rm"
	case Gzip:
		return "gzip -d"
	}
	return "decompress"
}

// OpenPlain opens path for a command that rewrites it (init, enable,
// disable): a regular file (special files are refused without being opened
// for reading, as by Open) that is not compressed (a *CompressedError
// naming the command that decompresses it). The caller closes the file.
func OpenPlain(path string) (*os.File, error) {
	f, _, err := openRegularFile(path)
	if err != nil {
		return nil, err
	}
	var head [magicLen]byte
	n, err := f.ReadAt(head[:], 0)
	if err != nil && err != io.EOF {
		f.Close()
		return nil, err
	}
	if c := DetectCompression(head[:n]); c != None {
		f.Close()
		return nil, &CompressedError{Path: path, Compression: c}
	}
	return f, nil
}
