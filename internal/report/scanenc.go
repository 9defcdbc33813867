// SPDX-License-Identifier: Apache-2.0

package report

// A hand-written encoder for the scan --json line. encoding/json spends
// most of a large scan's time reflecting over ScanSite and allocating its
// strings; this one appends straight from elfscan.Site. Its output is
// byte-for-byte what json.Encoder with SetEscapeHTML(false) writes for
// Scan(f) (scanenc_test checks it over every fixture and over hostile
// names), so ScanFile stays the documented shape and the two can never
// drift silently.

import (
	"debug/elf"
	"io"
	"runtime"
	"strconv"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/render"
)

// AppendScan appends f's --json line, newline included, to dst: the bytes
// json.NewEncoder(w) with SetEscapeHTML(false) writes for Scan(f).
func AppendScan(dst []byte, f *elfscan.File) []byte {
	dst = appendScanHead(dst, f.Path, f.Type, false)
	dst = appendSites(dst, f.Sites, 0, f.Type == elf.ET_REL, false)
	return appendScanTail(dst, f.Problems(), f.FileProblems(), false)
}

// scanChunk is how many sites one encoding task takes (about 270 KiB of
// JSON): small enough that the chunks in flight stay in cache and cost few
// fresh pages, large enough to amortise the hand-off.
const scanChunk = 1024

// WriteScan writes what AppendScan appends to w. A large file's sites are
// encoded in chunks on up to GOMAXPROCS goroutines and written in order, so
// its JSON is never held whole.
func WriteScan(w io.Writer, f *elfscan.File) error {
	if len(f.Sites) <= scanChunk || runtime.GOMAXPROCS(0) == 1 {
		_, err := w.Write(AppendScan(make([]byte, 0, 64+300*len(f.Sites)), f))
		return err
	}
	e := newScanStream(w, scanChunk)
	if err := elfscan.Chunks(f, e.Chunk(), e.Encode, e.Write); err != nil {
		return err
	}
	_, err := e.End()
	return err
}

// ScanStream writes a file's --json line as its scan comes in chunks
// (elfscan.ScanChunks, elfscan.Chunks): the bytes AppendScan would append
// for the whole scan. Encode runs on any goroutine, Write on one, in
// order, then End closes the line. A large linked file is never held
// whole: neither its []Site nor its JSON exist at once. Its buffers are
// recycled: at most the pool's window of them is in use at once.
type ScanStream struct {
	w        io.Writer
	chunk    int
	free     *freeList[[]byte]
	problems int               // counted by Write
	file     []elfscan.Problem // the file's own problems, from the first chunk
}

// EncodedChunk is one chunk's JSON and the problems of its sites (and, for
// the first chunk, the file's own).
type EncodedChunk struct {
	b        []byte
	problems int
	file     []elfscan.Problem
}

// NewScanStream starts a --json line written to w.
func NewScanStream(w io.Writer) *ScanStream { return newScanStream(w, scanChunk) }

// newScanStream is NewScanStream for chunks of about chunk sites (tests
// cut small files into many).
func newScanStream(w io.Writer, chunk int) *ScanStream {
	return &ScanStream{w: w, chunk: chunk, free: newFreeList(func() []byte { return make([]byte, 0, 320*chunk) })}
}

// Chunk is how many sites a chunk should hold.
func (e *ScanStream) Chunk() int { return e.chunk }

// Encode encodes chunk c.
func (e *ScanStream) Encode(c elfscan.Chunk) (EncodedChunk, error) {
	b := e.free.get()[:0]
	if c.Index == 0 {
		b = appendScanHead(b, c.Path, c.Type, false)
	}
	b = appendSites(b, c.Sites, c.Start, c.Type == elf.ET_REL, false)
	n := len(c.FileProblems)
	for i := range c.Sites {
		n += len(c.Sites[i].Problems())
	}
	return EncodedChunk{b, n, c.FileProblems}, nil
}

// Write writes an encoded chunk; chunks come in order.
func (e *ScanStream) Write(c EncodedChunk) error {
	_, err := e.w.Write(c.b)
	e.problems += c.problems
	e.file = append(e.file, c.file...)
	e.free.put(c.b)
	return err
}

// End closes the line and returns the problems counted: its sites' and
// the file's own.
func (e *ScanStream) End() (problems int, err error) {
	_, err = e.w.Write(appendScanTail(nil, e.problems, e.file, false))
	return e.problems, err
}

// freeList recycles buffers between the encoding workers and the writer.
// It keeps a bounded number; a get on an empty list makes a new one.
type freeList[T any] struct {
	c    chan T
	make func() T
}

func newFreeList[T any](mk func() T) *freeList[T] {
	return &freeList[T]{c: make(chan T, 2*runtime.GOMAXPROCS(0)), make: mk}
}

func (l *freeList[T]) get() T {
	select {
	case v := <-l.c:
		return v
	default:
		return l.make()
	}
}

func (l *freeList[T]) put(v T) {
	select {
	case l.c <- v:
	default:
	}
}

func appendScanHead(b []byte, path string, typ elf.Type, html bool) []byte {
	b = append(b, `{"file":`...)
	b = render.AppendJSONString(b, path, html)
	b = append(b, `,"elf_type":`...)
	b = render.AppendJSONString(b, ELFType(typ), html)
	return append(b, `,"sites":[`...)
}

func appendScanTail(b []byte, problems int, file []elfscan.Problem, html bool) []byte {
	b = append(b, `],"problems":`...)
	b = strconv.AppendInt(b, int64(problems), 10)
	if len(file) > 0 {
		b = append(b, `,"file_problems":[`...)
		for i, p := range file {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"code":`...)
			b = render.AppendJSONString(b, string(p.Code), html)
			b = append(b, `,"detail":`...)
			b = render.AppendJSONString(b, p.Detail, html)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

// appendSites appends sites, the first being site start of the file, with
// the commas that go before each.
func appendSites(b []byte, sites []elfscan.Site, start int, rel, html bool) []byte {
	for i := range sites {
		if start+i > 0 {
			b = append(b, ',')
		}
		b = appendSite(b, &sites[i], rel, html)
	}
	return b
}

// appendSite appends the encoding of Site(s, rel), field for field.
func appendSite(b []byte, s *elfscan.Site, rel, html bool) []byte {
	b = append(b, `{"func":`...)
	b = render.AppendJSONString(b, s.Func, html)
	b = append(b, `,"section":`...)
	b = render.AppendJSONString(b, s.Section, html)
	b = append(b, `,"entry":"`...)
	b = render.Hex(s.Entry()).Append(b)
	b = append(b, `","call_site":"`...)
	b = render.Hex(s.CallSite()).Append(b)
	if s.Layout.HasLiteral() {
		b = append(b, `","literal":"`...)
		b = render.Hex(s.Literal()).Append(b)
		b = append(b, `","layout":`...)
	} else {
		b = append(b, `","literal":null,"layout":`...)
	}
	b = render.AppendJSONString(b, s.Layout.String(), html)
	if s.BTI {
		b = append(b, `,"bti":true,"state":`...)
	} else {
		b = append(b, `,"bti":false,"state":`...)
	}
	b = render.AppendJSONString(b, s.State.String(), html)
	b = append(b, `,"ops":`...)
	opsSym := appendRef(&b, s.Ops(), rel, html)
	b = append(b, `,"target":`...)
	targetSym := appendRef(&b, s.Target(), rel, html)
	b = append(b, `,"problems":[`...)
	for i := range s.Problems() {
		if i > 0 {
			b = append(b, ',')
		}
		b = render.AppendJSONString(b, string(s.Problems()[i].Code), html)
	}
	b = append(b, `],"problem_details":[`...)
	for i := range s.Problems() {
		if i > 0 {
			b = append(b, ',')
		}
		b = render.AppendJSONString(b, s.Problems()[i].Detail, html)
	}
	b = append(b, `],"record":"`...)
	b = render.Hex(s.Record).Append(b)
	b = append(b, '"')
	if opsSym != "" {
		b = append(b, `,"ops_sym":`...)
		b = render.AppendJSONString(b, opsSym, html)
	}
	if targetSym != "" {
		b = append(b, `,"target_sym":`...)
		b = render.AppendJSONString(b, targetSym, html)
	}
	if s.Layout == elfscan.LayoutCallOps53 {
		b = append(b, `,"spare":"`...)
		b = render.Hex(s.Spare()).Append(b)
		b = append(b, '"')
	}
	if s.CFIHashOff() != elfscan.NoOffset {
		b = append(b, `,"cfi_hash":"`...)
		b = render.Hex(uint64(s.CFIHash())).Append(b)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendRef appends what Site makes of r (null, a "0x…" value or an
// ET_REL "sym+0x10" expression) and returns the name that goes in the
// matching *_sym field.
func appendRef(b *[]byte, r *elfscan.Ref, rel, html bool) (sym string) {
	switch {
	case r == nil:
		*b = append(*b, "null"...)
	case rel && r.Sym != "":
		// RelExpr(r.Sym, addend) escaped: the name, then an ASCII suffix.
		// Escaping works rune by rune and '+'/'-' can never complete a
		// truncated UTF-8 sequence, so escaping the two apart is the same.
		*b = append(*b, '"')
		*b = render.AppendJSONStringBody(*b, r.Sym, html)
		*b = render.AppendRelExpr(*b, "", int64(r.Addr))
		*b = append(*b, '"')
	default:
		*b = append(*b, '"')
		*b = render.Hex(r.Addr).Append(*b)
		*b = append(*b, '"')
		sym = r.Sym
	}
	return sym
}
