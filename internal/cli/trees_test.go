// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// readFixture reads a committed fixture.
func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(testutil.Fixtures(t, name)[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ktreeBytes reads a file of the kernel-tree fixture, testdata/ktree.
func ktreeBytes(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata", "ktree", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonLines decodes each line of out.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// A subfolder a walk cannot read is one error line, in its place; the walk
// goes on with the rest, and the exit status is 2. (Before, the whole run
// stopped with one message and nothing printed for any file.)
func TestWalkGoesOnPastUnreadableFolder(t *testing.T) {
	obj := readFixture(t, "gcc-callops-bti-obj.o")
	root := tree(t, map[string][]byte{"a.o": obj, "b/x.o": obj, "c.o": obj})
	locked := filepath.Join(root, "b")
	defer func(f func(string) ([]os.DirEntry, error)) { readDir = f }(readDir)
	readDir = func(dir string) ([]os.DirEntry, error) {
		if dir == locked {
			return nil, &fs.PathError{Op: "open", Path: dir, Err: fs.ErrPermission}
		}
		return os.ReadDir(dir)
	}
	wantErr := "folder " + root + ": cannot read its subfolder " + locked + ": permission denied; the rest of the folder is read"
	stdout, stderr, err := scanRun(t, ScanOptions{JSON: true, Files: []string{root}})
	if exitCode(err) != ExitInput || !strings.Contains(stderr, "ftpatch: "+wantErr+"\n") {
		t.Fatalf("scan: exit %d, stderr %q; want exit 2 and %q", exitCode(err), stderr, wantErr)
	}
	lines := jsonLines(t, stdout)
	if len(lines) != 4 || lines[0]["file"] != filepath.Join(root, "a.o") || lines[1]["error"] != wantErr ||
		lines[1]["file"] != locked || lines[2]["file"] != filepath.Join(root, "c.o") || lines[3]["summary"] == nil {
		t.Errorf("scan --json: want a.o, the subfolder's error line, c.o and the summary; got\n%s", stdout)
	}
	var out, errb bytes.Buffer
	err = runVerify(&VerifyOptions{Jobs: 1, JSON: true, Files: []string{root}}, &IO{Out: &out, Err: &errb})
	if exitCode(err) != ExitInput || !strings.Contains(errb.String(), wantErr) || strings.Count(out.String(), `"passed":`) != 2 {
		t.Errorf("verify: exit %d, stdout\n%s\nstderr %q; want exit 2, two files verified, and the subfolder's error", exitCode(err), out.String(), errb.String())
	}
}

// Every argument that fails gets its JSON line with --json, with an error
// that names what the user gave. (Before, show --json and the folders that
// gave nothing printed no line at all.)
func TestJSONLineForEveryFailedArgument(t *testing.T) {
	empty := t.TempDir()
	noELF := tree(t, map[string][]byte{"notes.txt": []byte("text\n"), "host.o": ktreeBytes(t, "scripts/dtc/dtc.o")})
	long := filepath.Join(t.TempDir(), strings.Repeat("d/", 3000)+"x.o") // past PATH_MAX
	ok := testutil.Fixtures(t, "gcc-callops-bti-obj.o")[0]
	for _, tc := range []struct {
		arg, want string
	}{
		{"/nonexistent", "file /nonexistent: stat /nonexistent: no such file or directory"},
		{empty, "folder " + empty + ": no 64-bit AArch64 ELF file in it (plain, or compressed with xz, zstd or gzip)"},
		{noELF, "folder " + noELF + ": no 64-bit AArch64 ELF file in it"},
		{long, "file " + long + ": stat " + long + ": file name too long"},
	} {
		name := tc.arg
		if len(name) > 40 {
			name = name[:40] + "…"
		}
		t.Run(name, func(t *testing.T) {
			stdout, _, err := scanRun(t, ScanOptions{JSON: true, Files: []string{tc.arg, ok}})
			lines := jsonLines(t, stdout)
			if exitCode(err) != ExitInput || len(lines) != 3 || lines[0]["file"] != tc.arg ||
				!strings.HasPrefix(lines[0]["error"].(string), tc.want) || lines[1]["file"] != ok {
				t.Errorf("scan --json %s: exit %d\n%s\nwant exit 2, its error line %q, then the other file", tc.arg, exitCode(err), stdout, tc.want)
			}
			var out, errb bytes.Buffer
			err = runVerify(&VerifyOptions{Jobs: 1, JSON: true, Files: []string{tc.arg}}, &IO{Out: &out, Err: &errb})
			if exitCode(err) != ExitInput || !strings.Contains(out.String(), `"error":`) || !strings.Contains(out.String(), tc.want) {
				t.Errorf("verify --json %s: exit %d\n%s", tc.arg, exitCode(err), out.String())
			}
			out.Reset()
			err = runShow(&ShowOptions{JSON: true, File: tc.arg}, &IO{Out: &out, Err: &errb})
			lines = jsonLines(t, out.String())
			if exitCode(err) != ExitInput || len(lines) != 1 || lines[0]["file"] != tc.arg || lines[0]["error"] == nil {
				t.Errorf("show --json %s: exit %d\n%s\nwant exit 2 and its error line", tc.arg, exitCode(err), out.String())
			}
		})
	}
}

// A folder run of many files shows its progress on a terminal, never
// elsewhere.
func TestFolderProgress(t *testing.T) {
	obj := readFixture(t, "gcc-callops-bti-obj.o")
	files := map[string][]byte{}
	for i := range progressMinInputs {
		files[filepath.Join("d", strings.Repeat("x", i+1)+".o")] = obj
	}
	root := tree(t, files)
	for _, terminal := range []bool{false, true} {
		var out, errb bytes.Buffer
		if err := runScan(&ScanOptions{Jobs: 2, Files: []string{root}}, &IO{Out: &out, Err: &errb, IsTerminal: terminal}); err != nil {
			t.Fatal(err)
		}
		count := "/" + strconv.Itoa(progressMinInputs) + ")"
		if got := strings.Contains(errb.String(), count); got != terminal {
			t.Errorf("terminal %v: progress %q shown %v\n%q", terminal, count, got, errb.String())
		}
		if !strings.HasSuffix(errb.String(), "summary: scan: "+strconv.Itoa(progressMinInputs)+" inputs, 0 failed, 0 skipped, 450 sites, 100 problems (misaligned-literal 100)\n") {
			t.Errorf("terminal %v: stderr does not end with the summary: %q", terminal, errb.String())
		}
	}
}
