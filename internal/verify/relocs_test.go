// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package verify

import (
	"encoding/binary"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// With the tool's trampoline, a file linked with --no-apply-dynamic-relocs
// has only the words runs read relocated in the image (each op's first
// word, here ops.func, 0 in the file): every other relocated word keeps the
// file's bytes, so its page is never copied; the budget engine's copy has
// every relocation applied, and with the file's trampoline all are applied
// as the file loads.
func TestRelocationsWhereRead(t *testing.T) {
	src := testutil.Fixtures(t, "clang-callops-bti-pie-noapply.elf")[0]
	ops, tramp := testutil.SymbolAddr(t, src, "ops"), testutil.SymbolAddr(t, src, "ftrace_caller")
	good := agLinked(t, src, "good", elfscan.StateEnabled, ops, tramp)
	o, err := elfscan.Open(good)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	d, err := o.DynRelocs()
	if err != nil {
		t.Fatal(err)
	}
	var other elfscan.DynReloc // a resolved relocation at a word no run reads
	for _, r := range d.All() {
		if r.Resolved && r.Off != ops && r.Value != 0 {
			other = r
			break
		}
	}
	if other.Off == 0 {
		t.Fatal("no other relocation in the fixture")
	}
	for _, runFile := range []bool{false, true} {
		img, err := LoadObject(o, Options{RunFileTrampoline: runFile})
		if err != nil {
			t.Fatal(err)
		}
		fn, _ := img.read64(ops)
		at, _ := img.read64(other.Off)
		if r, _ := d.At(ops); fn != r.Value {
			t.Errorf("runfile=%v: ops.func %#x, want the relocated %#x", runFile, fn, r.Value)
		}
		if want := map[bool]uint64{false: 0, true: other.Value}[runFile]; at != want {
			t.Errorf("runfile=%v: word at %#x is %#x, want %#x", runFile, other.Off, at, want)
		}
		if !runFile { // (the fixture's own ftrace_caller is a stub)
			rep, err := Check(img, Options{})
			if err != nil || rep.Failed != 0 || rep.Sites == 0 {
				t.Errorf("%+v %v", rep, err)
			}
			st := img.plantStops(nil, Options{})
			if st == nil {
				st = &stopSet{img: img}
			}
			m, err := st.pristine(img.find(other.Off))
			if err != nil {
				t.Fatal(err)
			}
			if v := binary.LittleEndian.Uint64(m[other.Off-img.find(other.Off).addr:]); v != other.Value {
				t.Errorf("the budget engine's copy holds %#x at %#x, want %#x", v, other.Off, other.Value)
			}
			st.restore()
		}
		img.Close()
	}
}
