// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/ftpatch/ftpatch/internal/input"
	"github.com/ftpatch/ftpatch/internal/report"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// elfBytes is enough of an ELF file for a walk, which reads the first 20
// bytes: ELF64, little-endian, EM_AARCH64 (183).
var elfBytes = append(append([]byte{0x7F, 'E', 'L', 'F', 2, 1, 1, 0}, make([]byte, 10)...), append([]byte{183, 0}, make([]byte, 44)...)...)

// expandInputs is the walk of verify and the patch commands (each file
// identified): the paths taken, and the errors of the inputs that failed
// before any command read them, joined.
func expandInputs(args []string) ([]string, error) {
	in := newWalker(WalkOptions{}, false).expand(args)
	var paths []string
	var errs []error
	for _, it := range in.items {
		if it.err != nil {
			errs = append(errs, it.err)
		} else {
			paths = append(paths, it.path)
		}
	}
	return paths, errors.Join(errs...)
}

func compressed(t *testing.T, c string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch c {
	case "xz":
		var w *xz.Writer
		if w, err = xz.NewWriter(&buf); err == nil {
			w.Write(b)
			err = w.Close()
		}
	case "zst":
		var w *zstd.Encoder
		if w, err = zstd.NewWriter(&buf); err == nil {
			w.Write(b)
			err = w.Close()
		}
	case "gz":
		w := gzip.NewWriter(&buf)
		w.Write(b)
		err = w.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tree writes files (path → contents) under a new temporary directory.
func tree(t *testing.T, files map[string][]byte) string {
	t.Helper()
	root := t.TempDir()
	for p, b := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// rel strips root from each path, for readable comparisons.
func rel(root string, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = strings.TrimPrefix(p, root+string(filepath.Separator))
	}
	return out
}

func kernelTree(t *testing.T) string {
	root := tree(t, map[string][]byte{
		"vmlinux":                       elfBytes,
		"Makefile":                      []byte("obj-y += core.o\n"),
		"kernel/core.o":                 elfBytes,
		"kernel/core.c":                 []byte("int x;\n"),
		"kernel/.core.o.cmd":            []byte("cmd_kernel/core.o := gcc\n"),
		"kernel/sched/fair.o":           elfBytes,
		"mm/slab.o":                     elfBytes,
		"modules/a/drv.ko.xz":           compressed(t, "xz", elfBytes),
		"modules/a/drv2.ko.zst":         compressed(t, "zst", elfBytes),
		"modules/b/renamed.bin":         compressed(t, "gz", elfBytes), // by magic, not name
		"modules/b/notes.txt.gz":        compressed(t, "gz", []byte("not an elf\n")),
		"modules/b/broken.ko.xz":        []byte{0xFD, '7', 'z', 'X', 'Z', 0, 1, 2, 3},
		"modules/modules.order":         []byte("a/drv.ko\n"),
		"empty":                         nil,
		"Documentation/elf-lookalike":   []byte("\x7fEL"),
		"scripts/mod/modpost":           elfBytes,
		"scripts/mod/modpost.c":         []byte("int main(void) { return 0; }\n"),
		"z/last.o":                      elfBytes,
		"include/generated/autoconf.h":  []byte("#define CONFIG_X 1\n"),
		"arch/arm64/kernel/head.o":      elfBytes,
		"arch/arm64/kernel/vmlinux.lds": []byte("SECTIONS {}\n"),
	})
	// A loop through a directory symlink, a link to a file, a dangling link
	// and a self-referencing link.
	symlink(t, "..", filepath.Join(root, "kernel", "parent-loop"))
	symlink(t, "../mm", filepath.Join(root, "kernel", "mm-link"))
	symlink(t, "core.o", filepath.Join(root, "kernel", "alias.o"))
	symlink(t, "nowhere", filepath.Join(root, "kernel", "dangling.o"))
	symlink(t, "self.o", filepath.Join(root, "kernel", "self.o"))
	return root
}

func TestExpandInputsTree(t *testing.T) {
	root := kernelTree(t)
	got, err := expandInputs([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"arch/arm64/kernel/head.o",
		"kernel/alias.o", // symlink to core.o: kept here, where first seen
		"kernel/sched/fair.o",
		"mm/slab.o",
		"modules/a/drv.ko.xz",
		"modules/a/drv2.ko.zst",
		"modules/b/broken.ko.xz", // corrupt xz: kept, for the command to report (issue 22.5)
		"modules/b/renamed.bin",
		"scripts/mod/modpost",
		"vmlinux",
		"z/last.o",
	}
	if g := rel(root, got); !slices.Equal(g, want) {
		t.Errorf("expandInputs(tree) =\n%s\nwant\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
	}
}

func TestExpandInputsArguments(t *testing.T) {
	root := kernelTree(t)
	j := func(p string) string { return filepath.Join(root, p) }
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"explicit non-ELF and missing files kept as given",
			[]string{j("Makefile"), j("missing.o"), j("kernel/core.c")},
			[]string{j("Makefile"), j("missing.o"), j("kernel/core.c")}},
		{"argument order across, lexical within",
			[]string{j("z"), j("mm"), j("kernel/sched")},
			[]string{j("z/last.o"), j("mm/slab.o"), j("kernel/sched/fair.o")}},
		{"no duplicates: file then its directory",
			[]string{j("mm/slab.o"), j("mm"), j("mm/../mm/slab.o"), j("mm")},
			[]string{j("mm/slab.o")}},
		{"no duplicates: symlink and target",
			[]string{j("kernel/core.o"), j("kernel/alias.o"), j("kernel/mm-link/slab.o"), j("mm")},
			[]string{j("kernel/core.o"), j("kernel/mm-link/slab.o")}},
		{"explicit symlink to a directory is followed",
			[]string{j("kernel/mm-link")},
			[]string{j("kernel/mm-link/slab.o")}},
		{"directory nested in a directory argument",
			[]string{j("modules"), j("modules/a")},
			[]string{j("modules/a/drv.ko.xz"), j("modules/a/drv2.ko.zst"), j("modules/b/broken.ko.xz"), j("modules/b/renamed.bin")}},
		{"no arguments", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := expandInputs(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("expandInputs(%q) =\n%q\nwant\n%q", rel(root, tc.args), rel(root, got), rel(root, tc.want))
			}
		})
	}
}

func TestExpandInputsDeterministic(t *testing.T) {
	files := map[string][]byte{}
	for i := range 300 {
		files[filepath.Join("d"+string(rune('a'+i%7)), "m"+string(rune('a'+i%26))+string(rune('a'+i/26))+".o")] = elfBytes
	}
	root := tree(t, files)
	first, err := expandInputs([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 300 || !slices.IsSorted(first) {
		t.Fatalf("got %d files, sorted %v", len(first), slices.IsSorted(first))
	}
	for range 5 {
		again, err := expandInputs([]string{root})
		if err != nil || !slices.Equal(again, first) {
			t.Fatalf("second walk differs (err %v)", err)
		}
	}
}

func TestExpandInputsPermissionDenied(t *testing.T) {
	root := kernelTree(t)
	locked := filepath.Join(root, "kernel", "sched")

	t.Run("injected", func(t *testing.T) {
		w := newWalker(WalkOptions{}, false)
		w.readDir = func(dir string) ([]os.DirEntry, error) {
			if dir == locked {
				return nil, &fs.PathError{Op: "open", Path: dir, Err: fs.ErrPermission}
			}
			return os.ReadDir(dir)
		}
		in := w.expand([]string{root})
		// One input carries the error, in the subfolder's place; the walk
		// went on with the rest.
		var errs []error
		for _, it := range in.items {
			if it.err != nil {
				errs = append(errs, it.err)
			}
		}
		if len(errs) != 1 || !errors.Is(errs[0], fs.ErrPermission) || !strings.Contains(errs[0].Error(), locked) ||
			!strings.HasPrefix(errs[0].Error(), "folder "+root+": ") {
			t.Errorf("errors = %v, want one permission denied naming %s and the folder given", errs, locked)
		}
		all, _ := expandInputs([]string{root})
		if got := in.paths(); len(got) != len(all) || !slices.Contains(got, filepath.Join(root, "z", "last.o")) {
			t.Errorf("inputs %q: want the rest of the folder (%d inputs)", rel(root, got), len(all))
		}
	})
	t.Run("injected unreadable file", func(t *testing.T) {
		// Kept, for the command to report, and the others are still there.
		bad := filepath.Join(root, "mm", "slab.o")
		w := newWalker(WalkOptions{}, false)
		w.identify = func(p string) error {
			if p == bad {
				return &fs.PathError{Op: "open", Path: p, Err: fs.ErrPermission}
			}
			return input.Identify(p)
		}
		got := w.expand([]string{root}).paths()
		want, _ := expandInputs([]string{root})
		if !slices.Equal(got, want) || !slices.Contains(got, bad) {
			t.Errorf("expand = %q; want %q (with %s)", rel(root, got), rel(root, want), bad)
		}
	})
	t.Run("chmod", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads any directory; the injected case covers this")
		}
		if err := os.Chmod(locked, 0); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(locked, 0o755)
		_, err := expandInputs([]string{root})
		if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), locked) {
			t.Errorf("error = %v, want permission denied naming %s", err, locked)
		}
	})
}

// A folder with no ELF file in it is an error naming it: a check over
// nothing must not pass.
func TestExpandInputsNoELF(t *testing.T) {
	for name, files := range map[string]map[string][]byte{
		"empty":        {},
		"no elf":       {"a.txt": []byte("hello\n"), "sub/b.gz": compressed(t, "gz", []byte("text"))},
		"special only": {},
	} {
		t.Run(name, func(t *testing.T) {
			root := tree(t, files)
			if name == "special only" {
				if err := syscall.Mkfifo(filepath.Join(root, "fifo.ko"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := expandInputs([]string{root})
			if !errors.Is(err, errNoELF) || !strings.Contains(err.Error(), root) {
				t.Fatalf("expandInputs = %q, %v; want an error naming %s", got, err, root)
			}
			_, _, err = scanRun(t, ScanOptions{Check: true, Files: []string{root}})
			if exitCode(err) != ExitInput {
				t.Errorf("scan --check: err %v (exit %d), want exit 2", err, exitCode(err))
			}
		})
	}
}

// A folder whose only file is a corrupt compressed stream holds a file
// to report, not "no ELF file": every decode error counts the same, in
// every format (issue 22.5).
func TestExpandInputsCorruptOnly(t *testing.T) {
	root := tree(t, map[string][]byte{"m.ko.xz": {0xFD, '7', 'z', 'X', 'Z', 0, 1, 2, 3}})
	got, err := expandInputs([]string{root})
	if err != nil || len(got) != 1 {
		t.Fatalf("expandInputs = %q, %v; want the corrupt file, for the command to report", got, err)
	}
	_, stderr, err := scanRun(t, ScanOptions{Check: true, Files: []string{root}})
	if exitCode(err) != ExitInput || !strings.Contains(stderr, "corrupt compressed data") {
		t.Errorf("scan --check: err %v (exit %d), stderr %q; want exit 2, corrupt", err, exitCode(err), stderr)
	}
}

// FIFOs, sockets and devices: skipped in a folder, refused by name as an
// argument, never opened for reading (a FIFO with no writer would block
// the open, and so the test, forever).
func TestSpecialFiles(t *testing.T) {
	obj := testutil.Fixtures(t, "gcc-callops-bti-obj.o")[0]
	b, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	root := tree(t, map[string][]byte{"a.o": b})
	fifo := filepath.Join(root, "fifo.ko")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(root, "sock.ko")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got, err := expandInputs([]string{root})
	if err != nil || !slices.Equal(rel(root, got), []string{"a.o"}) {
		t.Fatalf("expandInputs = %q, %v; want [a.o]", rel(root, got), err)
	}
	for _, tc := range []struct{ path, kind string }{
		{fifo, "FIFO"}, {sock, "socket"}, {"/dev/null", "character device"},
	} {
		for _, json := range []bool{false, true} {
			stdout, stderr, err := scanRun(t, ScanOptions{JSON: json, Files: []string{tc.path}})
			msg := stderr
			if json {
				msg = stdout
			}
			if exitCode(err) != ExitInput || !strings.Contains(msg, tc.path) || !strings.Contains(msg, tc.kind) {
				t.Errorf("scan (json %v) %s: err %v, stdout %q, stderr %q; want exit 2 naming it a %s", json, tc.path, err, stdout, stderr, tc.kind)
			}
		}
		var out, errb bytes.Buffer
		err := runVerify(&VerifyOptions{Jobs: 1, Files: []string{tc.path}}, &IO{Out: &out, Err: &errb})
		if exitCode(err) != ExitInput || !strings.Contains(errb.String(), tc.kind) {
			t.Errorf("verify %s: err %v, stderr %q; want exit 2 naming it a %s", tc.path, err, errb.String(), tc.kind)
		}
		for _, args := range [][]string{{"init"}, {"enable", "--init", "--ops", "0x10"}, {"disable"}, {"show"}} {
			root := NewRoot(&IO{Out: &out, Err: &errb})
			root.SetArgs(append(args, tc.path))
			root.SetOut(&errb)
			root.SetErr(&errb)
			_, err := root.ExecuteC()
			if exitCode(err) != ExitInput || err == nil || !strings.Contains(err.Error(), tc.kind) {
				t.Errorf("%s %s: err %v; want exit 2 naming it a %s", args[0], tc.path, err, tc.kind)
			}
		}
	}
}

// In a folder, a file that cannot be scanned is reported on its own line
// (JSON: {"file", "error"}, and on stderr) and the others still are.
func TestScanFolderReportsEachFile(t *testing.T) {
	obj := testutil.Fixtures(t, "gcc-callops-bti-obj.o")[0]
	b, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	root := tree(t, map[string][]byte{"a.o": b, "b.o": elfBytes, "c.o": b})
	stdout, stderr, err := scanRun(t, ScanOptions{JSON: true, Files: []string{root}})
	// stderr says it too, as for every input that fails (docs/json.md),
	// then the run's summary.
	errLines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if exitCode(err) != ExitInput || len(errLines) != 2 || !strings.HasPrefix(errLines[0], "ftpatch: file "+filepath.Join(root, "b.o")+": ") ||
		!strings.HasPrefix(errLines[1], "summary: scan: 3 inputs, 1 failed, 0 skipped, 18 sites, ") {
		t.Fatalf("err %v (exit %d), stderr %q; want exit 2, b.o's message and the summary on stderr", err, exitCode(err), stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 4 || !strings.Contains(lines[3], `"summary":{"command":"scan","inputs":3,"failed":1,`) {
		t.Fatalf("%d lines, want 3 and the summary:\n%s", len(lines), stdout)
	}
	for i, name := range []string{"a.o", "b.o", "c.o"} {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		_, hasErr := m["error"]
		_, hasSites := m["sites"]
		if m["file"] != filepath.Join(root, name) || hasErr != (name == "b.o") || hasSites == (name == "b.o") {
			t.Errorf("line %d = %s; want %s with %s", i, lines[i], name, map[bool]string{true: "an error", false: "its sites"}[name == "b.o"])
		}
	}
	stdout, stderr, err = scanRun(t, ScanOptions{Files: []string{root}})
	if exitCode(err) != ExitInput || !strings.Contains(stderr, filepath.Join(root, "b.o")) ||
		strings.Count(stdout, "REL, ") != 2 {
		t.Errorf("text: err %v, stderr %q, stdout:\n%s\nwant b.o on stderr and a.o, c.o on stdout", err, stderr, stdout)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1": 1, "4096": 4096, "1K": 1 << 10, "1k": 1 << 10, "512M": 512 << 20, "512MiB": 512 << 20,
		"2G": 2 << 30, "2GB": 2 << 30, "1T": 1 << 40,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1.5G", "G", "1X", "99999999999T"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
	for _, n := range []int64{1, 1000, 1 << 10, 3 << 20, 2 << 30} {
		if got, err := parseSize(formatSize(n)); err != nil || got != n {
			t.Errorf("parseSize(formatSize(%d) = %q) = %d, %v", n, formatSize(n), got, err)
		}
	}
}

// --max-decompressed: a compressed module over the cap is refused (exit 2,
// naming the flag), and the next run without the flag has the default cap.
func TestMaxDecompressedFlag(t *testing.T) {
	obj := testutil.Fixtures(t, "gcc-callops-bti-module.ko")[0]
	b, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.ko.zst")
	if err := os.WriteFile(path, compressed(t, "zst", b), 0o644); err != nil {
		t.Fatal(err)
	}
	defer input.SetMaxDecompressed(0)
	run := func(args ...string) (stdout, stderr string, err error) {
		var out, errb bytes.Buffer
		root := NewRoot(&IO{Out: &out, Err: &errb})
		root.SetArgs(args)
		root.SetOut(&errb)
		root.SetErr(&errb)
		_, err = root.ExecuteC()
		return out.String(), errb.String(), err
	}
	for _, cmd := range []string{"scan", "verify", "show"} {
		_, stderr, err := run(cmd, "--max-decompressed", "1K", path)
		msg := stderr
		if err != nil {
			msg += err.Error()
		}
		if exitCode(err) != ExitInput || !strings.Contains(msg, "more than 1024 bytes") || !strings.Contains(msg, "--max-decompressed") {
			t.Errorf("%s --max-decompressed 1K: exit %d, %q; want exit 2 naming the cap and the flag", cmd, exitCode(err), msg)
		}
	}
	if out, _, err := run("scan", path); err != nil || !strings.Contains(out, "sites") {
		t.Errorf("scan without the flag after one with it: %v\n%s", err, out)
	}
	if out, _, err := run("scan", "--max-decompressed", strconv.Itoa(len(b)), path); err != nil || !strings.Contains(out, "sites") {
		t.Errorf("scan --max-decompressed %d (the exact size): %v\n%s", len(b), err, out)
	}
}

// scan does not sniff the files of a folder before opening them (the open
// sniffs them, and decompresses a compressed one once): what it reports
// must be what it reports for the files the sniffing walk (expandInputs)
// keeps, given one by one, in the same order: the same JSON lines, error
// lines included, and the same exit status.
func TestScanFolderSniffsWhileOpening(t *testing.T) {
	obj, err := os.ReadFile(testutil.Fixtures(t, "gcc-callops-bti-obj.o")[0])
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(testutil.Fixtures(t, "clang-callops-bti-module.ko")[0])
	if err != nil {
		t.Fatal(err)
	}
	cutGz := compressed(t, "gz", mod)
	cutGz = cutGz[:len(cutGz)/2] // its first bytes decompress to the ELF magic, then it fails
	for name, files := range map[string]map[string][]byte{
		"mixed": {
			"0-notes.txt.gz": compressed(t, "gz", []byte("not an elf\n")),
			"1-README":       []byte("text\n"),
			"2-broken.ko.xz": {0xFD, '7', 'z', 'X', 'Z', 0, 1, 2, 3},
			"a/obj.o":        obj,
			"a/m.ko.xz":      compressed(t, "xz", mod),
			"a/m.ko.zst":     compressed(t, "zst", mod),
			"a/m.ko.gz":      compressed(t, "gz", mod),
			"a/o.xz":         compressed(t, "xz", obj),
			"b/text.zst":     compressed(t, "zst", []byte("zstd text, long enough to be compressed at all")),
			"b/empty":        nil,
			"b/empty.gz":     compressed(t, "gz", nil),
			"b/broken.zst":   {0x28, 0xB5, 0x2F, 0xFD, 0xFF},
			"b/lookalike":    []byte("\x7fEL"),
			"c/cut.ko.gz":    cutGz,
			"c/m.ko":         mod,
		},
		"compressed only": {
			"0.txt.xz": compressed(t, "xz", []byte("not an elf\n")),
			"1.ko.zst": compressed(t, "zst", mod),
			"2.txt.gz": compressed(t, "gz", []byte("not an elf\n")),
			"3.ko.gz":  compressed(t, "gz", mod),
		},
	} {
		t.Run(name, func(t *testing.T) {
			root := tree(t, files)
			want, err := expandInputs([]string{root})
			if err != nil {
				t.Fatal(err)
			}
			for _, check := range []bool{false, true} {
				gotOut, gotErr, gotRun := scanRun(t, ScanOptions{JSON: true, Check: check, Files: []string{root}})
				wantOut, wantErr, wantRun := scanRun(t, ScanOptions{JSON: true, Check: check, Files: want})
				// The summaries differ only in what the folder skipped.
				gotOut, gotSum := cutSummary(t, gotOut)
				wantOut, wantSum := cutSummary(t, wantOut)
				gotErr, wantErr = dropLines(gotErr, "summary: ", "ftpatch: warning: skipped "), dropLines(wantErr, "summary: ")
				wantSum.Skipped = gotSum.Skipped
				if total := gotSum.Skipped["not-elf"] + gotSum.Skipped["not-aarch64"]; total == 0 || !reflect.DeepEqual(gotSum, wantSum) {
					t.Errorf("--check=%v: summary %+v; want %+v and some skipped", check, gotSum, wantSum)
				}
				if gotOut != wantOut {
					t.Errorf("--check=%v: scan of the folder:\n%s\nscan of the sniffed files %q:\n%s", check, gotOut, rel(root, want), wantOut)
				}
				if gotErr != wantErr || exitCode(gotRun) != exitCode(wantRun) {
					t.Errorf("--check=%v: stderr %q, exit %d; want %q, exit %d", check, gotErr, exitCode(gotRun), wantErr, exitCode(wantRun))
				}
				if n := strings.Count(gotOut, "\n"); n != len(want) {
					t.Errorf("--check=%v: %d lines, want one per sniffed file (%d):\n%s", check, n, len(want), gotOut)
				}
			}
		})
	}
}

// cutSummary splits the summary line off the end of JSON output.
func cutSummary(t *testing.T, out string) (string, report.Summary) {
	t.Helper()
	i := strings.LastIndex(strings.TrimSuffix(out, "\n"), "\n") + 1
	var line struct{ Summary report.Summary }
	if err := json.Unmarshal([]byte(out[i:]), &line); err != nil || line.Summary.Command == "" {
		t.Fatalf("last line %q is not a summary: %v", out[i:], err)
	}
	return out[:i], line.Summary
}

// dropLines leaves out of s the lines that start with one of prefixes.
func dropLines(s string, prefixes ...string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		drop := false
		for _, p := range prefixes {
			drop = drop || strings.HasPrefix(line, p)
		}
		if !drop {
			b.WriteString(line)
		}
	}
	return b.String()
}
