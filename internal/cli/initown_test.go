// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// Issue 22.8: init treats a misaligned literal as enable does (refused,
// naming the function, unless --skip-misaligned, which leaves the site
// untouched and says so), and verify --against ORIG --allow-init accepts
// ftpatch's own init output, for every fixture: it used to write the
// misaligned literal silently and then reject its own output (also a 5,3
// object's text section raised to 8-byte alignment, a header change it
// did not explain).
func TestInitOwnOutputVerifies(t *testing.T) {
	bin := testutil.BuildFTPatch(t)
	dir := t.TempDir()
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return out.String(), 0
	}
	var files []string
	for _, glob := range []string{"*.o", "*.ko", "*.elf"} {
		files = append(files, testutil.Fixtures(t, glob)...)
	}
	misaligned := 0
	for _, src := range files {
		name := filepath.Base(src)
		o, err := elfscan.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		f, err := o.Scan()
		if err != nil {
			t.Fatal(err)
		}
		var bad []string
		for _, s := range f.Sites {
			if s.HasProblem(elfscan.CodeMisalignedLiteral) && !s.HasProblem(elfscan.CodeNoFunction) {
				bad = append(bad, s.Func)
			}
		}
		o.Close()
		out := filepath.Join(dir, name)
		if len(bad) > 0 {
			misaligned++
			msg, code := run("init", "-o", out, src)
			if code != 2 || !strings.Contains(msg, "misaligned literal") || !strings.Contains(msg, bad[0]) || !strings.Contains(msg, "--skip-misaligned") {
				t.Errorf("%s: init with misaligned literals (%s): exit %d, %q; want exit 2 naming the function and --skip-misaligned", name, strings.Join(bad, ", "), code, msg)
			}
		}
		msg, code := run("init", "--skip-misaligned", "-o", out, src)
		if code != 0 {
			t.Errorf("%s: init --skip-misaligned: exit %d: %s", name, code, msg)
			continue
		}
		for _, fn := range bad {
			if !strings.Contains(msg, "skipped function "+fn) {
				t.Errorf("%s: init --skip-misaligned does not say it skipped %s: %q", name, fn, msg)
			}
		}
		if msg, code := run("verify", "--against", src, "--allow-init", out); code != 0 {
			t.Errorf("%s: verify --against ORIG --allow-init of init's own output: exit %d:\n%s", name, code, msg)
		}
	}
	if misaligned == 0 {
		t.Fatal("no fixture has a misaligned literal: the test proves nothing")
	}
}
