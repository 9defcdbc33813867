package patch_test

import (
	"runtime"
	"testing"

	"github.com/ftpatch/ftpatch/internal/patch"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// A plan's memory is 16 bytes per site it changes (which slots, the new
// slot words; the old words are the site's, the literal's value is one per
// plan), not a Write, let alone a slice and a string, per word: a plan of a
// 200k-site kernel changes 600k words. Measured as bytes Plan allocates per
// planned word on a fixture, fixed costs (the issue list, symbol lookups)
// included.
func TestPlanBytesPerWrite(t *testing.T) {
	in, err := patch.Open(testutil.Fixtures(t, "gcc-callops-bti-static.elf")[0])
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ops := patch.Value{Sym: "ops"}
	req := patch.Request{Op: patch.OpEnable, InitToo: true, Ops: &ops}
	c, err := patch.Plan(in, req) // warm: the scan and symbols are cached
	if err != nil {
		t.Fatal(err)
	}
	const runs = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		if c, err = patch.Plan(in, req); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	words := c.Words()
	if words < 3*c.Sites || c.Sites == 0 {
		t.Fatalf("plan of %d sites has %d writes, want 3 per site", c.Sites, words)
	}
	per := float64(after.TotalAlloc-before.TotalAlloc) / runs / float64(words)
	t.Logf("%d sites, %d writes: %.0f bytes allocated per write", c.Sites, words, per)
	if per > 16 {
		t.Errorf("Plan allocates %.0f bytes per written word, want <= 16", per)
	}
}
