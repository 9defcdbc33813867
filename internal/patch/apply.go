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
	spans := writeSpans(c.Writes)
	buf := make([]byte, 0, spanMax)
	// Check every old word before anything is created, one read per span.
	for _, sp := range spans {
		if buf, err = readSpan(src, sp, buf); err != nil {
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
		for _, sp := range spans {
			if buf, err = readSpan(src, sp, buf); err != nil {
				return err
			}
			for _, w := range sp.writes {
				w.Put(buf[w.Off()-sp.off:])
			}
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

// span is a stretch of the file holding nearby planned writes.
type span struct {
	off    int64
	end    int64
	writes []*Write // in file order
}

// writeSpans groups the writes, in file order, into spans of at most
// spanMax bytes. Sites are dense in .text, so a span usually holds
// thousands of words: one read and one write instead of one per word.
func writeSpans(ws []Write) []span {
	sorted := make([]*Write, len(ws))
	for i := range ws {
		sorted[i] = &ws[i]
	}
	byOff := func(a, b *Write) int { return cmp.Compare(a.Off(), b.Off()) }
	if !slices.IsSortedFunc(sorted, byOff) { // plans come in site order, mostly sorted
		slices.SortFunc(sorted, byOff)
	}
	var out []span
	lo := 0
	for i, w := range sorted {
		off := w.Off()
		end := off + int64(w.Size())
		if n := len(out); n > 0 && end-out[n-1].off <= spanMax && off >= out[n-1].end {
			out[n-1].end = end
			out[n-1].writes = sorted[lo : i+1]
			continue
		}
		lo = i
		out = append(out, span{off: off, end: end, writes: sorted[i : i+1]})
	}
	return out
}

// readSpan reads sp into buf and checks the old bytes of its writes, as
// Linux's ftrace_modify_code checks the old instruction before patching.
func readSpan(src *os.File, sp span, buf []byte) ([]byte, error) {
	buf = buf[:sp.end-sp.off]
	if _, err := src.ReadAt(buf, sp.off); err != nil {
		w := sp.writes[0]
		return buf, fmt.Errorf("%s at %#x: reading file offsets %#x-%#x: %w", render.FuncName(w.Func()), w.Addr(), sp.off, sp.end, err)
	}
	for _, w := range sp.writes {
		got := buf[w.Off()-sp.off:][:w.Size()]
		if !w.Matches(got) {
			return buf, fmt.Errorf("%w: %s at %#x (%s): expected %s, found %s", ErrChanged, render.FuncName(w.Func()), w.Addr(), w.Slot, render.Word(w.OldBytes()), render.Word(got))
		}
	}
	return buf, nil
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
