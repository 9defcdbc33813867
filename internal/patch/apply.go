// SPDX-License-Identifier: Apache-2.0

package patch

import (
	"cmp"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/ftpatch/ftpatch/internal/render"
	"github.com/ftpatch/ftpatch/internal/safefile"
)

// Apply writes in with c applied to the target out (which may be the file
// in was opened from), as safefile promises: locked, atomic, owner, mode
// and attributes kept (a new file gets the input's permissions). The old
// bytes of every write are checked first; on any error out is left as it
// was and no temporary file remains.
//
// Linked files are streamed: the input is copied in the kernel
// (copy_file_range where the file system allows it, else in chunks) and the
// planned words are written over the copy, so memory does not grow with the
// file. Relocatable objects are rebuilt in memory.
func Apply(in *Input, c *Changes, out *safefile.Target) error {
	if in.Scan.Type == elf.ET_REL {
		b, err := in.rel.rewrite(c)
		if err != nil {
			return err
		}
		return out.Replace(func(f *os.File) error {
			_, err := f.Write(b)
			return err
		}, in.Mode)
	}
	src, err := os.Open(in.Path)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	spans := c.writes.spans()
	buf := make([]byte, 0, spanMax)
	// Check every old word before anything is created, one read per span.
	for _, sp := range spans.spans {
		if buf, err = spans.read(src, sp, buf); err != nil {
			return err
		}
	}
	return out.Replace(func(f *os.File) error {
		n, err := copyFile(f, src)
		if err != nil {
			return err
		}
		if n != st.Size() {
			return fmt.Errorf("%w: copied %d of %d bytes", ErrChanged, n, st.Size())
		}
		// Re-read each span (the check again, against what was just
		// copied from), patch it in memory and write it back in one call.
		for _, sp := range spans.spans {
			if buf, err = spans.read(src, sp, buf); err != nil {
				return err
			}
			spans.each(sp, func(w Write) bool {
				w.Put(buf[w.Off()-sp.off:])
				return true
			})
			if _, err := f.WriteAt(buf, sp.off); err != nil {
				return err
			}
		}
		return nil
	}, in.Mode)
}

// spanMax bounds the bytes read and written at once when patching a linked
// file, so memory does not grow with the size of its text.
const spanMax = 1 << 20

// span is a stretch of the file holding nearby planned writes: those of
// [lo, hi) in the order of a spanList.
type span struct {
	off, end int64
	lo, hi   int
}

// spanList groups a plan's writes, in file order, into spans of at most
// spanMax bytes. Sites are dense in .text, so a span usually holds
// thousands of words: one read and one write instead of one per word.
// Plans come in site order, which is file order in a linked file: spans
// then index the plan's sites, and nothing is copied. Otherwise (sections
// out of file order, say) the writes are made and sorted once, into sorted.
type spanList struct {
	ws     *writes
	sorted []Write // nil when the plan is in file order
	spans  []span
}

func (ws *writes) spans() *spanList {
	l := &spanList{ws: ws}
	inOrder, last := true, int64(-1)
	ws.each(0, len(ws.plans), fileOrder, func(_ int, w Write) bool {
		off := w.Off()
		inOrder = off >= last
		last = off + int64(w.Size())
		return inOrder
	})
	if !inOrder {
		l.sorted = make([]Write, 0, ws.n)
		ws.each(0, len(ws.plans), fileOrder, func(_ int, w Write) bool { l.sorted = append(l.sorted, w); return true })
		slices.SortStableFunc(l.sorted, func(a, b Write) int { return cmp.Compare(a.Off(), b.Off()) })
	}
	add := func(k int, off, end int64) {
		if n := len(l.spans); n > 0 && end-l.spans[n-1].off <= spanMax && off >= l.spans[n-1].end {
			l.spans[n-1].end, l.spans[n-1].hi = end, k+1
			return
		}
		l.spans = append(l.spans, span{off: off, end: end, lo: k, hi: k + 1})
	}
	if l.sorted != nil {
		for k := range l.sorted {
			w := &l.sorted[k]
			add(k, w.Off(), w.Off()+int64(w.Size()))
		}
		return l
	}
	// A site's words (within 28 bytes) go to one span.
	for k := range ws.plans {
		off, end := int64(-1), int64(-1)
		ws.each(k, k+1, fileOrder, func(_ int, w Write) bool {
			if off < 0 {
				off = w.Off()
			}
			end = w.Off() + int64(w.Size())
			return true
		})
		add(k, off, end)
	}
	return l
}

// each calls f with the writes of sp.
func (l *spanList) each(sp span, f func(w Write) bool) {
	if l.sorted != nil {
		for k := sp.lo; k < sp.hi; k++ {
			if !f(l.sorted[k]) {
				return
			}
		}
		return
	}
	l.ws.each(sp.lo, sp.hi, fileOrder, func(_ int, w Write) bool { return f(w) })
}

// read reads sp into buf and checks the old bytes of its writes, as
// Linux's ftrace_modify_code checks the old instruction before patching.
func (l *spanList) read(src *os.File, sp span, buf []byte) ([]byte, error) {
	buf = buf[:sp.end-sp.off]
	var err error
	if _, rerr := src.ReadAt(buf, sp.off); rerr != nil {
		l.each(sp, func(w Write) bool {
			err = fmt.Errorf("%s at %#x: reading file offsets %#x-%#x: %w", render.FuncName(w.Func()), w.Addr(), sp.off, sp.end, rerr)
			return false
		})
		return buf, err
	}
	l.each(sp, func(w Write) bool {
		got := buf[w.Off()-sp.off:][:w.Size()]
		if !w.Matches(got) {
			err = fmt.Errorf("%w: %s at %#x (%s): expected %s, found %s", ErrChanged, render.FuncName(w.Func()), w.Addr(), w.Slot, render.Word(w.OldBytes()), render.Word(got))
			return false
		}
		return true
	})
	return buf, err
}

// copyBuf is the chunk size when the kernel cannot copy for us.
const copyBuf = 1 << 20

// copyFile copies src from its start to dst. *os.File.ReadFrom uses
// copy_file_range (or splice/sendfile) when it can; its fallback copies in
// 1 MiB chunks.
func copyFile(dst, src *os.File) (int64, error) {
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := dst.ReadFrom(src)
	if err == nil {
		return n, nil
	}
	// Fall back to a plain chunked copy from where we are.
	if _, err := src.Seek(n, io.SeekStart); err != nil {
		return n, err
	}
	m, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, copyBuf))
	return n + m, err
}
