package elfscan

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrUnsupportedReloc is returned for relocation types the tool does not
// understand at a place it must understand (never silently skipped).
var ErrUnsupportedReloc = errors.New("unsupported relocation")

// Rela is one Elf64_Rela entry.
type Rela struct {
	Off    uint64 // r_offset
	Type   elf.R_AARCH64
	Sym    uint32 // symbol index (0: none); .symtab index i is elf.File.Symbols()[i-1]
	Addend int64
}

// Info returns the packed r_info.
func (r Rela) Info() uint64 { return uint64(r.Sym)<<32 | uint64(r.Type) }

// RelaSize is sizeof(Elf64_Rela).
const RelaSize = 24

// ReadRela decodes an SHT_RELA section.
func ReadRela(s *elf.Section) ([]Rela, error) {
	if s.Type != elf.SHT_RELA {
		return nil, fmt.Errorf("%w: section %q is %v, not SHT_RELA", ErrMalformed, s.Name, s.Type)
	}
	b, err := SafeData(s)
	if err != nil {
		return nil, err
	}
	return DecodeRela(b, s.Name)
}

// DecodeRela decodes raw little-endian Elf64_Rela entries.
func DecodeRela(b []byte, name string) ([]Rela, error) {
	if len(b)%RelaSize != 0 {
		return nil, fmt.Errorf("%w: section %q size %d is not a multiple of %d", ErrMalformed, name, len(b), RelaSize)
	}
	out := make([]Rela, len(b)/RelaSize)
	for i := range out {
		out[i] = decodeRela(b[i*RelaSize:])
	}
	return out, nil
}

// decodeRela decodes the Elf64_Rela at the start of e.
func decodeRela(e []byte) Rela {
	e = e[:RelaSize]
	info := binary.LittleEndian.Uint64(e[8:])
	return Rela{
		Off:    binary.LittleEndian.Uint64(e),
		Type:   elf.R_AARCH64(uint32(info)),
		Sym:    uint32(info >> 32),
		Addend: int64(binary.LittleEndian.Uint64(e[16:])),
	}
}

// EncodeRela appends the little-endian encoding of rs to b.
func EncodeRela(b []byte, rs []Rela) []byte {
	for _, r := range rs {
		b = binary.LittleEndian.AppendUint64(b, r.Off)
		b = binary.LittleEndian.AppendUint64(b, r.Info())
		b = binary.LittleEndian.AppendUint64(b, uint64(r.Addend))
	}
	return b
}
