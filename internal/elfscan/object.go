// SPDX-License-Identifier: Apache-2.0

package elfscan

import (
	"debug/elf"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ftpatch/ftpatch/internal/input"
)

// Object is one opened input: its (decompressed) bytes, its *elf.File, and
// everything every command derives from them, each computed at most once,
// on first use, and safe for concurrent use:
//
//   - the symbol table (.symtab, else .dynsym), and .dynsym for the dynamic
//     relocations, read once into a compact index;
//   - the relocation index of an ET_REL file, by (section, offset);
//   - the dynamic relocations of a linked file, applied by one set of rules;
//   - the scan result.
//
// Malformed input never panics: debug/elf's panics become ErrMalformed.
// scan, patch and verify all take an Object; none of them reads symbols or
// relocations by itself.
type Object struct {
	Path        string
	Compression string // input.None for a plain file

	size   int64 // of the (decompressed) bytes; -1 when unknown
	r      io.ReaderAt
	closer io.Closer
	f      *elf.File
	// mem is the decompressed bytes of a compressed input, when they are
	// one slice (input.File.Bytes), until Close: sections are read from it
	// in place rather than copied. Nothing that outlives Close refers to
	// it (names are in the string table, a copy).
	mem []byte

	symOnce sync.Once
	syms    *Symtab
	symErr  error
	// sortBuf is the symbol sort's radixSort buffer, taken by the first
	// record sort (prepare): sized for the symbols, it usually fits the
	// records too, which need not allocate their own (~0.8 MiB for a
	// kernel image).
	sortBuf atomic.Pointer[[]keyed]

	dynOnce sync.Once
	dynsyms *Symtab
	dynErr  error

	relOnce sync.Once
	relocs  *Relocs
	relErr  error

	dynRelOnce sync.Once
	dynRelocs  *DynRelocs
	dynRelErr  error

	scanOnce sync.Once
	scan     *File
	scanErr  error
}

// Open opens the file at path, decompressing it when it is compressed (see
// input.Open), and checks it is an AArch64 ELF file (see NewObject). The
// caller closes the Object.
//
// A path a folder walk found without reading it is opened as Found: it is
// sniffed while it is opened (see input.OpenFound), and an error wrapping
// input.ErrNotELF says the file is not ELF after all, one wrapping
// ErrNotAArch64 that it is ELF for another machine, class or byte order
// (told from its first bytes, before it is parsed); either is a file to
// skip.
func Open(path string, origin ...Origin) (*Object, error) {
	open := input.Open
	if slices.Contains(origin, Found) {
		open = openFoundAArch64
	}
	return openWith(path, open)
}

// Origin says where a path Open opens came from.
type Origin uint8

const (
	Named Origin = iota // named by the user (the default)
	Found               // found by a folder walk, not read yet
)

// openFoundAArch64 is input.OpenFound, refusing what is not AArch64 ELF
// from its identification bytes.
func openFoundAArch64(path string) (*input.File, error) {
	in, err := input.OpenFound(path)
	if err != nil {
		return nil, err
	}
	if err := input.CheckIdentAt(in); err != nil {
		in.Close()
		return nil, err
	}
	return in, nil
}

func openWith(path string, open func(string) (*input.File, error)) (*Object, error) {
	in, err := open(path)
	if err != nil {
		return nil, err
	}
	o, err := NewObject(in, path)
	if err != nil {
		in.Close()
		return nil, err
	}
	o.Compression, o.size, o.closer, o.mem = in.Compression, in.Size, in, in.Bytes()
	return o, nil
}

// NewObject parses r as an ELF64 little-endian EM_AARCH64 file of type REL,
// EXEC or DYN. path is used in results and messages only. Close does not
// close r.
//
// NewObject opens nothing: it is the parser under the two ways to open an
// input, Open (a path to read, plain or compressed) and patch.Open (a file
// to rewrite in place, which must be plain and stays open until it is
// written), and the constructor for bytes a caller already holds.
func NewObject(r io.ReaderAt, path string) (*Object, error) {
	f, err := OpenELF(r)
	if err != nil {
		return nil, err
	}
	return &Object{Path: path, size: sizeOf(r), r: r, f: f}, nil
}

// sizeOf returns the size of what r reads, or -1.
func sizeOf(r io.ReaderAt) int64 {
	switch v := r.(type) {
	case *input.File:
		return v.Size
	case interface{ Size() int64 }:
		return v.Size()
	case *os.File:
		if st, err := v.Stat(); err == nil {
			return st.Size()
		}
	}
	return -1
}

// Size is the size of the (decompressed) bytes, or -1 when the reader
// NewObject was given cannot tell.
func (o *Object) Size() int64 { return o.size }

// ReadAt reads the (decompressed) bytes of the file.
func (o *Object) ReadAt(p []byte, off int64) (int, error) { return o.r.ReadAt(p, off) }

// Fd is the descriptor of the plain file the Object reads in place (see
// input.File.Fd), for a caller that maps the file rather than reading it;
// ok is false when the contents are in memory, or for an Object not made by
// Open.
func (o *Object) Fd() (fd int, ok bool) {
	if f, isFile := o.r.(*input.File); isFile && o.closer != nil {
		return f.Fd()
	}
	return -1, false
}

// Close releases the file Open opened. Views already computed (symbols,
// relocations, scan) stay usable; none can be computed afterwards.
func (o *Object) Close() error {
	if o.closer == nil {
		return nil
	}
	c := o.closer
	o.closer, o.mem = nil, nil
	return c.Close()
}

// Release closes the Object like Close and returns the memory of its
// symbol tables and decoded relocation tables for the next Object to
// reuse: for a caller that wants only the Scan result, which stays usable
// (its names are in the string table, never pooled). Nothing else the
// Object handed out (Symbols, DynSymbols, Relocs) may be used afterwards,
// nor the Object itself; a folder walk calls it once per file, so each
// file's tables need not be fresh memory.
func (o *Object) Release() error {
	err := o.Close()
	// The Once guards make the views safe to read here: a view still being
	// computed by another goroutine would be a use after Release.
	o.symOnce.Do(func() {})
	o.dynOnce.Do(func() {})
	o.relOnce.Do(func() {})
	if o.relocs != nil {
		o.relocs.recycle()
	}
	if o.syms != nil {
		o.syms.st.recycle()
	}
	if o.dynsyms != nil {
		o.dynsyms.st.recycle()
	}
	return err
}

// scratchPool holds the buffers withSection reads sections into.
var scratchPool sync.Pool

// withSection calls fn with the contents of section s, which fn must not
// keep (see sectionBytes).
func (o *Object) withSection(s *elf.Section, fn func(b []byte) error) error {
	b, release, err := o.sectionBytes(s)
	if err != nil {
		return err
	}
	defer release()
	return fn(b)
}

// sectionBytes returns the contents of section s until release is
// called: a view of the decompressed bytes when the input is in memory,
// else the section read into a pooled buffer. A section that cannot be
// read so (compressed, or running past the end of the file) is read by
// SafeData, which says what is wrong with it.
func (o *Object) sectionBytes(s *elf.Section) (b []byte, release func(), err error) {
	nop := func() {}
	if s.Type == elf.SHT_NOBITS || s.Size == 0 {
		return nil, nop, nil
	}
	end := s.Offset + s.Size
	if s.Flags&elf.SHF_COMPRESSED == 0 && end >= s.Offset && end <= 1<<40 {
		if o.mem != nil && end <= uint64(len(o.mem)) {
			return o.mem[s.Offset:end:end], nop, nil
		}
		if o.mem == nil && o.size >= 0 && end <= uint64(o.size) {
			p, _ := scratchPool.Get().(*[]byte)
			if p == nil || uint64(cap(*p)) < s.Size {
				b := make([]byte, s.Size)
				p = &b
			}
			b := (*p)[:s.Size]
			if n, _ := o.r.ReadAt(b, int64(s.Offset)); n == len(b) {
				return b, func() { scratchPool.Put(p) }, nil
			}
			scratchPool.Put(p)
		}
	}
	if b, err = SafeData(s); err != nil {
		return nil, nil, err
	}
	return b, nop, nil
}

// mapped returns the contents of section s mapped from a plain file read
// in place (input.File.Map: no copy, valid after Close), or nil: the input
// is in memory, or s is compressed, empty or not all in the file.
func (o *Object) mapped(s *elf.Section) []byte {
	in, ok := o.r.(*input.File)
	if !ok || o.closer == nil || o.mem != nil || s.Type == elf.SHT_NOBITS || s.Flags&elf.SHF_COMPRESSED != 0 || s.Size == 0 || s.Size > 1<<40 || s.Offset > 1<<40 {
		return nil
	}
	return in.Map(int64(s.Offset), int64(s.Size))
}

// ELF returns the parsed ELF file.
func (o *Object) ELF() *elf.File { return o.f }

// Rel reports whether the file is relocatable (ET_REL): its addresses are
// offsets in sections, and its values live in relocations.
func (o *Object) Rel() bool { return o.f.Type == elf.ET_REL }

// Bytes reads the whole file into memory (patch rewrites ET_REL objects
// whole). The size must be known.
func (o *Object) Bytes() ([]byte, error) {
	if o.size < 0 {
		return nil, fmt.Errorf("%w: size unknown", ErrMalformed)
	}
	b := make([]byte, o.size)
	if n, err := o.r.ReadAt(b, 0); n != len(b) {
		return nil, fmt.Errorf("reading %d bytes: %w", len(b), err)
	}
	return b, nil
}

// recovered turns a panic into an ErrMalformed error naming what was read.
func recovered(err *error, what string) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: %s: %v", ErrMalformed, what, p)
	}
}

// Symbols returns the symbol table: .symtab, else .dynsym, else an empty
// table. Relocation symbol index i is Sym(i) (0 is the null symbol).
func (o *Object) Symbols() (*Symtab, error) {
	o.symOnce.Do(func() {
		defer recovered(&o.symErr, "symbol table")
		var scratch []keyed
		st, sec, err := loadSymtab(o.f, o.mem, o.mapped, o.Rel(), &scratch)
		if err != nil {
			o.symErr = err
			return
		}
		o.syms = &Symtab{st: st, sec: sec}
		o.sortBuf.Store(&scratch)
	})
	return o.syms, o.symErr
}

// DynSymbols returns .dynsym (the table dynamic relocations index), or an
// empty table.
func (o *Object) DynSymbols() (*Symtab, error) {
	o.dynOnce.Do(func() {
		defer recovered(&o.dynErr, "dynamic symbol table")
		var sec *elf.Section
		for _, s := range o.f.Sections {
			if s.Type == elf.SHT_DYNSYM {
				sec = s
				break
			}
		}
		if sec == nil {
			o.dynsyms = &Symtab{st: &symtab{}}
			return
		}
		var scratch []keyed
		st, err := loadSymtabSection(o.f, o.mem, o.mapped, sec, o.Rel(), &scratch)
		if err != nil {
			o.dynErr = err
			return
		}
		o.dynsyms = &Symtab{st: st, sec: sec}
	})
	return o.dynsyms, o.dynErr
}

// Scan returns the file's patch sites (found as scanSites says), computed
// once and shared: callers must not modify the result.
func (o *Object) Scan() (*File, error) {
	o.scanOnce.Do(func() {
		defer recovered(&o.scanErr, "scan")
		o.scan, o.scanErr = o.scanSites()
	})
	return o.scan, o.scanErr
}

// FileOffset maps an address of a linked file to its file offset (see
// FileOffset).
func (o *Object) FileOffset(addr uint64) (int64, error) { return FileOffset(o.f, addr) }
