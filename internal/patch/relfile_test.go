// SPDX-License-Identifier: Apache-2.0

package patch

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/testutil/scantest"
)

// setShdr64 overwrites the 8-byte field at off (48: sh_addralign) of
// section header i of the ELF64 image b, in place.
func setShdr64(t testing.TB, b []byte, i int, off int, v uint64) {
	t.Helper()
	shoff := binary.LittleEndian.Uint64(b[0x28:])
	binary.LittleEndian.PutUint64(b[shoff+uint64(i)*64+uint64(off):], v)
}

// textIndex is the index of the first executable section of the object b.
func textIndex(t testing.TB, b []byte) int {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range f.Sections {
		if s.Flags&elf.SHF_EXECINSTR != 0 && s.Size > 0 {
			return i
		}
	}
	t.Fatal("no text section")
	return 0
}

// TestHugeAddralign: a relocatable object whose sh_addralign is huge, not a
// power of two, or larger than the file is refused when opened for
// patching, naming the field, before anything is sized by it; scan still
// reads the file (it uses the field only to warn about literals).
func TestHugeAddralign(t *testing.T) {
	src := testutil.Fixtures(t, "gcc-callops-obj.o")[0]
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, align := range []uint64{1 << 62, 3, 1 << 40, uint64(len(orig)) * 2} {
		b := bytes.Clone(orig)
		setShdr64(t, b, textIndex(t, b), 48, align)
		p := filepath.Join(t.TempDir(), "huge.o")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := scantest.File(p); err != nil {
			t.Errorf("sh_addralign %#x: scan: %v", align, err)
		}
		in, err := Open(p)
		if err == nil {
			in.Close()
			t.Fatalf("sh_addralign %#x: Open accepted the file", align)
		}
		if !errors.Is(err, elfscan.ErrMalformed) || !strings.Contains(err.Error(), "sh_addralign") {
			t.Errorf("sh_addralign %#x: error %q, want ErrMalformed naming sh_addralign", align, err)
		}
	}
}

// rewriteSeeds are the relocatable fixtures the rewrite fuzzer starts from.
func rewriteSeeds(t testing.TB) []string {
	return append(testutil.Fixtures(t, "*.o"), testutil.Fixtures(t, "*.ko")...)
}

// fuzzRequests are the requests tried on every input: each operation,
// with ops and trampoline named by symbol (existing or added).
var fuzzRequests = []Request{
	{Op: OpInit, SkipMisaligned: true},
	{Op: OpEnable, InitToo: true, Ops: &Value{Sym: "ops"}, SkipMisaligned: true},
	{Op: OpEnable, InitToo: true, Ops: &Value{Sym: "fuzz_ops"}, Trampoline: Value{Sym: "fuzz_tramp"}, SkipMisaligned: true},
	{Op: OpDisable, DefaultOps: Value{Sym: "ops"}},
}

// FuzzRewrite plans and rewrites mutated relocatable objects and modules:
// never a panic; an error leaves no output; a rewrite that succeeds is a
// file that scans again, with the same number of sites.
func FuzzRewrite(f *testing.F) {
	for _, p := range rewriteSeeds(f) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(0))
		f.Add(b, uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		rewriteOnce(t, b, fuzzRequests[int(which)%len(fuzzRequests)])
	})
}

// rewriteOnce checks the fuzz invariant on one input and request.
func rewriteOnce(t *testing.T, b []byte, req Request) {
	o, err := elfscan.NewObject(bytes.NewReader(b), "fuzz.o")
	if err != nil || !o.Rel() {
		return
	}
	in, err := newInput(o, 0o644)
	if err != nil {
		if in != nil {
			t.Fatalf("newInput returned an input with error %v", err)
		}
		return
	}
	c, err := Plan(in, req)
	if err != nil {
		if c != nil {
			t.Fatalf("Plan returned a plan with error %v", err)
		}
		return
	}
	out, err := in.rel.rewrite(c)
	if err != nil {
		if out != nil {
			t.Fatalf("rewrite returned %d bytes with error %v", len(out), err)
		}
		return
	}
	sf, err := scantest.Bytes(out, "rewritten.o")
	if err != nil {
		t.Fatalf("%s: the rewritten file does not scan: %v", req.Op, err)
	}
	if len(sf.Sites) != len(in.Scan.Sites) {
		t.Fatalf("%s: %d sites before the rewrite, %d after", req.Op, len(in.Scan.Sites), len(sf.Sites))
	}
}

// TestRewriteSeeds runs the fuzz invariant over the unmutated seeds and
// every request, and checks that the seeds do rewrite (so the invariant is
// not vacuous).
func TestRewriteSeeds(t *testing.T) {
	for _, p := range rewriteSeeds(t) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, req := range fuzzRequests {
			rewriteOnce(t, b, req)
		}
		o, err := elfscan.NewObject(bytes.NewReader(b), p)
		if err != nil {
			t.Fatal(err)
		}
		in, err := newInput(o, 0o644)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(p), err)
		}
		c, err := Plan(in, Request{Op: OpInit, SkipMisaligned: true})
		if err != nil {
			t.Fatalf("%s: plan init: %v", filepath.Base(p), err)
		}
		if out, err := in.rel.rewrite(c); err != nil || len(out) == 0 {
			t.Fatalf("%s: rewrite: %d bytes, %v", filepath.Base(p), len(out), err)
		}
	}
}
