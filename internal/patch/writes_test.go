// SPDX-License-Identifier: Apache-2.0

package patch

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/testutil/pairtest"
)

// synthSites scans a file of size bytes whose nop call-ops sites (no
// BTI) have their records at the file offsets offs (pairtest.SynthAt), and
// returns its sites in the order of offs.
func synthSites(t *testing.T, offs []int64, size int) ([]elfscan.Site, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	pairtest.SynthAt(t, p, int64(size), slices.Sorted(slices.Values(offs)))
	f := pairtest.Scan(t, p)
	sites := make([]elfscan.Site, len(offs))
	for i, off := range offs {
		k := slices.IndexFunc(f.Sites, func(s elfscan.Site) bool { return s.LiteralOff() == off })
		if k < 0 || f.Sites[k].Layout != elfscan.LayoutCallOps || f.Sites[k].State != elfscan.StateNop || f.Sites[k].BTI {
			t.Fatalf("%s: no nop call-ops site without BTI whose literal is at %#x", p, off)
		}
		sites[i] = f.Sites[k]
	}
	return sites, p
}

// applySpans does what Apply does to the file's bytes, in memory.
func applySpans(t *testing.T, l *spanList, path string) []byte {
	t.Helper()
	src, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range l.spans {
		if sp.end-sp.off > spanMax {
			t.Errorf("span %#x-%#x is longer than %d bytes", sp.off, sp.end, spanMax)
		}
		buf, err := l.read(src, sp, make([]byte, 0, spanMax))
		if err != nil {
			t.Fatal(err)
		}
		l.each(sp, func(w Write) bool { w.Put(buf[w.Off()-sp.off:]); return true })
		copy(out[sp.off:], buf)
	}
	return out
}

// The words a plan writes land where a word-by-word oracle puts them,
// whether the sites come in file order (spans index the plan, nothing is
// copied) or not (the writes are sorted once), with spans of at most
// spanMax bytes never splitting a site; a literal value that differs from
// the plan's usual one is kept for its site.
func TestPlanWritesSpans(t *testing.T) {
	const size = 3 << 20
	for _, tc := range []struct {
		name    string
		offs    []int64
		ordered bool
	}{
		{"file order", []int64{0x1100, 0x1200, 0x1100 + spanMax - 8, spanMax + 0x1400, 2*spanMax + 0x1400}, true},
		{"sections out of file order", []int64{2 * spanMax, 0x1040, spanMax + 8, 0x1080}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sites, path := synthSites(t, tc.offs, size)
			ws := writes{sites: sites, op: OpEnable}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for i := range sites {
				bl := encode.BLZero + uint32(i)
				lit := uint64(0xffff000012345678)
				if i == 2 {
					lit = 0xdead0000beef0000 // the exception
				}
				ws.add(sitePlan{site: int32(i), slot1: encode.MovX9X30, slot2: bl, set: 1<<SlotLiteral | 1<<SlotSlot1 | 1<<SlotSlot2}, lit)
				off := tc.offs[i]
				binary.LittleEndian.PutUint64(want[off:], lit)
				binary.LittleEndian.PutUint32(want[off+8:], encode.MovX9X30)
				binary.LittleEndian.PutUint32(want[off+12:], bl)
			}
			if ws.n != 3*len(sites) {
				t.Fatalf("%d words, want %d", ws.n, 3*len(sites))
			}
			l := ws.spans()
			if (l.sorted == nil) != tc.ordered {
				t.Fatalf("sorted copy made: %v, want %v", l.sorted != nil, !tc.ordered)
			}
			// The third site would cross the first span's spanMax: it
			// starts the second, whole.
			if tc.ordered && (len(l.spans) != 3 || l.spans[1].off != tc.offs[2] || l.spans[1].lo != 2) {
				t.Errorf("spans %+v, want 3, the second starting at the third site (%#x)", l.spans, tc.offs[2])
			}
			if got := applySpans(t, l, path); !bytes.Equal(got, want) {
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("first difference at file offset %#x: %#x, want %#x", i, got[i], want[i])
					}
				}
			}
			// Plan order: sites as planned, literal before BL.
			c := &Changes{writes: ws}
			k := 0
			for w := range c.Writes() {
				if w.site != &sites[k/3] || w.Slot != fileOrder[k%3] {
					t.Fatalf("write %d: site %p slot %v, want site %d slot %v", k, w.site, w.Slot, k/3, fileOrder[k%3])
				}
				k++
			}
			if k != c.Words() {
				t.Errorf("Writes yielded %d words, Words says %d", k, c.Words())
			}
		})
	}
}

// A changed word is found before anything is written.
func TestPlanWritesChanged(t *testing.T) {
	sites, path := synthSites(t, []int64{0x1100, 0x1200}, 0x20000)
	ws := writes{sites: sites, op: OpInit}
	for i := range sites {
		ws.add(sitePlan{site: int32(i), slot1: encode.MovX9X30, set: 1 << SlotSlot1}, 0)
	}
	b, _ := os.ReadFile(path)
	binary.LittleEndian.PutUint32(b[0x1200+8:], encode.MovX9X30)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	l := ws.spans()
	if _, err := l.read(src, l.spans[0], make([]byte, 0, spanMax)); err == nil || !bytes.Contains([]byte(err.Error()), []byte("slot1")) {
		t.Errorf("read of a changed slot1 = %v, want ErrChanged naming slot1", err)
	}
}
