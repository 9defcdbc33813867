// SPDX-License-Identifier: Apache-2.0

package verify

import (
	"cmp"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/verify/uc"
)

const (
	pageSize = 0x1000
	// maxImage bounds the memory verify maps for one file: hostile segment
	// sizes must give an error, not an attempt to allocate terabytes.
	maxImage = 4 << 30
	// relBase is where ET_REL sections are placed.
	relBase = 0x40000000
)

// ErrImage reports a file verify cannot lay out in memory.
var ErrImage = errors.New("cannot load image")

// region is one mapping of the emulated address space. Its bytes live in
// memory outside the Go heap (mmap), shared by every worker's engine: the
// engines map it without write permission, so no site can change what
// another sees.
type region struct {
	addr, size uint64
	prot       int
	name       string
	mem        []byte
}

// Image is a file laid out in emulated memory, with the relocations the
// patch sites need applied, verify's stand-ins added, and each site's
// addresses made absolute.
type Image struct {
	Path    string
	Type    elf.Type
	regions []*region // sorted by addr

	// Stand-ins, in a synthetic region after the file's.
	standinBase uint64
	standinFunc uint64 // op->func of the stand-in op: a RET, hooked
	standinOps  uint64 // the stand-in struct ftrace_ops: .quad standinFunc
	ourTramp    uint64 // the tool's call-ops trampoline
	ourTrampAlt uint64 // its second entry (encode.AltEntryName)
	ourClassic  uint64 // the tool's classic trampoline, op = standinOps
	sentinel    uint64 // X30 on entry: the traced function's parent
	stackBase   uint64 // per-engine private stack (not in regions)

	trampName string // --trampoline as given
	tramp     uint64 // where enabled BLs must go; 0 when unresolved
	trampErr  string // why tramp is unresolved
	// classicFileErr says why a classic image's own trampoline cannot run
	// (classicfile.go); "" when it can.
	classicFileErr string
	// The trampoline's second entry, for 5,3 sites with BTI whose entry
	// is 4 mod 8 (encode.LiteralOffsetAlt): resolved when such a site is
	// enabled.
	trampAlt    uint64
	trampAltErr string

	sites []site
	tally tally           // of sites, as bind left them
	funcs map[uint64]bool // op->func addresses to intercept
	// stops is the BRKs planted for chained runs while Check's pool runs
	// (see stopSet); nil otherwise. checkMu makes Checks of one image take
	// turns: each plants in, and restores, the image's bytes.
	stops   *stopSet
	checkMu sync.Mutex
	// retX9 are the `RET X9` words of the tool's trampolines, where each
	// returns into the traced function: chained runs trap there (stopSet).
	retX9 []uint64

	directs         map[uint64]string // legal direct trampolines (direct.go); nil without --direct
	directOff       int64             // op->direct_call offset; 0 without --direct
	directRole      string            // how failures name the legal direct trampolines' role (Options.Names)
	standinDirectAt uint64
	rel             *relLayout // ET_REL: where sections went (nil when linked)

	// dyn is a linked file's dynamic relocations when they are applied
	// only where read (applyDynRelocs); nil when all are in the bytes.
	dyn *elfscan.DynRelocs
	// relocated says applyDynRelocs wrote them all into the bytes.
	relocated bool
	// opMu serialises the reads and relocations of ops' first words by
	// bind's goroutines (binder.checkStatic).
	opMu sync.Mutex

	// pieces are where a linked file's bytes went: each PT_LOAD's file
	// part (nil for ET_REL, whose sections are copied where they are placed).
	pieces []filePiece
}

// filePiece is n bytes of the image file at off, placed at vaddr.
type filePiece struct {
	vaddr uint64
	off   int64
	n     uint64
}

// stackSize is the size of each engine's stack: 4 MiB, mapped before
// anything else, so that it has Unicorn's first 4 MiB of RAM offsets to
// itself. Unicorn 2.0.1 sends every guest store to RAM through QEMU's
// not-dirty slow path (its dirty-memory bitmap is stubbed out: every page
// stays "clean"), and that path looks the stored page up in the
// translation-block page table by RAM offset: a page whose 4 MiB window of
// offsets also holds translated code (the stack mapped after the image
// shares one with verify's trampolines) costs a tree insertion and a code
// bitmap check per store, about 1,400 host instructions; alone in its
// window, about 850. The trampoline stores 17 times per enabled site: a
// fifth of the floor's instructions there (callgrind, 10,000 enabled bench
// sites: 482 M -> 384 M). Only the pages a run touches are ever allocated.
const stackSize = 4 << 20

const (
	standinSize  = 0x4000
	offFunc      = 0x0
	offTramp     = 0x100
	offClassic   = 0x600
	offOps       = 0x1000 // second page: read-only data
	offSentinel  = 0x2000 // never executed: a third, unmapped page
	standinRegns = 0x2000 // mapped part of the stand-in area
)

// site is an elfscan.Site, where its words are in the image and what
// loading found. A kernel has ~50k (a distribution's images up to ~200k),
// and every one is held from loading to the report, so it is small (48
// bytes): its addresses follow from the Site's and base (methods entry,
// callSite, literal, spare).
type site struct {
	*elfscan.Site
	base   uint64 // added to the Site's addresses: an ET_REL section's place; 0 when linked
	op     uint64 // expected X2 at op->func; 0 when unknown
	static *Failure
	direct uint64 // the direct trampoline the site must reach; 0: none
	index  int32
	skip   bool // no-function: not run, counted in Report.Skipped
}

func (s *site) entry() uint64    { return s.Site.Entry() + s.base }
func (s *site) callSite() uint64 { return s.Site.CallSite() + s.base }
func (s *site) spare() uint64    { return s.Site.Spare() + s.base } // call-ops-5-3: the spare word

// literal is the literal's address; 0 for a classic site.
func (s *site) literal() uint64 {
	if !s.Layout.HasLiteral() {
		return 0
	}
	return s.Site.Literal() + s.base
}

func (img *Image) Close() error {
	var errs []error
	for _, r := range img.regions {
		if r.mem != nil {
			errs = append(errs, syscall.Munmap(r.mem))
			r.mem = nil
		}
	}
	return errors.Join(errs...)
}

func (img *Image) addRegion(addr, size uint64, prot int, name string) (*region, error) {
	if size == 0 || size > maxImage || addr%pageSize != 0 || size%pageSize != 0 || addr+size < addr {
		return nil, fmt.Errorf("%w: region %s at %#x size %#x", ErrImage, name, addr, size)
	}
	var total uint64
	for _, r := range img.regions {
		total += r.size
		if addr < r.addr+r.size && r.addr < addr+size {
			return nil, fmt.Errorf("%w: region %s at %#x overlaps %s", ErrImage, name, addr, r.name)
		}
	}
	if total+size > maxImage {
		return nil, fmt.Errorf("%w: more than %d bytes to map", ErrImage, maxImage)
	}
	mem, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("%w: region %s size %#x: %w", ErrImage, name, size, err)
	}
	r := &region{addr: addr, size: size, prot: prot, name: name, mem: mem}
	i := sort.Search(len(img.regions), func(i int) bool { return img.regions[i].addr > addr })
	img.regions = append(img.regions, nil)
	copy(img.regions[i+1:], img.regions[i:])
	img.regions[i] = r
	return r, nil
}

func (img *Image) find(addr uint64) *region {
	i := sort.Search(len(img.regions), func(i int) bool { return img.regions[i].addr+img.regions[i].size > addr })
	if i < len(img.regions) && img.regions[i].addr <= addr {
		return img.regions[i]
	}
	return nil
}

// bytes returns the n bytes at addr, or nil when they are not all mapped.
func (img *Image) bytes(addr, n uint64) []byte {
	r := img.find(addr)
	if r == nil || addr+n > r.addr+r.size || addr+n < addr {
		return nil
	}
	return r.mem[addr-r.addr : addr-r.addr+n]
}

func (img *Image) read32(addr uint64) (uint32, bool) {
	b := img.bytes(addr, 4)
	if b == nil {
		return 0, false
	}
	return binary.LittleEndian.Uint32(b), true
}

func (img *Image) read64(addr uint64) (uint64, bool) {
	b := img.bytes(addr, 8)
	if b == nil {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b), true
}

func (img *Image) write32(addr uint64, w uint32) bool {
	b := img.bytes(addr, 4)
	if b != nil {
		binary.LittleEndian.PutUint32(b, w)
	}
	return b != nil
}

func (img *Image) write64(addr uint64, v uint64) bool {
	b := img.bytes(addr, 8)
	if b != nil {
		binary.LittleEndian.PutUint64(b, v)
	}
	return b != nil
}

func (img *Image) isCode(addr uint64) bool {
	r := img.find(addr)
	return r != nil && r.prot&uc.PROT_EXEC != 0 && addr%4 == 0
}

func (img *Image) end() uint64 {
	var end uint64
	for _, r := range img.regions {
		end = max(end, r.addr+r.size)
	}
	return end
}

// addStandins maps verify's own code and data after the file's regions:
// the stand-in op and its func, and the tool's trampolines.
func (img *Image) addStandins() error {
	base := (img.end() + 0x10000 + 0xffff) &^ 0xffff
	img.standinBase = base
	img.standinFunc = base + offFunc
	img.standinOps = base + offOps
	img.ourTramp = base + offTramp
	img.ourClassic = base + offClassic
	img.sentinel = base + offSentinel
	img.stackBase = base + standinSize
	if _, err := img.addRegion(base, offOps, uc.PROT_READ|uc.PROT_EXEC, "verify stand-in code"); err != nil {
		return err
	}
	if _, err := img.addRegion(base+offOps, standinRegns-offOps, uc.PROT_READ, "verify stand-in ops"); err != nil {
		return err
	}
	img.write32(img.standinFunc, encode.RetX30) // the hook answers before it runs
	img.write64(img.standinOps, img.standinFunc)
	tr, err := encode.Trampoline(encode.TrampolineOptions{DirectCalls: img.directOff != 0, DirectCallOffset: img.directOff})
	if err != nil {
		return fmt.Errorf("trampoline: %w", err)
	}
	if err := img.place(img.ourTramp, tr, offClassic-offTramp); err != nil {
		return err
	}
	for _, e := range tr.Entries {
		if e.Name == encode.AltEntryName(tr.Name) {
			img.ourTrampAlt = img.ourTramp + 4*uint64(e.Index)
		}
	}
	cl, err := encode.Trampoline(encode.TrampolineOptions{Classic: true, OpsSym: "verify_standin_ops"})
	if err != nil {
		return fmt.Errorf("classic trampoline: %w", err)
	}
	return img.place(img.ourClassic, cl, offOps-offClassic)
}

// place writes a Program at addr, resolving its fixups against the
// stand-in ops (the only symbol the tool's trampolines refer to).
func (img *Image) place(addr uint64, p encode.Program, room uint64) error {
	if uint64(4*len(p.Words)) > room {
		return fmt.Errorf("%w: trampoline of %d words does not fit", ErrImage, len(p.Words))
	}
	words := append([]uint32(nil), p.Words...)
	for _, f := range p.Fixups {
		if f.Index < 0 || f.Index >= len(words) {
			return fmt.Errorf("%w: trampoline fixup at word %d", ErrImage, f.Index)
		}
		w, pc, to := words[f.Index], addr+4*uint64(f.Index), img.standinOps+uint64(f.Addend)
		var err error
		switch f.Kind {
		case encode.FixupAdrpPage:
			w, err = encode.ADRP{Rd: encode.Reg(w & 31), From: pc, To: to}.Encode()
		case encode.FixupAddLo12:
			w, err = encode.AddLo12(encode.Reg(w&31), encode.Reg(w>>5&31), to).Encode()
		default:
			err = fmt.Errorf("unknown fixup %v", f.Kind)
		}
		if err != nil {
			return fmt.Errorf("%w: trampoline word %d: %w", ErrImage, f.Index, err)
		}
		words[f.Index] = w
	}
	ret, err := encode.RET{Rn: encode.X9}.Encode()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrImage, err)
	}
	for i, w := range words {
		img.write32(addr+4*uint64(i), w)
		if w == ret {
			img.retX9 = append(img.retX9, addr+4*uint64(i))
		}
	}
	return nil
}

func protOf(flags elf.ProgFlag) int {
	p := 0
	if flags&elf.PF_R != 0 {
		p |= uc.PROT_READ
	}
	if flags&elf.PF_X != 0 {
		p |= uc.PROT_EXEC | uc.PROT_READ
	}
	return p // never PROT_WRITE: see region
}

// loadLinked maps the PT_LOAD segments of an ET_EXEC or ET_DYN file at
// their addresses, page-rounded; segments sharing a page share a region.
// fd, when >= 0, is the file's descriptor: its pages are mapped rather than
// read (placeFile).
func (img *Image) loadLinked(f *elf.File, r io.ReaderAt, fd int) error {
	type span struct {
		lo, hi uint64
		prot   int
	}
	var spans []span
	var loads []*elf.Prog
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Memsz == 0 {
			continue
		}
		if p.Filesz > p.Memsz || p.Vaddr+p.Memsz < p.Vaddr || p.Memsz > maxImage {
			return fmt.Errorf("%w: PT_LOAD at %#x: filesz %#x memsz %#x", elfscan.ErrMalformed, p.Vaddr, p.Filesz, p.Memsz)
		}
		loads = append(loads, p)
		spans = append(spans, span{p.Vaddr &^ (pageSize - 1), (p.Vaddr + p.Memsz + pageSize - 1) &^ (pageSize - 1), protOf(p.Flags)})
	}
	if len(spans) == 0 {
		return fmt.Errorf("%w: no PT_LOAD segment", ErrImage)
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].lo < spans[j].lo })
	merged := spans[:1]
	for _, s := range spans[1:] {
		last := &merged[len(merged)-1]
		if s.lo <= last.hi {
			last.hi = max(last.hi, s.hi)
			last.prot |= s.prot
			continue
		}
		merged = append(merged, s)
	}
	for _, s := range merged {
		if _, err := img.addRegion(s.lo, s.hi-s.lo, s.prot, fmt.Sprintf("segment at %#x", s.lo)); err != nil {
			return err
		}
	}
	for _, p := range loads {
		dst := img.bytes(p.Vaddr, p.Filesz)
		if dst == nil {
			return fmt.Errorf("%w: PT_LOAD at %#x", ErrImage, p.Vaddr)
		}
		if err := placeFile(dst, r, int64(p.Off), fd); err != nil {
			return fmt.Errorf("%w: PT_LOAD at %#x: reading %d bytes at offset %#x: %w", elfscan.ErrMalformed, p.Vaddr, len(dst), p.Off, err)
		}
		if p.Filesz > 0 {
			img.pieces = append(img.pieces, filePiece{p.Vaddr, int64(p.Off), p.Filesz})
		}
	}
	return nil
}

// placeFile puts the len(dst) bytes of the file at off into dst (memory of
// a region): the whole host pages of it mapped from the file copy-on-write
// when fd is the file's descriptor (>= 0) and dst and off are congruent
// modulo the page size, the rest read. A mapped page costs a read fault
// when a run or the loader first reads it (the kernel maps its neighbours
// with it) and a copy only if something writes it (a relocation, a BRK):
// reading a kernel's segments whole cost ~30 MB of copies and a fault per
// page, about a sixth of verify's cpu on a 6.12 vmlinux.
func placeFile(dst []byte, r io.ReaderAt, off int64, fd int) error {
	hp := uint64(os.Getpagesize())
	a := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(dst))))
	n := uint64(len(dst))
	if fd >= 0 && n >= hp && (a-uint64(off))%hp == 0 {
		lo, hi := (a+hp-1)/hp*hp, (a+n)/hp*hp
		if lo < hi {
			_, _, errno := syscall.Syscall6(syscall.SYS_MMAP, uintptr(lo), uintptr(hi-lo), syscall.PROT_READ|syscall.PROT_WRITE,
				syscall.MAP_PRIVATE|syscall.MAP_FIXED, uintptr(fd), uintptr(uint64(off)+lo-a))
			if errno == 0 {
				head, tail := lo-a, a+n-hi
				if err := readFull(dst[:head], r, off); err != nil {
					return err
				}
				return readFull(dst[n-tail:], r, off+int64(n-tail))
			}
		}
	}
	return readFull(dst, r, off)
}

func readFull(dst []byte, r io.ReaderAt, off int64) error {
	if len(dst) == 0 {
		return nil
	}
	if n, err := r.ReadAt(dst, off); n != len(dst) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// applyDynRelocs applies the dynamic relocations the object resolves (see
// elfscan.DynRelocs), as a kernel relocates itself at boot: images linked
// with --no-apply-dynamic-relocs keep their literals, and the ops' function
// pointers, only there. The load bias is 0. It returns the address of each
// relocation that is not resolved, to fail sites that hold one.
//
// With all false, it writes none of them yet: a run through the tool's
// trampoline reads no relocated word but an enabled site's literal and its
// op's first word (op->func), which bind relocates as it reads them
// (relocate), and the budget engine, which reports what a run that went
// wrong did, maps copies with every relocation applied (stopSet.pristine).
// Applying a kernel's ~100k relocations up front copied most of its data
// pages (copy-on-write) for words no run reads. With all (the file's own
// trampoline runs, or direct trampolines, which read what they like), every
// one is applied now.
func (img *Image) applyDynRelocs(o *elfscan.Object, all bool) (map[uint64]elf.R_AARCH64, error) {
	d, err := o.DynRelocs()
	if err != nil {
		return nil, err
	}
	other := map[uint64]elf.R_AARCH64{}
	for _, r := range d.Unresolved() { // few: no walk over the ~100k others
		other[r.Off] = r.Type()
	}
	if all {
		for _, r := range d.All() {
			if r.Resolved {
				img.write64(r.Off, r.Value)
				img.relocated = true
			}
		}
	} else if len(d.All()) > 0 {
		img.dyn = d
	}
	return other, nil
}

// relocate applies the dynamic relocation of the 8-byte word at addr, if
// the object resolves one there and applyDynRelocs left it for later.
// *hint is where the caller's last lookup ended: lookups in increasing
// address order (literals, site by site) or at one address (an op) walk a
// step or none, others search.
func (img *Image) relocate(addr uint64, hint *int) {
	if img.dyn == nil {
		return
	}
	rels := img.dyn.All()
	i := *hint
	if i > len(rels) || i > 0 && rels[i-1].Off >= addr {
		i = 0 // behind: search
	}
	for k := 0; i < len(rels) && rels[i].Off < addr; i, k = i+1, k+1 {
		if k == 8 {
			i, _ = slices.BinarySearchFunc(rels, addr, func(x elfscan.DynReloc, a uint64) int { return cmp.Compare(x.Off, a) })
			break
		}
	}
	*hint = i
	r, ok := elfscan.DynReloc{}, false
	for ; i < len(rels) && rels[i].Off == addr; i++ {
		r, ok = rels[i], true // the last one there decides
	}
	if ok && r.Resolved {
		if v, _ := img.read64(addr); v != r.Value {
			img.write64(addr, r.Value)
		}
	}
}

// relocateAll applies, in mem (a copy of region r's bytes), every dynamic
// relocation applyDynRelocs left for later: what the budget engine maps.
func (img *Image) relocateAll(r *region, mem []byte) {
	if img.dyn == nil {
		return
	}
	rels := img.dyn.All()
	i, _ := slices.BinarySearchFunc(rels, r.addr, func(x elfscan.DynReloc, a uint64) int { return cmp.Compare(x.Off, a) })
	for ; i < len(rels) && rels[i].Off < r.addr+r.size; i++ {
		if x := rels[i]; x.Resolved && x.Off+8 <= r.addr+r.size {
			binary.LittleEndian.PutUint64(mem[x.Off-r.addr:], x.Value)
		}
	}
}

// hasRelocs reports whether r holds a relocation applyDynRelocs left for
// later.
func (img *Image) hasRelocs(r *region) bool {
	if img.dyn == nil {
		return false
	}
	rels := img.dyn.All()
	i, _ := slices.BinarySearchFunc(rels, r.addr, func(x elfscan.DynReloc, a uint64) int { return cmp.Compare(x.Off, a) })
	for ; i < len(rels) && rels[i].Off < r.addr+r.size; i++ {
		if rels[i].Resolved {
			return true
		}
	}
	return false
}

// resolveLinked finds --trampoline in a linked file: 0x… or a defined
// symbol (see elfscan.Object.Lookup).
func resolveLinked(o *elfscan.Object, name string) (uint64, error) {
	if a, ok := parseAddr(name); ok {
		return a, nil
	}
	if o == nil {
		return 0, fmt.Errorf("trampoline symbol %q: no symbol table", name)
	}
	s, err := o.Lookup(name)
	if err != nil {
		return 0, fmt.Errorf("trampoline: %w", err)
	}
	return s.Value, nil
}

func parseAddr(s string) (uint64, bool) {
	if !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		return 0, false
	}
	v, err := strconv.ParseUint(s[2:], 16, 64)
	return v, err == nil
}
