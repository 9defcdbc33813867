// SPDX-License-Identifier: Apache-2.0

package main

// make install, make dist and the version a build stamps, run as a user
// runs them: the Makefile's targets into temporary folders.

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/cli"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// runMake runs make in dir with args; the output goes to the log on
// failure.
func runMake(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(testutil.NeedTool(t, "make"), append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// gitDescribe is what the Makefile stamps in a work tree.
func gitDescribe(t *testing.T, root string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testutil.NeedTool(t, "git"), append([]string{"describe", "--tags", "--always"}, args...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git describe: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// versionOf is the first line of bin --version, and the "ftpatch" of the
// JSON line it prints for a fixture.
func versionOf(t *testing.T, bin, fixture string) (text, jsonVersion string) {
	t.Helper()
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	text, _, _ = strings.Cut(string(out), "\n")
	line, err := exec.Command(bin, "scan", "--json", fixture).Output()
	if err != nil {
		t.Fatalf("%s scan --json: %v", bin, err)
	}
	var v struct{ Ftpatch string }
	if err := json.Unmarshal(line, &v); err != nil {
		t.Fatal(err)
	}
	return text, v.Ftpatch
}

// make install DESTDIR=… PREFIX=/usr installs the binary (stamped with git
// describe even with Go's VCS stamping off), a man page per command that
// mandoc finds no error in, and completions each shell parses.
func TestMakeInstall(t *testing.T) {
	root := testutil.RepoRoot(t)
	tmp := t.TempDir()
	dest := filepath.Join(tmp, "dest")
	runMake(t, root, []string{"GOFLAGS=-buildvcs=false"}, "install", "DESTDIR="+dest, "PREFIX=/usr",
		"BIN="+filepath.Join(tmp, "ftpatch"), "GEN="+filepath.Join(tmp, "gen"))
	bin := filepath.Join(dest, "usr", "bin", "ftpatch")
	want := "ftpatch " + gitDescribe(t, root, "--dirty")
	text, jv := versionOf(t, bin, testutil.Fixtures(t, "gcc-callops-obj.o")[0])
	if text != want || "ftpatch "+jv != want {
		t.Errorf("--version says %q and JSON %q; want %q (git describe)", text, jv, want)
	}
	mandoc := testutil.NeedTool(t, "mandoc")
	man := filepath.Join(dest, "usr", "share", "man", "man1")
	root0 := cli.NewRoot(&cli.IO{Out: io.Discard, Err: io.Discard})
	root0.InitDefaultCompletionCmd()
	pages := []string{"ftpatch.1"}
	for _, c := range root0.Commands() {
		if c.IsAvailableCommand() {
			pages = append(pages, "ftpatch-"+c.Name()+".1")
		}
	}
	for _, p := range pages {
		path := filepath.Join(man, p)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("man page %s: %v", p, err)
			continue
		}
		name := strings.TrimSuffix(p, ".1")
		if !regexp.MustCompile(`(?m)^\.SH NAME\n` + regexp.QuoteMeta(name) + ` \\?- \S`).Match(b) {
			t.Errorf("%s has no NAME section naming %s", p, name)
		}
		if out, err := exec.Command(mandoc, "-Tlint", "-W", "error", path).CombinedOutput(); err != nil {
			t.Errorf("mandoc -Tlint %s: %v\n%s", p, err, out)
		}
	}
	comp := filepath.Join(dest, "usr", "share")
	for _, c := range []struct{ shell, path string }{
		{"bash", "bash-completion/completions/ftpatch"},
		{"zsh", "zsh/site-functions/_ftpatch"},
		{"fish", "fish/vendor_completions.d/ftpatch.fish"},
	} {
		path := filepath.Join(comp, c.path)
		b, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(b, []byte("ftpatch")) {
			t.Errorf("%s completion %s: %v", c.shell, c.path, err)
			continue
		}
		sh := testutil.NeedTool(t, c.shell)
		if out, err := exec.Command(sh, "-n", path).CombinedOutput(); err != nil {
			t.Errorf("%s -n %s: %v\n%s", c.shell, c.path, err, out)
		}
	}
	// The completion asks the binary: commands, then a command's flags.
	out, err := exec.Command(bin, "__complete", "di").Output()
	if err != nil || !slices.Contains(strings.Split(string(out), "\n"), "diff\tCompare the patch sites of two builds: exit 1 when functions lost theirs") {
		t.Errorf("__complete di: %v\n%s", err, out)
	}
	out, _ = exec.Command(bin, "__complete", "scan", "--ju").Output()
	if !strings.Contains(string(out), "--junit") {
		t.Errorf("__complete scan --ju: %s", out)
	}
}

// make dist makes a tarball of the sources with a VERSION file; make
// build in it, with no git to ask, stamps that version.
func TestMakeDist(t *testing.T) {
	root := testutil.RepoRoot(t)
	tmp := t.TempDir()
	runMake(t, root, nil, "dist", "DISTDIR="+tmp)
	v := gitDescribe(t, root)
	tarball := filepath.Join(tmp, "ftpatch-"+v+".tar.gz")
	x := filepath.Join(tmp, "x")
	if err := os.Mkdir(x, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(testutil.NeedTool(t, "tar"), "xzf", tarball, "-C", x).CombinedOutput(); err != nil {
		t.Fatalf("tar xzf %s: %v\n%s", tarball, err, out)
	}
	src := filepath.Join(x, "ftpatch-"+v)
	if b, err := os.ReadFile(filepath.Join(src, "VERSION")); err != nil || strings.TrimSpace(string(b)) != v {
		t.Fatalf("VERSION: %q, %v; want %q", b, err, v)
	}
	ls := exec.Command("git", "ls-tree", "-r", "--name-only", "HEAD")
	ls.Dir = root
	files, err := ls.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(files)) {
		if _, err := os.Lstat(filepath.Join(src, f)); err != nil {
			t.Fatalf("the tarball lacks %s: %v", f, err)
		}
	}
	// The build's command stamps the tarball's version (TestMakeInstall
	// shows a stamped build's --version and JSON lines say it; a second
	// full build here would cost a minute).
	cmd := exec.Command(testutil.NeedTool(t, "make"), "--no-print-directory", "-n", "build")
	cmd.Dir = src
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build in the tarball: %v\n%s", err, out)
	}
	if want := "cli.buildVersion=" + v + "'"; !strings.Contains(string(out), want) {
		t.Errorf("make build in the tarball does not stamp %s:\n%s", v, out)
	}
}
