// SPDX-License-Identifier: Apache-2.0

package encode_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	. "github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// objdumpWords disassembles words placed at address 0 with GNU objdump and
// returns its text for each, tabs and runs of spaces made one space.
func objdumpWords(t *testing.T, words []uint32) []string {
	objdump := testutil.NeedTool(t, "aarch64-linux-gnu-objdump")
	b := make([]byte, 4*len(words))
	for i, w := range words {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
	bin := filepath.Join(t.TempDir(), "words.bin")
	if err := os.WriteFile(bin, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(objdump, "-D", "-b", "binary", "-m", "aarch64", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump: %v\n%s", err, out)
	}
	got := make([]string, len(words))
	for _, line := range strings.Split(string(out), "\n") {
		// "   4:	d503233f 	paciasp"
		addr, rest, ok := strings.Cut(line, ":\t")
		if !ok {
			continue
		}
		a, err := strconv.ParseUint(strings.TrimSpace(addr), 16, 64)
		if err != nil || a%4 != 0 || a/4 >= uint64(len(words)) {
			continue
		}
		_, text, _ := strings.Cut(rest, "\t")
		text, _, _ = strings.Cut(text, "//")
		got[a/4] = strings.Join(strings.Fields(text), " ")
	}
	return got
}

// TestDisasmHintsAgainstObjdump: every HINT immediate is named as GNU
// objdump names it, or left as "hint #n" where objdump does.
func TestDisasmHintsAgainstObjdump(t *testing.T) {
	var words []uint32
	for imm := uint32(0); imm < 128; imm++ {
		words = append(words, 0xd503201f|imm<<5)
	}
	want := objdumpWords(t, words)
	for i, w := range words {
		name, named := HintName(w)
		ours := Disasm(w, uint64(4*i))
		theirs := want[i]
		switch {
		case theirs == "":
			t.Errorf("%#08x: objdump printed nothing", w)
		case strings.HasPrefix(theirs, "hint "):
			if named {
				t.Errorf("%#08x: we name it %q, objdump %q", w, name, theirs)
			}
		case !named || ours != theirs:
			t.Errorf("%#08x: Disasm %q, objdump %q", w, ours, theirs)
		}
	}
	for _, w := range []uint32{BTIC, BTIJ, BTIJC, NOP} {
		if !IsBTI(w) && w != NOP {
			t.Errorf("IsBTI(%#08x) = false", w)
		}
		if !IsHint(w) {
			t.Errorf("IsHint(%#08x) = false", w)
		}
	}
}

// TestDisasmBranchesAgainstObjdump: B and BL print their absolute target,
// as objdump does; RET and RETAA by name; an undecodable word as .inst.
func TestDisasmBranchesAgainstObjdump(t *testing.T) {
	bl, err := BL{From: 8, To: 0x40}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := BL{From: 12, To: 0}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	words := []uint32{RetX30, 0xd65f0bff, bl, back, BSelf, BSelf | 3, BLZero, MovX9X30}
	want := objdumpWords(t, words)
	for i, w := range words {
		ours := Disasm(w, uint64(4*i))
		// objdump appends "<.data+0x40>"-style labels to targets.
		theirs, _, _ := strings.Cut(want[i], " <")
		if ours != theirs {
			t.Errorf("word %d %#08x: Disasm %q, objdump %q", i, w, ours, want[i])
		}
	}
	if got := Disasm(0, 0); got != fmt.Sprintf(".inst %#08x", 0) {
		t.Errorf("Disasm(0) = %q, want .inst", got)
	}
	if !IsB(BSelf) || IsB(BLZero) || !IsBL(BLZero) || IsBL(BSelf) {
		t.Error("IsB/IsBL confuse B and BL")
	}
}

// TestDisasmConcurrent: Disasm is called from many goroutines at once
// (verify's workers); under -race an unserialised decoder is reported.
func TestDisasmConcurrent(t *testing.T) {
	words := []uint32{NOP, BTIC, MovX9X30, RetX30, 0xa9bf7bfd, 0x910003fd, 0xf9400000, 0}
	want := make([]string, len(words))
	for i, w := range words {
		want[i] = Disasm(w, 0)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(words))
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (g + i) % len(words)
				if got := Disasm(words[k], 0); got != want[k] {
					errs <- fmt.Sprintf("Disasm(%#08x) = %q, want %q", words[k], got, want[k])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
