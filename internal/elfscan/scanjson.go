package elfscan

import (
	"context"
	"debug/elf"
	"io"
	"math"
	"runtime"
	"strconv"

	"github.com/ftpatch/ftpatch/internal/pool"
)

// ScanJSON scans the ELF file read from r and writes its --json line to w:
// the bytes Scan followed by File.WriteJSON would write. It returns the
// number of sites and of problems. A large linked file is never held
// whole: its sites are built, sorted and encoded in chunks, on up to
// GOMAXPROCS goroutines, each reusing its buffers, and written in order,
// so neither its []Site nor its JSON exist at once.
//
// A malformed file's error is found before anything is written (words
// that might be missing send the file down the whole-file path); an error
// from w is returned as it is.
func ScanJSON(r io.ReaderAt, path string, w io.Writer) (sites, problems int, err error) {
	return scanJSON(r, path, w, jsonChunk)
}

// scanJSON is ScanJSON with chunks of about chunk sites (tests cut small
// files into many).
func scanJSON(r io.ReaderAt, path string, w io.Writer, chunk int) (sites, problems int, err error) {
	sc, recs, dups, err := prepare(r)
	if err != nil {
		return 0, 0, err
	}
	bounds := sc.streamChunks(recs, chunk)
	if bounds == nil {
		out := &File{Path: path, Type: sc.f.Type, Sites: make([]Site, len(recs))}
		if err := sc.sites(out.Sites, recs, dups); err != nil {
			return 0, 0, err
		}
		sortSites(out.Sites)
		return len(out.Sites), out.Problems(), out.WriteJSON(w)
	}
	head := &File{Path: path, Type: sc.f.Type}
	chunks := len(bounds) - 1
	workers := min(runtime.GOMAXPROCS(0), chunks)
	// Each worker builds with its own copy of the scanner (reader window,
	// lookup hint), taken from scanners; chunk buffers are recycled, at
	// most the pool's window of them in use at once.
	scanners := make(chan *scanner, workers)
	for range workers {
		c := *sc
		st := *sc.st
		c.st, c.rd = &st, chunkReader{r: sc.r}
		scanners <- &c
	}
	type buffers struct {
		b     []byte
		sites []Site
	}
	type result struct {
		buf      *buffers
		problems int
	}
	free := newFreeList(func() *buffers { return &buffers{b: make([]byte, 0, 320*chunk)} })
	err = pool.Ordered(context.Background(), chunks, workers,
		func(_ context.Context, k int) (result, error) {
			sc := <-scanners
			defer func() { scanners <- sc }()
			buf := free.get()
			lo, hi := bounds[k], bounds[k+1]
			if cap(buf.sites) < hi-lo {
				buf.sites = make([]Site, hi-lo)
			}
			part := buf.sites[:hi-lo]
			if err := sc.buildSites(part, recs, lo, dups); err != nil {
				free.put(buf)
				return result{}, err
			}
			sortSites(part)
			b := buf.b[:0]
			if k == 0 {
				b = head.appendHead(b, false)
			}
			n := 0
			for i := range part {
				if lo+i > 0 {
					b = append(b, ',')
				}
				b = part[i].appendJSON(b, false, false)
				n += len(part[i].Problems())
			}
			buf.b = b
			return result{buf: buf, problems: n}, nil
		},
		func(_ int, res result, err error) error {
			if err != nil {
				return err
			}
			_, err = w.Write(res.buf.b)
			problems += res.problems
			free.put(res.buf)
			return err
		})
	if err != nil {
		return 0, 0, err
	}
	b := strconv.AppendInt([]byte(`],"problems":`), int64(problems), 10)
	_, err = w.Write(append(b, "}\n"...))
	return len(recs), problems, err
}

// streamChunks returns where ScanJSON cuts recs into chunks (the start of
// each, then len(recs)), or nil when the file must be scanned whole: an
// ET_REL file, a small one, or one whose site words may not all be there
// (so that no error can come after the first write).
//
// A site's entry is its record -4, +0 or +8, so sites of records more than
// 12 bytes apart, or in different sections, keep their order: chunks cut
// there sort alone as the whole would.
func (sc *scanner) streamChunks(recs []record, chunk int) []int {
	if sc.rel || len(recs) <= 2*chunk {
		return nil
	}
	last := uint32(0)
	for i, rec := range recs {
		if rec.key == 0 || (i > 0 && rec.key == last) {
			continue
		}
		last = rec.key
		s := sc.f.Sections[rec.key]
		if s.Type == elf.SHT_NOBITS || s.Size == 0 {
			continue
		}
		end := s.Offset + s.Size
		if end < s.Offset || end > math.MaxInt64 {
			return nil
		}
		var b [1]byte
		if n, _ := sc.r.ReadAt(b[:], int64(end-1)); n != 1 {
			return nil
		}
	}
	bounds := []int{0}
	for i := 1; i < len(recs); i++ {
		a, b := recs[i-1], recs[i]
		if i-bounds[len(bounds)-1] >= chunk &&
			(a.key != b.key || a.value <= math.MaxUint64-8 && b.value-a.value > 12) {
			bounds = append(bounds, i)
		}
	}
	return append(bounds, len(recs))
}
