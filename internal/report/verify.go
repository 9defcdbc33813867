// SPDX-License-Identifier: Apache-2.0

package report

// verify: one file's run on the emulator (verify.Report) as its JSON line
// and as text.

import (
	"fmt"
	"io"
	"strings"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/render"
	"github.com/ftpatch/ftpatch/internal/verify"
)

// VerifyFile is the `verify --json` line for one file (docs/json.md, object
// verify).
type VerifyFile struct {
	File     string          `json:"file"`
	ELFType  string          `json:"elf_type"`
	Sites    int             `json:"sites"`
	Passed   int             `json:"passed"`
	Failed   int             `json:"failed"`
	ByState  map[string]int  `json:"by_state"`
	Seconds  float64         `json:"seconds"`
	Failures []VerifyFailure `json:"failures"` // never null
	Skipped  int             `json:"skipped"`  // no-function sites, not run (last: earlier keys keep their order)
}

// VerifyFailure is one site that did not behave (object failure).
type VerifyFailure struct {
	Func     string   `json:"func"`
	Address  string   `json:"address"`
	State    string   `json:"state"`
	Expected string   `json:"expected"`
	Observed string   `json:"observed"`
	Disasm   []string `json:"disasm"`
}

// Verify is r's --json object.
func Verify(r *verify.Report) VerifyFile {
	j := VerifyFile{File: r.File, ELFType: ELFType(r.ELFType), Sites: r.Sites, Skipped: r.Skipped, Passed: r.Passed, Failed: r.Failed,
		ByState: map[string]int{}, Seconds: r.Elapsed.Seconds(), Failures: []VerifyFailure{}}
	for st, n := range r.ByState {
		j.ByState[st.String()] = n
	}
	for _, f := range r.Failures {
		j.Failures = append(j.Failures, VerifyFailure{Func: f.Func, Address: render.Hex(f.Address).String(), State: f.State.String(),
			Expected: f.Expected, Observed: f.Observed, Disasm: wordsText(f.Words)})
	}
	return j
}

// siteStates is the order states are counted in, in text.
var siteStates = []elfscan.State{elfscan.StateNop, elfscan.StateInit, elfscan.StateEnabled, elfscan.StateUnknown}

// VerifyText writes r for people: a verdict line, then each failure with
// what was expected, what was observed and the site's words.
func VerifyText(w io.Writer, r *verify.Report) error {
	var states []string
	for _, st := range siteStates {
		if n := r.ByState[st]; n > 0 {
			states = append(states, fmt.Sprintf("%s %d", st, n))
		}
	}
	if len(states) == 0 {
		states = []string{"no sites"}
	}
	verdict := "ok"
	if r.Failed > 0 {
		verdict = "FAIL"
	}
	skipped := ""
	if r.Skipped > 0 {
		skipped = fmt.Sprintf("; %d skipped (no-function)", r.Skipped)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s: %s, %s checked: %d passed, %d failed (%s) in %.3fs%s\n",
		verdict, r.File, ELFType(r.ELFType), render.Count(r.Sites, "site"), r.Passed, r.Failed, strings.Join(states, ", "), r.Elapsed.Seconds(), skipped)
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "  %s at %s (%s)\n    expected: %s\n    observed: %s\n", f.Func, render.Hex(f.Address), f.State, f.Expected, f.Observed)
		for _, w := range f.Words {
			fmt.Fprintf(&b, "      %s\n", wordText(w))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// wordsText is each of ws as wordText says it; nil for none.
func wordsText(ws []encode.Placed) []string {
	var out []string
	for _, w := range ws {
		out = append(out, wordText(w))
	}
	return out
}

// wordText says a word of a site, "address: word  assembly" in GNU
// syntax: a literal as .quad, a 5,3 site's spare word marked so.
func wordText(w encode.Placed) string {
	switch w.Kind {
	case encode.PlacedLiteral:
		return fmt.Sprintf("%#x: %016x  .quad %#x", w.Addr, w.Bits, w.Bits)
	case encode.PlacedUnmapped:
		return fmt.Sprintf("%#x: unmapped", w.Addr)
	case encode.PlacedSpare:
		return fmt.Sprintf("%#x: %08x  %s (spare)", w.Addr, w.Bits, encode.Disasm(uint32(w.Bits), w.Addr))
	}
	return fmt.Sprintf("%#x: %08x  %s", w.Addr, w.Bits, encode.Disasm(uint32(w.Bits), w.Addr))
}
