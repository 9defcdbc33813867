package elfscan

// A hand-written encoder for the --json line. encoding/json spends most of
// a large scan's time reflecting over SiteJSON and allocating its strings;
// this one appends straight from Site. Its output is byte-for-byte what
// json.Encoder with SetEscapeHTML(false) writes for File.JSON() (jsonenc_test
// checks it over every fixture and over hostile names), so FileJSON stays
// the documented shape and the two can never drift silently.

import (
	"context"
	"debug/elf"
	"io"
	"runtime"
	"strconv"

	"github.com/ftpatch/ftpatch/internal/pool"
	"github.com/ftpatch/ftpatch/internal/render"
)

// AppendJSON appends f's --json line, newline included, to dst: the bytes
// json.NewEncoder(w) with SetEscapeHTML(false) writes for f.JSON().
func (f *File) AppendJSON(dst []byte) []byte {
	dst = f.appendHead(dst, false)
	dst = f.appendSites(dst, 0, len(f.Sites), false)
	return f.appendTail(dst)
}

// jsonChunk is how many sites one encoding task takes (about 270 KiB of
// JSON): small enough that the chunks in flight stay in cache and cost few
// fresh pages, large enough to amortise the hand-off.
const jsonChunk = 1024

// WriteJSON writes what AppendJSON appends to w. A large file's sites are
// encoded in chunks on up to GOMAXPROCS goroutines and written in order, so
// its JSON is never held whole.
func (f *File) WriteJSON(w io.Writer) error {
	n := len(f.Sites)
	workers := min(runtime.GOMAXPROCS(0), (n+jsonChunk-1)/jsonChunk)
	if workers <= 1 {
		_, err := w.Write(f.AppendJSON(make([]byte, 0, 64+300*n)))
		return err
	}
	// Chunk buffers are recycled: at most the pool's window of them is in
	// use at once, so the JSON is never held whole.
	chunks := (n + jsonChunk - 1) / jsonChunk
	free := newFreeList(func() []byte { return make([]byte, 0, 320*jsonChunk) })
	return pool.Ordered(context.Background(), chunks, workers,
		func(_ context.Context, c int) ([]byte, error) {
			lo := c * jsonChunk
			hi := min(lo+jsonChunk, n)
			b := free.get()[:0]
			if c == 0 {
				b = f.appendHead(b, false)
			}
			b = f.appendSites(b, lo, hi, false)
			if c == chunks-1 {
				b = f.appendTail(b)
			}
			return b, nil
		},
		func(_ int, b []byte, _ error) error {
			_, err := w.Write(b)
			free.put(b)
			return err
		})
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

func (f *File) appendHead(b []byte, html bool) []byte {
	b = append(b, `{"file":`...)
	b = render.AppendJSONString(b, f.Path, html)
	b = append(b, `,"elf_type":`...)
	b = render.AppendJSONString(b, ElfTypeName(f.Type), html)
	return append(b, `,"sites":[`...)
}

func (f *File) appendTail(b []byte) []byte {
	b = append(b, `],"problems":`...)
	b = strconv.AppendInt(b, int64(f.Problems()), 10)
	return append(b, "}\n"...)
}

// appendSites appends sites [lo, hi) with the commas that go before each.
func (f *File) appendSites(b []byte, lo, hi int, html bool) []byte {
	rel := f.Type == elf.ET_REL
	for i := lo; i < hi; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = f.Sites[i].appendJSON(b, rel, html)
	}
	return b
}

// appendJSON appends the encoding of s.JSON(rel), field for field.
func (s *Site) appendJSON(b []byte, rel, html bool) []byte {
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
	if s.Layout == LayoutCallOps53 {
		b = append(b, `,"spare":"`...)
		b = render.Hex(s.Spare()).Append(b)
		b = append(b, '"')
	}
	if s.CFIHashOff() != NoOffset {
		b = append(b, `,"cfi_hash":"`...)
		b = render.Hex(uint64(s.CFIHash())).Append(b)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendRef appends what Site.JSON makes of r (null, a "0x…" value or an
// ET_REL "sym+0x10" expression) and returns the name that goes in the
// matching *_sym field.
func appendRef(b *[]byte, r *Ref, rel, html bool) (sym string) {
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
