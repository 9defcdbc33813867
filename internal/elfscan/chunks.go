// SPDX-License-Identifier: Apache-2.0

package elfscan

import (
	"context"
	"debug/elf"
	"math"
	"runtime"

	"github.com/ftpatch/ftpatch/internal/pool"
)

// A Chunk is a run of consecutive sites of one file's scan, in the scan's
// order (the order File.Sites has). Its Sites are valid only until the
// call they are passed to returns: the buffer is reused.
type Chunk struct {
	Path  string   // the file, as given
	Type  elf.Type // the file's ELF type
	Index int      // 0 for the first chunk, then 1, 2, …
	Start int      // index in the whole scan of Sites[0]
	Sites []Site
	// FileProblems are the file's own problems (File.FileProblems), on
	// the first chunk only.
	FileProblems []Problem
}

// ScanChunks scans o as Object.Scan does, and hands its sites over in
// chunks of about chunk sites (at least one chunk, maybe empty): work(c)
// runs on up to GOMAXPROCS goroutines, and emit gets work's results on the
// calling goroutine in chunk order. A large linked file is never held
// whole: its sites are built, sorted and handed over chunk by chunk, each
// worker reusing its buffers, so its []Site never exists at once. Other
// files (ET_REL, small ones, ones whose site words may not all be there)
// are scanned whole, then cut. o's own scan (Object.Scan) is neither used
// nor kept.
//
// A malformed file's error is found before work first runs (words that
// might be missing send the file down the whole-file path); an error from
// work or emit ends the scan and is returned as it is. ScanChunks returns
// the number of sites.
func ScanChunks[R any](o *Object, chunk int, work func(Chunk) (R, error), emit func(R) error) (sites int, err error) {
	chunk = max(chunk, 1)
	path := o.Path
	sc, recs, dups, err := o.prepare()
	if err != nil {
		return 0, err
	}
	bounds := sc.streamChunks(recs, chunk)
	if bounds == nil {
		out := &File{Path: path, Type: sc.f.Type, Sites: newSites(len(recs)), fileProblems: sc.zeroedEntries(len(recs))}
		ordered, err := sc.sites(out.Sites, recs, dups)
		if err != nil {
			return 0, err
		}
		if !ordered {
			sortSites(out.Sites)
		}
		return len(out.Sites), Chunks(out, chunk, work, emit)
	}
	chunks := len(bounds) - 1
	workers := min(runtime.GOMAXPROCS(0), chunks)
	// Each worker builds with its own copy of the scanner (reader window,
	// lookup hint) and its own site buffer, taken from builders.
	type builder struct {
		sc    *scanner
		sites []Site
	}
	builders := make(chan *builder, workers)
	for range workers {
		c := *sc
		st := *sc.st
		c.st, c.rd = &st, chunkReader{r: sc.r}
		builders <- &builder{sc: &c}
	}
	err = pool.Ordered(context.Background(), chunks, workers,
		func(_ context.Context, k int) (R, error) {
			b := <-builders
			defer func() { builders <- b }()
			lo, hi := bounds[k], bounds[k+1]
			if cap(b.sites) < hi-lo {
				b.sites = newSites(hi - lo)
			}
			part := b.sites[:hi-lo]
			ordered, err := b.sc.buildSites(part, recs, lo, dups)
			if err != nil {
				var zero R
				return zero, err
			}
			if !ordered {
				sortSites(part)
			}
			return work(Chunk{Path: path, Type: sc.f.Type, Index: k, Start: lo, Sites: part})
		},
		func(_ int, res R, err error) error {
			if err != nil {
				return err
			}
			return emit(res)
		})
	if err != nil {
		return 0, err
	}
	return len(recs), nil
}

// Chunks hands f's sites over as ScanChunks does: in chunks of about chunk
// sites (at least one chunk, maybe empty), work on up to GOMAXPROCS
// goroutines, emit on the calling goroutine in chunk order. A file of one
// chunk is handed over on the calling goroutine.
func Chunks[R any](f *File, chunk int, work func(Chunk) (R, error), emit func(R) error) error {
	chunk = max(chunk, 1)
	n := len(f.Sites)
	chunks := max(1, (n+chunk-1)/chunk)
	at := func(k int) Chunk {
		lo := k * chunk
		c := Chunk{Path: f.Path, Type: f.Type, Index: k, Start: lo, Sites: f.Sites[lo:min(lo+chunk, n)]}
		if k == 0 {
			c.FileProblems = f.fileProblems
		}
		return c
	}
	workers := min(runtime.GOMAXPROCS(0), chunks)
	if workers <= 1 {
		for k := range chunks {
			res, err := work(at(k))
			if err != nil {
				return err
			}
			if err := emit(res); err != nil {
				return err
			}
		}
		return nil
	}
	return pool.Ordered(context.Background(), chunks, workers,
		func(_ context.Context, k int) (R, error) { return work(at(k)) },
		func(_ int, res R, err error) error {
			if err != nil {
				return err
			}
			return emit(res)
		})
}

// streamChunks returns where ScanChunks cuts recs into chunks (the start
// of each, then len(recs)), or nil when the file must be scanned whole: an
// ET_REL file, a small one, or one whose site words may not all be there
// (so that no error can come after the first chunk is handed over).
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
