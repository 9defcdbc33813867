// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package verify

import (
	"bytes"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// FuzzLoad lays mutated files out for the emulator (LoadObject) and, when
// they have few sites, runs them (Check): an error comes with no image or
// report, a report adds up, and nothing panics. Seeded from every fixture.
func FuzzLoad(f *testing.F) {
	testutil.AddFixtures(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := elfscan.NewObject(bytes.NewReader(b), "fuzz")
		if err != nil {
			return
		}
		sf, err := o.Scan()
		if err != nil {
			return
		}
		opts := Options{Jobs: 1, MaxInsns: 2000}
		img, err := LoadObject(o, opts)
		if err != nil {
			if img != nil {
				t.Fatalf("LoadObject: error %v with an image", err)
			}
			return
		}
		defer img.Close()
		if img.Sites() != len(sf.Sites) {
			t.Fatalf("image has %d sites, scan %d", img.Sites(), len(sf.Sites))
		}
		if img.Sites() > 64 {
			return // running is bounded by sites; the loader is what is fuzzed
		}
		rep, err := Check(img, opts)
		if err != nil {
			if rep != nil {
				t.Fatalf("Check: error %v with a report", err)
			}
			return
		}
		// Sites outside any function are skipped, as Linux disables them.
		if rep.Sites+rep.Skipped != img.Sites() || rep.Passed+rep.Failed != rep.Sites || len(rep.Failures) != rep.Failed {
			t.Fatalf("report does not add up: %d of %d sites checked (%d skipped), %d passed, %d failed, %d failures",
				rep.Sites, img.Sites(), rep.Skipped, rep.Passed, rep.Failed, len(rep.Failures))
		}
		for _, fl := range rep.Failures {
			if fl.Func == "" || fl.Expected == "" {
				t.Fatalf("failure without function or expectation: %+v", fl)
			}
		}
	})
}
