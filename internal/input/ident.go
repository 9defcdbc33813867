// SPDX-License-Identifier: Apache-2.0

package input

// What a file is, from its first bytes: the ELF identification a folder
// walk needs to skip what is not for ftpatch (host programs, x86 objects,
// arm32 vdso objects, archives, scripts, raw kernel Images) without
// parsing it.

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrNotAArch64 is wrapped by the error of an ELF file that is not 64-bit
// little-endian AArch64 (see ForeignError).
var ErrNotAArch64 = errors.New("not a 64-bit little-endian AArch64 ELF file")

// IdentLen is how many leading bytes CheckIdent reads: e_ident, e_type and
// e_machine.
const IdentLen = 20

// ForeignError is the error of an ELF file built for another machine,
// class or byte order. errors.Is(err, ErrNotAArch64) holds.
type ForeignError struct {
	Class   elf.Class
	Data    elf.Data
	Machine elf.Machine
}

func (e *ForeignError) Error() string {
	return fmt.Sprintf("%v (class %v, data %v, machine %v)", ErrNotAArch64, e.Class, e.Data, e.Machine)
}

// Is makes errors.Is(err, ErrNotAArch64) true.
func (e *ForeignError) Is(target error) bool { return target == ErrNotAArch64 }

// What says in a few words what the file is: "x86-64 ELF64",
// "arm ELF32", "aarch64 ELF64 big-endian".
func (e *ForeignError) What() string {
	name, ok := machineNames[e.Machine]
	if !ok {
		name = e.Machine.String()        // EM_SPARC
		if strings.Contains(name, "+") { // debug/elf's name for a number it does not know
			name = fmt.Sprintf("machine %d", uint16(e.Machine))
		}
	}
	bits := "ELF64"
	if e.Class == elf.ELFCLASS32 {
		bits = "ELF32"
	}
	if e.Data == elf.ELFDATA2MSB {
		return name + " " + bits + " big-endian"
	}
	return name + " " + bits
}

// machineNames are the machines a kernel build tree holds objects for, by
// the names people call them.
var machineNames = map[elf.Machine]string{
	elf.EM_X86_64:  "x86-64",
	elf.EM_386:     "x86",
	elf.EM_ARM:     "arm",
	elf.EM_AARCH64: "aarch64",
	elf.EM_RISCV:   "riscv",
	elf.EM_PPC64:   "ppc64",
	elf.EM_PPC:     "ppc",
	elf.EM_S390:    "s390",
	elf.EM_MIPS:    "mips",
	elf.EM_BPF:     "bpf",
}

// CheckIdent says whether a walk takes the file whose first bytes
// (decompressed) are head: nil when it is a 64-bit little-endian AArch64
// ELF file, or starts with the ELF magic but an identification too broken
// to say for which machine (a class, byte order or version that does not
// exist, machine EM_NONE: the ELF reader reports what is wrong, as for
// any malformed file); an error wrapping ErrNotELF when it does not start
// with the ELF magic or is too short to tell; a *ForeignError when it is
// a well-formed ELF file for another machine, class or byte order.
func CheckIdent(head []byte) error {
	if len(head) < len(elfMagic) || [4]byte(head[:4]) != [4]byte(elfMagic) {
		return notELFHead(head)
	}
	if len(head) < IdentLen {
		return fmt.Errorf("%w: %d bytes, shorter than an ELF header", ErrNotELF, len(head))
	}
	class, data := elf.Class(head[elf.EI_CLASS]), elf.Data(head[elf.EI_DATA])
	wellFormed := (class == elf.ELFCLASS32 || class == elf.ELFCLASS64) &&
		(data == elf.ELFDATA2LSB || data == elf.ELFDATA2MSB) && elf.Version(head[elf.EI_VERSION]) == elf.EV_CURRENT
	if !wellFormed {
		return nil
	}
	var machine elf.Machine
	if data == elf.ELFDATA2MSB {
		machine = elf.Machine(binary.BigEndian.Uint16(head[18:20]))
	} else {
		machine = elf.Machine(binary.LittleEndian.Uint16(head[18:20]))
	}
	if machine == elf.EM_NONE || class == elf.ELFCLASS64 && data == elf.ELFDATA2LSB && machine == elf.EM_AARCH64 {
		return nil
	}
	return &ForeignError{Class: class, Data: data, Machine: machine}
}

// CheckIdentAt is CheckIdent of what r holds at its start.
func CheckIdentAt(r io.ReaderAt) error {
	var head [IdentLen]byte
	n, err := r.ReadAt(head[:], 0)
	if err != nil && err != io.EOF {
		return err
	}
	return CheckIdent(head[:n])
}

// Identify reads the first bytes of the file at path (for a compressed
// file, decompresses only its first bytes) and returns CheckIdent's
// verdict: nil for an AArch64 ELF file, an error wrapping ErrNotELF or
// ErrNotAArch64 for a file a walk skips. Any other error says the file
// could not be read, is not a regular file, or is a compressed stream that
// fails before its bytes show what it is (ErrCorrupt, as Open says; see
// shownNotELF): a walk keeps such a file, for the command to report.
func Identify(path string) error {
	f, _, err := openRegularFile(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var head [IdentLen]byte
	n, err := f.ReadAt(head[:], 0)
	if err != nil && err != io.EOF {
		return err
	}
	c := DetectCompression(head[:n])
	if c == None {
		return CheckIdent(head[:n])
	}
	b, err := compressedHead(c, io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return err
	}
	return CheckIdent(b)
}

// compressedHead decompresses the first IdentLen bytes of r (fewer when
// the stream ends before them). A stream that fails before its bytes show
// that it is not ELF is a decode error.
func compressedHead(c string, r io.Reader) ([]byte, error) {
	p, err := getDecoder(c, r)
	if err != nil {
		return nil, err
	}
	defer p.put()
	head := make([]byte, IdentLen)
	n, err := fill(p.d, head)
	if err == io.EOF {
		err = nil
	}
	if err != nil && !shownNotELF(head[:n], err) {
		return nil, decodeError(c, int64(n), err)
	}
	return head[:n], nil
}
