// SPDX-License-Identifier: Apache-2.0

package input

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// maxWindow caps the window a stream may ask its decoder to allocate, an xz
// dictionary or a zstd window (xz -9 uses 64 MiB, zstd --ultra -22 and
// --long=27 128 MiB). It is checked from the stream's headers before the
// allocation, whatever the cap on the output: a bomb refused at the cap has
// cost at most the cap, one window and one chunk.
const maxWindow = 128 << 20

// decoder decompresses one stream at a time. reset starts a stream read
// from r, which is buffered (an io.ByteReader); the decoder is then an
// io.Reader over the decompressed bytes. Decoders are pooled per format and
// reused: a reset keeps the allocations of the previous stream.
type decoder interface {
	io.Reader
	reset(r *bufio.Reader) error
}

// pooled is a decoder with the buffered reader it reads through.
type pooled struct {
	c  string
	br *bufio.Reader
	d  decoder
}

var decoderPools = map[string]*sync.Pool{XZ: {}, Zstd: {}, Gzip: {}}

// readBufSize is the size of the buffer compressed bytes are read through:
// large reads, never one byte per system call.
const readBufSize = 128 << 10

// getDecoder returns a decoder for format c started on r.
func getDecoder(c string, r io.Reader) (*pooled, error) {
	pool, ok := decoderPools[c]
	if !ok {
		return nil, fmt.Errorf("unknown compression %q", c)
	}
	p, _ := pool.Get().(*pooled)
	if p == nil {
		d, err := newDecoder(c)
		if err != nil {
			return nil, err
		}
		p = &pooled{c: c, br: bufio.NewReaderSize(nil, readBufSize), d: d}
	}
	p.br.Reset(r)
	if err := p.d.reset(p.br); err != nil {
		p.put()
		return nil, decodeError(c, 0, err)
	}
	return p, nil
}

// put returns p to its pool, dropping its reference to the input.
func (p *pooled) put() {
	p.br.Reset(nil)
	decoderPools[p.c].Put(p)
}

// errNoCgo is the native decoders' error in a build without cgo, where
// xz, zstd and gzip are decoded by the pure-Go decoders.
var errNoCgo = errors.New("built without cgo: no native decoders")

// forceGo makes a format use its pure-Go decoder even when its library
// loads (tests compare the two, and run the fallback).
var forceGo = map[string]bool{}

// newDecoder returns the native decoder of format c when its library
// loads (liblzma, libzstd, zlib: dlopened on first use), else the pure-Go
// one.
func newDecoder(c string) (decoder, error) {
	native := map[string]func() (decoder, error){XZ: newLzmaDecoder, Zstd: newZstdDecoder, Gzip: newZlibDecoder}[c]
	if native != nil && !forceGo[c] {
		if d, err := native(); err == nil {
			return d, nil
		}
	}
	return newGoDecoder(c)
}

// newGoDecoder returns the pure-Go decoder of format c.
func newGoDecoder(c string) (decoder, error) {
	switch c {
	case XZ:
		return &goXZ{}, nil
	case Zstd:
		// One goroutine per decoder: callers already run files in parallel.
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxWindow),
			// The output is capped by readChunks; MaxMemory would only
			// bound frames that declare their size, and refuse them with
			// a different error.
			zstd.WithDecoderMaxMemory(1<<63-1))
		if err != nil {
			return nil, err
		}
		return &goZstd{d: d}, nil
	case Gzip:
		return &goGzip{}, nil
	}
	return nil, fmt.Errorf("unknown compression %q", c)
}

type goZstd struct{ d *zstd.Decoder }

func (z *goZstd) reset(r *bufio.Reader) error { return z.d.Reset(r) }
func (z *goZstd) Read(p []byte) (int, error)  { return z.d.Read(p) }

type goGzip struct {
	z  gzip.Reader
	ok bool // z was reset on a stream without error
}

func (g *goGzip) reset(r *bufio.Reader) error {
	err := g.z.Reset(r)
	g.ok = err == nil
	return err
}

func (g *goGzip) Read(p []byte) (int, error) {
	if !g.ok {
		return 0, io.ErrUnexpectedEOF
	}
	return g.z.Read(p)
}

// goXZ is the pure-Go xz decoder, for a binary built without cgo or a
// system without liblzma. ulikunitz/xz allocates a block's dictionary as
// soon as it reads its header, so the first block's dictionary is checked
// here first (xz writes one block, or blocks of one dictionary size).
type goXZ struct{ r *xz.Reader }

func (x *goXZ) reset(r *bufio.Reader) error {
	x.r = nil
	if dict, err := xzFirstDict(r); err != nil {
		return err
	} else if dict > maxWindow {
		return fmt.Errorf("%w: xz dictionary of %d bytes (at most %d)", ErrTooLarge, dict, maxWindow)
	}
	d, err := xz.ReaderConfig{}.NewReader(r)
	if err != nil {
		return err
	}
	x.r = d
	return nil
}

func (x *goXZ) Read(p []byte) (int, error) { return x.r.Read(p) }

// xzFirstDict returns the largest LZMA2 dictionary size declared by the
// first block header of the xz stream r starts with (peeked, not consumed),
// or 0 when it has none (an empty stream). A malformed header is left to
// the decoder to report.
func xzFirstDict(r *bufio.Reader) (int64, error) {
	const streamHeader = 12
	h, _ := r.Peek(streamHeader + 1)
	if len(h) <= streamHeader || h[streamHeader] == 0 {
		return 0, nil
	}
	size := (int(h[streamHeader]) + 1) * 4
	b, _ := r.Peek(streamHeader + size)
	if len(b) < streamHeader+size {
		return 0, nil
	}
	b = b[streamHeader+1 : streamHeader+size]
	flags := b[0]
	b = b[1:]
	varint := func() (v uint64, ok bool) {
		v, b, ok = xzVarint(b)
		return v, ok
	}
	if flags&0x40 != 0 { // compressed size
		if _, ok := varint(); !ok {
			return 0, nil
		}
	}
	if flags&0x80 != 0 { // uncompressed size
		if _, ok := varint(); !ok {
			return 0, nil
		}
	}
	var dict int64
	for range flags&3 + 1 {
		id, ok1 := varint()
		n, ok2 := varint()
		if !ok1 || !ok2 || n > uint64(len(b)) {
			return 0, nil
		}
		const lzma2 = 0x21
		if id == lzma2 && n == 1 {
			switch p := b[0]; {
			case p == 40:
				dict = max(dict, 1<<32-1)
			case p < 40:
				dict = max(dict, int64(2|p&1)<<(p/2+11))
			}
		}
		b = b[n:]
	}
	return dict, nil
}

// decompress reads all of the stream src gives, compressed in format c,
// refusing more than limit bytes of output. size is the decompressed size
// the stream's own headers give (see sizeHint), or -1: the output goes to
// one buffer of that size when it is right. Its buffers come from the
// run's budget; when it must yield them (see budget.go) it starts again
// from a new src.
func decompress(c string, src func() io.Reader, size, limit int64, needELF bool) (*chunks, error) {
	cl := runBudget.start()
	defer cl.end()
	for {
		buf, err := decompressOnce(c, src(), size, limit, needELF, cl)
		if err != errYield {
			return buf, err
		}
		cl.release()
	}
}

// decompressOnce is one attempt of decompress.
func decompressOnce(c string, r io.Reader, size, limit int64, needELF bool, cl *claim) (*chunks, error) {
	p, err := getDecoder(c, r)
	if err != nil { // a corrupt header: a decode error, in a folder walk too
		return nil, err
	}
	defer p.put()
	buf, n, err := readChunks(p.d, size, limit, needELF, cl)
	if err == nil || err == errYield {
		return buf, err
	}
	var ne notELF
	isNot := errors.As(err, &ne)
	if isNot {
		err = ne.err
	}
	switch {
	case err == errOverLimit:
		err = fmt.Errorf("%w: %s data decompresses to more than %d bytes (raise --max-decompressed if it is genuine)", ErrTooLarge, c, limit)
	case err == errNoMagic:
		err = fmt.Errorf("%w: its %s data does not start with the ELF magic", ErrNotELF, c)
	default:
		err = decodeError(c, n, err)
	}
	if isNot {
		err = notELF{err}
	}
	return nil, err
}

// decodeError wraps a decoder's error n bytes into the output.
func decodeError(c string, n int64, err error) error {
	if errors.Is(err, ErrTooLarge) {
		return err
	}
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return fmt.Errorf("%w: %s window larger than %d bytes: %w", ErrTooLarge, c, maxWindow, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, c, err)
	}
	return fmt.Errorf("%w: %s at decompressed byte %d: %w", ErrCorrupt, c, n, err)
}
