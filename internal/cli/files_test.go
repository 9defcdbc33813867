// SPDX-License-Identifier: Apache-2.0

package cli

// End-to-end tests of what ftpatch promises about the files it rewrites
// (internal/safefile, README "What ftpatch promises about your files"):
// each drives the real binary, built into a temporary folder.

import (
	"bytes"
	"errors"
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
	"time"

	"golang.org/x/sys/unix"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// promise is one built binary and an initialised call-ops image with its
// expected states after enabling fx_add, fx_mul, and both.
type promise struct {
	bin  string
	init []byte // gcc-callops-kimage.elf after init
	add  []byte // init + enable fx_add
	mul  []byte // init + enable fx_mul
	both []byte // init + enable fx_add + enable fx_mul, one after the other
	all3 []byte // both + enable fx_sum
}

var enableArgs = []string{"enable", "--ops", "ops", "--allow-absolute"}

func newPromise(t *testing.T) *promise {
	t.Helper()
	p := &promise{bin: testutil.BuildFTPatch(t)}
	dir := t.TempDir()
	src := testutil.Fixtures(t, "gcc-callops-kimage.elf")[0]
	f := filepath.Join(dir, "ref.elf")
	p.mustRun(t, "init", "--skip-misaligned", "-o", f, src)
	p.init = readFile(t, f)
	p.mustRun(t, append(enableArgs, "--func", "fx_add", f)...)
	p.add = readFile(t, f)
	p.mustRun(t, append(enableArgs, "--func", "fx_mul", f)...)
	p.both = readFile(t, f)
	p.mustRun(t, append(enableArgs, "--func", "fx_sum", f)...)
	p.all3 = readFile(t, f)
	writeFile(t, f, p.init, 0o755)
	p.mustRun(t, append(enableArgs, "--func", "fx_mul", f)...)
	p.mul = readFile(t, f)
	if bytes.Equal(p.add, p.both) || bytes.Equal(p.mul, p.both) || bytes.Equal(p.init, p.add) {
		t.Fatal("enabling fx_add and fx_mul must give three different files")
	}
	return p
}

type result struct {
	stdout, stderr string
	code           int // exit status, or -1 when a signal ended the process
	sig            syscall.Signal
}

func (p *promise) cmd(args ...string) *exec.Cmd {
	return exec.Command(p.bin, args...)
}

func wait(t *testing.T, cmd *exec.Cmd, out, errb *bytes.Buffer) result {
	t.Helper()
	err := cmd.Wait()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.sig = ws.Signal()
		}
	default:
		t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	return r
}

func (p *promise) run(t *testing.T, args ...string) result {
	t.Helper()
	cmd := p.cmd(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return wait(t, cmd, &out, &errb)
}

func (p *promise) mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := p.run(t, args...)
	if r.code != 0 {
		t.Fatalf("ftpatch %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, name string, b []byte, mode os.FileMode) {
	t.Helper()
	os.Remove(name)
	if err := os.WriteFile(name, b, mode); err != nil {
		t.Fatal(err)
	}
}

// names lists a folder, hidden files included.
func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestFilePromise(t *testing.T) {
	p := newPromise(t)
	t.Run("concurrent in-place runs lose nothing", p.testConcurrent)
	t.Run("a held lock fails at once or after --wait", p.testWait)
	t.Run("symbolic links stay links", p.testSymlinks)
	t.Run("bad -o is refused before anything is touched", p.testBadOutput)
	t.Run("hard links: warning, only the name given changes", p.testHardLink)
	t.Run("owner, group, setuid and xattrs kept (root)", p.testOwnership)
	t.Run("as nobody: root's file refused, its own setuid file kept", p.testCannotKeep)
	t.Run("a signal at each stage of a write", p.testSignalStages)
	t.Run("temporaries of killed runs are removed under the lock", p.testStale)
}

// A kill -9 between link and rename leaves a named temporary; the next run
// on the file, holding its lock, removes it and says so. Files whose names
// only look like ftpatch's (a user's notes, an older ftpatch's temporary)
// stay, and the run says so too (issue 22.2).
func (p *promise) testStale(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "k.elf")
	writeFile(t, f, p.init, 0o755)
	cmd := p.cmd(append(enableArgs, "--func", "fx_mul", f)...)
	cmd.Env = append(os.Environ(), "FTPATCH_TEST_SIGNAL_AT=linked", "FTPATCH_TEST_SIGNAL=KILL")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if r := wait(t, cmd, &out, &errb); r.sig != syscall.SIGKILL {
		t.Fatalf("run killed between link and rename: exit %d, signal %v: %s", r.code, r.sig, r.stderr)
	}
	var stale []string
	for _, n := range names(t, dir) {
		if n != "k.elf" {
			stale = append(stale, n)
		}
	}
	if len(stale) != 1 || !strings.HasPrefix(stale[0], fmt.Sprintf(".k.elf.ftpatch-%d-", cmd.Process.Pid)) {
		t.Fatalf("a kill -9 between link and rename left %q, want one temporary", stale)
	}
	foreign := []string{".k.elf.ftpatch-notes", ".k.elf.ftpatch-4242-17"}
	keep := []string{".k.elf2.ftpatch-1-1", ".other.ftpatch-1-1", "k.elf.ftpatch-1-1"}
	for _, n := range slices.Concat(foreign, keep) {
		writeFile(t, filepath.Join(dir, n), []byte("someone's notes"), 0o600)
	}
	r := p.mustRun(t, append(enableArgs, "--func", "fx_add", f)...)
	if !strings.Contains(r.stderr, "removed "+filepath.Join(dir, stale[0])+", a temporary file left by an ftpatch run that was killed") {
		t.Errorf("no note on stderr about removing %s: %q", stale[0], r.stderr)
	}
	for _, n := range foreign {
		if !strings.Contains(r.stderr, "ftpatch: warning: left "+filepath.Join(dir, n)+" alone") {
			t.Errorf("no warning about leaving %s alone: %q", n, r.stderr)
		}
	}
	want := slices.Concat([]string{"k.elf"}, foreign, keep)
	slices.Sort(want)
	if n := names(t, dir); !slices.Equal(n, want) {
		t.Errorf("folder holds %q, want %q", n, want)
	}
	if !bytes.Equal(readFile(t, f), p.add) {
		t.Error("not patched")
	}
}

// Three in-place enables of different functions, started together, again
// and again: with --wait each run goes first or waits for the others and
// then reads their result, so the file always ends with all three. Without
// the lock one run's change is lost now and then; so it is with a lock
// that misses the rename's new inode: a run waiting on the old inode reads
// the new file while a third run, which opened the new inode, locks it at
// once and reads it too.
func (p *promise) testConcurrent(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "k.elf")
	for i := range 40 {
		writeFile(t, f, p.init, 0o755)
		var wg sync.WaitGroup
		res := make([]result, 3)
		for j, fn := range []string{"fx_add", "fx_mul", "fx_sum"} {
			wg.Go(func() {
				res[j] = p.run(t, append(enableArgs, "--wait", "1m", "--func", fn, f)...)
			})
		}
		wg.Wait()
		for _, r := range res {
			if r.code != 0 {
				t.Fatalf("round %d: exit %d: %s", i, r.code, r.stderr)
			}
		}
		if got := readFile(t, f); !bytes.Equal(got, p.all3) {
			t.Fatalf("round %d: after three concurrent enables the file is not the one with all three enabled (lost update)", i)
		}
		if n := names(t, dir); !slices.Equal(n, []string{"k.elf"}) {
			t.Fatalf("round %d: folder holds %q", i, n)
		}
	}
}

// holdLock flocks name as another ftpatch would.
func holdLock(t *testing.T, name string) (release func()) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	return func() { f.Close() }
}

func (p *promise) testWait(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "k.elf")
	writeFile(t, f, p.init, 0o755)
	release := holdLock(t, f)

	r := p.run(t, append(enableArgs, f)...)
	if r.code != 2 || !strings.Contains(r.stderr, f) || !strings.Contains(r.stderr, "--wait") {
		t.Errorf("locked file without --wait: exit %d, stderr %q; want 2 naming the file and --wait", r.code, r.stderr)
	}
	r = p.run(t, append(enableArgs, "--wait", "20ms", f)...)
	if r.code != 2 || !strings.Contains(r.stderr, "still locked after waiting 20ms") {
		t.Errorf("locked file with --wait 20ms: exit %d, stderr %q; want 2, still locked", r.code, r.stderr)
	}
	if !bytes.Equal(readFile(t, f), p.init) {
		t.Fatal("a run that did not get the lock changed the file")
	}

	// A run with a long --wait blocks while the lock is held and patches
	// once it is released.
	cmd := p.cmd(append(enableArgs, "--wait", "10m", "--func", "fx_add", f)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var werr error
	go func() { werr = cmd.Wait(); close(exited) }()
	for !hasOpen(cmd.Process.Pid, f) { // it is waiting once it has the file open
		select {
		case <-exited:
			release()
			t.Fatalf("run with --wait 10m exited while the lock was held: %s", errb.String())
		default:
			time.Sleep(time.Millisecond) // poll gently; the outcome does not depend on it
		}
	}
	if !bytes.Equal(readFile(t, f), p.init) {
		t.Fatal("the waiting run changed the file while the lock was held")
	}
	release()
	<-exited
	if werr != nil {
		t.Fatalf("run with --wait after the release: %v: %s", werr, errb.String())
	}
	if !bytes.Equal(readFile(t, f), p.add) {
		t.Fatal("run with --wait: file not enabled after the lock was released")
	}
}

// waitOpen returns once process pid has name open, or has ended.
func waitOpen(pid int, name string) {
	for !hasOpen(pid, name) {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(st), ") Z ") {
			return
		}
		time.Sleep(100 * time.Microsecond) // pacing only: the outcome does not depend on it
	}
}

// hasOpen reports whether process pid has name open.
func hasOpen(pid int, name string) bool {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && l == name {
			return true
		}
	}
	return false
}

func (p *promise) testSymlinks(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.elf")
	link := filepath.Join(dir, "link.elf")
	writeFile(t, real, p.init, 0o755)
	if err := os.Symlink("real.elf", link); err != nil {
		t.Fatal(err)
	}
	checkLink := func(what string) {
		t.Helper()
		if dest, err := os.Readlink(link); err != nil || dest != "real.elf" {
			t.Fatalf("%s: link.elf is no longer a link to real.elf (%q, %v)", what, dest, err)
		}
	}
	p.mustRun(t, append(enableArgs, "--func", "fx_add", link)...)
	checkLink("in place through a link")
	if !bytes.Equal(readFile(t, real), p.add) {
		t.Fatal("in place through a link: the real file was not patched")
	}

	// -o LINK writes the link's target; the input is another file.
	src := filepath.Join(dir, "src.elf")
	writeFile(t, src, p.init, 0o755)
	p.mustRun(t, append(enableArgs, "--func", "fx_mul", "-o", link, src)...)
	checkLink("-o LINK")
	if !bytes.Equal(readFile(t, real), p.mul) {
		t.Fatal("-o LINK: the link's target does not hold the output")
	}
	if !bytes.Equal(readFile(t, src), p.init) {
		t.Fatal("-o LINK: the input changed")
	}
	// -o LINK to the input itself is in place.
	p.mustRun(t, append(enableArgs, "--func", "fx_add", "-o", link, real)...)
	checkLink("-o LINK to the input")
	if !bytes.Equal(readFile(t, real), p.both) {
		t.Fatal("-o LINK to the input: not patched in place")
	}
	if n := names(t, dir); !slices.Equal(n, []string{"link.elf", "real.elf", "src.elf"}) {
		t.Fatalf("folder holds %q", n)
	}

	// -o over an existing file keeps that file's mode; a new one gets the
	// input's.
	if err := os.Chmod(real, 0o640); err != nil {
		t.Fatal(err)
	}
	p.mustRun(t, append(enableArgs, "--func", "fx_mul", "-o", real, src)...)
	fresh := filepath.Join(dir, "fresh.elf")
	p.mustRun(t, append(enableArgs, "--func", "fx_mul", "-o", fresh, src)...)
	for f, want := range map[string]os.FileMode{real: 0o640, fresh: 0o755} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != want {
			t.Errorf("-o %s: mode %v (%v), want %v", filepath.Base(f), fi.Mode(), err, want)
		}
	}
}

func (p *promise) testBadOutput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "k.elf")
	writeFile(t, in, p.init, 0o755)
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere", filepath.Join(dir, "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub", filepath.Join(dir, "tosub")); err != nil {
		t.Fatal(err)
	}
	before := names(t, dir)
	for _, c := range []struct{ out, want string }{
		{"", "-o is empty"},
		{filepath.Join(dir, "sub"), "it is a folder"},
		{filepath.Join(dir, "tosub"), "it is a folder"},
		{fifo, "it is a FIFO"},
		{"/dev/null", "it is a character device"},
		{filepath.Join(dir, "dangling"), "symbolic link to nowhere, which does not exist"},
		{filepath.Join(dir, "no", "such", "folder"), "no/such"},
	} {
		for _, args := range [][]string{append(enableArgs, "-o", c.out, in), {"init", "-o", c.out, in}} {
			r := p.run(t, args...)
			if r.code != 2 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("%s: exit %d, stderr %q; want exit 2 and %q", strings.Join(args, " "), r.code, r.stderr, c.want)
			}
		}
	}
	if !bytes.Equal(readFile(t, in), p.init) {
		t.Error("a refused -o changed the input")
	}
	if n := names(t, dir); !slices.Equal(n, before) {
		t.Errorf("folder was %q, now %q", before, n)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO is no longer a FIFO: %v %v", fi, err)
	}
}

func (p *promise) testHardLink(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "k.elf")
	other := filepath.Join(dir, "other.elf")
	writeFile(t, f, p.init, 0o755)
	if err := os.Link(f, other); err != nil {
		t.Fatal(err)
	}
	r := p.mustRun(t, append(enableArgs, "--func", "fx_add", f)...)
	if !strings.Contains(r.stderr, "warning: file "+f+" has 2 hard links") {
		t.Errorf("no hard-link warning on stderr: %q", r.stderr)
	}
	if !bytes.Equal(readFile(t, f), p.add) || !bytes.Equal(readFile(t, other), p.init) {
		t.Error("hard link: want the name given patched and the other name unchanged")
	}
	r = p.mustRun(t, append(enableArgs, "--func", "fx_mul", f)...)
	if strings.Contains(r.stderr, "hard link") {
		t.Errorf("warning for a file with one link: %q", r.stderr)
	}
	// -o naming another hard link of the input: that name gets the
	// output, the input keeps its bytes.
	writeFile(t, f, p.init, 0o755)
	os.Remove(other)
	if err := os.Link(f, other); err != nil {
		t.Fatal(err)
	}
	p.mustRun(t, append(enableArgs, "--func", "fx_add", "-o", other, f)...)
	if !bytes.Equal(readFile(t, other), p.add) || !bytes.Equal(readFile(t, f), p.init) {
		t.Error("-o a hard link of the input: want the output under that name and the input unchanged")
	}
}

// xattrDir returns a folder whose file system takes user.* extended
// attributes (tmpfs may not): the test's temporary folder, else one in the
// repository's build folder.
func xattrDir(t *testing.T) string {
	t.Helper()
	for _, dir := range []string{t.TempDir(), filepath.Join(testutil.RepoRoot(t), "build")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			continue
		}
		d, err := os.MkdirTemp(dir, "xattr-test-")
		if err != nil {
			continue
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		probe := filepath.Join(d, "probe")
		os.WriteFile(probe, nil, 0o644)
		err = unix.Setxattr(probe, "user.ftpatch-probe", []byte("1"), 0)
		os.Remove(probe)
		if err == nil {
			return d
		}
	}
	t.Fatal("no folder here whose file system takes user.* extended attributes")
	return ""
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown to another user, setuid bits)")
	}
}

// fileCaps is a security.capability value (struct vfs_cap_data, revision
// 2, little-endian): effective, permitted CAP_NET_BIND_SERVICE (10).
var fileCaps = []byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// nobody is the uid and gid the ownership tests give away files to.
const nobody = 65534

func (p *promise) testOwnership(t *testing.T) {
	needRoot(t)
	dir := xattrDir(t)
	for _, mode := range []os.FileMode{0o4750, 0o2750, 0o6755, 0o1700} {
		t.Run(strconv.FormatUint(uint64(mode), 8), func(t *testing.T) {
			f := filepath.Join(dir, "k.elf")
			writeFile(t, f, p.init, 0o755)
			if err := os.Chown(f, nobody, nobody); err != nil {
				t.Fatal(err)
			}
			if err := unix.Chmod(f, uint32(mode)); err != nil {
				t.Fatal(err)
			}
			if err := unix.Setxattr(f, "user.origin", []byte("built by ci #42"), 0); err != nil {
				t.Fatal(err)
			}
			// setcap cap_net_bind_service+ep: the kernel drops file
			// capabilities when a file is written.
			if err := unix.Setxattr(f, "security.capability", fileCaps, 0); err != nil {
				t.Fatal(err)
			}
			p.mustRun(t, append(enableArgs, "--func", "fx_add", f)...)
			var st unix.Stat_t
			if err := unix.Stat(f, &st); err != nil {
				t.Fatal(err)
			}
			if st.Uid != nobody || st.Gid != nobody || st.Mode&0o7777 != uint32(mode) {
				t.Errorf("after an in-place enable: owner %d:%d mode %#o; want %d:%d %#o", st.Uid, st.Gid, st.Mode&0o7777, nobody, nobody, mode)
			}
			buf := make([]byte, 64)
			n, err := unix.Getxattr(f, "user.origin", buf)
			if err != nil || string(buf[:n]) != "built by ci #42" {
				t.Errorf("user.origin after an in-place enable: %q, %v", buf[:max(n, 0)], err)
			}
			n, err = unix.Getxattr(f, "security.capability", buf)
			if err != nil || !bytes.Equal(buf[:n], fileCaps) {
				t.Errorf("security.capability after an in-place enable: %x, %v; want %x", buf[:max(n, 0)], err, fileCaps)
			}
			if !bytes.Equal(readFile(t, f), p.add) {
				t.Error("not patched")
			}
			if n := names(t, dir); !slices.Equal(n, []string{"k.elf"}) {
				t.Errorf("folder holds %q", n)
			}
		})
	}
}

// As nobody, a file owned by root in a folder nobody may write: the new
// file would belong to nobody, so the run refuses before writing.
func (p *promise) testCannotKeep(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil { // testing makes it 0700
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "k.elf")
	writeFile(t, f, p.init, 0o755)
	if err := os.Chmod(f, 0o666); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "ftpatch")
	writeFile(t, bin, readFile(t, p.bin), 0o755)
	cmd := exec.Command(bin, append(enableArgs, f)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := wait(t, cmd, &out, &errb)
	if r.code != 2 || !strings.Contains(r.stderr, "owned by uid 0") {
		t.Errorf("as nobody on root's file: exit %d, stderr %q; want 2, owned by uid 0", r.code, r.stderr)
	}
	if !bytes.Equal(readFile(t, f), p.init) {
		t.Error("the file changed")
	}
	if n := names(t, dir); !slices.Equal(n, []string{"ftpatch", "k.elf"}) {
		t.Errorf("folder holds %q", n)
	}

	// nobody's own setuid file: the kernel clears setuid when a process
	// without CAP_FSETID writes a file, so the mode is set again after the
	// contents.
	if err := os.Chown(f, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(f, 0o4750); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(bin, append(enableArgs, "--func", "fx_add", f)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out.Reset()
	errb.Reset()
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if r := wait(t, cmd, &out, &errb); r.code != 0 {
		t.Fatalf("as nobody on its own 4750 file: exit %d: %s", r.code, r.stderr)
	}
	var st unix.Stat_t
	if err := unix.Stat(f, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != nobody || st.Mode&0o7777 != 0o4750 {
		t.Errorf("as nobody on its own 4750 file: now uid %d mode %#o", st.Uid, st.Mode&0o7777)
	}
	if !bytes.Equal(readFile(t, f), p.add) {
		t.Error("as nobody on its own file: not patched")
	}
}

// A signal the binary sends itself at each stage of Replace (test hook
// FTPATCH_TEST_SIGNAL_AT), SIGTERM and SIGQUIT, with an unnamed temporary
// and with the named one of file systems without O_TMPFILE. The commit
// point is the rename: before it, exit 128+signal and the old bytes; from
// it on ("linked": the handler waits for the rename under way), the run
// completes, exit 0, and the new bytes. Never a status saying failure over
// a file that holds the new bytes, nothing beside the file, no goroutine
// dump (SIGQUIT's Go default, which also left the named temporary).
func (p *promise) testSignalStages(t *testing.T) {
	for _, c := range []struct {
		stage string
		isNew bool
	}{{"filled", false}, {"linked", true}, {"renamed", true}} {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGQUIT} {
			for _, named := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s %v named=%v", c.stage, sig, named), func(t *testing.T) {
					p.signalAt(t, c.stage, sig, named, c.isNew)
				})
			}
		}
	}
}

func (p *promise) signalAt(t *testing.T, stage string, sig syscall.Signal, named, isNew bool) {
	dir := t.TempDir()
	f := filepath.Join(dir, "k.elf")
	writeFile(t, f, p.init, 0o755)
	cmd := p.cmd(append(enableArgs, "--func", "fx_add", f)...)
	cmd.Env = append(os.Environ(), "FTPATCH_TEST_SIGNAL_AT="+stage, "FTPATCH_TEST_SIGNAL="+strings.TrimPrefix(unix.SignalName(sig), "SIG"))
	if named {
		cmd.Env = append(cmd.Env, "FTPATCH_TEST_NO_TMPFILE=1")
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := wait(t, cmd, &out, &errb)
	want, bytesWant := 128+int(sig), p.init
	if isNew {
		want, bytesWant = 0, p.add
	}
	if r.code != want || r.sig != 0 {
		t.Errorf("exit %d (signal %v), want %d: %s", r.code, r.sig, want, r.stderr)
	}
	if !bytes.Equal(readFile(t, f), bytesWant) {
		t.Errorf("target after %v: want the %s bytes", sig, map[bool]string{false: "old", true: "new"}[isNew])
	}
	if isNew && !strings.Contains(r.stdout, "enable: 1 site changed") {
		t.Errorf("a run that completed did not report its writes: %q", r.stdout)
	}
	if strings.Contains(r.stderr, "goroutine ") {
		t.Errorf("goroutine dump on stderr: %.200s", r.stderr)
	}
	msg := fmt.Sprintf("ftpatch: %v\n", sig)
	if isNew {
		msg = fmt.Sprintf("ftpatch: %v after the file was written; completing the run\n", sig)
	}
	if !strings.Contains(r.stderr, msg) {
		t.Errorf("stderr %q, want the handler's %q", r.stderr, msg)
	}
	if n := names(t, dir); !slices.Equal(n, []string{"k.elf"}) {
		t.Errorf("folder holds %q", n)
	}
}

// bigImage pads the fixture image with a random non-alloc section to about
// mb MiB (as a kernel's DWARF pads it), initialised.
func (p *promise) bigImage(t *testing.T, dir string, mb int) string {
	t.Helper()
	objcopy := testutil.NeedTool(t, "aarch64-linux-gnu-objcopy")
	pad := filepath.Join(dir, "pad")
	b := make([]byte, mb<<20)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(b)
	writeFile(t, pad, b, 0o644)
	src := filepath.Join(dir, "init.elf")
	writeFile(t, src, p.init, 0o755)
	big := filepath.Join(dir, "big.elf")
	if out, err := exec.Command(objcopy, "--add-section", ".debug_pad="+pad, src, big).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, out)
	}
	os.Remove(pad)
	os.Remove(src)
	return big
}

// Random kills while a few-MB file is enabled in place: SIGTERM, SIGINT,
// SIGHUP, SIGQUIT and SIGKILL at random moments (up to how long an
// uninterrupted run takes), with an unnamed temporary and, for the signals
// ftpatch handles, with a named one. Whatever the moment, the file holds
// its old bytes or its new ones, the exit status says which (0: new;
// 128+signal: old), and nothing is left beside it. The moment
// is random; the assertions hold at every moment. scripts/killtest.sh runs
// the same on a kernel-sized file 100 times.
func TestRandomKills(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and rewrites a few-MB file 12 times")
	}
	p := newPromise(t)
	work := t.TempDir()
	big := p.bigImage(t, work, 4)
	old := readFile(t, big)
	p.mustRun(t, append(enableArgs, "--init", "--skip-misaligned", big)...)
	enabled := readFile(t, big)
	if bytes.Equal(old, enabled) {
		t.Fatal("enable --init changed nothing")
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "k.elf")
	// How long an uninterrupted run takes, to spread the kills over it.
	// How long from its lock to its end, as the kills below count.
	writeFile(t, f, old, 0o755)
	cal := p.cmd(append(enableArgs, "--init", "--skip-misaligned", f)...)
	if err := cal.Start(); err != nil {
		t.Fatal(err)
	}
	waitOpen(cal.Process.Pid, f)
	start := time.Now()
	if err := cal.Wait(); err != nil {
		t.Fatal(err)
	}
	span := time.Since(start)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	sigs := []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGKILL}
	counts := map[string]int{}
	for i := range 15 {
		sig := sigs[i%len(sigs)]
		named := sig != syscall.SIGKILL && i%3 == 0
		writeFile(t, f, old, 0o755)
		cmd := p.cmd(append(enableArgs, "--init", "--skip-misaligned", f)...)
		if named {
			cmd.Env = append(os.Environ(), "FTPATCH_TEST_NO_TMPFILE=1")
		}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// From its lock on: before Main installs the handler, SIGQUIT
		// would be Go's (a goroutine dump, exit 2), nothing touched yet.
		waitOpen(cmd.Process.Pid, f)
		time.Sleep(time.Duration(rng.Int64N(int64(span))))
		cmd.Process.Signal(sig)
		r := wait(t, cmd, &out, &errb)
		switch {
		case r.code == 0:
			counts["finished first"]++
		case r.sig == syscall.SIGKILL:
			counts["killed by the signal"]++
		case sig != syscall.SIGKILL && r.code == 128+int(sig):
			counts["exited 128+signal"]++
		default:
			t.Fatalf("kill %d (%v): exit %d, signal %v: %s", i, sig, r.code, r.sig, r.stderr)
		}
		got := readFile(t, f)
		switch {
		case bytes.Equal(got, old):
			counts["old bytes"]++
			if r.code == 0 {
				t.Fatalf("kill %d (%v): exit 0 but the file holds the old bytes", i, sig)
			}
		case bytes.Equal(got, enabled):
			counts["new bytes"]++
			if r.code != 0 && sig != syscall.SIGKILL {
				t.Fatalf("kill %d (%v): exit %d says failure but the file holds the new bytes: %s", i, sig, r.code, r.stderr)
			}
		default:
			t.Fatalf("kill %d (%v, named temporary %v): the file is neither the old nor the new one (%d bytes)", i, sig, named, len(got))
		}
		if n := names(t, dir); !slices.Equal(n, []string{"k.elf"}) {
			// A kill -9 between the link and the rename, two system calls
			// apart, leaves the complete new file under the run's
			// temporary name; the next run on the file removes it.
			left := fmt.Sprintf(".k.elf.ftpatch-%d-", cmd.Process.Pid)
			if sig != syscall.SIGKILL || len(n) != 2 || !strings.HasPrefix(n[0], left) || !bytes.Equal(readFile(t, filepath.Join(dir, n[0])), enabled) {
				t.Fatalf("kill %d (%v, named temporary %v): folder holds %q", i, sig, named, n)
			}
			r := p.mustRun(t, append(enableArgs, "--init", "--skip-misaligned", f)...)
			if n := names(t, dir); !slices.Equal(n, []string{"k.elf"}) || !strings.Contains(r.stderr, "removed ") {
				t.Fatalf("kill %d: the next run did not remove the temporary a kill -9 left: %q, %s", i, n, r.stderr)
			}
			counts["kill -9 between link and rename, removed by the next run"]++
		}
	}
	t.Logf("15 kills: %v", counts)
}
