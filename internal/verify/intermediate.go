// SPDX-License-Identifier: Apache-2.0

package verify

// This file runs the intermediate state of each two-write site change on
// the emulator: `ftpatch verify --against ORIG FILE` shows statically that
// every difference is an allowed write (package livesafe); here each site
// whose literal and slot2 both change is run as it is between the two
// writes (livesafe.IntermediateOf) and must behave as the state it stands for — the old
// one for enable (literal first, ftrace_make_call), the new one for disable
// (BL removed first).
//
// The run uses ORIG's image: each intermediate is ORIG's words at the site
// with the first write applied. Sites are overlaid one at a time, each in
// the running engine's own copy of the regions holding sites (newEngineCOW),
// so no other site's run, and no other engine, ever sees the overlay; the
// image's shared bytes are written only before any engine exists, to check
// the overlaid site statically (checkStatic), and restored at once.
// Unicorn does not see writes made through the host pointer of a mapping,
// so the site's range leaves the translation cache before the run and again
// after the restore.

import (
	"encoding/binary"
	"fmt"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/livesafe"
)

// cowBudget bounds the bytes of private region copies all intermediate
// engines hold together: fewer workers rather than more memory.
const cowBudget = 1 << 30

// ovWrite is one write of an overlay: bytes at an emulated address.
type ovWrite struct {
	addr uint64
	b    []byte
}

// interJob is one intermediate state to run.
type interJob struct {
	check  int  // index in livesafe.Report.Intermediates
	s      site // ORIG's site, with the state it must behave as
	ov     []ovWrite
	lo, hi uint64          // the site's range, for the translation cache
	words  []encode.Placed // the overlaid words, for failures
	fail   *Failure
}

// RunIntermediates runs the intermediate state of every site r lists in
// Intermediates on Unicorn's CPU, as Check runs sites, and records in each
// (livesafe.Report.RecordRun) whether it behaved as the old state (enable)
// or the new one (disable). A state that does not is a problem of r naming
// the function, so r.Failed() reports it. orig is the ORIG that
// livesafe.Compare made r from (its sites are those r's Intermediates
// index); opts are those of the verify run (trampoline, workers, seed,
// limits). Errors are for unreadable input.
func RunIntermediates(r *livesafe.Report, orig *elfscan.Object, opts Options) error {
	if len(r.Intermediates) == 0 {
		return nil
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	for k := range r.Intermediates {
		r.Intermediates[k].RunWanted = true
	}
	osf, err := orig.Scan()
	if err != nil {
		return fmt.Errorf("file %s: %w", orig.Path, err)
	}
	opts.allRelocs = true // the overlays replace relocated words
	img, err := LoadObject(orig, opts)
	if err != nil {
		return inFile(orig.Path, err)
	}
	defer img.Close()
	jobs, cowAt, err := img.interJobs(r, firstEnabledClassic(osf.Sites), opts)
	if err != nil {
		return fmt.Errorf("file %s: %w", orig.Path, err)
	}
	if err := img.runInterJobs(jobs, cowAt, opts); err != nil {
		return fmt.Errorf("file %s: %w", orig.Path, err)
	}
	if err := img.recordInterJobs(r, jobs); err != nil {
		return fmt.Errorf("file %s: %w", orig.Path, err)
	}
	return nil
}

// firstEnabledClassic reports whether the first enabled site is classic:
// the file's trampoline is then a classic one (checkStatic).
func firstEnabledClassic(sites []elfscan.Site) bool {
	for i := range sites {
		if sites[i].State == elfscan.StateEnabled {
			return sites[i].Layout == elfscan.LayoutClassic
		}
	}
	return false
}

// interJobs builds each job: overlay, static check, the words, all on
// the image's bytes while no engine exists, restored after each; cowAt
// are the regions the overlays write.
func (img *Image) interJobs(r *livesafe.Report, classic bool, opts Options) (jobs []*interJob, cowAt map[*region]bool, err error) {
	cowAt = map[*region]bool{}
	for k := range r.Intermediates {
		ic := &r.Intermediates[k]
		if ic.Site < 0 || ic.Site >= len(img.sites) {
			return nil, nil, fmt.Errorf("intermediate %d names site %d of %d: the report is not from this file", k, ic.Site, len(img.sites))
		}
		j := img.interJob(k, ic)
		saved := img.overlay(j, cowAt)
		if j.fail == nil {
			img.checkStatic(&j.s, classic, opts)
			j.fail = j.s.static
		}
		j.words = img.siteWords(&j.s)
		for n, w := range j.ov {
			if saved[n] != nil {
				copy(img.bytes(w.addr, uint64(len(w.b))), saved[n])
			}
		}
		jobs = append(jobs, j)
	}
	return jobs, cowAt, nil
}

// interJob is the job of intermediate k: ORIG's site in the state it must
// behave as, and the overlay of the first write.
func (img *Image) interJob(k int, ic *livesafe.Intermediate) *interJob {
	base := &img.sites[ic.Site]
	st := *base.Site
	st.State = ic.State
	j := &interJob{check: k, s: *base}
	j.s.Site, j.s.static, j.s.op, j.s.direct = &st, nil, 0, 0
	j.lo, j.hi = j.s.entry(), j.s.callSite()+8
	if ic.Order != livesafe.OrderLiteralFirst {
		j.ov = append(j.ov,
			ovWrite{j.s.callSite() - 4, binary.LittleEndian.AppendUint32(nil, ic.Words.Slot1)},
			ovWrite{j.s.callSite(), binary.LittleEndian.AppendUint32(nil, ic.Words.Slot2)})
		return j
	}
	if j.s.literal() != 0 {
		v := ic.Words.Literal
		if img.rel != nil {
			v = img.relLiteral(ic.Words)
		}
		j.ov = append(j.ov, ovWrite{j.s.literal(), binary.LittleEndian.AppendUint64(nil, v)})
		j.lo = min(j.lo, j.s.literal())
	}
	return j
}

// overlay writes j's overlay into the image's bytes and returns what it
// replaced (nil for a write not made), marking the regions written in
// cowAt; an unmapped write fails j.
func (img *Image) overlay(j *interJob, cowAt map[*region]bool) [][]byte {
	saved := make([][]byte, len(j.ov))
	for n, w := range j.ov {
		b := img.bytes(w.addr, uint64(len(w.b)))
		if b == nil {
			j.fail = &Failure{Expected: "site words in mapped memory", Observed: fmt.Sprintf("%#x unmapped", w.addr)}
			break
		}
		saved[n] = append([]byte(nil), b...)
		copy(b, w.b)
		cowAt[img.find(w.addr)] = true
	}
	return saved
}

// runInterJobs runs the jobs that did not fail statically, each engine in
// its own copy of the regions cowAt names.
func (img *Image) runInterJobs(jobs []*interJob, cowAt map[*region]bool, opts Options) error {
	var toRun []*interJob
	var cowBytes uint64
	for rg := range cowAt {
		cowBytes += rg.size
	}
	for _, j := range jobs {
		if j.fail == nil {
			toRun = append(toRun, j)
		}
	}
	if len(toRun) == 0 {
		return nil
	}
	// Fewer workers rather than more memory: each holds its own copy
	// of the regions with sites.
	limit := 0
	if cowBytes > 0 {
		limit = max(1, int(min(cowBudget/cowBytes, 1<<20)))
	}
	cow := func(rg *region) bool { return cowAt[rg] }
	return runPool(img, opts, limit, cow, len(toRun), 1, func(e *engine, lo, hi int) {
		for _, j := range toRun[lo:hi] {
			j.fail = e.runOverlay(j)
		}
	})
}

// recordInterJobs records each job's outcome in r, after the workers.
func (img *Image) recordInterJobs(r *livesafe.Report, jobs []*interJob) error {
	for _, j := range jobs {
		if j.fail != nil && j.fail.bug != nil {
			return fmt.Errorf("intermediate state of %s at %#x: %w", j.s.Func, j.s.entry(), j.fail.bug)
		}
	}
	for _, j := range jobs {
		ic := &r.Intermediates[j.check]
		if j.fail == nil {
			r.RecordRun(j.check, nil)
			r.ProveByRun(j.check, provenDirect(ic, &j.s), j.s.direct)
			continue
		}
		r.RecordRun(j.check, &livesafe.RunFailure{Expected: j.fail.Expected, Observed: j.fail.Observed, Words: j.words})
	}
	return nil
}

// relLiteral is the value an ET_REL literal takes in img's layout from the
// words' relocation: a symbol ORIG defines at its placed address, one it
// does not define (or the patched file added) bound to verify's stand-in
// op, as placeSite binds them; the op's own first word is relocated too.
func (img *Image) relLiteral(w livesafe.Words) uint64 {
	if w.Ops == nil {
		return w.Literal
	}
	rl := img.rel
	val := img.standinOps
	if i := w.Ops.SymIndex; i >= 1 && rl.symName(i) == w.Ops.Sym {
		if v, _, def := rl.symbol(i); def {
			val = v
		}
	}
	val += w.Ops.Addr
	rl.relocOp(img, val)
	return val
}
