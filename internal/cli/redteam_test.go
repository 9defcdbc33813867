// SPDX-License-Identifier: Apache-2.0

package cli

// The hostile campaign of issue 22, kept repeatable: TestRedteam's
// subtests are named GROUP/CASE, and scripts/redteam.sh (make redteam)
// runs them with FTPATCH_REDTEAM=full, together with the other tests of
// the campaign, and prints a table by group. Without it (make test) the
// cheap cases run, with small counts; root-only, FUSE and long cases skip,
// saying so.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/livesafe"
	"github.com/ftpatch/ftpatch/internal/patch"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// full reports whether the whole campaign runs (make redteam).
func full() bool { return os.Getenv("FTPATCH_REDTEAM") == "full" }

// byHand skips a case that make test leaves to make redteam, and one that
// needs root where the test is not root.
func byHand(t *testing.T, needRoot bool) {
	t.Helper()
	if !full() {
		t.Skip("run by hand: make redteam (FTPATCH_REDTEAM=full)")
	}
	if needRoot && os.Geteuid() != 0 {
		t.Skip("needs root (mounts, chown, chattr +i, trusted.*): run make redteam as root")
	}
}

// count is n in make test, many in make redteam.
func count(n, many int) int {
	if full() {
		return many
	}
	return n
}

func TestRedteam(t *testing.T) {
	p := newPromise(t)
	t.Run("parallel/-o to a new output", p.redParallelNew)
	t.Run("kills/at each injected point", p.redSignals)
	t.Run("filesystems/full", p.redFull)
	t.Run("filesystems/read-only", p.redReadOnly)
	t.Run("filesystems/FUSE without O_TMPFILE or xattrs", p.redFUSE)
	t.Run("owners/foreign owner, xattrs, chattr", p.redOwners)
	t.Run("headers/crafted fields", redHeaders)
	t.Run("truncations/plain and compressed", redTruncations)
	t.Run("mutants/random bytes", redMutants)
	t.Run("bombs/a folder at -j 4", redBombs)
	t.Run("against/ftpatch's own object tampered", p.redAgainst)
}

// Four runs at once writing the same new -o file, again and again: all
// succeed (each waits for the others' lock), the file is one run's output,
// and nothing is left beside it (issue 22.1: a run's live temporary was
// removed as stale).
func (p *promise) redParallelNew(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.elf")
	writeFile(t, in, p.init, 0o755)
	out := filepath.Join(dir, "out.elf")
	for round := range count(6, 400) {
		os.Remove(out)
		var wg sync.WaitGroup
		res := make([]result, 4)
		for j := range res {
			wg.Go(func() { res[j] = p.run(t, append(enableArgs, "--func", "fx_add", "--wait", "1m", "-o", out, in)...) })
		}
		wg.Wait()
		for _, r := range res {
			if r.code != 0 {
				t.Fatalf("round %d: exit %d: %s", round, r.code, r.stderr)
			}
		}
		if !bytes.Equal(readFile(t, out), p.add) {
			t.Fatalf("round %d: the output is not the enabled file", round)
		}
		if n := names(t, dir); !slices.Equal(n, []string{"in.elf", "out.elf"}) {
			t.Fatalf("round %d: folder holds %q", round, n)
		}
	}
}

// Every handled signal and SIGKILL at each injected point, with an unnamed
// and a named temporary: the exit status says which bytes the file holds,
// and whatever a SIGKILL left the next run removes.
func (p *promise) redSignals(t *testing.T) {
	for _, stage := range []string{"filled", "linked", "renamed"} {
		for _, sig := range []string{"TERM", "INT", "HUP", "QUIT", "KILL"} {
			for _, named := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s %s named=%v", stage, sig, named), func(t *testing.T) {
					p.killAt(t, stage, sig, named)
				})
			}
		}
	}
}

func (p *promise) killAt(t *testing.T, stage, sig string, named bool) {
	dir := t.TempDir()
	f := filepath.Join(dir, "k.elf")
	writeFile(t, f, p.init, 0o755)
	cmd := p.cmd(append(enableArgs, "--func", "fx_add", f)...)
	cmd.Env = append(os.Environ(), "FTPATCH_TEST_SIGNAL_AT="+stage, "FTPATCH_TEST_SIGNAL="+sig)
	if named {
		cmd.Env = append(cmd.Env, "FTPATCH_TEST_NO_TMPFILE=1")
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := wait(t, cmd, &out, &errb)
	got := readFile(t, f)
	isNew := bytes.Equal(got, p.add)
	if !isNew && !bytes.Equal(got, p.init) {
		t.Fatal("the file is neither the old nor the new one")
	}
	switch {
	case sig == "KILL" && r.sig != syscall.SIGKILL:
		t.Fatalf("SIGKILL: exit %d", r.code)
	case sig != "KILL" && (r.code == 0) != isNew:
		t.Fatalf("exit %d, but the file holds the %s bytes: %s", r.code, map[bool]string{true: "new", false: "old"}[isNew], r.stderr)
	}
	if sig == "KILL" { // the next run removes what the kill left
		p.mustRun(t, append(enableArgs, "--func", "fx_mul", f)...)
	}
	if n := names(t, dir); !slices.Equal(n, []string{"k.elf"}) {
		t.Fatalf("folder holds %q", n)
	}
}

// mountTmpfs mounts a tmpfs of size bytes (root only).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size="+strconv.Itoa(size)); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	return mnt
}

// A file system that fills up while the new file is written: exit 2
// naming the file, the folder and the way out, the file unchanged,
// nothing left; so for a new -o output.
func (p *promise) redFull(t *testing.T) {
	byHand(t, true)
	big := p.bigImage(t, t.TempDir(), 1)
	mnt := mountTmpfs(t, 2<<20)
	f := filepath.Join(mnt, "k.elf")
	writeFile(t, f, readFile(t, big), 0o755)
	before := readFile(t, f)
	for _, args := range [][]string{
		append(enableArgs, "--init", "--skip-misaligned", f),
		append(enableArgs, "--init", "--skip-misaligned", "-o", filepath.Join(mnt, "new.elf"), f),
	} {
		r := p.run(t, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "folder "+mnt) || !strings.Contains(r.stderr, "no space left") {
			t.Errorf("%s on a full file system: exit %d, %q; want 2 naming the folder and the cause", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if !bytes.Equal(readFile(t, f), before) {
		t.Error("the file changed")
	}
	if n := names(t, mnt); !slices.Equal(n, []string{"k.elf"}) {
		t.Errorf("folder holds %q", n)
	}
}

// A read-only file system: refused before anything is read, naming the
// folder (issue 22, Deliver 2: the folder's name used to be empty).
func (p *promise) redReadOnly(t *testing.T) {
	byHand(t, true)
	mnt := mountTmpfs(t, 1<<20)
	f := filepath.Join(mnt, "k.elf")
	writeFile(t, f, p.init, 0o755)
	if err := syscall.Mount("", mnt, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{append(enableArgs, "k.elf"), append(enableArgs, "-o", "new.elf", "k.elf")} {
		cmd := p.cmd(args...)
		cmd.Dir = mnt
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := wait(t, cmd, &out, &errb)
		if r.code != 2 || !strings.Contains(r.stderr, "its folder "+mnt+" is on a read-only file system") {
			t.Errorf("%s: exit %d, %q", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

// A FUSE file system without O_TMPFILE or extended attributes (bindfs
// --xattr-none): named temporaries from the start, and the sweep's proof
// in the name alone. In place, parallel -o to a new output, SIGKILL at the
// link and the next run's sweep, a user's look-alike file left alone.
func (p *promise) redFUSE(t *testing.T) {
	byHand(t, true)
	bindfs, err := exec.LookPath("bindfs")
	if err != nil {
		testutil.Missing(t, "bindfs not found (apt-get install bindfs; scripts/redteam.sh installs it)")
	}
	src, mnt := t.TempDir(), t.TempDir()
	if out, err := exec.Command(bindfs, "--xattr-none", src, mnt).CombinedOutput(); err != nil {
		t.Skipf("bindfs: %v: %s (no FUSE here?)", err, out)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	if fd, err := unix.Open(mnt, unix.O_TMPFILE|unix.O_RDWR, 0o600); err == nil {
		unix.Close(fd)
		t.Fatal("this FUSE mount takes O_TMPFILE: the case would not test the named temporary")
	}
	f := filepath.Join(mnt, "k.elf")
	writeFile(t, f, p.init, 0o755)
	writeFile(t, filepath.Join(mnt, ".k.elf.ftpatch-notes"), []byte("mine"), 0o644)
	cmd := p.cmd(append(enableArgs, "--func", "fx_mul", f)...)
	cmd.Env = append(os.Environ(), "FTPATCH_TEST_SIGNAL_AT=linked", "FTPATCH_TEST_SIGNAL=KILL")
	if err := cmd.Run(); err == nil {
		t.Fatal("the run meant to be killed exited")
	}
	if n := names(t, mnt); len(n) != 3 {
		t.Fatalf("after a SIGKILL at the link: %q, want the file, the notes and one temporary", n)
	}
	r := p.mustRun(t, append(enableArgs, "--func", "fx_add", f)...)
	if !strings.Contains(r.stderr, "removed ") || !strings.Contains(r.stderr, "left "+filepath.Join(mnt, ".k.elf.ftpatch-notes")+" alone") {
		t.Errorf("the sweep on FUSE: %q", r.stderr)
	}
	if n := names(t, mnt); !slices.Equal(n, []string{".k.elf.ftpatch-notes", "k.elf"}) || !bytes.Equal(readFile(t, f), p.add) {
		t.Fatalf("folder holds %q", n)
	}
	out := filepath.Join(mnt, "out.elf")
	var wg sync.WaitGroup
	res := make([]result, 4)
	for j := range res {
		wg.Go(func() { res[j] = p.run(t, append(enableArgs, "--func", "fx_mul", "--wait", "1m", "-o", out, f)...) })
	}
	wg.Wait()
	for _, r := range res {
		if r.code != 0 {
			t.Fatalf("parallel -o on FUSE: exit %d: %s", r.code, r.stderr)
		}
	}
	if n := names(t, mnt); !slices.Equal(n, []string{".k.elf.ftpatch-notes", "k.elf", "out.elf"}) || !bytes.Equal(readFile(t, out), p.both) {
		t.Fatalf("after parallel -o: folder holds %q", n)
	}
}

// As root: a file of another owner, setuid, with user.*, trusted.* and
// security.capability attributes and chattr +d +A keeps them all; +i is
// refused before writing.
func (p *promise) redOwners(t *testing.T) {
	byHand(t, true)
	dir := xattrDir(t)
	f := filepath.Join(dir, "k.elf")
	writeFile(t, f, p.init, 0o755)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chown(f, nobody, nobody))
	must(unix.Chmod(f, 0o4750))
	attrs := map[string][]byte{"user.origin": []byte("ci #42"), "trusted.overlay.origin": []byte("x"), "security.capability": fileCaps}
	for k, v := range attrs {
		must(unix.Setxattr(f, k, v, 0))
	}
	chattr := testutil.NeedTool(t, "chattr")
	if out, err := exec.Command(chattr, "+dA", f).CombinedOutput(); err != nil {
		t.Fatalf("chattr +dA: %v: %s", err, out)
	}
	p.mustRun(t, append(enableArgs, "--func", "fx_add", f)...)
	var st unix.Stat_t
	must(unix.Stat(f, &st))
	if st.Uid != nobody || st.Mode&0o7777 != 0o4750 {
		t.Errorf("owner %d mode %#o", st.Uid, st.Mode&0o7777)
	}
	for k, v := range attrs {
		buf := make([]byte, 64)
		n, err := unix.Getxattr(f, k, buf)
		if err != nil || !bytes.Equal(buf[:n], v) {
			t.Errorf("%s after the patch: %q, %v", k, buf[:max(n, 0)], err)
		}
	}
	if out, _ := exec.Command("lsattr", f).Output(); !bytes.Contains(out, []byte("d")) || !bytes.Contains(out, []byte("A")) {
		t.Errorf("chattr flags after the patch: %s", out)
	}
	if out, err := exec.Command(chattr, "+i", f).CombinedOutput(); err != nil {
		t.Fatalf("chattr +i: %v: %s", err, out)
	}
	defer exec.Command(chattr, "-i", f).Run()
	if r := p.run(t, append(enableArgs, "--func", "fx_mul", f)...); r.code != 2 || !strings.Contains(r.stderr, "chattr -i") {
		t.Errorf("chattr +i: exit %d, %q", r.code, r.stderr)
	}
}

// fixtureBytes reads some fixtures: all of them in make redteam.
func fixtureBytes(t *testing.T, few ...string) map[string][]byte {
	var paths []string
	if full() {
		for _, g := range []string{"*.o", "*.ko", "*.elf"} {
			paths = append(paths, testutil.Fixtures(t, g)...)
		}
	} else {
		for _, n := range few {
			paths = append(paths, testutil.Fixtures(t, n)...)
		}
	}
	out := map[string][]byte{}
	for _, p := range paths {
		out[filepath.Base(p)] = readFile(t, p)
	}
	return out
}

// hostile runs what every command does with a file, in process: open and
// scan it, plan an init of it, compare it with orig; none may panic (a
// panic ends the test binary, which fails the campaign). Errors are the
// expected answer to most of these files.
func hostile(t *testing.T, dir, name string, b, orig []byte) {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if o, err := elfscan.Open(path); err == nil {
		o.Scan()
		if oo, err := elfscan.NewObject(bytes.NewReader(orig), "orig"); err == nil {
			livesafe.Compare(oo, o, livesafe.Options{})
			oo.Close()
		}
		o.Close()
	}
	if in, err := patch.Open(path); err == nil {
		patch.Plan(in, patch.Request{Op: patch.OpInit, SkipMisaligned: true})
		in.Close()
	}
}

// Header fields set to edge values: every field of the ELF header's
// section and program header places and counts, and of each section
// header, to 0, 1, the file size, past it, and all ones.
func redHeaders(t *testing.T) {
	dir := t.TempDir()
	le := binary.LittleEndian
	for name, orig := range fixtureBytes(t, "gcc-callops-module.ko", "clang-callops-bti-kimage.elf") {
		size := uint64(len(orig))
		vals := []uint64{0, 1, size, size + 1, 1<<64 - 1}
		put := func(b []byte, at, width int, v uint64) {
			switch width {
			case 2:
				le.PutUint16(b[at:], uint16(v))
			case 4:
				le.PutUint32(b[at:], uint32(v))
			default:
				le.PutUint64(b[at:], v)
			}
		}
		fields := [][2]int{{0x20, 8}, {0x28, 8}, {0x36, 2}, {0x38, 2}, {0x3a, 2}, {0x3c, 2}, {0x3e, 2}}
		shoff, shnum := int(le.Uint64(orig[0x28:])), int(le.Uint16(orig[0x3c:]))
		for i := range shnum {
			for _, f := range [][2]int{{0x04, 4}, {0x08, 8}, {0x18, 8}, {0x20, 8}, {0x28, 4}, {0x2c, 4}, {0x30, 8}} {
				fields = append(fields, [2]int{shoff + i*64 + f[0], f[1]})
			}
		}
		for _, f := range fields {
			for _, v := range vals {
				b := bytes.Clone(orig)
				put(b, f[0], f[1], v)
				hostile(t, dir, name, b, orig)
			}
		}
		t.Logf("%s: %d crafted headers", name, len(fields)*len(vals))
	}
}

// Every file cut at many lengths, plain and compressed by the real tools:
// no panic, and a cut compressed file is always an error.
func redTruncations(t *testing.T) {
	dir := t.TempDir()
	tools := map[string]string{"xz": testutil.NeedTool(t, "xz"), "zstd": testutil.NeedTool(t, "zstd"), "gzip": testutil.NeedTool(t, "gzip")}
	cuts := count(24, 120)
	for name, orig := range fixtureBytes(t, "gcc-callops-module.ko", "gcc-callops-kimage.elf") {
		forms := map[string][]byte{"plain": orig}
		for tool, path := range tools {
			cmd := exec.Command(path, "-c")
			cmd.Stdin = bytes.NewReader(orig)
			z, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			forms[tool] = z
		}
		for form, b := range forms {
			for k := range cuts {
				n := len(b) * k / cuts
				hostile(t, dir, name, b[:n], orig)
				if form == "plain" {
					continue
				}
				p := filepath.Join(dir, "cut")
				writeFile(t, p, b[:n], 0o644)
				if o, err := elfscan.Open(p); err == nil {
					o.Close()
					t.Errorf("%s %s cut at %d of %d: opened", name, form, n, len(b))
				}
			}
		}
	}
}

// Random bytes changed in random places (seeded: the run is repeatable).
func redMutants(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(22, 7))
	files := fixtureBytes(t, "gcc-callops-bti-obj.o", "clang-callops-kimage.elf", "gcc-callops53-module.ko")
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	n := count(150, 1500)
	for i := range n {
		name := keys[i%len(keys)]
		b := bytes.Clone(files[name])
		for range 1 + rng.IntN(8) {
			b[rng.IntN(len(b))] = byte(rng.Uint32())
		}
		hostile(t, dir, name, b, files[name])
	}
	t.Logf("%d mutants", n)
}

// A folder of bombs (zeros compressed by xz, zstd and gzip, each far
// larger than the cap) scanned with four workers: each is refused, and the
// process's peak memory is the cap plus a margin, not the cap per worker
// (issue 22.11). make redteam also runs 8 GiB bombs at the default cap.
func redBombs(t *testing.T) {
	timeBin := testutil.NeedTool(t, "time")
	bin := testutil.BuildFTPatch(t)
	dir := t.TempDir()
	gib := count(1, 8)
	for tool, ext := range map[string]string{"xz": "xz", "zstd": "zst", "gzip": "gz"} {
		// 64 MiB of zeros compressed once, the stream repeated: the three
		// formats decode concatenated streams as one.
		path := testutil.NeedTool(t, tool)
		cmd := exec.Command("sh", "-c", fmt.Sprintf(`{ printf '\177ELF'; head -c %d /dev/zero; } | %s -1 -c`, 64<<20-4, path))
		z, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		writeFile(t, filepath.Join(dir, "bomb.ko."+ext), bytes.Repeat(z, gib*16), 0o644)
	}
	limit, bound := int64(256<<20), int64(256<<20+384<<20)
	args := []string{"--max-decompressed", "256M"}
	if full() {
		limit, bound, args = 2<<30, 2500<<20, nil
	}
	for _, j := range []string{"1", "2", "4"} {
		rss := filepath.Join(t.TempDir(), "rss")
		cmd := exec.Command(timeBin, append([]string{"-f", "%M", "-o", rss, bin, "scan", "-j", j}, append(args, dir)...)...)
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 2 || bytes.Count(out, []byte("decompressed size exceeds the limit")) != 3 {
			t.Errorf("-j %s: exit %d, want 2 and the three bombs refused: %s", j, cmd.ProcessState.ExitCode(), out)
		}
		lines := strings.Fields(string(readFile(t, rss))) // "Command exited with non-zero status 2" first
		kb, _ := strconv.ParseInt(lines[len(lines)-1], 10, 64)
		t.Logf("-j %s: %d GiB bombs refused at %d MiB, peak RSS %d MiB", j, gib, limit>>20, kb>>10)
		if kb<<10 > bound {
			t.Errorf("-j %s: peak RSS %d MiB, want at most %d MiB", j, kb>>10, bound>>20)
		}
	}
}

// ftpatch's own enabled object, tampered with outside the planned words:
// verify --against must fail (the whole table is in livesafe's
// TestAgainstRelocatableTampering; these run the real commands).
func (p *promise) redAgainst(t *testing.T) {
	dir := t.TempDir()
	orig := testutil.Fixtures(t, "gcc-callops-module.ko")[0]
	en := filepath.Join(dir, "en.ko")
	p.mustRun(t, "enable", "--init", "--skip-misaligned", "--ops", "ops", "-o", en, orig)
	p.mustRun(t, "verify", "--against", orig, "--allow-init", en)
	good := readFile(t, en)
	le := binary.LittleEndian
	for name, tamper := range map[string]func(b []byte) []byte{
		"a byte appended":     func(b []byte) []byte { return append(b, 1) },
		"section 0 sh_offset": func(b []byte) []byte { le.PutUint64(b[le.Uint64(b[0x28:])+0x18:], 8); return b },
		"e_flags":             func(b []byte) []byte { b[0x30] ^= 1; return b },
	} {
		bad := filepath.Join(dir, "bad.ko")
		writeFile(t, bad, tamper(bytes.Clone(good)), 0o644)
		if r := p.run(t, "verify", "--against", orig, "--allow-init", bad); r.code != 1 {
			t.Errorf("%s: verify --against exit %d, want 1: %s%s", name, r.code, r.stdout, r.stderr)
		}
	}
}
