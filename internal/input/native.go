// SPDX-License-Identifier: Apache-2.0

package input

import (
	"bufio"
	"io"
)

// stepper is one native decoder (a C library loaded with dlopen): step
// decodes from in into out once. atEOF says that in holds the last bytes of
// the input. end reports the end of the whole input's streams (nothing
// more will come out). Steppers keep no reference to in or out.
type stepper interface {
	start() error
	step(in, out []byte, atEOF bool) (inUsed, outUsed int, end bool, err error)
}

// nativeDecoder runs a stepper over buffered input: one C call per refill
// of the input buffer or of the caller's output, or per step bytes of
// output (see the step sizes below).
type nativeDecoder struct {
	s    stepper
	step int // the most output of one call
	br   *bufio.Reader
	err  error
}

// The most output of one C call, per decoder: for zstd and xz, a few µs
// of decoding. A goroutine that stays in C longer than one tick of the Go
// scheduler's monitor (20 µs at its busiest) has its P handed to another
// thread when no P is idle, as when every worker decodes: a thread wake-up
// and context switches per module, and the monitor, finding work, keeps
// ticking every 20 µs. In short calls it finds none and backs off to
// sleeping for milliseconds. scan --json of 1,000 zstd modules (~100 KB
// each) with two workers: one call per module ~2,000 context switches,
// 4 KiB calls ~300 (perf stat), cpu about 7-15% less; xz in 1 KiB calls
// about 5-9% less than in one call or 4 KiB ones (interleaved pairs, busy
// machine). zlib decodes in one call: its inflate copies each call's
// output to its 32 KiB window, so short calls copy the whole output once
// more, which cost as much as the switches saved (4 KiB calls: ~10% more
// cpu). zlib counts in 32-bit integers, hence its bound.
const (
	zstdStep = 4 << 10 // ~5 µs at ~0.8 GB/s
	lzmaStep = 1 << 10 // ~15 µs at ~60 MB/s
	zlibStep = 1 << 30
)

func (d *nativeDecoder) reset(r *bufio.Reader) error {
	d.br, d.err = r, nil
	return d.s.start()
}

func (d *nativeDecoder) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n := 0
	for n < len(p) {
		in, err := d.br.Peek(max(1, d.br.Buffered()))
		atEOF := false
		switch {
		case err == io.EOF:
			atEOF = true
		case err != nil:
			d.err = err
			return n, err
		}
		out := p[n:]
		if len(out) > d.step {
			out = out[:d.step]
		}
		inUsed, outUsed, end, err := d.s.step(in, out, atEOF)
		d.br.Discard(inUsed)
		n += outUsed
		switch {
		case err != nil:
			d.err = err
			return n, err
		case end:
			d.err = io.EOF
			return n, nil
		case atEOF && inUsed == 0 && outUsed == 0:
			// The input ended inside a stream.
			d.err = io.ErrUnexpectedEOF
			return n, d.err
		}
	}
	return n, nil
}
