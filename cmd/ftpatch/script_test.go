// SPDX-License-Identifier: Apache-2.0

package main

// The acceptance suite: testscript scripts under testdata/script, each a
// readable transcript of ftpatch commands on the committed fixtures, with
// their exit status, stdout and stderr. `exec ftpatch` runs this package's
// main (testscript.RunMain), the binary users run.
//
// Each script starts in an empty $WORK with:
//
//	$FIXTURES  testdata/fixtures (read-only: cp a fixture before patching it)
//	$REPO      the repository root
//	scripts/, examples/, testdata/  symlinks into the repository, so that
//	           commands from the docs run as written
//	bin/ftpatch  the ftpatch under test, as the docs call it
//
// and these commands besides testscript's own:
//
//	jsonkeys FILE...   check every JSON line of each file against docs/json.md
//	validsarif FILE [N]  FILE validates against OASIS's SARIF 2.1.0 schema (N results)
//	validjunit FILE [N]  FILE validates against the Jenkins JUnit schema (N failures)
//	cisteps YAML ROLE OUT  the ftpatch steps of a CI example as a bash script (ciexamples_test.go)
//	doccmds PAGE OUT   the $ ftpatch commands of a docs page, in order, as a bash script
//	                   that checks each exit status the page shows ($ echo $?; else 0)
//
// and the condition [tool:NAME], true when NAME is on PATH; under CI=true a
// missing tool fails the script instead: `[!tool:qemu-aarch64] skip`.
//
// `go test ./cmd/ftpatch -run TestScripts -update` rewrites the expected
// outputs of the cmp lines; review the diff before committing it.

import (
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ftpatch/ftpatch/internal/cli"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the expected output in testdata/script")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ftpatch": func() { os.Exit(cli.Main(os.Args[1:])) },
	})
}

func TestScripts(t *testing.T) {
	root := testutil.RepoRoot(t)
	contract, err := loadContract(filepath.Join(root, "docs", "json.md"))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join(root, "testdata", "script"),
		RequireExplicitExec: true,
		UpdateScripts:       *update,
		Setup: func(env *testscript.Env) error {
			env.Setenv("FIXTURES", filepath.Join(root, "testdata", "fixtures"))
			env.Setenv("REPO", root)
			env.Setenv("CI", os.Getenv("CI"))
			for _, d := range []string{"scripts", "examples", "testdata"} {
				if err := os.Symlink(filepath.Join(root, d), filepath.Join(env.WorkDir, d)); err != nil {
					return err
				}
			}
			self, err := exec.LookPath("ftpatch")
			for _, kv := range env.Vars {
				if len(kv) > 5 && kv[:5] == "PATH=" {
					self, err = lookIn(kv[5:], "ftpatch")
				}
			}
			if err != nil {
				return err
			}
			if err := os.Mkdir(filepath.Join(env.WorkDir, "bin"), 0o755); err != nil {
				return err
			}
			return os.Symlink(self, filepath.Join(env.WorkDir, "bin", "ftpatch"))
		},
		Condition: func(cond string) (bool, error) {
			tool, ok := strings.CutPrefix(cond, "tool:")
			if !ok {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			if _, err := exec.LookPath(tool); err != nil {
				if testutil.InCI() {
					return false, fmt.Errorf("%s not found, and CI=true: install it (scripts/deps.sh)", tool)
				}
				return false, nil
			}
			return true, nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"validsarif": func(ts *testscript.TestScript, neg bool, args []string) {
				validSARIF(ts, neg, root, args)
			},
			"validjunit": func(ts *testscript.TestScript, neg bool, args []string) {
				validJUnit(ts, neg, root, args)
			},
			"cisteps": ciSteps,
			"doccmds": docCmds,
			"jsonkeys": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg {
					ts.Fatalf("unsupported: ! jsonkeys")
				}
				for _, f := range args {
					if err := contract.checkLines([]byte(ts.ReadFile(f))); err != nil {
						ts.Fatalf("%s: %v", f, err)
					}
				}
			},
		},
	})
}

// validSARIF is `validsarif FILE [N]`: FILE validates against OASIS's
// SARIF 2.1.0 schema, and holds N results when N is given.
func validSARIF(ts *testscript.TestScript, neg bool, root string, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: validsarif FILE [RESULTS]")
	}
	log, err := testutil.CheckSARIF(root, []byte(ts.ReadFile(args[0])))
	if err != nil {
		ts.Fatalf("%s: %v", args[0], err)
	}
	if len(args) == 2 {
		results := log["runs"].([]any)[0].(map[string]any)["results"].([]any)
		if fmt.Sprint(len(results)) != args[1] {
			ts.Fatalf("%s: %d results, want %s", args[0], len(results), args[1])
		}
	}
}

// validJUnit is `validjunit FILE [N]`: FILE validates against the Jenkins
// JUnit schema (xmllint: guard the line with [tool:xmllint]), and holds N
// <failure> elements when N is given.
func validJUnit(ts *testscript.TestScript, neg bool, root string, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: validjunit FILE [FAILURES]")
	}
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		ts.Fatalf("xmllint: %v (guard the line with [tool:xmllint])", err)
	}
	path := ts.MkAbs(args[0])
	if err := testutil.CheckJUnit(xmllint, root, path); err != nil {
		ts.Fatalf("%s: %v", args[0], err)
	}
	if len(args) == 2 {
		n := 0
		d := xml.NewDecoder(strings.NewReader(ts.ReadFile(args[0])))
		for {
			tok, err := d.Token()
			if err != nil {
				break
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "failure" {
				n++
			}
		}
		if fmt.Sprint(n) != args[1] {
			ts.Fatalf("%s: %d failures, want %s", args[0], n, args[1])
		}
	}
}

// docCmds is `doccmds PAGE OUT`.
func docCmds(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: doccmds PAGE OUT")
	}
	type cmd struct {
		line int
		text string
		want string
	}
	var cmds []cmd
	lines := strings.Split(ts.ReadFile(args[0]), "\n")
	inBlock := false
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inBlock = !inBlock
			continue
		}
		c, ok := strings.CutPrefix(l, "$ ")
		switch {
		case !inBlock || !ok:
		case c == "echo $?" && len(cmds) > 0 && i+1 < len(lines):
			cmds[len(cmds)-1].want = strings.TrimSpace(lines[i+1])
		case strings.HasPrefix(c, "ftpatch "):
			cmds = append(cmds, cmd{i + 1, c, "0"})
		}
	}
	if len(cmds) == 0 {
		ts.Fatalf("%s: no $ ftpatch command", args[0])
	}
	var b strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&b, "rc=0\n%s >/dev/null 2>&1 || rc=$?\n", c.text)
		fmt.Fprintf(&b, "if [ $rc != %s ]; then echo %q >&2; exit 1; fi\n",
			c.want, fmt.Sprintf("%s:%d: exit $rc, the page says %s: %s", filepath.Base(args[0]), c.line, c.want, c.text))
	}
	fmt.Fprintf(&b, "echo %q\n", fmt.Sprintf("%d commands ran as the page says", len(cmds)))
	if err := writeFile(ts.MkAbs(args[1]), b.String()); err != nil {
		ts.Fatalf("%v", err)
	}
}

// writeFile writes a script's file.
func writeFile(path, data string) error { return os.WriteFile(path, []byte(data), 0o644) }

// lookIn finds name in the folders of a PATH value.
func lookIn(path, name string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return exec.LookPath(name)
}
