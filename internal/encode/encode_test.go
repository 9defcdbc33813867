// SPDX-License-Identifier: Apache-2.0

package encode_test

import (
	"bufio"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/arch/arm64/arm64asm"

	. "github.com/ftpatch/ftpatch/internal/encode"
)

type encoder interface{ Encode() (uint32, error) }

// fixed wraps a constant word as an encoder.
type fixed uint32

func (f fixed) Encode() (uint32, error) { return uint32(f), nil }

// cases maps each golden assembly line to the encoder value that must
// produce it. Every golden line must be covered.
var cases = []struct {
	asm string
	enc encoder
}{
	{"nop", fixed(NOP)},
	{"hint #0x22", fixed(BTIC)},
	{"hint #0x24", fixed(BTIJ)},
	{"hint #0x26", fixed(BTIJC)},
	{"mov x9, x30", fixed(MovX9X30)},
	{"mov x9, x30", MOVReg{X9, X30}},
	{"bl .+0x0", BL{0x1000, 0x1000}},
	{"bl .+0x40", BL{0, 0x40}},
	{"bl .+0xfffffffffffffffc", BL{4, 0}},
	{"b .+0xfffffffffffffff8", B{8, 0}},
	{"bl .+0x7fffffc", BL{0x10000000, 0x10000000 + BLRange - 4}},
	{"bl .+0xfffffffff8000000", BL{0x10000000, 0x10000000 - BLRange}},
	{"b .+0x0", B{0x1000, 0x1000}},
	{"b .+0x40", B{0, 0x40}},
	{"b .+0xfffffffffffffffc", B{4, 0}},
	{"b .+0x7fffffc", B{0x10000000, 0x10000000 + BLRange - 4}},
	{"b .+0xfffffffff8000000", B{0x10000000, 0x10000000 - BLRange}},
	{"stp x0, x1, [sp]", STP{Rt: X0, Rt2: X1, Rn: SP}},
	{"stp x2, x3, [sp,#504]", STP{X2, X3, SP, 504, Offset}},
	{"stp x29, x30, [sp,#-16]!", STP{X29, X30, SP, -16, PreIndex}},
	{"stp x29, x30, [sp,#-512]!", STP{X29, X30, SP, -512, PreIndex}},
	{"stp x19, x20, [x0],#16", STP{X19, X20, X0, 16, PostIndex}},
	{"stp xzr, xzr, [x1,#8]", STP{XZR, XZR, X1, 8, Offset}},
	{"stp x29, x9, [sp,#128]", STP{X29, X9, SP, 128, Offset}},
	{"ldp x0, x1, [sp]", LDP{Rt: X0, Rt2: X1, Rn: SP}},
	{"ldp x6, x7, [sp,#48]", LDP{X6, X7, SP, 48, Offset}},
	{"ldp x29, x30, [sp],#16", LDP{X29, X30, SP, 16, PostIndex}},
	{"ldp x0, x1, [x2,#-512]!", LDP{X0, X1, X2, -512, PreIndex}},
	{"ldp x2, x3, [sp,#504]", LDP{X2, X3, SP, 504, Offset}},
	{"str x8, [sp,#64]", STR{X8, SP, 64}},
	{"str x30, [sp,#32760]", STR{X30, SP, 32760}},
	{"str xzr, [x0]", STR{XZR, X0, 0}},
	{"ldr x4, [x2]", LDR{X4, X2, 0}},
	{"ldr x9, [sp,#104]", LDR{X9, SP, 104}},
	{"ldr x0, [x1,#32760]", LDR{X0, X1, 32760}},
	{"ldur x11, [x11,#-16]", LDUR{X11, X11, -16}},
	{"ldur x2, [x2,#-256]", LDUR{X2, X2, -256}},
	{"ldur x0, [sp,#255]", LDUR{X0, SP, 255}},
	{"stur x0, [sp,#-8]", STUR{X0, SP, -8}},
	{"add x29, sp, #0x70", ADD{X29, SP, 112}},
	{"add sp, sp, #0x90", ADD{SP, SP, 144}},
	{"add x0, x1, #0xfff", ADD{X0, X1, 4095}},
	{"add x0, x0, #0x1, lsl #12", ADD{X0, X0, 4096}},
	{"add x0, x0, #0xfff, lsl #12", ADD{X0, X0, 4095 << 12}},
	{"add x2, x2, #0x345", AddLo12(X2, X2, 0xffff_0001_2345)},
	{"sub sp, sp, #0x90", SUB{SP, SP, 144}},
	{"sub x0, x30, #0x4", SUB{X0, X30, 4}},
	{"sub x1, x2, #0x0", SUB{X1, X2, 0}},
	{"mov x10, sp", MOVSP{X10, SP}},
	{"mov sp, x10", MOVSP{SP, X10}},
	{"mov x3, sp", MOVSP{X3, SP}},
	{"mov x1, x9", MOVReg{X1, X9}},
	{"mov x0, xzr", MOVReg{X0, XZR}},
	{"mov x30, x9", MOVReg{X30, X9}},
	{"and x11, x30, #0xfffffffffffffff8", AND{X11, X30, ^uint64(7)}},
	{"and x11, x30, #0xfffffffffffffff8", BIC{X11, X30, 7}},
	{"and x2, x30, #0xfffffffffffffff8", BIC{X2, X30, 7}},
	{"and x0, x1, #0x1", AND{X0, X1, 1}},
	{"and sp, x0, #0xfffffffffffffff0", AND{SP, X0, ^uint64(15)}},
	{"and x0, x1, #0x5555555555555555", AND{X0, X1, 0x5555555555555555}},
	{"and x0, x1, #0x7fffffffffffffff", AND{X0, X1, 0x7fffffffffffffff}},
	{"and x0, x1, #0x8000000000000001", AND{X0, X1, 0x8000000000000001}},
	{"and x0, x1, #0xff00ff00ff00ff", AND{X0, X1, 0x00ff00ff00ff00ff}},
	{"and x0, xzr, #0xfffffffeffffffff", AND{X0, XZR, 0xfffffffeffffffff}},
	{"and x0, x1, #0x8888888888888888", AND{X0, X1, 0x8888888888888888}},
	{"cbz x11, .+0x4c", CBZ{X11, 0x4c}},
	{"cbz x0, .+0xfffffffffffffffc", CBZ{X0, -4}},
	{"cbz x0, .+0xffffc", CBZ{X0, 1<<20 - 4}},
	{"cbz x0, .+0xfffffffffff00000", CBZ{X0, -1 << 20}},
	{"cbz xzr, .+0x0", CBZ{XZR, 0}},
	{"cbnz x17, .+0x8", CBNZ{X17, 8}},
	{"blr x4", BLR{X4}},
	{"blr x30", BLR{X30}},
	{"br x16", BR{X16}},
	{"brk #0x0", BRK{0}},
	{"brk #0xf7a5", BRK{0xf7a5}},
	{"brk #0xffff", BRK{0xffff}},
	{"ret", RET{X30}},
	{"ret x9", RET{X9}},
	{"adrp x2, .+0x0", ADRP{X2, 0x1234, 0x1fff}},
	{"adrp x2, .+0x1000", ADRP{X2, 0xfff, 0x1000}},
	{"adrp x11, .+0xfffffffffffff000", ADRP{X11, 0x1000, 0xfff}},
	{"adrp x0, .+0xfffff000", ADRP{X0, 0, 0xfffff000}},
	{"adrp x0, .+0xffffffff00000000", ADRP{X0, 0x1_0000_0000, 0}},
	{"adrp xzr, .+0x2000", ADRP{XZR, 0x4000, 0x6000}},
}

type golden struct {
	hex, asm string
	word     uint32
}

func readGolden(t *testing.T) []golden {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "golden.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []golden
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		h, a, ok := strings.Cut(line, "|")
		b, err := hex.DecodeString(h)
		if !ok || err != nil || len(b) != 4 {
			t.Fatalf("golden.txt:%d: bad line %q", n, line)
		}
		out = append(out, golden{h, norm(a), binary.LittleEndian.Uint32(b)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// norm normalises whitespace only.
func norm(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestEncodersMatchGolden(t *testing.T) {
	gold := readGolden(t)
	byAsm := map[string]golden{}
	for _, g := range gold {
		if _, dup := byAsm[g.asm]; dup {
			t.Fatalf("golden line %q twice", g.asm)
		}
		byAsm[g.asm] = g
	}
	covered := map[string]bool{}
	for _, c := range cases {
		t.Run(c.asm, func(t *testing.T) {
			g, ok := byAsm[c.asm]
			if !ok {
				t.Fatalf("no golden line %q", c.asm)
			}
			covered[c.asm] = true
			w, err := c.enc.Encode()
			if err != nil {
				t.Fatalf("%#v.Encode(): %v", c.enc, err)
			}
			if w != g.word {
				t.Errorf("%#v.Encode() = %#08x, golden %#08x (%s)", c.enc, w, g.word, g.asm)
			}
		})
	}
	for _, g := range gold {
		if !covered[g.asm] {
			t.Errorf("golden line %q has no encoder case", g.asm)
		}
	}
}

// decodeGNU renders w with arm64asm, the independent decoder.
func decodeGNU(w uint32) (string, error) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], w)
	in, err := arm64asm.Decode(b[:])
	if err != nil {
		return "", err
	}
	return norm(arm64asm.GNUSyntax(in)), nil
}

func TestGoldenDecodesWithArm64asm(t *testing.T) {
	for _, g := range readGolden(t) {
		got, err := decodeGNU(g.word)
		if err != nil {
			t.Errorf("%s: arm64asm: %v", g.hex, err)
		} else if got != g.asm {
			t.Errorf("%s: arm64asm says %q, golden %q", g.hex, got, g.asm)
		}
	}
}

// TestGoldenAssembles assembles every golden line with GNU as, links the
// result at a fixed address and compares the bytes with the golden hex.
func TestGoldenAssembles(t *testing.T) {
	as := testutil.NeedTool(t, "aarch64-linux-gnu-as")
	ld := testutil.NeedTool(t, "aarch64-linux-gnu-ld")
	gold := readGolden(t)
	dir := t.TempDir()
	var src strings.Builder
	src.WriteString("\t.text\n")
	for _, g := range gold {
		src.WriteString("\t" + g.asm + "\n")
	}
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	s, o, x := filepath.Join(dir, "g.s"), filepath.Join(dir, "g.o"), filepath.Join(dir, "g.elf")
	if err := os.WriteFile(s, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	const base = 0x200000000 // far enough above 0 for the most negative ADRP/BL
	run(as, "-o", o, s)
	run(ld, "-Ttext="+strconv.FormatUint(base, 16), "-e", strconv.FormatUint(base, 10), "-o", x, o)
	f, err := elf.Open(x)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	text, err := f.Section(".text").Data()
	if err != nil {
		t.Fatal(err)
	}
	if len(text) != 4*len(gold) {
		t.Fatalf(".text is %d bytes, want %d", len(text), 4*len(gold))
	}
	for i, g := range gold {
		if got := hex.EncodeToString(text[4*i : 4*i+4]); got != g.hex {
			t.Errorf("%q: as gives %s, golden %s", g.asm, got, g.hex)
		}
	}
}

// TestBitmaskExhaustive checks EncodeBitmask against arm64asm over every
// valid N:immr:imms field value: the decoder says which immediate a word
// means, and the encoder must give back exactly that word.
func TestBitmaskExhaustive(t *testing.T) {
	n := 0
	for f := uint32(0); f < 1<<13; f++ {
		N, immr, imms := f>>12, f>>6&63, f&63
		// Element size from N:NOT(imms), per DecodeBitMasks in the Arm ARM;
		// only immr < size is canonical (higher bits are ignored by the
		// hardware, and assemblers never emit them).
		size := uint32(64)
		if N == 0 {
			l := 5
			for l >= 0 && imms&(1<<l) != 0 {
				l--
			}
			if l < 1 {
				continue // reserved
			}
			size = 1 << l
		}
		if imms&(size-1) == size-1 || immr >= size {
			continue // reserved (run fills the element) or non-canonical
		}
		w := 0x92000000 | f<<10 | 1<<5 // and x0, x1, #imm (Rd = 0: x0)
		asm, err := decodeGNU(w)
		if err != nil || !strings.HasPrefix(asm, "and x0, x1, #") {
			t.Fatalf("%#08x: arm64asm %q, %v", w, asm, err)
		}
		imm, err := strconv.ParseUint(strings.TrimPrefix(asm, "and x0, x1, #"), 0, 64)
		if err != nil {
			t.Fatalf("%#08x: %q: %v", w, asm, err)
		}
		got, err := AND{X0, X1, imm}.Encode()
		if err != nil || got != w {
			t.Errorf("AND #%#x = %#08x, %v; arm64asm decodes %#08x to it", imm, got, err, w)
		}
		n++
	}
	if n != 5334 { // the number of 64-bit logical immediates
		t.Errorf("%d valid bitmask encodings, want 5334", n)
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		enc  encoder
		want error
	}{
		{"BL from misaligned", BL{2, 0x100}, ErrMisaligned},
		{"BL to misaligned", BL{0, 0x101}, ErrMisaligned},
		{"BL +128MiB", BL{0x10000000, 0x10000000 + BLRange}, ErrOutOfRange},
		{"BL -128MiB-4", BL{0x10000000, 0x10000000 - BLRange - 4}, ErrOutOfRange},
		{"BL wraps", BL{0, 1 << 63}, ErrOutOfRange},
		{"B misaligned", B{0, 0x102}, ErrMisaligned},
		{"B +128MiB", B{0x10000000, 0x10000000 + BLRange}, ErrOutOfRange},
		{"CBZ misaligned", CBZ{X0, 6}, ErrMisaligned},
		{"CBZ +1MiB", CBZ{X0, 1 << 20}, ErrOutOfRange},
		{"CBZ -1MiB-4", CBZ{X0, -1<<20 - 4}, ErrOutOfRange},
		{"CBZ bad Rt", CBZ{32, 0}, ErrBadRegister},
		{"ADRP +4GiB", ADRP{X0, 0, 1 << 32}, ErrOutOfRange},
		{"ADRP -4GiB-4KiB", ADRP{X0, 1<<32 + 4096, 0}, ErrOutOfRange},
		{"ADRP bad Rd", ADRP{40, 0, 0}, ErrBadRegister},
		{"AND 0", AND{X0, X1, 0}, ErrBadImmediate},
		{"AND all ones", AND{X0, X1, ^uint64(0)}, ErrBadImmediate},
		{"AND two runs", AND{X0, X1, 0b101}, ErrBadImmediate},
		{"AND 0x1234", AND{X0, X1, 0x1234}, ErrBadImmediate},
		{"BIC all ones", BIC{X0, X1, ^uint64(0)}, ErrBadImmediate},
		{"AND bad Rn", AND{X0, 32, 1}, ErrBadRegister},
		{"ADD 4097", ADD{X0, X0, 4097}, ErrBadImmediate},
		{"ADD 4096<<12", ADD{X0, X0, 4096 << 12}, ErrBadImmediate},
		{"ADD negative", ADD{X0, X0, -1}, ErrBadImmediate},
		{"SUB bad Rd", SUB{255, X0, 1}, ErrBadRegister},
		{"STP misaligned", STP{X0, X1, SP, 4, Offset}, ErrBadImmediate},
		{"STP 512", STP{X0, X1, SP, 512, Offset}, ErrBadImmediate},
		{"STP -520", STP{X0, X1, SP, -520, PreIndex}, ErrBadImmediate},
		{"STP writeback base is Rt", STP{X0, X1, X0, 16, PreIndex}, ErrBadRegister},
		{"LDP Rt = Rt2", LDP{X0, X0, SP, 0, Offset}, ErrBadRegister},
		{"LDP writeback base is Rt2", LDP{X0, X1, X1, 16, PostIndex}, ErrBadRegister},
		{"LDP bad Rn", LDP{X0, X1, 32, 0, Offset}, ErrBadRegister},
		{"STR negative", STR{X0, SP, -8}, ErrBadImmediate},
		{"STR misaligned", STR{X0, SP, 12}, ErrBadImmediate},
		{"LDR 32768", LDR{X0, SP, 32768}, ErrBadImmediate},
		{"LDUR -257", LDUR{X0, X1, -257}, ErrBadImmediate},
		{"STUR 256", STUR{X0, X1, 256}, ErrBadImmediate},
		{"MOVSP no sp", MOVSP{X0, X1}, ErrBadRegister},
		{"MOVReg bad Rm", MOVReg{X0, 33}, ErrBadRegister},
		{"BLR xzr", BLR{XZR}, ErrBadRegister},
		{"BR 32", BR{32}, ErrBadRegister},
		{"RET xzr", RET{XZR}, ErrBadRegister},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := tt.enc.Encode()
			if !errors.Is(err, tt.want) {
				t.Fatalf("%#v.Encode() = %#08x, %v; want %v", tt.enc, w, err, tt.want)
			}
			if w != 0 {
				t.Errorf("word %#08x returned with an error", w)
			}
		})
	}
}

// TestBLEdges checks BL just inside the range boundaries decodes to the
// right target (arm64asm as the oracle for the displacement).
func TestBLEdges(t *testing.T) {
	for _, d := range []int64{-BLRange, -4, 0, 4, BLRange - 4} {
		from := uint64(0x40000000)
		w, err := BL{from, uint64(int64(from) + d)}.Encode()
		if err != nil {
			t.Fatalf("distance %d: %v", d, err)
		}
		if got := BLTarget(w, from); got != uint64(int64(from)+d) {
			t.Errorf("distance %d: BLTarget = %#x", d, got)
		}
		asm, _ := decodeGNU(w)
		want := "bl .+0x" + strconv.FormatUint(uint64(d), 16)
		if asm != want {
			t.Errorf("distance %d: arm64asm %q, want %q", d, asm, want)
		}
	}
}
