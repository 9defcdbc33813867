// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// mutateSection returns the ELF64 little-endian file b with one field of
// section header i overwritten: off is the field's offset in Elf64_Shdr
// (0x04 sh_type, 0x2c sh_info, 0x30 sh_addralign), size 4 or 8 bytes.
func mutateSection(t *testing.T, b []byte, i int, off int, size int, v uint64) []byte {
	t.Helper()
	b = slices.Clone(b)
	shoff := binary.LittleEndian.Uint64(b[0x28:])
	shentsize := binary.LittleEndian.Uint16(b[0x3a:])
	at := int(shoff) + i*int(shentsize) + off
	if size == 8 {
		binary.LittleEndian.PutUint64(b[at:], v)
	} else {
		binary.LittleEndian.PutUint32(b[at:], uint32(v))
	}
	return b
}

// sectionIndex finds a section by name.
func sectionIndex(t *testing.T, path, name string) int {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, s := range f.Sections {
		if s.Name == name {
			return i
		}
	}
	t.Fatalf("%s: no section %s", path, name)
	return 0
}

// Hostile headers (issue 9.3), on the real binary under a 2 GiB address
// space limit: a section alignment of 2^62 is refused by every patch
// command (exit 2, nothing written) after at most a few MB, not 10 GB; a
// patch-entry relocation table whose sh_info names no section is the same
// error, exit 2, in scan, verify and init.
func TestHostileHeaders(t *testing.T) {
	p := newPromise(t)
	dir := t.TempDir()
	mod := testutil.Fixtures(t, "gcc-callops-module.ko")[0]
	orig := readFile(t, mod)
	text := sectionIndex(t, mod, ".text")
	rela := sectionIndex(t, mod, ".rela__patchable_function_entries")

	// run under ulimit -v so that a regression fails instead of eating the
	// machine's memory; returns the result and the peak RSS in KiB, as
	// /usr/bin/time reports it for the command alone. (This process's
	// ru_maxrss for its child would not do: Go starts a child with vfork, so
	// the child's maxrss starts at this test process's peak, which -race
	// and the other tests' in-process commands make hundreds of MiB.)
	timeBin := testutil.NeedTool(t, "time")
	run := func(args ...string) (result, int64) {
		t.Helper()
		rssFile := filepath.Join(t.TempDir(), "rss")
		cmd := exec.Command("/bin/sh", append([]string{"-c", `ulimit -v 2097152 && exec "$0" -q -f %M -o "$FTPATCH_RSS" "$@"`, timeBin, p.bin}, args...)...)
		cmd.Env = append(os.Environ(), "FTPATCH_RSS="+rssFile)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := wait(t, cmd, &out, &errb)
		lines := strings.Fields(string(readFile(t, rssFile)))
		if len(lines) == 0 {
			t.Fatalf("%s: no peak RSS from %s", strings.Join(args, " "), timeBin)
		}
		rss, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
		if err != nil {
			t.Fatalf("%s: peak RSS from %s: %v", strings.Join(args, " "), timeBin, err)
		}
		return r, rss
	}

	huge := filepath.Join(dir, "huge-align.ko")
	writeFile(t, huge, mutateSection(t, orig, text, 0x30, 8, 1<<62), 0o644)
	for _, args := range [][]string{
		{"init", huge},
		{"init", "-o", filepath.Join(dir, "out.ko"), huge},
		{"enable", "--init", "--ops", "ops", huge},
		{"disable", huge},
	} {
		before := readFile(t, huge)
		r, rss := run(args...)
		if r.code != 2 || !strings.Contains(r.stderr, huge) || !strings.Contains(r.stderr, "align") {
			t.Errorf("%s on sh_addralign 2^62: exit %d, stderr %q; want 2 naming the file and the alignment", strings.Join(args, " "), r.code, r.stderr)
		}
		if rss > 256<<10 {
			t.Errorf("%s on sh_addralign 2^62: peak RSS %d MiB, want a bounded refusal", strings.Join(args, " "), rss>>10)
		}
		if !bytes.Equal(readFile(t, huge), before) {
			t.Errorf("%s changed the file", strings.Join(args, " "))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out.ko")); err == nil {
		t.Error("init -o wrote an output for a refused input")
	}

	badInfo := filepath.Join(dir, "bad-info.ko")
	writeFile(t, badInfo, mutateSection(t, orig, rela, 0x2c, 4, 99), 0o644)
	var msgs []string
	for _, args := range [][]string{{"scan", badInfo}, {"verify", badInfo}, {"init", badInfo}} {
		r, _ := run(args...)
		if r.code != 2 {
			t.Errorf("%s on a patch-entry table with sh_info 99: exit %d (%s), want 2", args[0], r.code, r.stderr)
		}
		msg := r.stderr
		if i := strings.Index(msg, badInfo); i >= 0 {
			msg = msg[i:]
		}
		msg, _, _ = strings.Cut(msg, "\n") // scan adds a count of unreadable files
		msgs = append(msgs, msg)
	}
	if msgs[0] != msgs[1] || msgs[0] != msgs[2] {
		t.Errorf("scan, verify and init say different things about the same malformed table:\n%s", strings.Join(msgs, "\n"))
	}
}
