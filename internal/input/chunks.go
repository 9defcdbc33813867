// SPDX-License-Identifier: Apache-2.0

package input

import (
	"bytes"
	"errors"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Decompressed bytes go to one buffer sized from the stream's own headers
// (see sizeHint) when they give a size, and it is right: the usual case, in
// which the bytes are one slice (chunks.bytes) that the ELF reader can use
// without copying. What does not fit (no size given, or a wrong one) goes
// to chunks of growing size (64 KiB, 128 KiB, …, 8 MiB, then 8 MiB each)
// rather than a buffer that doubles: growing never copies, so the peak for
// an input of n bytes is n plus less than one chunk (a doubling buffer
// peaks near 3n, and for a bomb refused at the cap, at three times the
// cap). The sized buffers and the chunks are pooled and reused by the next
// input, so a folder of modules allocates a buffer per worker, not one per
// file.
const (
	firstChunkShift = 16 // 64 KiB
	lastChunkShift  = 23 // 8 MiB
	chunkClasses    = lastChunkShift - firstChunkShift + 1
)

var chunkPools [chunkClasses]sync.Pool

// chunkClass is the size class of the i-th chunk of an input.
func chunkClass(i int) int { return min(i, chunkClasses-1) }

func getChunk(class int) []byte {
	if p, ok := chunkPools[class].Get().(*[]byte); ok {
		return *p
	}
	return make([]byte, 1<<(firstChunkShift+class))
}

// liveOutput counts the bytes of output buffers an input holds, and
// peakOutput the most at once: what the budget bounds (tests read them).
var liveOutput, peakOutput atomic.Int64

func addLive(n int) {
	v := liveOutput.Add(int64(n))
	for p := peakOutput.Load(); v > p && !peakOutput.CompareAndSwap(p, v); p = peakOutput.Load() {
	}
}

func putChunk(b []byte) {
	b = b[:cap(b)]
	class := 0
	for ; class < chunkClasses-1 && len(b) > 1<<(firstChunkShift+class); class++ {
	}
	chunkPools[class].Put(&b)
}

// sizedPool holds the buffers sized from a stream's headers, largest
// seen so far per worker: a smaller one is dropped when a larger is needed.
var sizedPool sync.Pool

// sizedRound rounds a sized buffer's capacity, so that a folder of modules
// of similar sizes reuses one.
const sizedRound = 64 << 10

func getSized(n int64) []byte {
	if p, ok := sizedPool.Get().(*[]byte); ok && int64(cap(*p)) >= n {
		return (*p)[:n]
	}
	return make([]byte, n, (n+sizedRound-1)/sizedRound*sizedRound)
}

// chunks is an io.ReaderAt over decompressed bytes held in chunks.
type chunks struct {
	bufs  [][]byte // full chunks, then the last one cut to its used length
	start []int64  // start[i] is the offset of bufs[i]
	size  int64
	sized bool // bufs[0] is from getSized
	// whole is bufs[0]'s pooled buffer when it is a small plain file read
	// whole (see openWhole), returned to wholePool by release.
	whole *[]byte
}

// bytes returns the decompressed bytes when they are one slice, else nil.
func (c *chunks) bytes() []byte {
	if len(c.bufs) == 1 {
		return c.bufs[0]
	}
	return nil
}

var chunksPool = sync.Pool{New: func() any { return new(chunks) }}

// errOverLimit is readChunks' way of saying that r had more than limit
// bytes.
var errOverLimit = errors.New("over the limit")

// errNoMagic is readChunks' way of saying that, asked for ELF only, it
// found a stream that is not.
var errNoMagic = errors.New("no ELF magic")

// readChunks reads r to its end into chunks, reading at most limit+1
// bytes. size, when not negative, is what r is expected to hold: the first
// chunk has one byte more, so that r ends inside it when size is right. On
// error (errOverLimit when r had more than limit bytes) the chunks are
// released, and n says how many bytes were read. With needELF, a first
// chunk shown not to be ELF (see shownNotELF) ends the reading with
// errNoMagic, or with its error wrapped in notELF.
func readChunks(r io.Reader, size, limit int64, needELF bool, cl *claim) (*chunks, int64, error) {
	c := chunksPool.Get().(*chunks)
	for {
		// Claim the buffer's bytes from the run's budget before it is
		// allocated (see budget.go).
		if err := cl.reserve(c.nextSize(size, limit)); err != nil {
			n := c.size
			c.drop() // yielding: its bytes go back to the kernel, not to a pool
			return nil, n, err
		}
		var b []byte
		switch {
		case len(c.bufs) == 0 && size >= 0:
			b, c.sized = getSized(min(size, limit)+1), true
		case c.sized:
			b = getChunk(chunkClass(len(c.bufs) - 1))
		default:
			b = getChunk(chunkClass(len(c.bufs)))
		}
		if room := limit + 1 - c.size; int64(len(b)) > room {
			b = b[:room]
		}
		addLive(cap(b))
		n, err := fill(r, b)
		if n == 0 && len(c.bufs) > 0 {
			c.put(len(c.bufs), b)
		} else {
			c.bufs = append(c.bufs, b[:n])
			c.start = append(c.start, c.size)
			c.size += int64(n)
		}
		switch {
		case c.size > limit:
			err = errOverLimit
		case err == io.EOF:
			err = nil
			if !needELF || bytes.HasPrefix(c.bufs[0], elfMagic) {
				return c, c.size, nil
			}
		}
		if needELF && len(c.bufs) == 1 && shownNotELF(c.bufs[0], err) {
			if err == nil {
				err = errNoMagic
			}
			err = notELF{err}
		}
		if err != nil {
			size := c.size
			if err == errOverLimit {
				c.drop()
			} else {
				c.release()
			}
			return nil, size, err
		}
	}
}

// shownNotELF reports whether the first decoded bytes b show that the
// stream is not ELF: they do not start with the ELF magic, and either they
// are long enough to hold it or the stream ended cleanly (err nil). A
// stream that fails before its first bytes can say, as a truncated one
// may in any format (a zstd block comes out whole or not at all), is a
// decode error, not "not ELF": one rule for every format.
func shownNotELF(b []byte, err error) bool {
	return !bytes.HasPrefix(b, elfMagic) && (err == nil || len(b) >= len(elfMagic))
}

// nextSize is the capacity of the next buffer readChunks takes.
func (c *chunks) nextSize(size, limit int64) int64 {
	switch {
	case len(c.bufs) == 0 && size >= 0:
		n := min(size, limit) + 1
		return (n + sizedRound - 1) / sizedRound * sizedRound
	case c.sized:
		return 1 << (firstChunkShift + chunkClass(len(c.bufs)-1))
	}
	return 1 << (firstChunkShift + chunkClass(len(c.bufs)))
}

// fill reads from r until b is full (nil error) or r fails (io.EOF at its
// end). Unlike io.ReadFull it passes r's own io.ErrUnexpectedEOF, a
// truncated stream, through as an error.
func fill(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// put returns b, the i-th buffer of c, to its pool.
func (c *chunks) put(i int, b []byte) {
	if i > 0 || c.whole == nil {
		addLive(-cap(b))
	}
	if i == 0 && c.whole != nil {
		wholePool.Put(c.whole)
		return
	}
	if i == 0 && c.sized {
		b = b[:0]
		sizedPool.Put(&b)
		return
	}
	putChunk(b)
}

// release returns the chunks to their pools; c must not be used after.
func (c *chunks) release() {
	for i, b := range c.bufs {
		c.put(i, b)
		c.bufs[i] = nil
	}
	c.bufs, c.start, c.size, c.sized, c.whole = c.bufs[:0], c.start[:0], 0, false, nil
	chunksPool.Put(c)
}

// drop is release for a bomb's buffers (or those of a decompression that
// yields its budget): they are not pooled but left to
// the collector, and the memory goes back to the kernel at once (see
// freeBomb), so that the next input does not start beside a cap's worth
// of pooled buffers of the wrong sizes.
func (c *chunks) drop() {
	held := int64(0)
	for i, b := range c.bufs {
		if i == 0 && c.whole != nil {
			wholePool.Put(c.whole)
		} else {
			addLive(-cap(b))
			held += int64(cap(b))
		}
		c.bufs[i] = nil
	}
	c.bufs, c.start, c.size, c.sized, c.whole = c.bufs[:0], c.start[:0], 0, false, nil
	chunksPool.Put(c)
	freeBomb(held)
}

// freeBomb returns the memory of a refused bomb to the kernel when it was
// large: a collection and a scavenge (tens of ms), for what is rare.
func freeBomb(held int64) {
	if held >= 64<<20 {
		debug.FreeOSMemory()
	}
}

// ReadAt implements io.ReaderAt.
func (c *chunks) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if off >= c.size {
		return 0, io.EOF
	}
	// The last chunk starting at or before off; few chunks, so a linear
	// search from the end (most inputs are one or two chunks).
	i := len(c.start) - 1
	for c.start[i] > off {
		i--
	}
	n := 0
	for n < len(p) && i < len(c.bufs) {
		n += copy(p[n:], c.bufs[i][off+int64(n)-c.start[i]:])
		i++
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
