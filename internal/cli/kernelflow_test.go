package cli

// The kernel flow end to end, as a kernel CI job runs it: the real ftpatch
// binary over the kernel-like build of scripts/kernel-build.sh (vmlinux
// linked like arm64's relocatable image, a module from ld -r, compressed
// copies of it). Every step asserts its exit code; the JSON outputs are read
// with encoding/json through the contract keys only, so fields added later
// do not break the test.

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// kfBuildFtpatch builds ./cmd/ftpatch into a temporary folder: the flow runs
// the binary a CI job would run, and examples/kernel-ci.sh needs one.
func kfBuildFtpatch(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "ftpatch")
	cmd := exec.Command(gobin, "build", "-o", bin, "./cmd/ftpatch")
	cmd.Dir = testutil.RepoRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ftpatch: %v\n%s", err, b)
	}
	return bin
}

type kfResult struct {
	stdout, stderr string
	code           int
}

// kfRun runs the binary in dir and returns its output and exit code;
// a failure to start it at all fails the test.
func kfRun(t *testing.T, bin, dir string, args ...string) kfResult {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := kfResult{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("ftpatch %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// kfExit runs ftpatch and fails the test unless it exits with want.
func kfExit(t *testing.T, want int, bin, dir string, args ...string) kfResult {
	t.Helper()
	r := kfRun(t, bin, dir, args...)
	if r.code != want {
		t.Fatalf("ftpatch %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// The scan --json contract (issue 2): one object per file per line.
type kfScanFile struct {
	File     string       `json:"file"`
	ELFType  string       `json:"elf_type"`
	Sites    []kfScanSite `json:"sites"`
	Problems int          `json:"problems"`
}

type kfScanSite struct {
	Func           string   `json:"func"`
	Section        string   `json:"section"`
	Entry          string   `json:"entry"`
	CallSite       string   `json:"call_site"`
	Literal        *string  `json:"literal"`
	Layout         string   `json:"layout"`
	BTI            bool     `json:"bti"`
	State          string   `json:"state"`
	Ops            *string  `json:"ops"`
	Target         *string  `json:"target"`
	OpsSym         string   `json:"ops_sym"`
	TargetSym      string   `json:"target_sym"`
	Problems       []string `json:"problems"`
	ProblemDetails []string `json:"problem_details"`
}

// The verify --json summary of one file (issue 4).
type kfVerifyFile struct {
	File     string         `json:"file"`
	Sites    int            `json:"sites"`
	Passed   int            `json:"passed"`
	Failed   int            `json:"failed"`
	ByState  map[string]int `json:"by_state"`
	Failures []struct {
		Func     string `json:"func"`
		Address  string `json:"address"`
		Expected string `json:"expected"`
		Observed string `json:"observed"`
	} `json:"failures"`
}

// The verify --against --json object (issue 4): told apart from the
// per-site summaries by its "orig" key.
type kfAgainstFile struct {
	Orig     string `json:"orig"`
	File     string `json:"file"`
	LiveSafe bool   `json:"live_safe"`
	Changes  []struct {
		Func     string `json:"func"`
		Kind     string `json:"kind"`
		LiveSafe bool   `json:"live_safe"`
	} `json:"changes"`
}

// kfJSONLines decodes every non-empty line of out as one T.
func kfJSONLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var all []T
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("not a JSON object per line: %v\n%s", err, line)
		}
		all = append(all, v)
	}
	return all
}

// kfScan runs scan --json on one file and returns its sites by function.
func kfScan(t *testing.T, bin, dir, file string) map[string]kfScanSite {
	t.Helper()
	files := kfJSONLines[kfScanFile](t, kfExit(t, 0, bin, dir, "scan", "--json", file).stdout)
	if len(files) != 1 {
		t.Fatalf("scan --json %s: %d lines, want 1", file, len(files))
	}
	sites := map[string]kfScanSite{}
	for _, s := range files[0].Sites {
		if _, dup := sites[s.Func]; dup {
			t.Fatalf("%s: two sites for %s", file, s.Func)
		}
		sites[s.Func] = s
	}
	return sites
}

// kfWantStates checks that exactly the functions in enabled are enabled and
// every other site is init.
func kfWantStates(t *testing.T, file string, sites map[string]kfScanSite, enabled []string) {
	t.Helper()
	for fn, s := range sites {
		want := "init"
		if slices.Contains(enabled, fn) {
			want = "enabled"
		}
		if s.State != want {
			t.Errorf("%s: %s is %s, want %s", file, fn, s.State, want)
		}
		// In the linked image the literal and the BL are named by the
		// symbols defined there (not by a linker-script marker).
		if want == "enabled" && s.Ops != nil && strings.HasPrefix(*s.Ops, "0x") && (s.OpsSym != "ops" || s.TargetSym != "ftrace_caller") {
			t.Errorf("%s: %s names ops %q and target %q, want ops and ftrace_caller", file, fn, s.OpsSym, s.TargetSym)
		}
	}
	for _, fn := range enabled {
		if _, ok := sites[fn]; !ok {
			t.Errorf("%s: no site for %s", file, fn)
		}
	}
}

// kfVerifyAll runs verify --json and checks every site of every file passed.
func kfVerifyAll(t *testing.T, bin, dir string, files ...string) []kfVerifyFile {
	t.Helper()
	r := kfExit(t, 0, bin, dir, append([]string{"verify", "--json"}, files...)...)
	got := kfJSONLines[kfVerifyFile](t, r.stdout)
	if len(got) != len(files) {
		t.Fatalf("verify --json %v: %d lines, want %d:\n%s", files, len(got), len(files), r.stdout)
	}
	for _, v := range got {
		if v.Failed != 0 || v.Passed != v.Sites || v.Sites == 0 || len(v.Failures) != 0 {
			t.Errorf("verify %s: %d sites, %d passed, %d failed: %+v", v.File, v.Sites, v.Passed, v.Failed, v.Failures)
		}
	}
	return got
}

// kfLiveSafe runs verify --against --json ORIG FILE, wants exit 0, and returns
// the against object.
func kfLiveSafe(t *testing.T, bin, dir, orig, file string) kfAgainstFile {
	t.Helper()
	r := kfExit(t, 0, bin, dir, "verify", "--json", "--against", orig, file)
	var found []kfAgainstFile
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.Contains(line, `"orig"`) {
			found = append(found, kfJSONLines[kfAgainstFile](t, line)...)
		}
	}
	if len(found) != 1 {
		t.Fatalf("verify --against %s %s: %d against objects, want 1:\n%s", orig, file, len(found), r.stdout)
	}
	a := found[0]
	if !a.LiveSafe || len(a.Changes) == 0 {
		t.Errorf("verify --against %s %s: live_safe %v with %d changes", orig, file, a.LiveSafe, len(a.Changes))
	}
	for _, c := range a.Changes {
		if !c.LiveSafe {
			t.Errorf("verify --against %s %s: %s change in %s not live-safe", orig, file, c.Kind, c.Func)
		}
	}
	return a
}

// String renders a site with its nullable fields dereferenced, for
// comparisons and messages.
func (s kfScanSite) String() string {
	deref := func(p *string) string {
		if p == nil {
			return "null"
		}
		return *p
	}
	return fmt.Sprintf("%s %s entry %s call %s literal %s %s bti=%v %s ops %s target %s problems %q",
		s.Func, s.Section, s.Entry, s.CallSite, deref(s.Literal), s.Layout, s.BTI, s.State, deref(s.Ops), deref(s.Target), s.Problems)
}

func kfRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func kfCopy(t *testing.T, from, to string) {
	t.Helper()
	if err := os.WriteFile(to, kfRead(t, from), 0o644); err != nil {
		t.Fatal(err)
	}
}

func kfSymbol(t *testing.T, file, name string) string {
	t.Helper()
	f, err := elf.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if s.Name == name {
			return "0x" + strconv.FormatUint(s.Value, 16)
		}
	}
	t.Fatalf("%s: no symbol %s", file, name)
	return ""
}

func TestKernelFlow(t *testing.T) {
	bin := kfBuildFtpatch(t)
	build := kernelBuild(t, bin)
	work := t.TempDir()
	in := func(name string) string { return filepath.Join(work, name) }

	subset := strings.Fields(string(kfRead(t, filepath.Join(build, "subset.txt"))))
	misaligned := strings.TrimSpace(string(kfRead(t, filepath.Join(build, "misaligned.txt"))))
	var compressed []string
	for _, ext := range []string{"xz", "zst", "gz"} {
		c := filepath.Join("modules-compressed", "drv.ko."+ext)
		if _, err := os.Stat(filepath.Join(build, c)); err == nil {
			compressed = append(compressed, c)
		} else if testutil.InCI() {
			t.Errorf("kernel-build.sh made no %s in CI", c)
		}
	}

	// scan --check of the whole build folder, relative paths as given.
	t.Run("scan --check finds the misaligned cold functions", func(t *testing.T) {
		r := kfExit(t, 1, bin, build, "scan", "--check", "--json", ".")
		files := kfJSONLines[kfScanFile](t, r.stdout)
		byFile := map[string]kfScanFile{}
		var names []string
		for _, f := range files {
			byFile[f.File] = f
			names = append(names, f.File)
		}
		for _, want := range append([]string{"vmlinux", "modules/drv.ko", "tramp.o", "obj/cold.o", "obj/sched.o"}, compressed...) {
			if _, ok := byFile[want]; !ok {
				t.Errorf("scan of the build folder lists no %s (files: %q)", want, names)
			}
		}
		// Deterministic: the folder's walk order, whatever the parallelism.
		var serial []string
		for _, f := range kfJSONLines[kfScanFile](t, kfExit(t, 1, bin, build, "scan", "--check", "--json", "-j", "1", ".").stdout) {
			serial = append(serial, f.File)
		}
		if !slices.Equal(names, serial) {
			t.Errorf("file order differs with -j 1:\n%q\n%q", names, serial)
		}
		for _, f := range files {
			if strings.HasSuffix(f.File, ".txt") {
				t.Errorf("scan read a non-ELF file: %s", f.File)
			}
		}
		if !strings.Contains(r.stderr, "misaligned-literal") {
			t.Errorf("no closing summary by problem code on stderr:\n%s", r.stderr)
		}

		vm := byFile["vmlinux"]
		if vm.ELFType != "DYN" || vm.Problems != 1 || len(vm.Sites) < len(subset)+1 {
			t.Errorf("vmlinux: elf_type %s, %d sites, %d problems; want DYN, the only problem %s", vm.ELFType, len(vm.Sites), vm.Problems, misaligned)
		}
		for _, s := range vm.Sites {
			bad := len(s.Problems) > 0
			if s.Func == misaligned {
				if !slices.Equal(s.Problems, []string{"misaligned-literal"}) || len(s.ProblemDetails) != 1 {
					t.Fatalf("vmlinux %s: problems %q, want [misaligned-literal] with a detail", s.Func, s.Problems)
				}
				d := s.ProblemDetails[0]
				for _, part := range []string{"not 8-byte aligned", "cold", ".text.unlikely", "-falign-functions=8", "-fmin-function-alignment=8"} {
					if !strings.Contains(d, part) {
						t.Errorf("misaligned-literal detail does not name %q: %s", part, d)
					}
				}
				if s.Literal == nil {
					t.Errorf("%s: literal null", s.Func)
				} else if v, err := strconv.ParseUint(strings.TrimPrefix(*s.Literal, "0x"), 16, 64); err != nil || v%8 != 4 {
					t.Errorf("%s: literal %s, want one at 4 mod 8", s.Func, *s.Literal)
				}
				continue
			}
			if bad || s.State != "nop" || s.Layout != "call-ops" {
				t.Errorf("vmlinux %s: state %s layout %s problems %q; want nop call-ops with none", s.Func, s.State, s.Layout, s.Problems)
			}
		}

		ko := byFile["modules/drv.ko"]
		if ko.ELFType != "REL" || ko.Problems != 1 {
			t.Errorf("drv.ko: elf_type %s, %d problems; want REL, 1 (drv_dump_state)", ko.ELFType, ko.Problems)
		}
		for _, s := range ko.Sites {
			if (s.Func == "drv_dump_state") != slices.Contains(s.Problems, "misaligned-literal") {
				t.Errorf("drv.ko %s: problems %q", s.Func, s.Problems)
			}
		}
		// The compressed copies scan to the very same sites.
		for _, c := range compressed {
			if got := byFile[c]; !slices.EqualFunc(got.Sites, ko.Sites, func(a, b kfScanSite) bool { return a.String() == b.String() }) {
				t.Errorf("%s scans to other sites than modules/drv.ko:\n%v\n%v", c, got.Sites, ko.Sites)
			}
		}

		// Without --json: the same exit status, a human report.
		r = kfExit(t, 1, bin, build, "scan", "--check", ".")
		if !strings.Contains(r.stdout, misaligned) || !strings.Contains(r.stdout, "misaligned-literal") {
			t.Errorf("scan --check table does not show %s misaligned:\n%s", misaligned, r.stdout)
		}
		// Without --check, findings are only reported.
		kfExit(t, 0, bin, build, "scan", "--json", ".")
	})

	// init: the image's literals get 0 (NULL ops: the trampoline returns at
	// once). `init --default-ops SYM` on the ET_DYN image is refused today
	// (absolute address, and init has no --allow-absolute); the module takes
	// --default-ops ftrace_nop_ops through an ABS64 relocation.
	t.Run("init", func(t *testing.T) {
		kfExit(t, 0, bin, build, "init", "-o", in("vmlinux.init"), "vmlinux")
		kfExit(t, 0, bin, build, "init", "--default-ops", "ftrace_nop_ops", "-o", in("drv.init.ko"), "modules/drv.ko")
		kfWantStates(t, "vmlinux.init", kfScan(t, bin, work, "vmlinux.init"), nil)
		for fn, s := range kfScan(t, bin, work, "drv.init.ko") {
			if s.State != "init" || s.Ops == nil || *s.Ops != "ftrace_nop_ops" {
				t.Errorf("drv.init.ko %s: state %s ops %v, want init with ftrace_nop_ops", fn, s.State, s.Ops)
			}
		}
		// Idempotent.
		kfExit(t, 0, bin, work, "init", "-o", in("vmlinux.init2"), "vmlinux.init")
		if !bytes.Equal(kfRead(t, in("vmlinux.init")), kfRead(t, in("vmlinux.init2"))) {
			t.Error("init of an initialised image changed it")
		}
		kfVerifyAll(t, bin, work, "vmlinux.init", "drv.init.ko")
	})

	t.Run("enable everything refuses the misaligned literal", func(t *testing.T) {
		for _, c := range []struct{ file, fn string }{{"vmlinux.init", misaligned}, {"drv.init.ko", "drv_dump_state"}} {
			victim := in("all-" + c.file)
			kfCopy(t, in(c.file), victim)
			before := kfRead(t, victim)
			r := kfExit(t, 2, bin, work, "enable", "--ops", "ops", "--allow-absolute", victim)
			for _, part := range []string{c.fn, "misaligned", "--skip-misaligned"} {
				if !strings.Contains(r.stderr, part) {
					t.Errorf("enable %s: message does not name %q:\n%s", c.file, part, r.stderr)
				}
			}
			if !bytes.Equal(before, kfRead(t, victim)) {
				t.Errorf("enable %s: refused, but the file changed", c.file)
			}

			// --skip-misaligned: reported, left untouched, the rest enabled.
			out := in("all-skip-" + c.file)
			r = kfExit(t, 0, bin, work, "enable", "--ops", "ops", "--allow-absolute", "--skip-misaligned", "-o", out, victim)
			if !strings.Contains(r.stderr, c.fn) || !strings.Contains(r.stderr, "misaligned-literal") {
				t.Errorf("enable --skip-misaligned %s: skip of %s not reported:\n%s", c.file, c.fn, r.stderr)
			}
			sites := kfScan(t, bin, work, out)
			var enabled []string
			for fn := range sites {
				if fn != c.fn {
					enabled = append(enabled, fn)
				}
			}
			kfWantStates(t, out, sites, enabled)
		}
	})

	var koSubset []string // drv_* minus the misaligned drv_dump_state
	t.Run("enable the subset", func(t *testing.T) {
		// --allow-absolute: the image is loaded at its link address here
		// (an ET_DYN file has no dynamic relocation for the literal).
		kfExit(t, 0, bin, work, "enable", "--ops", "ops", "--allow-absolute", "--func", "sched_*", "-o", in("vmlinux.en"), "vmlinux.init")
		sites := kfScan(t, bin, work, "vmlinux.en")
		kfWantStates(t, "vmlinux.en", sites, subset)
		ops, tramp := kfSymbol(t, in("vmlinux.en"), "ops"), kfSymbol(t, in("vmlinux.en"), "ftrace_caller")
		for _, fn := range subset {
			s := sites[fn]
			if s.Ops == nil || *s.Ops != ops || s.Target == nil || *s.Target != tramp {
				t.Errorf("vmlinux.en %s: ops %v target %v, want %s (ops) and %s (ftrace_caller)", fn, s.Ops, s.Target, ops, tramp)
			}
		}

		r := kfExit(t, 0, bin, work, "enable", "--ops", "ops", "--func", "drv_*", "--skip-misaligned", "-o", in("drv.en.ko"), "drv.init.ko")
		if !strings.Contains(r.stderr, "drv_dump_state") {
			t.Errorf("skipped drv_dump_state not reported:\n%s", r.stderr)
		}
		sites = kfScan(t, bin, work, "drv.en.ko")
		for fn := range sites {
			if ok, _ := path.Match("drv_*", fn); ok && fn != "drv_dump_state" {
				koSubset = append(koSubset, fn)
			}
		}
		kfWantStates(t, "drv.en.ko", sites, koSubset)
		for _, fn := range koSubset {
			if s := sites[fn]; s.Ops == nil || *s.Ops != "ops" || s.Target == nil || *s.Target != "ftrace_caller" {
				t.Errorf("drv.en.ko %s: ops %v target %v, want ops and ftrace_caller", fn, s.Ops, s.Target)
			}
		}
	})

	t.Run("verify the enabled files", func(t *testing.T) {
		for _, v := range kfVerifyAll(t, bin, work, "vmlinux.en", "drv.en.ko") {
			want := len(subset)
			if v.File == "drv.en.ko" {
				want = len(koSubset)
			}
			if v.ByState["enabled"] != want {
				t.Errorf("verify %s: %d enabled sites, want %d", v.File, v.ByState["enabled"], want)
			}
		}
	})

	t.Run("verify --against: enable is live-safe", func(t *testing.T) {
		for _, p := range [][2]string{{"vmlinux.init", "vmlinux.en"}, {"drv.init.ko", "drv.en.ko"}} {
			a := kfLiveSafe(t, bin, work, p[0], p[1])
			changed := map[string]bool{}
			for _, c := range a.Changes {
				changed[c.Func] = true
			}
			want := subset
			if p[1] == "drv.en.ko" {
				want = koSubset
			}
			if len(changed) != len(want) {
				t.Errorf("verify --against %s %s: changes in %d functions, want %d (%q)", p[0], p[1], len(changed), len(want), want)
			}
		}
	})

	t.Run("disable, and verify --against again", func(t *testing.T) {
		kfExit(t, 0, bin, work, "disable", "-o", in("vmlinux.dis"), "vmlinux.en")
		if !bytes.Equal(kfRead(t, in("vmlinux.dis")), kfRead(t, in("vmlinux.init"))) {
			t.Error("disable after enable does not give the init image back byte for byte")
		}
		kfExit(t, 0, bin, work, "disable", "--default-ops", "ftrace_nop_ops", "-o", in("drv.dis.ko"), "drv.en.ko")
		init, dis := kfScan(t, bin, work, "drv.init.ko"), kfScan(t, bin, work, "drv.dis.ko")
		for fn, s := range init {
			if s.String() != dis[fn].String() {
				t.Errorf("drv.dis.ko %s: %s, want as after init %s", fn, dis[fn], s)
			}
		}
		kfVerifyAll(t, bin, work, "vmlinux.dis", "drv.dis.ko")
		kfLiveSafe(t, bin, work, "vmlinux.en", "vmlinux.dis")
		kfLiveSafe(t, bin, work, "drv.en.ko", "drv.dis.ko")
	})

	t.Run("patch commands refuse compressed modules", func(t *testing.T) {
		for _, c := range compressed {
			before := kfRead(t, filepath.Join(build, c))
			for _, args := range [][]string{
				{"init", "--default-ops", "ftrace_nop_ops", c},
				{"enable", "--init", "--ops", "ops", c},
				{"disable", c},
				{"init", "-o", in("never.ko"), c},
			} {
				r := kfExit(t, 2, bin, build, args...)
				if !strings.Contains(r.stderr, "compressed") || !strings.Contains(r.stderr, "decompress") || !strings.Contains(r.stderr, c) {
					t.Errorf("ftpatch %s: unclear refusal:\n%s", strings.Join(args, " "), r.stderr)
				}
			}
			if !bytes.Equal(before, kfRead(t, filepath.Join(build, c))) {
				t.Errorf("%s changed", c)
			}
			if _, err := os.Stat(in("never.ko")); err == nil {
				t.Errorf("init -o wrote an output for %s", c)
			}
		}
	})

	t.Run("verify reads the compressed modules", func(t *testing.T) {
		if len(compressed) == 0 {
			if testutil.InCI() {
				t.Fatal("no compressed modules: kernel-build.sh needs xz, zstd and gzip (make deps)")
			}
			t.Skip("no compressed modules (xz, zstd, gzip missing)")
		}
		got := kfVerifyAll(t, bin, build, compressed...)
		for _, v := range got {
			if v.ByState["nop"] != v.Sites {
				t.Errorf("verify %s: by_state %v, want all nop", v.File, v.ByState)
			}
		}
		// And as a folder.
		r := kfExit(t, 0, bin, build, "verify", "--json", "modules-compressed")
		if n := len(kfJSONLines[kfVerifyFile](t, r.stdout)); n != len(compressed) {
			t.Errorf("verify modules-compressed: %d files, want %d", n, len(compressed))
		}
	})
}

// TestKernelCIExample runs examples/kernel-ci.sh, the script docs/kernel-ci.md
// points at, on the kernel-like build, as a CI job would.
func TestKernelCIExample(t *testing.T) {
	bin := kfBuildFtpatch(t)
	build := kernelBuild(t, bin)
	out := t.TempDir()
	script := filepath.Join(testutil.RepoRoot(t), "examples", "kernel-ci.sh")
	cmd := exec.Command("bash", script, build, bin)
	// oom_* takes in the misaligned oom_kill_process: --skip-misaligned
	// leaves it alone and the job says so.
	cmd.Env = append(os.Environ(), "OUT="+out, "FUNCS=sched_* oom_*")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		t.Fatalf("examples/kernel-ci.sh: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	log := stdout.String()
	misaligned := strings.TrimSpace(string(kfRead(t, filepath.Join(build, "misaligned.txt"))))
	for _, want := range []string{
		"scan: findings: misaligned-literal",
		"scan: tolerated: misaligned-literal",
		"skipped: " + misaligned + " (misaligned-literal)",
		"skipped: drv_dump_state (misaligned-literal)",
		"enable vmlinux: ",
		"enable drv.ko: ",
		"verify: ok",
		"live-safe: vmlinux.init -> vmlinux.traced",
		"live-safe: vmlinux.traced -> vmlinux.off",
		"live-safe: drv.ko.init -> drv.ko.traced",
		"live-safe: drv.ko.traced -> drv.ko.off",
		"kernel-ci: OK",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("kernel-ci.sh output lacks %q:\n%s", want, log)
		}
	}
	// The saved JSON report is the scan --json contract, one line per file.
	files := kfJSONLines[kfScanFile](t, string(kfRead(t, filepath.Join(out, "scan.jsonl"))))
	if len(files) == 0 || !slices.ContainsFunc(files, func(f kfScanFile) bool { return strings.HasSuffix(f.File, "vmlinux") }) {
		t.Errorf("scan.jsonl: %d files, none vmlinux", len(files))
	}

	// A problem the script does not tolerate: exit 1 and the code named.
	t.Run("intolerable findings fail the job", func(t *testing.T) {
		cmd := exec.Command("bash", script, build, bin)
		cmd.Env = append(os.Environ(), "OUT="+t.TempDir(), "TOLERATE=none")
		b, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Fatalf("TOLERATE=none: %v, want exit 1\n%s", err, b)
		}
		if !strings.Contains(string(b), "misaligned-literal") {
			t.Errorf("the failing code is not named:\n%s", b)
		}
	})

	// An unreadable input is an error, not a finding: exit 2.
	t.Run("no build folder", func(t *testing.T) {
		cmd := exec.Command("bash", script, filepath.Join(t.TempDir(), "missing"), bin)
		cmd.Env = append(os.Environ(), "OUT="+t.TempDir())
		b, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Fatalf("missing build folder: %v, want exit 2\n%s", err, b)
		}
	})
}
