// SPDX-License-Identifier: Apache-2.0

// Package pairtest makes pairs of files for tests of the live-safety diff
// and of verify's intermediate runs: it writes site words itself (and, for
// ET_REL, rewrites the object with new relocations and symbols), so the
// checks are tested independently of the patcher. The same means make
// synthetic images with sites where a test wants them (Synth, SynthAt) and
// varied scans for the encoders' tests (Varied). It is for tests only.
package pairtest

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/elfwrite"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/testutil/scantest"
)

// Ops is the ops value pairs' enabled sites hold.
const Ops uint64 = 0x1234_5678_9abc_def0

// Scan scans path or fails the test.
func Scan(t testing.TB, path string) *elfscan.File {
	t.Helper()
	f, err := scantest.File(path)
	if err != nil {
		t.Fatalf("scan %s: %v", path, err)
	}
	return f
}

// OpenELF opens path as an Object, closed when the test ends, and returns
// its *elf.File.
func OpenELF(t testing.TB, path string) (*elf.File, error) {
	t.Helper()
	o, err := elfscan.Open(path)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { o.Close() })
	return o.ELF(), nil
}

// Open opens both files of a pair as Objects; done closes both. An error
// is the first file's that failed (nothing is left open then).
func Open(orig, patched string) (o, p *elfscan.Object, done func(), err error) {
	if o, err = elfscan.Open(orig); err != nil {
		return nil, nil, nil, err
	}
	if p, err = elfscan.Open(patched); err != nil {
		o.Close()
		return nil, nil, nil, err
	}
	return o, p, func() { o.Close(); p.Close() }, nil
}

// Copy copies src to a file name in a new temporary folder.
func Copy(t testing.TB, src, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// Eligible is what enable would touch: known state, aligned literal.
func Eligible(s *elfscan.Site) bool {
	return s.State != elfscan.StateUnknown && !s.HasProblem(elfscan.CodeMisalignedLiteral) &&
		s.Slot1Off() != elfscan.NoOffset && s.Slot2Off() != elfscan.NoOffset
}

// Linked returns a copy of src with every eligible site put in state
// (nop, init or enabled), ops in the literal and the BL aimed at tramp
// (0: the first site's entry).
func Linked(t testing.TB, src, name string, state elfscan.State, ops, tramp uint64) string {
	t.Helper()
	f := Scan(t, src)
	dst := Copy(t, src, name)
	fd, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	alt := tramp // the trampoline's second entry, for AltSite sites
	if tramp == 0 && len(f.Sites) > 0 {
		tramp, alt = f.Sites[0].Entry(), f.Sites[0].Entry()
	}
	for i := range f.Sites {
		s := &f.Sites[i]
		if !Eligible(s) {
			continue
		}
		lit, s1, s2 := uint64(0), encode.MovX9X30, encode.NOP
		switch state {
		case elfscan.StateNop:
			lit, s1 = uint64(encode.NOP)|uint64(encode.NOP)<<32, encode.NOP
		case elfscan.StateEnabled:
			lit = ops
			to := tramp
			if AltSite(s) {
				if alt == tramp && tramp != f.Sites[0].Entry() {
					alt = testutil.SymbolAddr(t, src, "ftrace_caller_lit24")
				}
				to = alt
			}
			if s2, err = (encode.BL{From: s.CallSite(), To: to}).Encode(); err != nil {
				t.Fatal(err)
			}
		}
		if s.LiteralOff() != elfscan.NoOffset {
			pwrite(t, fd, s.LiteralOff(), binary.LittleEndian.AppendUint64(nil, lit))
		}
		pwrite(t, fd, s.Slot1Off(), binary.LittleEndian.AppendUint32(nil, s1))
		pwrite(t, fd, s.Slot2Off(), binary.LittleEndian.AppendUint32(nil, s2))
	}
	return dst
}

// AltSite reports whether s calls the trampoline's second entry: a 5,3
// site with BTI whose entry is 4 mod 8 (literal at entry-12 = X30-24).
func AltSite(s *elfscan.Site) bool {
	return s.Layout == elfscan.LayoutCallOps53 && s.BTI && s.Entry()%8 == 4
}

func pwrite(t testing.TB, fd *os.File, off int64, b []byte) {
	t.Helper()
	if _, err := fd.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// PatchBytes writes b at off in the file at path.
func PatchBytes(t testing.TB, path string, off int64, b []byte) {
	t.Helper()
	fd, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	pwrite(t, fd, off, b)
}

// EligibleCount counts sites enable would touch, and those with a literal.
func EligibleCount(f *elfscan.File) (n, lit int) {
	for i := range f.Sites {
		if Eligible(&f.Sites[i]) {
			n++
			if f.Sites[i].Layout.HasLiteral() {
				lit++
			}
		}
	}
	return n, lit
}

// Pick returns the first eligible call-ops site with a function (and a BTI
// when needBTI), else the first eligible one.
func Pick(t testing.TB, f *elfscan.File, needBTI bool) *elfscan.Site {
	t.Helper()
	var best *elfscan.Site
	for i := range f.Sites {
		s := &f.Sites[i]
		if !Eligible(s) || s.Func == "" || (needBTI && !s.BTI) {
			continue
		}
		if s.Layout.HasLiteral() {
			return s
		}
		if best == nil {
			best = s
		}
	}
	if best == nil {
		t.Fatal("no site to plant a defect at")
	}
	return best
}

// Obj is a minimal ET_REL rewriter for tests: it keeps every section's
// bytes in memory, and writes them back with a fresh layout (sections in
// index order, then the header table), as the patch commands do.
type Obj struct {
	Hdr   []byte   // the ELF header
	Sh    []Shdr   // the section headers
	Data  [][]byte // each section's bytes (nil for NOBITS)
	Names []string // each section's name
}

// Shdr is an Elf64_Shdr.
type Shdr struct {
	Name, Type         uint32
	Flags, Addr, Off   uint64
	Size               uint64
	Link, Info         uint32
	Addralign, Entsize uint64
}

// ReadObj reads the ET_REL file at path.
func ReadObj(t testing.TB, path string) *Obj {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	o := &Obj{Hdr: append([]byte(nil), b[:64]...)}
	shoff, shnum := le.Uint64(b[40:]), int(le.Uint16(b[60:]))
	o.Sh = make([]Shdr, shnum)
	if err := binary.Read(bytes.NewReader(b[shoff:]), le, o.Sh); err != nil {
		t.Fatal(err)
	}
	for _, s := range o.Sh {
		var d []byte
		if s.Type != uint32(elf.SHT_NOBITS) {
			d = append([]byte(nil), b[s.Off:s.Off+s.Size]...)
		}
		o.Data = append(o.Data, d)
	}
	shstr := o.Data[le.Uint16(b[62:])]
	for _, s := range o.Sh {
		o.Names = append(o.Names, CString(shstr, s.Name))
	}
	return o
}

// CString is the NUL-terminated string at off in b.
func CString(b []byte, off uint32) string {
	s := b[off:]
	return string(s[:bytes.IndexByte(s, 0)])
}

// Index is the first section of type typ.
func (o *Obj) Index(t testing.TB, typ elf.SectionType) int {
	for i, s := range o.Sh {
		if s.Type == uint32(typ) {
			return i
		}
	}
	t.Fatalf("no %v section", typ)
	return -1
}

// Sym returns the index of the global symbol name, appending an undefined
// global when there is none (as the patch commands do).
func (o *Obj) Sym(t testing.TB, name string) uint32 {
	st := o.Index(t, elf.SHT_SYMTAB)
	str := o.Sh[st].Link
	for k := 1; k < len(o.Data[st])/24; k++ {
		e := o.Data[st][k*24:]
		if elf.ST_BIND(e[4]) != elf.STB_LOCAL && CString(o.Data[str], binary.LittleEndian.Uint32(e)) == name {
			return uint32(k)
		}
	}
	return o.AddSym(t, name)
}

// AddSym appends an undefined global and returns its index.
func (o *Obj) AddSym(t testing.TB, name string) uint32 {
	st := o.Index(t, elf.SHT_SYMTAB)
	str := o.Sh[st].Link
	n := uint32(len(o.Data[str]))
	o.Data[str] = append(append(o.Data[str], name...), 0)
	e := make([]byte, 24)
	binary.LittleEndian.PutUint32(e, n)
	e[4] = byte(elf.ST_INFO(elf.STB_GLOBAL, elf.STT_NOTYPE))
	o.Data[st] = append(o.Data[st], e...)
	return uint32(len(o.Data[st])/24 - 1)
}

// AddRela adds r to the RELA section of target, creating .rela<name> at
// the end of the header table when there is none.
func (o *Obj) AddRela(t testing.TB, target int, r elfscan.Rela) {
	for i, s := range o.Sh {
		if s.Type == uint32(elf.SHT_RELA) && int(s.Info) == target {
			o.Data[i] = elfwrite.AppendRela(o.Data[i], r.Rela64())
			return
		}
	}
	shstr := int(binary.LittleEndian.Uint16(o.Hdr[62:]))
	name := ".rela" + o.Names[target]
	n := uint32(len(o.Data[shstr]))
	o.Data[shstr] = append(append(o.Data[shstr], name...), 0)
	o.Sh = append(o.Sh, Shdr{Name: n, Type: uint32(elf.SHT_RELA), Flags: uint64(elf.SHF_INFO_LINK),
		Link: uint32(o.Index(t, elf.SHT_SYMTAB)), Info: uint32(target), Addralign: 8, Entsize: 24})
	o.Data = append(o.Data, elfwrite.AppendRela(nil, r.Rela64()))
	o.Names = append(o.Names, name)
}

// Put32 writes w at off in section sec.
func (o *Obj) Put32(sec int, off uint64, w uint32) {
	binary.LittleEndian.PutUint32(o.Data[sec][off:], w)
}

// Write writes the object to path with a fresh layout.
func (o *Obj) Write(t testing.TB, path string) {
	t.Helper()
	out := append([]byte(nil), o.Hdr...)
	for i := 1; i < len(o.Sh); i++ {
		s := &o.Sh[i]
		al := max(s.Addralign, 1)
		for uint64(len(out))%al != 0 {
			out = append(out, 0)
		}
		s.Off = uint64(len(out))
		if s.Type != uint32(elf.SHT_NOBITS) {
			s.Size = uint64(len(o.Data[i]))
			out = append(out, o.Data[i]...)
		}
	}
	for len(out)%8 != 0 {
		out = append(out, 0)
	}
	binary.LittleEndian.PutUint64(out[40:], uint64(len(out)))
	binary.LittleEndian.PutUint16(out[60:], uint16(len(o.Sh)))
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, o.Sh)
	if err := os.WriteFile(path, append(out, b.Bytes()...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// RelEnable writes init + enable into every eligible site of o, as
// `ftpatch enable --init` would: literal := 0 + ABS64 ops, slot1 := MOV,
// slot2 := BL + CALL26 trampoline, new undefined globals for both.
func RelEnable(t testing.TB, o *Obj, f *elfscan.File, skip *elfscan.Site) {
	ops := o.Sym(t, "my_ops")
	tramp := o.Sym(t, "ftrace_caller")
	for i := range f.Sites {
		s := &f.Sites[i]
		if !Eligible(s) || s == skip {
			continue
		}
		if s.Layout.HasLiteral() {
			o.Put32(s.SectionIndex(), s.Literal(), 0)
			o.Put32(s.SectionIndex(), s.Literal()+4, 0)
			o.AddRela(t, s.SectionIndex(), elfscan.Rela{Off: s.Literal(), Type: elf.R_AARCH64_ABS64, Sym: ops})
		}
		o.Put32(s.SectionIndex(), s.CallSite()-4, encode.MovX9X30)
		o.Put32(s.SectionIndex(), s.CallSite(), encode.BLZero)
		to := tramp
		if AltSite(s) {
			to = o.Sym(t, "ftrace_caller_lit24")
		}
		o.AddRela(t, s.SectionIndex(), elfscan.Rela{Off: s.CallSite(), Type: elf.R_AARCH64_CALL26, Sym: to})
	}
}

// Synth writes an ET_EXEC of size bytes: one .text of call-ops sites, one
// every stride bytes (the rest RET-free filler), and the entries table. It
// returns the path and the number of sites.
func Synth(t testing.TB, dir string, size, stride int64, enabled bool) (string, int) {
	t.Helper()
	l := synthLayoutOf(size, stride)
	path := filepath.Join(dir, map[bool]string{false: "orig.elf", true: "patched.elf"}[enabled])
	fd, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(fd, 1<<20)
	w.Write(l.header())
	if err := l.writeText(w, enabled); err != nil {
		t.Fatal(err)
	}
	l.writeTail(w)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := fd.Close(); err != nil {
		t.Fatal(err)
	}
	return path, l.nsites
}

// SynthAt writes to path an ET_EXEC of about size bytes laid out as
// Synth's, whose nop call-ops sites (no BTI) have their records (the
// literals) at the file offsets offs: ascending, 8-byte aligned, at least
// 16 bytes apart, from 0x1000 to size-0x10000.
func SynthAt(t testing.TB, path string, size int64, offs []int64) {
	t.Helper()
	l := synthLayoutOf(size, 8)
	l.nsites = len(offs)
	l.entSize = int64(len(offs)) * 8
	l.strOff = l.entOff + l.entSize
	l.shOff = (l.strOff + int64(len(l.shstr)) + 7) &^ 7
	b := l.header()
	text := make([]byte, l.textSize)
	add, _ := encode.ADD{Rd: encode.X0, Rn: encode.X0, Imm: 1}.Encode() // fixed operands
	for i := 0; i < len(text); i += 4 {
		binary.LittleEndian.PutUint32(text[i:], add)
	}
	var ents []byte
	for k, off := range offs {
		at := off - synthTextOff
		if off%8 != 0 || at < 0 || at+16 > l.textSize || k > 0 && off < offs[k-1]+16 {
			t.Fatalf("SynthAt: site offset %#x is not 8-byte aligned, 16 bytes past the last, in .text (%#x bytes at %#x)", off, l.textSize, synthTextOff)
		}
		binary.LittleEndian.PutUint64(text[at:], uint64(encode.NOP)|uint64(encode.NOP)<<32)
		binary.LittleEndian.PutUint32(text[at+8:], encode.NOP)
		binary.LittleEndian.PutUint32(text[at+12:], encode.NOP)
		ents = binary.LittleEndian.AppendUint64(ents, uint64(synthBase+off))
	}
	var tail bytes.Buffer
	tail.Write(ents)
	l.writeNames(&tail)
	b = append(append(b, text...), tail.Bytes()...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// synthLayout is where Synth puts things: .text at textOff (nsites sites
// of stride bytes), the entries table after it, the section names after
// that, then the section headers, 8-byte aligned.
type synthLayout struct {
	nsites                    int
	stride                    int64
	textSize, entOff, entSize int64
	strOff, shOff             int64
	shstr                     []byte
}

const (
	synthBase    = 0x400000 // the load address of file offset 0
	synthTextOff = 0x1000
)

// synthLayoutOf lays out a file of about size bytes with sites stride
// bytes apart.
func synthLayoutOf(size, stride int64) synthLayout {
	l := synthLayout{stride: stride, shstr: []byte("\x00.text\x00__patchable_function_entries\x00.shstrtab\x00")}
	l.nsites = int((size - synthTextOff - 0x10000) / stride)
	l.textSize = int64(l.nsites) * stride
	l.entOff = synthTextOff + l.textSize
	l.entSize = int64(l.nsites) * 8
	l.strOff = l.entOff + l.entSize
	l.shOff = (l.strOff + int64(len(l.shstr)) + 7) &^ 7
	return l
}

// header is the file's first page: the ELF header and one PT_LOAD
// program header mapping everything up to the section names.
func (l synthLayout) header() []byte {
	le := binary.LittleEndian
	h := make([]byte, synthTextOff)
	copy(h, "\x7fELF\x02\x01\x01")
	le.PutUint16(h[16:], uint16(elf.ET_EXEC))
	le.PutUint16(h[18:], uint16(elf.EM_AARCH64))
	le.PutUint32(h[20:], 1)
	le.PutUint64(h[24:], synthBase+synthTextOff+8)
	le.PutUint64(h[32:], 64)
	le.PutUint64(h[40:], uint64(l.shOff))
	le.PutUint16(h[52:], 64)
	le.PutUint16(h[54:], 56)
	le.PutUint16(h[56:], 1)
	le.PutUint16(h[58:], 64)
	le.PutUint16(h[60:], 4)
	le.PutUint16(h[62:], 3)
	ph := h[64:]
	le.PutUint32(ph, uint32(elf.PT_LOAD))
	le.PutUint32(ph[4:], uint32(elf.PF_R|elf.PF_X))
	le.PutUint64(ph[16:], synthBase)
	le.PutUint64(ph[24:], synthBase)
	le.PutUint64(ph[32:], uint64(l.strOff))
	le.PutUint64(ph[40:], uint64(l.strOff))
	le.PutUint64(ph[48:], 0x10000)
	return h
}

// writeText writes the sites: a 5,3 literal and two slots, disabled or
// (enabled) calling ops through the function's own entry, then ADD X0
// filling the rest of each stride.
func (l synthLayout) writeText(w *bufio.Writer, enabled bool) error {
	le := binary.LittleEndian
	fill := make([]byte, l.stride)
	add, _ := encode.ADD{Rd: encode.X0, Rn: encode.X0, Imm: 1}.Encode() // fixed operands
	for i := 0; i < len(fill); i += 4 {
		le.PutUint32(fill[i:], add)
	}
	for k := 0; k < l.nsites; k++ {
		a := uint64(synthBase + synthTextOff + int64(k)*l.stride)
		lit, s1, s2 := uint64(encode.NOP)|uint64(encode.NOP)<<32, encode.NOP, encode.NOP
		if enabled {
			lit, s1 = Ops, encode.MovX9X30
			// The function's own entry stands in for the trampoline: one
			// trampoline would be out of BL range of a 256 MiB text.
			var err error
			if s2, err = (encode.BL{From: a + 12, To: a + 8}).Encode(); err != nil {
				return err
			}
		}
		le.PutUint64(fill, lit)
		le.PutUint32(fill[8:], s1)
		le.PutUint32(fill[12:], s2)
		w.Write(fill)
	}
	return nil
}

// writeTail writes the entries table, the section names, the padding to
// the section headers and the headers themselves.
func (l synthLayout) writeTail(w *bufio.Writer) {
	le := binary.LittleEndian
	e := make([]byte, 8)
	for k := 0; k < l.nsites; k++ {
		le.PutUint64(e, uint64(synthBase+synthTextOff+int64(k)*l.stride))
		w.Write(e)
	}
	l.writeNames(w)
}

// writeNames writes what follows the entries table: the section names,
// the padding to the section headers and the headers themselves.
func (l synthLayout) writeNames(w io.Writer) {
	le := binary.LittleEndian
	w.Write(l.shstr)
	w.Write(make([]byte, l.shOff-l.strOff-int64(len(l.shstr))))
	sh := []Shdr{{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC | elf.SHF_EXECINSTR), Addr: synthBase + synthTextOff, Off: synthTextOff, Size: uint64(l.textSize), Addralign: 8},
		{Name: 7, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC | elf.SHF_WRITE), Addr: uint64(synthBase + l.entOff), Off: uint64(l.entOff), Size: uint64(l.entSize), Addralign: 8},
		{Name: 36, Type: uint32(elf.SHT_STRTAB), Off: uint64(l.strOff), Size: uint64(len(l.shstr)), Addralign: 1},
	}
	binary.Write(w, le, sh)
}

// TestAgainstMemoryBounded: comparing two 64 MiB files allocates a small,
