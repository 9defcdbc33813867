// SPDX-License-Identifier: Apache-2.0

package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fzipp/gocyclo"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// The house rules a reviewer would otherwise check by hand (README: "How
// to change ftpatch"): the layers, and the size of a function.

const module = "github.com/ftpatch/ftpatch/"

// layers is the README's package table, top to bottom: a package may
// import only packages of lower layers. A package not in the table fails
// the test, so the table stays complete.
var layers = [][]string{
	{"cmd/ftpatch", "internal/tools/genman", "scripts/floorplan", "scripts/samebehaviour"}, // programs
	{"internal/cli"},
	{"internal/report"},
	{"internal/verify"},
	{"internal/livesafe", "internal/patch", "internal/testutil/pairtest"},
	{"internal/elfwrite", "internal/testutil/scantest"},
	{"internal/elfscan"},
	{"internal/input", "internal/safefile", "internal/ktree", "internal/sitediff", "internal/verify/uc"},
	{"internal/encode", "internal/pool", "internal/render", "internal/dl", "internal/testutil"},
}

// Limits on every non-test function: gocyclo's cyclomatic complexity, and
// lines from func to the closing brace.
const (
	maxComplexity = 20
	maxLines      = 80
)

// goPackages parses the non-test Go files of the repository (testdata,
// build output and hidden folders left out), by package folder.
func goPackages(t *testing.T, root string) (map[string][]*ast.File, *token.FileSet) {
	t.Helper()
	fset := token.NewFileSet()
	pkgs := map[string][]*ast.File{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "build" || name == "bin" || name == "linux" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkgs[filepath.ToSlash(rel)] = append(pkgs[filepath.ToSlash(rel)], f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("only %d packages found under %s", len(pkgs), root)
	}
	return pkgs, fset
}

// layerOf is the index of pkg's layer in layers, -1 when it has none.
func layerOf(pkg string) int {
	return slices.IndexFunc(layers, func(l []string) bool { return slices.Contains(l, pkg) })
}

// Every package is in the table, and imports only packages of lower layers.
func TestLayers(t *testing.T) {
	pkgs, _ := goPackages(t, testutil.RepoRoot(t))
	checked := 0
	for pkg, files := range pkgs {
		mine := layerOf(pkg)
		if mine < 0 {
			t.Errorf("package %s is not in the layer table (cmd/ftpatch/house_test.go and the README's package table): add it where its imports put it", pkg)
			continue
		}
		for _, f := range files {
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				dep, ok := strings.CutPrefix(path, module)
				if !ok {
					continue
				}
				checked++
				if theirs := layerOf(dep); theirs <= mine {
					t.Errorf("%s imports %s, which is in layer %d, not below its own (%d): the README's package table says what may import what", pkg, dep, theirs+1, mine+1)
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d imports of the module's own packages checked", checked)
	}
}

// No non-test function above gocyclo's limit or maxLines long.
func TestFunctionSize(t *testing.T) {
	pkgs, fset := goPackages(t, testutil.RepoRoot(t))
	var stats gocyclo.Stats
	funcs := 0
	for _, files := range pkgs {
		for _, f := range files {
			stats = gocyclo.AnalyzeASTFile(f, fset, stats)
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				funcs++
				if n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1; n > maxLines {
					t.Errorf("%s: %s is %d lines, more than %d: split it into named steps", fset.Position(fd.Pos()), fd.Name.Name, n, maxLines)
				}
			}
		}
	}
	if funcs < 500 {
		t.Fatalf("only %d functions found", funcs)
	}
	for _, s := range stats.SortAndFilter(-1, maxComplexity) {
		t.Errorf("%s: %s.%s has cyclomatic complexity %d, more than %d: split it into named steps", s.Pos, s.PkgName, s.FuncName, s.Complexity, maxComplexity)
	}
}

// The limits bite: a function over both is found.
func TestFunctionSizeFinds(t *testing.T) {
	var b strings.Builder
	b.WriteString("package p\nfunc big(x int) int {\n")
	for i := range maxLines + 1 {
		b.WriteString("\tif x == " + strconv.Itoa(i) + " {\n\t\treturn 1\n\t}\n")
	}
	b.WriteString("\treturn 0\n}\n")
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", b.String(), 0)
	if err != nil {
		t.Fatal(err)
	}
	over := gocyclo.AnalyzeASTFile(f, fset, nil).SortAndFilter(-1, maxComplexity)
	if len(over) != 1 || over[0].FuncName != "big" || over[0].Complexity != maxLines+2 {
		t.Fatalf("gocyclo found %v, want big at %d", over, maxLines+2)
	}
}
