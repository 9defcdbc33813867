package elfscan

// A hand-written encoder for the --json line. encoding/json spends most of
// a large scan's time reflecting over SiteJSON and allocating its strings;
// this one appends straight from Site. Its output is byte-for-byte what
// json.Encoder with SetEscapeHTML(false) writes for File.JSON() (jsonenc_test
// checks it over every fixture and over hostile names), so FileJSON stays
// the documented shape and the two can never drift silently.

import (
	"debug/elf"
	"io"
	"runtime"
	"strconv"
	"sync"
	"unicode/utf8"
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
	// A worker takes a buffer, then the next chunk, whose encoding goes to
	// done[c%window]: at most window chunks hold buffers, and they are the
	// window after the last one written, so no two share a channel and the
	// chunk the writer waits for always has its buffer.
	chunks := (n + jsonChunk - 1) / jsonChunk
	window := 2 * workers
	pool := make(chan []byte, window)
	done := make([]chan []byte, window)
	for i := range done {
		done[i] = make(chan []byte, 1)
		pool <- make([]byte, 0, 320*jsonChunk)
	}
	var next sync.Mutex
	taken := 0
	for range workers {
		go func() {
			for {
				b := <-pool
				next.Lock()
				c := taken
				taken++
				next.Unlock()
				if c >= chunks {
					return
				}
				lo := c * jsonChunk
				hi := min(lo+jsonChunk, n)
				b = b[:0]
				if c == 0 {
					b = f.appendHead(b, false)
				}
				b = f.appendSites(b, lo, hi, false)
				if c == chunks-1 {
					b = f.appendTail(b)
				}
				done[c%window] <- b
			}
		}()
	}
	var err error
	for c := range chunks {
		b := <-done[c%window]
		if err == nil {
			_, err = w.Write(b)
		}
		pool <- b
	}
	return err
}

func (f *File) appendHead(b []byte, html bool) []byte {
	b = append(b, `{"file":`...)
	b = appendJSONString(b, f.Path, html)
	b = append(b, `,"elf_type":`...)
	b = appendJSONString(b, ElfTypeName(f.Type), html)
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
	b = appendJSONString(b, s.Func, html)
	b = append(b, `,"section":`...)
	b = appendJSONString(b, s.Section, html)
	b = append(b, `,"entry":"0x`...)
	b = strconv.AppendUint(b, s.Entry, 16)
	b = append(b, `","call_site":"0x`...)
	b = strconv.AppendUint(b, s.CallSite, 16)
	if s.Layout.HasLiteral() {
		b = append(b, `","literal":"0x`...)
		b = strconv.AppendUint(b, s.Literal, 16)
		b = append(b, `","layout":`...)
	} else {
		b = append(b, `","literal":null,"layout":`...)
	}
	b = appendJSONString(b, string(s.Layout), html)
	if s.BTI {
		b = append(b, `,"bti":true,"state":`...)
	} else {
		b = append(b, `,"bti":false,"state":`...)
	}
	b = appendJSONString(b, string(s.State), html)
	b = append(b, `,"ops":`...)
	opsSym := appendRef(&b, s.Ops, rel, html)
	b = append(b, `,"target":`...)
	targetSym := appendRef(&b, s.Target, rel, html)
	b = append(b, `,"problems":[`...)
	for i := range s.Problems {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, string(s.Problems[i].Code), html)
	}
	b = append(b, `],"problem_details":[`...)
	for i := range s.Problems {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s.Problems[i].Detail, html)
	}
	b = append(b, `],"record":"0x`...)
	b = strconv.AppendUint(b, s.Record, 16)
	b = append(b, '"')
	if opsSym != "" {
		b = append(b, `,"ops_sym":`...)
		b = appendJSONString(b, opsSym, html)
	}
	if targetSym != "" {
		b = append(b, `,"target_sym":`...)
		b = appendJSONString(b, targetSym, html)
	}
	if s.Layout == LayoutCallOps53 {
		b = append(b, `,"spare":"0x`...)
		b = strconv.AppendUint(b, s.Spare, 16)
		b = append(b, '"')
	}
	if s.CFIHashOff != NoOffset {
		b = append(b, `,"cfi_hash":"0x`...)
		b = strconv.AppendUint(b, uint64(s.CFIHash), 16)
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
		*b = appendJSONStringBody(*b, r.Sym, html)
		switch a := int64(r.Addr); {
		case a > 0:
			*b = append(*b, "+0x"...)
			*b = strconv.AppendUint(*b, uint64(a), 16)
		case a < 0:
			*b = append(*b, "-0x"...)
			*b = strconv.AppendUint(*b, uint64(-a), 16)
		}
		*b = append(*b, '"')
	default:
		*b = append(*b, `"0x`...)
		*b = strconv.AppendUint(*b, r.Addr, 16)
		*b = append(*b, '"')
		sym = r.Sym
	}
	return sym
}

// appendJSONString appends s quoted as encoding/json quotes strings.
func appendJSONString(b []byte, s string, html bool) []byte {
	b = append(b, '"')
	b = appendJSONStringBody(b, s, html)
	return append(b, '"')
}

// jsonSafe marks the ASCII bytes encoding/json copies as they are (its
// safeSet): everything but control characters, '"' and '\\'. jsonHTMLSafe
// also excludes '<', '>' and '&', which it escapes when escaping HTML.
var jsonSafe, jsonHTMLSafe = func() (s, h [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		s[c] = c != '"' && c != '\\'
		h[c] = s[c] && c != '<' && c != '>' && c != '&'
	}
	return
}()

// appendJSONStringBody is encoding/json's appendString without the quotes:
// \" \\ \b \f \n \r \t, \u00XX for other control characters (and <, >, &
// when html), \ufffd for each byte of invalid UTF-8, and \u2028, \u2029.
func appendJSONStringBody(b []byte, s string, html bool) []byte {
	const hex = "0123456789abcdef"
	safe := &jsonSafe
	if html {
		safe = &jsonHTMLSafe
	}
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
