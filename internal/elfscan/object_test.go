// SPDX-License-Identifier: Apache-2.0

package elfscan_test

// Tests of the Object against binutils: symbol lookup by name against nm,
// dynamic relocations against readelf -r. Expectations come from the tools'
// output only.

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

func openObject(t *testing.T, path string) *elfscan.Object {
	t.Helper()
	o, err := elfscan.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// TestLookupMatchesNm: in every linked fixture, a name nm lists at one
// address is found there; a name it lists at several is ambiguous, and the
// error says what to do.
func TestLookupMatchesNm(t *testing.T) {
	for _, path := range testutil.Fixtures(t, "*.elf") {
		addrs := map[string]map[uint64]bool{}
		for _, line := range strings.Split(run(t, "aarch64-linux-gnu-nm", "--defined-only", path), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 || strings.HasPrefix(f[2], "$") {
				continue
			}
			if addrs[f[2]] == nil {
				addrs[f[2]] = map[uint64]bool{}
			}
			addrs[f[2]][hexU(t, f[0])] = true
		}
		if len(addrs) == 0 {
			t.Fatalf("%s: nm lists no symbols", path)
		}
		o := openObject(t, path)
		for name, at := range addrs {
			s, err := o.Lookup(name)
			switch {
			case len(at) == 1 && err != nil:
				t.Errorf("%s: Lookup(%q): %v", filepath.Base(path), name, err)
			case len(at) == 1 && !at[s.Value]:
				t.Errorf("%s: Lookup(%q) = %#x, nm says %v", filepath.Base(path), name, s.Value, at)
			case len(at) > 1 && (!errors.Is(err, elfscan.ErrSymbolAmbiguous) || !strings.Contains(err.Error(), "give the address")):
				t.Errorf("%s: Lookup(%q) = %#x, %v; nm lists it at %d addresses", filepath.Base(path), name, s.Value, err, len(at))
			}
		}
		if _, err := o.Lookup("no_such_symbol_anywhere"); !errors.Is(err, elfscan.ErrSymbolNotFound) {
			t.Errorf("%s: Lookup of a missing name: %v", filepath.Base(path), err)
		}
	}
}

// TestLookupAmbiguousStatics links two files that each define a static
// dup_ops: the name is ambiguous, the error lists both addresses.
func TestLookupAmbiguousStatics(t *testing.T) {
	gcc := testutil.NeedTool(t, "aarch64-linux-gnu-gcc")
	dir := t.TempDir()
	for _, n := range []string{"a", "b"} {
		src := "static long dup_ops[2] = {1, 2};\nlong *" + n + "(void) { return dup_ops; }\n"
		if err := os.WriteFile(filepath.Join(dir, n+".c"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(dir, "amb")
	if out, err := exec.Command(gcc, "-O2", "-nostdlib", "-static", "-e", "a", "-o", exe,
		filepath.Join(dir, "a.c"), filepath.Join(dir, "b.c")).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	var want []string
	for _, line := range strings.Split(run(t, "aarch64-linux-gnu-nm", exe), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[2] == "dup_ops" {
			want = append(want, "0x"+strings.TrimLeft(f[0], "0"))
		}
	}
	if len(want) != 2 {
		t.Fatalf("nm lists dup_ops %d times, want 2", len(want))
	}
	_, err := openObject(t, exe).Lookup("dup_ops")
	if !errors.Is(err, elfscan.ErrSymbolAmbiguous) {
		t.Fatalf("Lookup(dup_ops): %v, want ErrSymbolAmbiguous", err)
	}
	for _, a := range want {
		if !strings.Contains(err.Error(), a) {
			t.Errorf("error %q does not list %s", err, a)
		}
	}
}

// TestDynRelocsMatchReadelf builds a shared object with RELATIVE, ABS64,
// GLOB_DAT and JUMP_SLOT relocations, defined and undefined, and checks
// every entry against readelf -r: RELATIVE is its addend, a symbol
// relocation against a defined symbol is the symbol's value plus addend,
// one against an undefined symbol is not resolved (Value says so with an
// error, never a silent zero).
func TestDynRelocsMatchReadelf(t *testing.T) {
	gcc := testutil.NeedTool(t, "aarch64-linux-gnu-gcc")
	dir := t.TempDir()
	src := `
extern void ext_fn(void);
extern long ext_var;
long defined_var = 1;
void defined_fn(void) {}
static long local;
void *ptrs[] = { &local, defined_fn, &defined_var, ext_fn, &ext_var };
long get(void) { ext_fn(); return defined_var + ext_var; }
`
	so := filepath.Join(dir, "lib.so")
	if err := os.WriteFile(filepath.Join(dir, "lib.c"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-O1", "-shared", "-fPIC", "-nostdlib", "-o", so, filepath.Join(dir, "lib.c")).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	type want struct {
		typ      string
		value    uint64
		resolved bool
	}
	wants := map[uint64]want{}
	types := map[string]bool{}
	for _, line := range strings.Split(run(t, "aarch64-linux-gnu-readelf", "-rW", so), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[2], "R_AARCH64_") {
			continue
		}
		w := want{typ: f[2]}
		switch {
		case f[2] == "R_AARCH64_RELATIVE" && len(f) == 4:
			w.value, w.resolved = hexU(t, f[3]), true
		case len(f) == 7 && f[5] == "+": // offset info type symval name + addend
			symval := hexU(t, f[3])
			w.value, w.resolved = symval+hexU(t, f[6]), symval != 0
		default:
			t.Fatalf("unexpected readelf line %q", line)
		}
		wants[hexU(t, f[0])] = w
		types[f[2]] = true
	}
	for _, typ := range []string{"R_AARCH64_RELATIVE", "R_AARCH64_ABS64", "R_AARCH64_GLOB_DAT", "R_AARCH64_JUMP_SLOT"} {
		if !types[typ] {
			t.Errorf("the test library has no %s (readelf lists %v)", typ, types)
		}
	}
	o := openObject(t, so)
	d, err := o.DynRelocs()
	if err != nil {
		t.Fatal(err)
	}
	if len(d.All()) != len(wants) {
		t.Errorf("%d dynamic relocations, readelf lists %d", len(d.All()), len(wants))
	}
	for _, r := range d.All() {
		w, ok := wants[r.Off]
		if !ok {
			t.Errorf("relocation at %#x: readelf lists none", r.Off)
			continue
		}
		if r.Type().String() != w.typ || r.Resolved != w.resolved || r.Resolved && r.Value != w.value {
			t.Errorf("relocation at %#x: %v value %#x resolved %v; readelf: %s value %#x resolved %v",
				r.Off, r.Type(), r.Value, r.Resolved, w.typ, w.value, w.resolved)
		}
		v, found, err := d.Value(r.Off)
		if !found || (err == nil) != r.Resolved || err == nil && v != r.Value {
			t.Errorf("Value(%#x) = %#x, %v, %v", r.Off, v, found, err)
		}
		if err != nil && !errors.Is(err, elfscan.ErrUnsupportedReloc) {
			t.Errorf("Value(%#x): %v, want ErrUnsupportedReloc", r.Off, err)
		}
		if v, err := o.Load64(r.Off); w.resolved && (err != nil || v != w.value) || !w.resolved && err == nil {
			t.Errorf("Load64(%#x) = %#x, %v; readelf: %#x resolved %v", r.Off, v, err, w.value, w.resolved)
		}
	}
	var unresolved []uint64 // readelf's, by address (one relocation an address here)
	for a, w := range wants {
		if !w.resolved {
			unresolved = append(unresolved, a)
		}
	}
	slices.Sort(unresolved)
	var got []uint64
	for _, r := range d.Unresolved() {
		got = append(got, r.Off)
	}
	if len(unresolved) == 0 || !slices.Equal(got, unresolved) {
		t.Errorf("Unresolved at %#x; readelf: %#x (the test library must have some)", got, unresolved)
	}
}

// TestObjectConcurrent asks one Object for everything from several
// goroutines at once (run with -race): each view is built once and shared.
func TestObjectConcurrent(t *testing.T) {
	for _, path := range append(testutil.Fixtures(t, "*-kimage.elf"), testutil.Fixtures(t, "*-module.ko")...) {
		o := openObject(t, path)
		var wg sync.WaitGroup
		files := make([]*elfscan.File, 4)
		for g := range files {
			wg.Go(func() {
				f, err := o.Scan()
				if err != nil {
					t.Error(err)
				}
				files[g] = f
				st, err := o.Symbols()
				if err != nil {
					t.Error(err)
					return
				}
				for _, s := range f.Sites {
					if s.Func == "" {
						continue
					}
					sec := 0
					if o.Rel() {
						sec = s.SectionIndex()
					}
					if fn, ok := st.Containing(sec, s.Entry()); ok && fn.Name == "" {
						t.Errorf("%s: unnamed function around %#x", path, s.Entry())
					}
				}
				if _, err := o.Relocs(); err != nil {
					t.Error(err)
				}
				if _, err := o.DynRelocs(); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for _, f := range files[1:] {
			if f != files[0] {
				t.Errorf("%s: Scan computed more than once", path)
			}
		}
	}
}

// FuzzObject asks a mutated fixture's Object for every view: never a
// panic, and an error never comes with a result.
func FuzzObject(f *testing.F) {
	testutil.AddFixtures(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := elfscan.NewObject(bytes.NewReader(b), "fuzz")
		if err != nil {
			if o != nil {
				t.Fatal("object with error")
			}
			return
		}
		if x, err := o.Relocs(); err != nil && x != nil {
			t.Fatal("relocation index with error")
		} else if err == nil {
			for i := range o.ELF().Sections {
				x.For(i)
			}
		}
		if d, err := o.DynRelocs(); err != nil && d != nil {
			t.Fatal("dynamic relocations with error")
		} else if err == nil {
			for _, r := range d.All() {
				o.Load64(r.Off)
			}
		}
		if st, err := o.Symbols(); err != nil && st != nil {
			t.Fatal("symbols with error")
		} else if err == nil {
			for i := range min(st.Len(), 64) {
				if s, ok := st.Sym(uint32(i)); ok && s.Name != "" {
					o.Lookup(s.Name)
					st.At(int(s.Section), s.Value)
					st.Containing(int(s.Section), s.Value)
				}
			}
		}
		if sf, err := o.Scan(); err != nil && sf != nil {
			t.Fatal("scan with error")
		}
	})
}

// TestReleaseKeepsScan: scans of every module and kernel image, each
// Object released (its tables pooled and overwritten by the next file's),
// equal scans of the same files whose Objects were only closed, so no
// scan result refers to pooled memory, and pooled tables decode as fresh
// ones do.
func TestReleaseKeepsScan(t *testing.T) {
	paths := append(testutil.Fixtures(t, "*-module.ko"), testutil.Fixtures(t, "*-kimage.elf")...)
	want := map[string]*elfscan.File{}
	for _, path := range paths {
		f, err := openObject(t, path).Scan()
		if err != nil {
			t.Fatal(err)
		}
		want[path] = f
	}
	var got []*elfscan.File
	for range 2 {
		for _, path := range paths {
			o, err := elfscan.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := o.Relocs(); err != nil { // decoded tables too
				t.Fatal(err)
			}
			f, err := o.Scan()
			if err != nil {
				t.Fatal(err)
			}
			if err := o.Release(); err != nil {
				t.Fatal(err)
			}
			got = append(got, f)
		}
	}
	for i, f := range got {
		path := paths[i%len(paths)]
		if len(f.Sites) == 0 {
			t.Errorf("%s: no sites", path)
		}
		if !reflect.DeepEqual(f, want[path]) {
			t.Errorf("%s: scan after Release differs from a fresh scan", path)
		}
	}
}

// TestMappedSymtab: a plain file too large to be read whole has its symbol
// table and names mapped from the file, not copied, and they read as the
// copies do (every symbol, the lookups, the scan); they stay valid after
// Close and Release, which hand no mapped memory to the next file.
func TestMappedSymtab(t *testing.T) {
	paths := append(testutil.Fixtures(t, "*-kimage.elf"), testutil.Fixtures(t, "*-module.ko")...)
	type view struct {
		syms []elfscan.Sym
		scan *elfscan.File
	}
	read := func(o *elfscan.Object) (view, *elfscan.Symtab) {
		t.Helper()
		st, err := o.Symbols()
		if err != nil {
			t.Fatal(err)
		}
		var v view
		for i := range st.Len() {
			s, _ := st.Sym(uint32(i))
			v.syms = append(v.syms, s)
		}
		if v.scan, err = o.Scan(); err != nil {
			t.Fatal(err)
		}
		return v, st
	}
	for _, path := range paths {
		want, st := read(openObject(t, path))
		if st.Mapped() {
			t.Fatalf("%s (%d symbols): mapped, though read whole", path, st.Len())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		big := filepath.Join(t.TempDir(), filepath.Base(path))
		// Bytes after the last section change nothing an ELF reader sees.
		if err := os.WriteFile(big, append(b, make([]byte, 2<<20)...), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, release := range []bool{false, true} {
			o, err := elfscan.Open(big)
			if err != nil {
				t.Fatal(err)
			}
			got, st := read(o)
			if !st.Mapped() {
				t.Errorf("%s padded to %d bytes: symbol table copied, not mapped", path, len(b)+2<<20)
			}
			if s, err := o.Lookup(want.syms[len(want.syms)-1].Name); err != nil || s.Name != want.syms[len(want.syms)-1].Name {
				t.Errorf("%s: Lookup of the last symbol: %v, %v", path, s, err)
			}
			if release {
				err = o.Release()
			} else {
				err = o.Close()
			}
			if err != nil {
				t.Fatal(err)
			}
			// Another file through the pools, then the names again.
			openObject(t, paths[0]).Symbols()
			if !reflect.DeepEqual(got.syms, want.syms) {
				t.Errorf("%s (release %v): mapped symbols differ from copied ones", path, release)
			}
			if got.scan.Path = want.scan.Path; !reflect.DeepEqual(got.scan, want.scan) {
				t.Errorf("%s (release %v): scan with a mapped table differs", path, release)
			}
		}
	}
}
