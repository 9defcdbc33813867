package cli

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/livesafe/pairtest"
	"github.com/ftpatch/ftpatch/internal/verify"
)

func verifyIO() (*IO, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &IO{In: strings.NewReader(""), Out: &out, Err: &errb}, &out, &errb
}

func TestVerifyFlags(t *testing.T) {
	io, _, _ := verifyIO()
	cmd := newVerifyCmd(io)
	if err := cmd.ParseFlags([]string{"--json", "--trampoline", "0x1000", "--run-file-trampoline", "-j", "3", "--seed", "9", "--against", "orig"}); err != nil {
		t.Fatal(err)
	}
	f := cmd.Flags()
	for name, want := range map[string]string{"json": "true", "trampoline": "0x1000", "run-file-trampoline": "true", "jobs": "3", "seed": "9", "against": "orig"} {
		if got := f.Lookup(name).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
	cmd = newVerifyCmd(io)
	cmd.ParseFlags(nil)
	if got := cmd.Flags().Lookup("trampoline").Value.String(); got != "ftrace_caller" {
		t.Errorf("default --trampoline = %q", got)
	}
}

func TestVerifyInputErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("not an ELF file"), 0o644)
	for _, tc := range []struct {
		name string
		opts VerifyOptions
		want string
	}{
		{"not-elf", VerifyOptions{Files: []string{junk}, Jobs: 1}, "file " + junk},
		{"missing", VerifyOptions{Files: []string{filepath.Join(dir, "nope")}, Jobs: 1}, "nope"},
		{"bad-jobs", VerifyOptions{Files: []string{junk}, Jobs: 0}, "-j"},
		{"against-two-files", VerifyOptions{Files: []string{junk, junk}, Jobs: 1, Against: junk}, "--against"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			io, _, _ := verifyIO()
			err := runVerify(&tc.opts, io)
			if exitCode(err) != ExitInput || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v (exit %d), want exit 2 mentioning %q", err, exitCode(err), tc.want)
			}
		})
	}
	io, out, _ := verifyIO()
	runVerify(&VerifyOptions{Files: []string{junk}, Jobs: 1, JSON: true}, io)
	var j verifyJSON
	if err := json.Unmarshal(out.Bytes(), &j); err != nil || j.File != junk || j.Error == "" {
		t.Errorf("JSON line %q: %+v, %v", out, j, err)
	}
}

func sampleReport() *verify.Report {
	return &verify.Report{
		File: "vmlinux", ELFType: elf.ET_DYN, Sites: 3, Passed: 2, Failed: 1,
		ByState: map[elfscan.State]int{elfscan.StateNop: 1, elfscan.StateEnabled: 2},
		Elapsed: 1500 * time.Millisecond,
		Failures: []verify.Failure{{Func: "f3", Address: 0x401068, State: elfscan.StateEnabled,
			Expected: "one call of op->func", Observed: "X19 = 0x0 (was 0x1)",
			Disasm: []string{"0x401068: d503245f  bti c", "0x40106c: aa1e03e9  mov x9, x30"}}},
	}
}

func TestVerifyTextReport(t *testing.T) {
	var b bytes.Buffer
	printVerifyText(&b, sampleReport())
	want := `FAIL: vmlinux: DYN, 3 sites checked: 2 passed, 1 failed (nop 1, enabled 2) in 1.500s
  f3 at 0x401068 (enabled)
    expected: one call of op->func
    observed: X19 = 0x0 (was 0x1)
      0x401068: d503245f  bti c
      0x40106c: aa1e03e9  mov x9, x30
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestVerifyJSONReport(t *testing.T) {
	var b bytes.Buffer
	writeJSONLine(&b, toVerifyJSON(sampleReport()))
	if strings.Count(b.String(), "\n") != 1 {
		t.Fatalf("not one line: %q", b.String())
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"file", "elf_type", "sites", "passed", "failed", "by_state", "seconds", "failures"} {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing from %s", k, b.String())
		}
	}
	f := m["failures"].([]any)[0].(map[string]any)
	if f["func"] != "f3" || f["address"] != "0x401068" || f["state"] != "enabled" || len(f["disasm"].([]any)) != 2 {
		t.Errorf("failure %v", f)
	}
}

// TestVerifyELF runs the command end to end on a small program built with
// 4,2 (nop state): exit 0 and a passing summary.
func TestVerifyELF(t *testing.T) {
	gcc := testutil.NeedTool(t, "aarch64-linux-gnu-gcc")
	dir := t.TempDir()
	src := filepath.Join(dir, "p.c")
	os.WriteFile(src, []byte("int g; int f1(int a){return a+g;} int f2(int a){return f1(a)*2;} int _start(void){return f2(1);}\n"), 0o644)
	exe := filepath.Join(dir, "p")
	if out, err := exec.Command(gcc, "-O2", "-fpatchable-function-entry=4,2", "-nostdlib", "-static", "-o", exe, src).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	io, out, _ := verifyIO()
	err := runVerify(&VerifyOptions{Files: []string{exe}, Jobs: 2, JSON: true, Trampoline: "ftrace_caller"}, io)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var j verifyJSON
	if err := json.Unmarshal(out.Bytes(), &j); err != nil || j.Sites < 3 || j.Failed != 0 || j.ByState["nop"] != j.Sites {
		t.Fatalf("%s: %+v %v", out, j, err)
	}
	if errors.Is(err, ErrFindings) {
		t.Fatal("findings on a clean file")
	}
}

// TestVerifyAgainstCompressed: ORIG and FILE may be compressed, as for
// every other command (it once failed with "bad magic number"). A pair of
// init -> enabled, each compressed with the real tool, gives the same
// report as the plain pair.
func TestVerifyAgainstCompressed(t *testing.T) {
	src := testutil.Fixtures(t, "gcc-callops-static.elf")[0]
	dir := t.TempDir()
	init := pairtest.Linked(t, src, "init.elf", elfscan.StateInit, 0, testutil.SymbolAddr(t, src, "ftrace_caller"))
	enabled := pairtest.Linked(t, src, "enabled.elf", elfscan.StateEnabled, testutil.SymbolAddr(t, src, "ops"), testutil.SymbolAddr(t, src, "ftrace_caller"))
	run := func(orig, file string) map[string]any {
		t.Helper()
		io, out, _ := verifyIO()
		if err := runVerify(&VerifyOptions{Files: []string{file}, Against: orig, JSON: true, Jobs: 2, Seed: 1}, io); err != nil {
			t.Fatalf("verify --against %s %s: %v\n%s", orig, file, err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatal(err)
			}
			if _, ok := m["orig"]; ok {
				return m
			}
		}
		t.Fatalf("no --against report in\n%s", out)
		return nil
	}
	plain := run(init, enabled)
	if plain["live_safe"] != true || plain["counts"].(map[string]any)["sites_changed"].(float64) == 0 {
		t.Fatalf("plain pair: %v", plain)
	}
	for _, tool := range []string{"xz", "zstd"} {
		t.Run(tool, func(t *testing.T) {
			bin := testutil.NeedTool(t, tool)
			comp := func(p string) string {
				dst := filepath.Join(dir, filepath.Base(p)+"."+tool)
				b, err := exec.Command(bin, "-c", p).Output()
				if err != nil {
					t.Fatalf("%s -c %s: %v", tool, p, err)
				}
				if err := os.WriteFile(dst, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return dst
			}
			got := run(comp(init), comp(enabled))
			if !reflect.DeepEqual(got["counts"], plain["counts"]) || got["live_safe"] != true {
				t.Fatalf("compressed pair: %v\nplain pair: %v", got["counts"], plain["counts"])
			}
		})
	}
}
