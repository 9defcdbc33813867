// SPDX-License-Identifier: Apache-2.0

package report

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/testutil/pairtest"
	"github.com/ftpatch/ftpatch/internal/testutil/scantest"
)

// encodingJSON is the oracle: what `scan --json` wrote before the
// hand-written encoder, json.Encoder over Scan(f).
func encodingJSON(t testing.TB, f *elfscan.File, html bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(Scan(f)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// appendScanMode is AppendScan with HTML escaping on or off, so that the
// string escaping is checked against both of encoding/json's modes.
func appendScanMode(f *elfscan.File, html bool) []byte {
	b := appendScanHead(nil, f.Path, f.Type, html)
	b = appendSites(b, f.Sites, 0, f.Type == elf.ET_REL, html)
	return appendScanTail(b, f.Problems(), f.FileProblems(), html)
}

func checkJSON(t *testing.T, name string, f *elfscan.File) {
	t.Helper()
	for _, html := range []bool{false, true} {
		want := encodingJSON(t, f, html)
		if got := appendScanMode(f, html); !bytes.Equal(got, want) {
			t.Fatalf("%s (html %v): hand-written JSON differs from encoding/json at byte %d:\n got %q\nwant %q",
				name, html, firstDiff(got, want), clip(got, firstDiff(got, want)), clip(want, firstDiff(got, want)))
		}
	}
	want := encodingJSON(t, f, false)
	if got := AppendScan(nil, f); !bytes.Equal(got, want) {
		t.Fatalf("%s: AppendScan differs from encoding/json at byte %d", name, firstDiff(got, want))
	}
	var buf bytes.Buffer
	if err := WriteScan(&buf, f); err != nil || !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("%s: WriteScan (err %v) differs from encoding/json at byte %d", name, err, firstDiff(buf.Bytes(), want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func clip(b []byte, at int) []byte { return b[max(0, at-60):min(len(b), at+60)] }

func TestAppendScanFixtures(t *testing.T) {
	for _, p := range testutil.Fixtures(t, "*-*-*.*") {
		if strings.HasSuffix(p, ".md") {
			continue
		}
		f, err := scantest.File(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		checkJSON(t, p, f)
	}
}

// hostile are strings that exercise every branch of the escaping.
var hostile = []string{
	"", "plain", `q"uote`, `back\slash`, "ctl\x00\x01\x1f\x7f", "\b\f\n\r\t", "<script>&amp;</script>",
	"caf\u00e9", "\u2028\u2029", "emoji \U0001F600", "bad\xff\xfeutf8", "trunc\xe2\x80", "\xe2\x80",
	"\xed\xa0\x80 surrogate", "\xf4\x90\x80\x80 too big", "\xc0\xaf overlong", "mix\"\\<\u2028\xff",
}

func randString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return hostile[r.IntN(len(hostile))]
	}
	const alphabet = "ab_.$<>&\"\\\x00\x1f\x7f\xc3\xa9\xe2\x80\xa8\xa9\xff\xf0\x9f\x98\x80"
	b := make([]byte, r.IntN(12))
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// variedSites are the sites of pairtest.Varied's scans (every fixture, in
// patched states, with random words and hostile symbol names), checked to
// hold what the encoders must get right: every state, problems, ops and
// targets with and without symbols (and ET_REL's symbol+addend form, the
// addend negative too), 5,3
// spare words, kCFI hashes, names JSON must escape.
func variedSites(t testing.TB) []elfscan.Site {
	t.Helper()
	var sites []elfscan.Site
	have := map[string]int{}
	for _, f := range pairtest.Varied(t) {
		for _, s := range f.Sites {
			have["state "+s.State.String()]++
			have["layout "+s.Layout.String()]++
			if len(s.Problems()) > 0 {
				have["problems"]++
			}
			for _, r := range []*elfscan.Ref{s.Ops(), s.Target()} {
				switch {
				case r == nil:
				case r.Sym == "":
					have["ref without symbol"]++
				case f.Type == elf.ET_REL:
					have["object ref"]++
					if int64(r.Addr) < 0 {
						have["negative addend"]++
					}
				default:
					have["ref with symbol"]++
				}
				if q, _ := json.Marshal(r); r != nil && !strings.Contains(string(q), r.Sym) {
					have["escaped symbol"]++
				}
			}
			if s.Layout == elfscan.LayoutCallOps53 && s.SpareWord() != encode.NOP {
				have["odd spare word"]++
			}
			if s.CFIHashOff() != elfscan.NoOffset {
				have["kcfi hash"]++
			}
			sites = append(sites, s)
		}
	}
	for _, want := range []string{"state nop", "state init", "state enabled", "state unknown", "layout classic", "layout call-ops",
		"layout call-ops-5-3", "problems", "ref without symbol", "ref with symbol", "object ref", "negative addend", "escaped symbol", "odd spare word", "kcfi hash"} {
		if have[want] == 0 {
			t.Fatalf("no site of pairtest.Varied's scans has %s (%v): the encoders would go untested on it", want, have)
		}
	}
	return sites
}

// Every varied scan whole, then random picks of their sites with random
// names (and invalid layouts and states), in every ELF type, against
// encoding/json.
func TestAppendScanRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, f := range pairtest.Varied(t) {
		checkJSON(t, f.Path, f)
	}
	pool := variedSites(t)
	layouts := []elfscan.Layout{elfscan.LayoutCallOps, elfscan.LayoutCallOps53, elfscan.LayoutClassic, elfscan.Layout(200)}
	states := []elfscan.State{elfscan.StateNop, elfscan.StateInit, elfscan.StateEnabled, elfscan.StateUnknown, elfscan.State(0xff)}
	for iter := range 300 {
		f := &elfscan.File{Path: randString(r), Type: []elf.Type{elf.ET_REL, elf.ET_EXEC, elf.ET_DYN, elf.ET_CORE}[iter%4]}
		n := r.IntN(6)
		if iter%50 == 0 {
			n = 2*scanChunk + r.IntN(scanChunk) // WriteScan's chunked path
		}
		for range n {
			s := pool[r.IntN(len(pool))]
			if r.IntN(2) == 0 {
				s.Func, s.Section = randString(r), randString(r)
			}
			if r.IntN(4) == 0 {
				s.Layout, s.State = layouts[r.IntN(len(layouts))], states[r.IntN(len(states))]
			}
			if r.IntN(4) == 0 {
				s.Record, s.BTI = r.Uint64()>>r.IntN(64), r.IntN(2) == 0
			}
			f.Sites = append(f.Sites, s)
		}
		checkJSON(t, "random", f)
	}
}

// Every string, as a site's names and a file path, against encoding/json,
// over the varied sites (picked by the fuzzed number).
func FuzzAppendScan(f *testing.F) {
	for _, s := range hostile {
		f.Add(s, int64(-8))
	}
	pool := variedSites(f)
	f.Fuzz(func(t *testing.T, s string, pick int64) {
		for _, typ := range []elf.Type{elf.ET_REL, elf.ET_DYN} {
			site := pool[uint64(pick)%uint64(len(pool))]
			site.Func, site.Section, site.State = s, s, elfscan.State(len(s))
			file := &elfscan.File{Path: s, Type: typ, Sites: []elfscan.Site{site}}
			checkJSON(t, "fuzz", file)
			pick = pick*31 + 7
		}
	})
}

// streamScan scans the file read from r and streams its --json line to w
// with chunks of about chunk sites, as cli's scan --json of one file does.
func streamScan(r io.ReaderAt, path string, w io.Writer, chunk int) (sites, problems int, err error) {
	o, err := elfscan.NewObject(r, path)
	if err != nil {
		return 0, 0, err
	}
	e := newScanStream(w, chunk)
	sites, err = elfscan.ScanChunks(o, e.Chunk(), e.Encode, e.Write)
	if err != nil {
		return 0, 0, err
	}
	problems, err = e.End()
	return sites, problems, err
}

// TestScanStream checks the streaming ScanStream against Scan then
// WriteScan over every fixture (and the bench image when
// FTPATCH_BENCH_FILE names one), with chunks small enough that each file
// is cut into many, so the cuts and per-chunk sorts are exercised.
func TestScanStream(t *testing.T) {
	var paths []string
	for _, p := range testutil.Fixtures(t, "*-*-*.*") {
		if !strings.HasSuffix(p, ".md") {
			paths = append(paths, p)
		}
	}
	if big := os.Getenv("FTPATCH_BENCH_FILE"); big != "" {
		paths = append(paths, big)
	}
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, scanErr := scantest.Bytes(raw, path)
		var want bytes.Buffer
		if scanErr == nil {
			if err := WriteScan(&want, f); err != nil {
				t.Fatal(err)
			}
		}
		for _, chunk := range []int{1, 3, 64, scanChunk} {
			var got bytes.Buffer
			sites, problems, err := streamScan(bytes.NewReader(raw), path, &got, chunk)
			switch {
			case scanErr != nil:
				if err == nil || got.Len() != 0 || err.Error() != scanErr.Error() {
					t.Errorf("%s chunk %d: Scan fails (%v); ScanStream: err %v after %d bytes", path, chunk, scanErr, err, got.Len())
				}
			case err != nil:
				t.Errorf("%s chunk %d: %v", path, chunk, err)
			case !bytes.Equal(got.Bytes(), want.Bytes()):
				t.Errorf("%s chunk %d: ScanStream differs from WriteScan at byte %d", path, chunk, firstDiff(got.Bytes(), want.Bytes()))
			case sites != len(f.Sites) || problems != f.Problems():
				t.Errorf("%s chunk %d: %d sites, %d problems; want %d, %d", path, chunk, sites, problems, len(f.Sites), f.Problems())
			}
		}
	}
}

// failWriter accepts limit bytes, then fails every write.
type failWriter struct {
	limit, n  int
	failed    bool
	afterFail int // writes attempted after the first failure
}

var errWriteFailed = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if w.failed {
		w.afterFail++
	}
	if w.n+len(p) > w.limit {
		w.failed = true
		return 0, errWriteFailed
	}
	w.n += len(p)
	return len(p), nil
}

// A failed write ends WriteScan's chunked path with that error, at once:
// no chunk is written after it.
func TestWriteScanWriteError(t *testing.T) {
	f := &elfscan.File{Path: "big", Type: elf.ET_DYN}
	for i := range 8 * scanChunk {
		f.Sites = append(f.Sites, elfscan.Site{Func: "f", Section: ".text", Record: uint64(8 * i), Layout: elfscan.LayoutCallOps, State: elfscan.StateNop})
	}
	whole := AppendScan(nil, f)
	for _, limit := range []int{0, 1, len(whole) / 2, len(whole) - 1} {
		w := &failWriter{limit: limit}
		err := WriteScan(w, f)
		if !errors.Is(err, errWriteFailed) {
			t.Errorf("limit %d: WriteScan = %v, want the writer's error", limit, err)
		}
		if !w.failed || w.afterFail != 0 {
			t.Errorf("limit %d: %d writes after the failed one", limit, w.afterFail)
		}
	}
	w := &failWriter{limit: len(whole)}
	if err := WriteScan(w, f); err != nil || w.n != len(whole) {
		t.Errorf("WriteScan with room = %v after %d of %d bytes", err, w.n, len(whole))
	}
}
