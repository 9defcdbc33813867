// SPDX-License-Identifier: Apache-2.0
// Command samebehaviour checks that a refactor changed no behaviour: it runs
// two ftpatch binaries (OLD, NEW) over the same matrix of commands on every
// fixture in testdata/fixtures and the kernel tree in testdata/ktree, and
// compares what each run left behind byte for byte: stdout, stderr, exit
// code and every file written.
//
//	go build -o /tmp/ftpatch-before ./cmd/ftpatch   # on the old commit
//	go build -o /tmp/ftpatch-after ./cmd/ftpatch    # on the new one
//	go run ./scripts/samebehaviour /tmp/ftpatch-before /tmp/ftpatch-after
//
// The matrix: init, enable (--init, --direct, a second enable that
// retargets, --dry-run, --skip-misaligned), disable, verify --against (text
// and --json) between each pair of those, and against copies of the
// fixture with one site word changed where no patch may change it (slot1,
// slot2, the BTI, the 5,3 spare word, the kCFI hash, a byte in a body, a
// state no patch makes), so every problem verify --against can word is
// printed; trampoline with -o, --asm, --classic, --direct-calls and the
// errors of each; and the kernel tree patched into a folder. Each binary
// runs in a folder of its own on the same relative paths, so messages
// naming files compare equal.
//
// It prints one line per difference and a count, and exits 1 when there is
// any (2 on its own errors). -keep leaves the work folder for inspection.
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
)

func main() {
	jobs := flag.Int("j", 2, "fixtures run at once, per binary")
	keep := flag.Bool("keep", false, "keep the work folder")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: go run ./scripts/samebehaviour [-j N] [-keep] OLD NEW  (from the repository's root)")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	n, err := run(flag.Arg(0), flag.Arg(1), *jobs, *keep)
	if err != nil {
		fmt.Fprintln(os.Stderr, "samebehaviour:", err)
		os.Exit(2)
	}
	if n > 0 {
		os.Exit(1)
	}
}

// run sets up both folders, runs the matrix with each binary and compares.
func run(oldBin, newBin string, jobs int, keep bool) (int, error) {
	work, err := os.MkdirTemp("", "samebehaviour-")
	if err != nil {
		return 0, err
	}
	if keep {
		fmt.Println("work folder:", work)
	} else {
		defer os.RemoveAll(work)
	}
	fixtures, err := fixtureNames()
	if err != nil {
		return 0, err
	}
	sides := []struct{ name, bin string }{{"old", oldBin}, {"new", newBin}}
	for _, s := range sides {
		bin, err := filepath.Abs(s.bin)
		if err != nil {
			return 0, err
		}
		dir := filepath.Join(work, s.name)
		if err := setUp(dir, fixtures); err != nil {
			return 0, err
		}
		if err := runMatrix(bin, dir, fixtures, jobs); err != nil {
			return 0, err
		}
	}
	diffs, files, err := compareTrees(filepath.Join(work, "old"), filepath.Join(work, "new"))
	if err != nil {
		return 0, err
	}
	for _, d := range diffs {
		fmt.Println(d)
	}
	fmt.Printf("%d fixtures, %d files compared, %d differences\n", len(fixtures), files, len(diffs))
	return len(diffs), nil
}

// fixtureNames lists testdata/fixtures' ELF files.
func fixtureNames() ([]string, error) {
	var names []string
	for _, pat := range []string{"*.elf", "*.o", "*.ko"} {
		m, err := filepath.Glob(filepath.Join("testdata", "fixtures", pat))
		if err != nil {
			return nil, err
		}
		for _, p := range m {
			names = append(names, filepath.Base(p))
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no fixtures in testdata/fixtures: run from the repository's root")
	}
	sort.Strings(names)
	return names, nil
}

// setUp copies the fixtures (fx/), the kernel tree (ktree/) and the
// tampered copies (tamper/) into dir.
func setUp(dir string, fixtures []string) error {
	for _, sub := range []string{"fx", "tamper", "out", "res"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	for _, name := range fixtures {
		b, err := os.ReadFile(filepath.Join("testdata", "fixtures", name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "fx", name), b, 0o644); err != nil {
			return err
		}
		if err := writeTampered(filepath.Join(dir, "tamper"), name, b); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return os.CopyFS(filepath.Join(dir, "ktree"), os.DirFS(filepath.Join("testdata", "ktree")))
}

// tamper is one change no patch may make, planted at a site's word.
type tamper struct {
	name  string
	pick  func(s *elfscan.Site) bool
	plant func(b []byte, s *elfscan.Site)
}

func put32(b []byte, off int64, w uint32) {
	if off >= 0 && off+4 <= int64(len(b)) {
		binary.LittleEndian.PutUint32(b[off:], w)
	}
}

func readable(s *elfscan.Site) bool {
	return s.Slot1Off() != elfscan.NoOffset && s.Slot2Off() != elfscan.NoOffset && s.Func != ""
}

var tampers = []tamper{
	{"slot1", readable, func(b []byte, s *elfscan.Site) { put32(b, s.Slot1Off(), 0xaa1e03ea) }},   // mov x10, x30
	{"slot2", readable, func(b []byte, s *elfscan.Site) { put32(b, s.Slot2Off(), 0x91000400) }},   // add x0, x0, #1
	{"slot2bl", readable, func(b []byte, s *elfscan.Site) { put32(b, s.Slot2Off(), 0x94000010) }}, // bl .+64, no relocation
	{"nopbl", readable, func(b []byte, s *elfscan.Site) { put32(b, s.Slot2Off(), 0x94000010) }},   // with slot1 NOP: no known state
	{"movb", readable, func(b []byte, s *elfscan.Site) {
		put32(b, s.Slot1Off(), encode.MovX9X30)
		put32(b, s.Slot2Off(), 0x14000010) // b .+64
	}},
	{"body", readable, func(b []byte, s *elfscan.Site) { b[s.Slot2Off()+5] ^= 0x5a }},
	{"bti", func(s *elfscan.Site) bool { return readable(s) && s.BTI }, func(b []byte, s *elfscan.Site) { put32(b, s.Slot1Off()-4, encode.NOP) }},
	{"spare", func(s *elfscan.Site) bool { return readable(s) && s.SpareOff() != elfscan.NoOffset },
		func(b []byte, s *elfscan.Site) { put32(b, s.SpareOff(), 0xd503233f) }}, // paciasp
	{"cfi", func(s *elfscan.Site) bool { return readable(s) && s.CFIHashOff() != elfscan.NoOffset },
		func(b []byte, s *elfscan.Site) { put32(b, s.CFIHashOff(), s.CFIHash()^1) }},
	{"lit", func(s *elfscan.Site) bool { return readable(s) && s.LiteralOff() != elfscan.NoOffset },
		func(b []byte, s *elfscan.Site) { put32(b, s.LiteralOff(), 0x1000) }},
	{"misaligned", func(s *elfscan.Site) bool {
		return readable(s) && s.LiteralOff() != elfscan.NoOffset && s.HasProblem(elfscan.CodeMisalignedLiteral)
	}, func(b []byte, s *elfscan.Site) { put32(b, s.LiteralOff(), 0x1000) }},
}

// writeTampered writes one copy of fixture name (bytes b) per tamper
// whose site exists: name.TAMPER.
func writeTampered(dir, name string, b []byte) error {
	o, err := elfscan.NewObject(bytes.NewReader(b), name)
	if err != nil {
		return err
	}
	defer o.Close()
	f, err := o.Scan()
	if err != nil {
		return err
	}
	for _, t := range tampers {
		for i := range f.Sites {
			s := &f.Sites[i]
			if !t.pick(s) {
				continue
			}
			c := bytes.Clone(b)
			t.plant(c, s)
			if err := os.WriteFile(filepath.Join(dir, name+"."+t.name), c, 0o644); err != nil {
				return err
			}
			break
		}
	}
	return nil
}

// fixtureCommands are run for each fixture N, in order, in the binary's
// folder: {F} is fx/N, {O} is out/N, {T} is tamper/N.
var fixtureCommands = []string{
	"init -o {O}.init {F}",
	"init --skip-misaligned -o {O}.inits {F}",
	"init --dry-run {F}",
	"enable --init --ops ops -o {O}.en {F}",
	"enable --init --ops ops --allow-absolute -o {O}.ena {F}",
	"enable --init --ops ops --allow-absolute --skip-misaligned -o {O}.ensk {F}",
	"enable --init --ops ops --allow-absolute --dry-run {F}",
	"enable --ops ops --allow-absolute --skip-misaligned -o {O}.en2 {O}.inits",
	"enable --ops ftrace_list_ops --trampoline ftrace_stub --allow-absolute --skip-misaligned -o {O}.ret {O}.ensk",
	"enable --init --ops ops --allow-absolute --skip-misaligned --direct ftrace_stub -o {O}.dir {F}",
	"enable --init --ops 0x1000 --trampoline 0x2000 --allow-absolute --skip-misaligned -o {O}.abs {F}",
	"disable -o {O}.dis {O}.ensk",
	"disable -o {O}.dis0 {F}",
	"disable --skip-misaligned -o {O}.disr {O}.ret",
}

// againstPairs are verify --against ORIG FILE runs, each in text, text
// with --allow-init and --json.
var againstPairs = [][2]string{
	{"{F}", "{F}"},
	{"{F}", "{O}.init"},
	{"{F}", "{O}.ena"},
	{"{F}", "{O}.ensk"},
	{"{O}.inits", "{O}.en2"},
	{"{O}.ensk", "{O}.ret"},
	{"{O}.ensk", "{O}.dis"},
	{"{O}.ret", "{O}.disr"},
	{"{F}", "{O}.dir"},
	{"{F}", "{O}.abs"},
	{"{O}.ensk", "{O}.init"},
}

// treeCommands run once, after the fixtures.
var treeCommands = []string{
	"trampoline -o out/tramp.o",
	"trampoline --asm",
	"trampoline --asm -o out/tramp.s",
	"trampoline --name my_caller -o out/tramp-name.o",
	"trampoline --classic --ops ops -o out/tramp-classic.o",
	"trampoline --classic --ops ops --asm",
	"trampoline --direct-calls -o out/tramp-direct.o",
	"trampoline --direct-calls --direct-call-offset 216 -o out/tramp-direct216.o",
	"trampoline --direct-calls --asm",
	"trampoline",
	"trampoline --classic -o out/tramp-noops.o",
	"trampoline --classic --direct-calls --ops ops -o out/tramp-both.o",
	"trampoline --name '' -o out/tramp-noname.o",
	"trampoline --direct-calls --direct-call-offset 3 -o out/tramp-odd.o",
	"init -o out/kt-init ktree",
	"enable --init --ops ftrace_list_ops --allow-absolute -o out/kt-en ktree",
	"enable --init --ops ftrace_list_ops -o out/kt-en-noabs ktree",
	"disable -o out/kt-dis out/kt-en",
	"verify --against ktree/vmlinux out/kt-en/vmlinux",
	"verify --json --against ktree/vmlinux out/kt-en/vmlinux",
	"verify --against ktree/fs/ext/ext.ko out/kt-en/fs/ext/ext.ko",
	"verify --json --against ktree/fs/ext/ext.ko out/kt-en/fs/ext/ext.ko",
	"verify --against ktree/extra/dkms.ko out/kt-en/extra/dkms.ko",
	"verify --against out/kt-en/drivers/drv/drv.ko out/kt-dis/drivers/drv/drv.ko",
}

// commandsFor is the list of command lines for fixture name.
func commandsFor(name string) []string {
	r := strings.NewReplacer("{F}", "fx/"+name, "{O}", "out/"+name, "{T}", "tamper/"+name)
	var out []string
	for _, c := range fixtureCommands {
		out = append(out, r.Replace(c))
	}
	for _, p := range againstPairs {
		for _, flags := range []string{"", "--allow-init ", "--json "} {
			out = append(out, r.Replace("verify "+flags+"--against "+p[0]+" "+p[1]))
		}
	}
	for _, t := range tampers {
		for _, flags := range []string{"", "--json "} {
			out = append(out, r.Replace("verify "+flags+"--against {F} {T}."+t.name))
		}
	}
	return out
}

// runMatrix runs every fixture's commands (jobs fixtures at once), then
// the tree commands, with bin in dir.
func runMatrix(bin, dir string, fixtures []string, jobs int) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(fixtures)+1)
	sem := make(chan struct{}, max(jobs, 1))
	for _, name := range fixtures {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- runAll(bin, dir, name, commandsFor(name))
		}()
	}
	wg.Wait()
	errs <- runAll(bin, dir, "tree", treeCommands)
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// runAll runs cmds in order, each through sh in dir, and records each
// one's command line, stdout, stderr and exit code under res/group/.
func runAll(bin, dir, group string, cmds []string) error {
	res := filepath.Join(dir, "res", group)
	if err := os.MkdirAll(res, 0o755); err != nil {
		return err
	}
	for i, c := range cmds {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command("sh", "-c", `"$FTPATCH" `+c)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "FTPATCH="+bin, "NO_COLOR=1")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		code := 0
		if err := cmd.Run(); err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				return fmt.Errorf("%s: %w", c, err)
			}
			code = ee.ExitCode()
		}
		rec := fmt.Sprintf("$ ftpatch %s\nexit %d\n--- stdout\n%s--- stderr\n%s", c, code, stdout.Bytes(), stderr.Bytes())
		if err := os.WriteFile(filepath.Join(res, fmt.Sprintf("%03d.txt", i)), []byte(rec), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// compareTrees compares every file under a and b, both ways, and returns
// one line per difference and how many files it compared.
func compareTrees(a, b string) ([]string, int, error) {
	list := func(root string) (map[string]bool, error) {
		m := map[string]bool{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			m[rel] = true
			return nil
		})
		return m, err
	}
	am, err := list(a)
	if err != nil {
		return nil, 0, err
	}
	bm, err := list(b)
	if err != nil {
		return nil, 0, err
	}
	var diffs []string
	for rel := range bm {
		if !am[rel] {
			diffs = append(diffs, "only NEW wrote "+rel)
		}
	}
	names := make([]string, 0, len(am))
	for rel := range am {
		names = append(names, rel)
	}
	sort.Strings(names)
	for _, rel := range names {
		if !bm[rel] {
			diffs = append(diffs, "only OLD wrote "+rel)
			continue
		}
		x, err := os.ReadFile(filepath.Join(a, rel))
		if err != nil {
			return nil, 0, err
		}
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil {
			return nil, 0, err
		}
		if x, y = timeless(x), timeless(y); !bytes.Equal(x, y) {
			diffs = append(diffs, "differs: "+rel+firstLine(x, y))
		}
	}
	sort.Strings(diffs)
	return diffs, len(names), nil
}

// Run times differ from run to run: " in 0.048s" in text reports,
// "seconds":0.0327 in JSON lines.
var (
	textTime = regexp.MustCompile(` in [0-9]+\.[0-9]+s\b`)
	jsonTime = regexp.MustCompile(`"seconds":[0-9.e-]+`)
)

// timeless blanks the run times of a record.
func timeless(b []byte) []byte {
	b = textTime.ReplaceAll(b, []byte(" in Ts"))
	return jsonTime.ReplaceAll(b, []byte(`"seconds":T`))
}

// firstLine names the first differing line of two text records.
func firstLine(x, y []byte) string {
	if bytes.IndexByte(x, 0) >= 0 { // a written ELF file: no lines
		return ""
	}
	xl, yl := strings.Split(string(x), "\n"), strings.Split(string(y), "\n")
	for i := range min(len(xl), len(yl)) {
		if xl[i] != yl[i] {
			return fmt.Sprintf("\n    old: %.200s\n    new: %.200s", xl[i], yl[i])
		}
	}
	return ""
}
