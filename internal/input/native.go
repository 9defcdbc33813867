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
// of the input buffer or of the caller's output, so a module compressed
// into less than the read buffer decodes in one or two calls.
type nativeDecoder struct {
	s   stepper
	br  *bufio.Reader
	err error
}

func (d *nativeDecoder) reset(r *bufio.Reader) error {
	d.br, d.err = r, nil
	return d.s.start()
}

// maxStep bounds the output of one call: zlib counts in 32-bit integers.
const maxStep = 1 << 30

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
		if len(out) > maxStep {
			out = out[:maxStep]
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
