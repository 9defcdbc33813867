package encode

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/arch/arm64/arm64asm"
)

// Insn disassembles the word w at pc in GNU syntax, for messages: BTI C by
// name (arm64asm shows the hint it aliases), B and BL with their absolute
// target, anything arm64asm cannot decode as .inst. It needs no emulator,
// so both verify and the cgo-free livesafe use it.
func Insn(w uint32, pc uint64) string {
	switch {
	case w == BTIC:
		return "bti c"
	case IsBL(w):
		return fmt.Sprintf("bl %#x", BLTarget(w, pc))
	case w&0xfc000000 == 0x14000000:
		return fmt.Sprintf("b %#x", BLTarget(w, pc))
	}
	in, err := Decode(w)
	if err != nil {
		return fmt.Sprintf(".inst %#08x", w)
	}
	return strings.TrimSpace(arm64asm.GNUSyntax(in))
}

// decodeMu serializes arm64asm.Decode, which records coverage in a package
// global (decoderCover) on every call: two goroutines decoding at once are
// a data race (go test -race finds it when verify renders failures of
// several files, or livesafe compares pairs, concurrently).
var decodeMu sync.Mutex

// Decode decodes the instruction word w with arm64asm, safely from any
// goroutine. Every disassembly in ftpatch goes through it.
func Decode(w uint32) (arm64asm.Inst, error) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], w)
	decodeMu.Lock()
	defer decodeMu.Unlock()
	return arm64asm.Decode(b[:])
}
