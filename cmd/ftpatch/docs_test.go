// SPDX-License-Identifier: Apache-2.0

package main

// Every command shown in README.md and docs/*.md runs in the acceptance
// scripts as written:
//
//   - a "$ CMD" line in a fenced block must be a command line of some
//     script in testdata/script: `exec CMD` or `! exec CMD` (a testscript
//     builtin such as cmp may stand without exec); `$ echo $?` lines are
//     what testscript's `!` asserts;
//   - a ```sh block must be a file of some script's archive, byte for byte,
//     that the script runs (`exec bash NAME`);
//   - `make TARGET` lines are CI's own entry points: the target must exist in
//     the Makefile (CI runs make test; the others run in their own jobs);
//   - a fenced block right after `<!-- output: SCRIPT FILE -->` is output the
//     script compares (cmp) with its file FILE: the two must be equal, so
//     the docs show what the tool prints.

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/ftpatch/ftpatch/internal/cli"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

type docCommand struct {
	where string // file:line
	text  string
	block bool // a whole ```sh block
}

// docPage is README.md or a page of docs/, as lines.
type docPage struct {
	path  string
	lines []string
}

// docPages reads README.md and docs/*.md.
func docPages(t *testing.T, root string) []docPage {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	paths = append([]string{filepath.Join(root, "README.md")}, paths...)
	pages := make([]docPage, len(paths))
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		pages[i] = docPage{p, strings.Split(string(b), "\n")}
	}
	return pages
}

func docCommands(t *testing.T, root string) []docCommand {
	var cmds []docCommand
	for _, page := range docPages(t, root) {
		doc, lines := page.path, page.lines
		rel, _ := filepath.Rel(root, doc)
		for i := 0; i < len(lines); i++ {
			fence := strings.TrimSpace(lines[i])
			if !strings.HasPrefix(fence, "```") {
				continue
			}
			lang := strings.TrimPrefix(fence, "```")
			start := i
			var body []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
				body = append(body, lines[i])
			}
			where := rel + ":" + itoa(start+1)
			if lang == "sh" {
				cmds = append(cmds, docCommand{where, strings.Join(body, "\n") + "\n", true})
				continue
			}
			for k, l := range body {
				if c, ok := strings.CutPrefix(l, "$ "); ok {
					cmds = append(cmds, docCommand{rel + ":" + itoa(start+2+k), strings.TrimSpace(c), false})
				}
			}
		}
	}
	return cmds
}

func itoa(n int) string { return strconv.Itoa(n) }

var makeLine = regexp.MustCompile(`^make ([a-z0-9-]+)\s*(#.*)?$`)

func TestDocsCommandsRun(t *testing.T) {
	root := testutil.RepoRoot(t)
	scripts, _ := filepath.Glob(filepath.Join(root, "testdata", "script", "*.txtar"))
	lines := map[string]bool{}
	files := map[string]bool{}
	for _, s := range scripts {
		ar, err := txtar.ParseFile(s)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(ar.Comment)))
		var run []string
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			l = strings.TrimPrefix(l, "! ")
			lines[l] = true
			if c, ok := strings.CutPrefix(l, "exec "); ok {
				lines[c] = true
				if f, ok := strings.CutPrefix(c, "bash "); ok {
					run = append(run, f)
				}
			}
		}
		for _, f := range ar.Files {
			for _, r := range run {
				if r == f.Name {
					files[string(f.Data)] = true
				}
			}
		}
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	cmds := docCommands(t, root)
	if len(cmds) < 10 {
		t.Fatalf("found only %d commands in the docs", len(cmds))
	}
	for _, c := range cmds {
		switch {
		case c.block:
			if onlyMake(c.text, string(makefile)) {
				continue
			}
			if !files[c.text] {
				t.Errorf("%s: this ```sh block is run by no script in testdata/script (add it as a file of a script, byte for byte, and `exec bash` it):\n%s", c.where, c.text)
			}
		case c.text == "echo $?":
		case makeLine.MatchString(c.text):
			if !onlyMake(c.text, string(makefile)) {
				t.Errorf("%s: %s: no such Makefile target", c.where, c.text)
			}
		default:
			if !lines[c.text] {
				t.Errorf("%s: `%s` runs in no script in testdata/script (want a line `exec %s`)", c.where, c.text, c.text)
			}
		}
	}
}

// onlyMake reports whether every line of block is `make TARGET` for a
// target of the Makefile.
func onlyMake(block, makefile string) bool {
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(block), "\n") {
		m := makeLine.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil || !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(m[1])+`:`).MatchString(makefile) {
			return false
		}
		n++
	}
	return n > 0
}

// The synopsis in README.md's "Commands" is each command's usage line, as
// `ftpatch CMD --help` prints it.
func TestReadmeSynopsis(t *testing.T) {
	root := testutil.RepoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "## Commands")
	if i < 0 {
		t.Fatal("README.md has no Commands section")
	}
	block := doc[i:]
	block = block[strings.Index(block, "```\n")+4:]
	block = block[:strings.Index(block, "```")]
	got := strings.Split(strings.TrimSpace(block), "\n")
	var want []string
	for _, c := range cli.NewRoot(&cli.IO{Out: io.Discard, Err: io.Discard}).Commands() {
		if c.IsAvailableCommand() && c.Name() != "help" && c.Name() != "completion" {
			want = append(want, "ftpatch "+c.Use)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("README.md synopsis:\n%s\nwant the commands' usage lines:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

var outputRe = regexp.MustCompile(`^<!-- output: ([a-z0-9-]+\.txtar) (\S+) -->$`)

func TestDocsOutputs(t *testing.T) {
	root := testutil.RepoRoot(t)
	n := 0
	for _, page := range docPages(t, root) {
		doc, lines := page.path, page.lines
		for i, l := range lines {
			m := outputRe.FindStringSubmatch(strings.TrimSpace(l))
			if m == nil {
				continue
			}
			n++
			where := filepath.Base(doc) + ":" + strconv.Itoa(i+1)
			if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
				t.Errorf("%s: no fenced block right after the output comment", where)
				continue
			}
			var body []string
			for k := i + 2; k < len(lines) && lines[k] != "```"; k++ {
				body = append(body, lines[k])
			}
			ar, err := txtar.ParseFile(filepath.Join(root, "testdata", "script", m[1]))
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			found := false
			for _, f := range ar.Files {
				if f.Name == m[2] {
					found = true
					if got, want := strings.Join(body, "\n")+"\n", string(f.Data); got != want {
						t.Errorf("%s: the block differs from %s's %s (the tool's output):\n%s\nwant:\n%s", where, m[1], m[2], got, want)
					}
				}
			}
			if !found {
				t.Errorf("%s: %s has no file %s", where, m[1], m[2])
			}
			if !strings.Contains(string(ar.Comment), "cmp stdout "+m[2]) && !strings.Contains(string(ar.Comment), "cmp stdout $WORK/"+m[2]) {
				t.Errorf("%s: %s never compares stdout with %s", where, m[1], m[2])
			}
		}
	}
	if n == 0 {
		t.Error("no <!-- output: --> block in the docs")
	}
}

// Every ```json block in the docs is JSON ftpatch could print: each object
// passes the docs/json.md contract (a lone site as a scan site).
func TestDocsJSONExamples(t *testing.T) {
	root := testutil.RepoRoot(t)
	c, err := loadContract(filepath.Join(root, "docs", "json.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, page := range docPages(t, root) {
		doc, lines := page.path, page.lines
		for i := 0; i < len(lines); i++ {
			if strings.TrimSpace(lines[i]) != "```json" {
				continue
			}
			where := filepath.Base(doc) + ":" + strconv.Itoa(i+1)
			var body []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
				body = append(body, lines[i])
			}
			d := json.NewDecoder(strings.NewReader(strings.Join(body, "\n")))
			d.UseNumber()
			for d.More() {
				var obj map[string]any
				if err := d.Decode(&obj); err != nil {
					t.Errorf("%s: not JSON objects: %v", where, err)
					break
				}
				n++
				kind := c.kindOf(obj)
				if obj["call_site"] != nil {
					kind = "site"
				}
				if err := c.check(kind, obj); err != nil {
					t.Errorf("%s: a %s object against docs/json.md: %v", where, kind, err)
				}
			}
		}
	}
	if n == 0 {
		t.Error("no ```json example in the docs")
	}
}
