// SPDX-License-Identifier: Apache-2.0

package encode_test

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/arch/arm64/arm64asm"

	. "github.com/ftpatch/ftpatch/internal/encode"
)

var trampolineVariants = []struct {
	name string
	opts TrampolineOptions
}{
	{"call-ops", TrampolineOptions{}},
	{"call-ops named", TrampolineOptions{Name: "my_tramp"}},
	{"classic", TrampolineOptions{Classic: true, OpsSym: "my_ops"}},
	{"call-ops direct", TrampolineOptions{DirectCalls: true}},
	{"call-ops direct at 64", TrampolineOptions{DirectCalls: true, DirectCallOffset: 64}},
}

type reloc struct {
	Off  uint64
	Type elf.R_AARCH64
	Sym  string
	Add  int64
}

// TestTrampolineAsmAssembles assembles Asm() with GNU as and compares the
// .text bytes and relocations with Words and Fixups.
func TestTrampolineAsmAssembles(t *testing.T) {
	as := testutil.NeedTool(t, "aarch64-linux-gnu-as")
	for _, v := range trampolineVariants {
		t.Run(v.name, func(t *testing.T) {
			p, err := Trampoline(v.opts)
			if err != nil {
				t.Fatal(err)
			}
			src, err := p.Asm()
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			s, o := filepath.Join(dir, "t.s"), filepath.Join(dir, "t.o")
			if err := os.WriteFile(s, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(as, "-o", o, s).CombinedOutput(); err != nil {
				t.Fatalf("as: %v\n%s\n%s", err, out, src)
			}
			f, err := elf.Open(o)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			text, err := f.Section(".text").Data()
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(p.Bytes(), text); d != "" {
				t.Errorf(".text differs from Words (-words +as):\n%s", d)
			}
			var got []reloc
			if rs := f.Section(".rela.text"); rs != nil {
				syms, _ := f.Symbols()
				b, _ := rs.Data()
				for ; len(b) >= 24; b = b[24:] {
					info := binary.LittleEndian.Uint64(b[8:])
					got = append(got, reloc{binary.LittleEndian.Uint64(b), elf.R_AARCH64(uint32(info)),
						syms[info>>32-1].Name, int64(binary.LittleEndian.Uint64(b[16:]))})
				}
			}
			kinds := map[FixupKind]elf.R_AARCH64{
				FixupAdrpPage: elf.R_AARCH64_ADR_PREL_PG_HI21,
				FixupAddLo12:  elf.R_AARCH64_ADD_ABS_LO12_NC,
			}
			var want []reloc
			for _, fx := range p.Fixups {
				want = append(want, reloc{uint64(4 * fx.Index), kinds[fx.Kind], fx.Sym, fx.Addend})
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("relocations (-fixups +as):\n%s", d)
			}
			// The function symbol: global, FUNC, sized.
			syms, _ := f.Symbols()
			name := v.opts.Name
			if name == "" {
				name = "ftrace_caller"
			}
			// Each entry: global, FUNC, at its word, sized to the next.
			starts := append([]Entry{{Name: name}}, p.Entries...)
			for i, e := range starts {
				end := len(p.Words)
				if i+1 < len(starts) {
					end = starts[i+1].Index
				}
				found := false
				for _, s := range syms {
					if s.Name == e.Name {
						found = true
						if elf.ST_BIND(s.Info) != elf.STB_GLOBAL || elf.ST_TYPE(s.Info) != elf.STT_FUNC ||
							s.Value != uint64(4*e.Index) || s.Size != uint64(4*(end-e.Index)) {
							t.Errorf("symbol %+v, want at word %d, %d words", s, e.Index, end-e.Index)
						}
					}
				}
				if !found {
					t.Errorf("no symbol %q", e.Name)
				}
			}
		})
	}
}

// TestTrampolineRegisters decodes the program with arm64asm and checks the
// ABI promises: the only registers written are the scratch x9-x17, the
// argument registers x0-x8 (restored), x29/x30 and SP; SP moves in
// multiples of 16 and comes back; the program starts with BTI C.
func TestTrampolineRegisters(t *testing.T) {
	for _, v := range trampolineVariants {
		t.Run(v.name, func(t *testing.T) {
			p, err := Trampoline(v.opts)
			if err != nil {
				t.Fatal(err)
			}
			if p.Words[0] != BTIC || !p.BTI {
				t.Errorf("first word %#08x, BTI %v", p.Words[0], p.BTI)
			}
			sp := int64(0)
			for i, w := range p.Words {
				var b [4]byte
				binary.LittleEndian.PutUint32(b[:], w)
				in, err := arm64asm.Decode(b[:])
				if err != nil {
					t.Fatalf("word %d: %v", i, err)
				}
				text := arm64asm.GNUSyntax(in)
				var written []arm64asm.Arg
				switch in.Op {
				case arm64asm.STP, arm64asm.STR, arm64asm.STUR, arm64asm.CBZ, arm64asm.B, arm64asm.BLR, arm64asm.RET, arm64asm.HINT, arm64asm.NOP:
				case arm64asm.LDP:
					written = in.Args[:2]
				default:
					written = in.Args[:1]
				}
				for _, a := range written {
					name := strings.ToLower(a.String())
					ok := name == "sp" || name == "x29" || name == "x30"
					for r := 0; r <= 17; r++ {
						ok = ok || name == "x"+strconv.Itoa(r)
					}
					if !ok {
						t.Errorf("word %d %q writes %s", i, text, name)
					}
				}
				if strings.HasPrefix(text, "sub sp, sp, #") || strings.HasPrefix(text, "add sp, sp, #") {
					n, err := strconv.ParseInt(text[len("sub sp, sp, #"):], 0, 64)
					if err != nil {
						t.Fatalf("word %d %q: %v", i, text, err)
					}
					if n%16 != 0 {
						t.Errorf("word %d %q: SP misaligned", i, text)
					}
					if text[0] == 's' {
						sp -= n
					} else {
						sp += n
					}
				}
			}
			if sp != 0 {
				t.Errorf("SP changed by %d over the whole program", sp)
			}
		})
	}
}

func TestTrampolineOptionErrors(t *testing.T) {
	for _, o := range []TrampolineOptions{{Classic: true}, {OpsSym: "x"}, {DirectCalls: true, Classic: true, OpsSym: "x"},
		{DirectCalls: true, DirectCallOffset: 12}, {DirectCalls: true, DirectCallOffset: -8}, {DirectCalls: true, DirectCallOffset: 32768}} {
		if _, err := Trampoline(o); !errors.Is(err, ErrTrampoline) {
			t.Errorf("%+v: err = %v, want ErrTrampoline", o, err)
		}
	}
}

// The direct-call path, read back by arm64asm: after the NULL check, a load
// of op->direct_call from the op at the offset asked for, and a CBNZ on it
// to a BR of the same register; X9 and X30 are not written on the way.
func TestTrampolineDirectPath(t *testing.T) {
	for _, off := range []int64{0, 64, 208, 4096} {
		p, err := Trampoline(TrampolineOptions{DirectCalls: true, DirectCallOffset: off})
		if err != nil {
			t.Fatal(err)
		}
		want := off
		if want == 0 {
			want = DefaultDirectCallOffset
		}
		text := make([]string, len(p.Words))
		for i, w := range p.Words {
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], w)
			in, err := arm64asm.Decode(b[:])
			if err == nil {
				text[i] = arm64asm.GNUSyntax(in)
			}
		}
		ld := -1
		for i, s := range text {
			if s == fmt.Sprintf("ldr x17, [x11,#%d]", want) {
				ld = i
			}
		}
		if ld < 0 || ld+1 >= len(text) || !strings.HasPrefix(text[ld+1], "cbnz x17, ") {
			t.Fatalf("offset %d: no ldr x17, [x11,#%d] then cbnz x17:\n%s", off, want, strings.Join(text, "\n"))
		}
		if !strings.HasPrefix(text[ld-1], "cbz x11, ") {
			t.Errorf("offset %d: the direct_call load is not right after the NULL check: %q", off, text[ld-1])
		}
		rel, err := strconv.ParseInt(strings.TrimPrefix(text[ld+1], "cbnz x17, .+"), 0, 64)
		if err != nil {
			t.Fatalf("cbnz %q: %v", text[ld+1], err)
		}
		if to := ld + 1 + int(rel/4); to >= len(text) || text[to] != "br x17" {
			t.Errorf("offset %d: cbnz goes to word %d, not a br x17", off, to)
		}
		for i := 1; i < ld; i++ {
			if strings.HasPrefix(text[i], "mov x9,") || strings.Contains(text[i], "x30, ") && !strings.HasPrefix(text[i], "and x11, x30") {
				t.Errorf("offset %d: word %d %q touches X9/X30 before the direct branch", off, i, text[i])
			}
		}
	}
}

// TestTrampolineEntry53: for the four 5,3 cases (entry 0 or 4 mod 8, with
// and without BTI) and for 4,2, the literal found by the entry
// TrampolineEntry picks is the aligned pair before the entry; only 5,3 with
// BTI at 4 mod 8 needs the second entry.
func TestTrampolineEntry53(t *testing.T) {
	for _, c := range []struct {
		name    string
		entry   uint64
		bti     bool
		pre     uint64 // words before the entry
		wantAlt bool
	}{
		{"4,2", 0x1000, false, 2, false},
		{"4,2 bti", 0x1000, true, 2, false},
		{"5,3 0mod8", 0x1000, false, 3, false},
		{"5,3 0mod8 bti", 0x1000, true, 3, false},
		{"5,3 4mod8", 0x1004, false, 3, false},
		{"5,3 4mod8 bti", 0x1004, true, 3, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The literal: the first 8-aligned address among the pre-entry words.
			lit := c.entry - 4*c.pre
			for lit%8 != 0 {
				lit += 4
			}
			bl := c.entry + 4
			if c.bti {
				bl += 4
			}
			x30 := bl + 4
			alt, ok := TrampolineEntry(x30, lit)
			if !ok || alt != c.wantAlt {
				t.Fatalf("TrampolineEntry(%#x, %#x) = %v, %v; want %v, true", x30, lit, alt, ok, c.wantAlt)
			}
			off, alto := int64(LiteralOffset), int64(LiteralOffsetAlt)
			got := x30&^7 + uint64(off)
			if alt {
				got = x30 + uint64(alto)
			}
			if got != lit {
				t.Errorf("entry loads %#x, literal at %#x", got, lit)
			}
		})
	}
	if _, ok := TrampolineEntry(0x1010, 0x1004); ok {
		t.Error("a literal neither entry reaches was accepted")
	}
}

// The stand-in direct trampoline, read back by arm64asm: Linux's
// ftrace_stub_direct_tramp word for word (arch/arm64/kernel/entry-ftrace.S).
func TestStubDirectTrampoline(t *testing.T) {
	p, err := StubDirectTrampoline()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"hint #0x22", "mov x10, x30", "mov x30, x9", "ret x10"}
	if len(p.Words) != len(want) {
		t.Fatalf("%d words, want %d", len(p.Words), len(want))
	}
	for i, w := range p.Words {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], w)
		in, err := arm64asm.Decode(b[:])
		if err != nil {
			t.Fatalf("word %d %#08x: %v", i, w, err)
		}
		if got := arm64asm.GNUSyntax(in); got != want[i] {
			t.Errorf("word %d %#08x = %q, want %q", i, w, got, want[i])
		}
	}
	if !p.BTI {
		t.Error("BTI not claimed although the entry is a BTI C")
	}
}
