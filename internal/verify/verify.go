// SPDX-License-Identifier: Apache-2.0

// Package verify proves patch sites correct by running each one on
// Unicorn's arm64 CPU. It is the only package that imports the emulator
// (through internal/verify/uc).
//
// Flow: LoadObject lays a file out in emulated memory (linked files at their
// addresses, ET_REL sections at synthetic ones with the site relocations
// applied, verify's stand-ins added) and checks what is static; Check then
// runs every site on a pool of engines (runPool), one per worker, each mapping the
// image once (the bytes are shared, read-only to the CPU) and reused for
// all its sites.
//
// A run starts at the function entry with X0-X29 distinct seeded random
// values, X30 a sentinel parent address and SP on a private stack, and ends
// at CallSite+4, the first instruction after the site. Sites run in batches
// in C without counting instructions (that costs a hook call on each),
// chained: each ends at a BRK planted at its stop address, or at the one
// over the tool's trampoline's return when that returns there, and the
// next starts from the trap (stopSet). A run that does not end there
// normally, or takes more than a few milliseconds of CPU, runs again under
// the instruction limit and the timeout, on the image's own bytes, which
// decide what it reports. Expectations by state:
//
//	nop      no call; every register unchanged
//	init     no call; X9 = sentinel; every other register unchanged
//	enabled  one call of op->func(ip = the BL, parent_ip = sentinel, op = literal
//	         value or, for classic sites, verify's stand-in op), then
//	         X0-X8, X19-X29, SP and X30 as they were
//
// op->func is intercepted by a code hook on its address only, which records
// X0-X3 and returns to the caller; no hook covers the whole address space.
package verify

import (
	"debug/elf"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
	"github.com/ftpatch/ftpatch/internal/patch"
)

// ErrNoFileTrampoline reports that the file's own trampoline was asked to
// run (Options.RunFileTrampoline) where the file has none to run: an
// object (its BLs are bound to the trampoline only when it is linked), a
// linked file without the trampoline symbol, or a classic kernel image
// without the symbols its trampoline needs. It is a mistake in the
// request, said once for the file, not a failure of each site.
var ErrNoFileTrampoline = errors.New("no trampoline of the file's own to run")

// ErrNoEmulator reports a build without cgo, which has no emulator: verify
// cannot run there (scan and the patch commands can).
var ErrNoEmulator = errors.New("this ftpatch was built without cgo, so without the Unicorn emulator verify runs sites on: rebuild it with CGO_ENABLED=1 (and Debian's libunicorn-dev installed) to verify")

// Options control a verify run.
type Options struct {
	Trampoline string // SYM or 0xADDR; default DefaultTrampoline
	// TrampolineNamed says the user named Trampoline (--trampoline): a
	// symbol the file does not have is then an input error, not a failure
	// of its enabled sites (or, with none enabled, no error at all).
	TrampolineNamed   bool
	RunFileTrampoline bool // run the file's own trampoline code instead of the tool's
	// Direct names the legal direct trampolines (SYM or 0xADDR), and turns
	// on the direct-call path of the tool's trampoline: see direct.go.
	Direct           []string
	DirectCallOffset int64  // op->direct_call; 0: encode.DefaultDirectCallOffset
	Jobs             int    // workers; default runtime.NumCPU()
	Seed             uint64 // register values are drawn from (Seed, site index)
	MaxInsns         uint64 // per site, for a run that ran too long or went wrong (see engine); default 10,000
	Timeout          time.Duration
	// Select, when set, keeps the sites of the functions it accepts
	// (--func/--exclude); LoadObject drops the others.
	Select func(fn string) bool
	// Progress, when set, is called from the workers with the number of
	// sites just finished; it must be safe for concurrent use.
	Progress func(n int)
	// Closing says the caller closes the image right after Check and
	// reads nothing of it before: the BRKs Check planted (stopSet) stay in
	// its bytes unless a failure needs the words around its site. Putting
	// the bench image's 53k words back, each on a page of its own: verify
	// without it took 0.993x and 0.973x the cpu (15 interleaved pairs,
	// twice).
	Closing bool
	// Names spells the roles failure messages name (patch.RoleDirect...)
	// as the caller's users know them (cli: its flag names); nil: each
	// role's own words.
	Names patch.Namer

	// allRelocs makes LoadObject apply every dynamic relocation as it
	// loads (RunIntermediates: its overlays then replace relocated words).
	allRelocs bool
	// goJudge (tests) judges every run in Go, none in C (engine.setRun).
	goJudge bool
	// recycle (tests), when > 0, replaces recycleSites.
	recycle int
	// recycleErr (tests), when set, is the error of making the engine
	// that replaces a recycled one.
	recycleErr error
}

// Defaults of Options, set by withDefaults.
const (
	defaultMaxInsns = 10000
	defaultTimeout  = time.Second
)

// withDefaults is o with every unset field at its default: the one place
// verify's defaults are decided (LoadObject, Check and RunIntermediates
// each start with it). A direct-call offset is checked by encode's one
// rule, only when Direct asks for direct calls.
func (o Options) withDefaults() (Options, error) {
	if o.Trampoline == "" {
		o.Trampoline = DefaultTrampoline
	}
	if o.MaxInsns == 0 {
		o.MaxInsns = defaultMaxInsns
	}
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	if len(o.Direct) > 0 {
		off, err := encode.DirectCallOffset(o.DirectCallOffset)
		if err != nil {
			return o, err
		}
		o.DirectCallOffset = off
	}
	return o, nil
}

// Failure is one site that did not behave.
type Failure struct {
	Func     string
	Address  uint64 // function entry (in an object: where verify placed it)
	Site     int    // index of the site among those verify was given (the scan's, after Select)
	State    elfscan.State
	Expected string
	Observed string
	Words    []encode.Placed // the site's words as loaded (report disassembles them)

	// bug is set when the run failed because of ftpatch itself (a hook
	// panicked), not because of the file: Check returns it as an error.
	bug error
}

// Report is the outcome for one file.
type Report struct {
	File     string
	ELFType  elf.Type
	Sites    int // sites checked
	Skipped  int // sites not checked: no-function (elfscan.NoFunctionHelp)
	Passed   int
	Failed   int
	ByState  map[elfscan.State]int
	Elapsed  time.Duration
	Failures []Failure
}

// Sites returns how many sites img holds.
func (img *Image) Sites() int { return len(img.sites) }

// Check runs every site of img. While its pool runs, a BRK sits at each
// site's stop address in img's bytes, so that the sites of a batch run one
// after another in one start of the emulator (see stopSet); they are taken
// out before Check returns, and Checks of one image take turns.
func Check(img *Image, opts Options) (*Report, error) {
	start := time.Now()
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	skipped, static := img.tally.skipped, img.tally.static
	if opts.Progress != nil && static > 0 {
		opts.Progress(static)
	}
	// The failures of the runs, by chunk of sites (runPool's), each in
	// site order: nothing is kept for a site that passes.
	var ran [][]siteFailure
	if n := len(img.sites) - skipped - static; n > 0 {
		ran = make([][]siteFailure, (len(img.sites)+batchSites-1)/batchSites)
		img.checkMu.Lock()
		img.stops = img.plantStops(nil, opts)
		err := runPool(img, opts, 0, nil, len(img.sites), batchSites, func(e *engine, lo, hi int) {
			ran[lo/batchSites] = e.runRange(lo, hi)
		})
		if opts.Closing && static == 0 && !failed(ran) {
			img.stops.release() // nothing reads the image's bytes again
		} else {
			img.stops.restore() // the engines are closed
		}
		img.stops = nil
		img.checkMu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	// Failures get the site's words here, after the workers, once the
	// stops are out of the image's bytes.
	for _, fs := range ran {
		for _, f := range fs {
			if f.f.bug != nil {
				return nil, fmt.Errorf("site %s at %#x: %w", img.sites[f.i].Func, img.sites[f.i].entry(), f.f.bug)
			}
		}
	}
	rep := &Report{File: img.Path, ELFType: img.Type, Sites: len(img.sites) - skipped, Skipped: skipped, ByState: map[elfscan.State]int{}}
	img.report(rep, ran)
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// report fills rep's counts and failures, in site order, from the sites'
// static failures and ran, the runs' failures by chunk of sites.
func (img *Image) report(rep *Report, ran [][]siteFailure) {
	statics := img.tally.statics // failed statically, in site order
	static := func(upTo int) {
		for len(statics) > 0 && int(statics[0]) < upTo {
			s := &img.sites[statics[0]]
			rep.Failures = append(rep.Failures, *img.finish(s, s.static))
			statics = statics[1:]
		}
	}
	for _, fs := range ran { // runPool's chunks, in site order
		for _, f := range fs {
			static(f.i)
			rep.Failures = append(rep.Failures, *img.finish(&img.sites[f.i], f.f))
		}
	}
	static(len(img.sites))
	for st, n := range img.tally.byState {
		if n > 0 {
			rep.ByState[elfscan.State(st)] = n
		}
	}
	rep.Failed = len(rep.Failures)
	rep.Passed = rep.Sites - rep.Failed
}

// failed reports whether any run of ran failed.
func failed(ran [][]siteFailure) bool {
	for _, fs := range ran {
		if len(fs) > 0 {
			return true
		}
	}
	return false
}

// siteFailure is the failure of the run of site i.
type siteFailure struct {
	i int
	f *Failure
}

// finish completes a failure with the site's identity and words.
func (img *Image) finish(s *site, f *Failure) *Failure {
	f.Func = s.Func
	f.Address = s.entry()
	f.Site = int(s.index)
	f.State = s.State
	f.Words = img.siteWords(s)
	if f.Func == "" {
		f.Func = fmt.Sprintf("<no function at %#x>", s.entry())
	}
	return f
}

// checkTrampolineNamed refuses a named trampoline symbol that o does not
// define, or, an object, does not reference as undefined either. An object
// with no enabled site names no trampoline (the linker binds it later), so
// there is nothing to check the name against.
func checkTrampolineNamed(o *elfscan.Object, sites []elfscan.Site, opts Options) error {
	name := opts.Trampoline
	if _, ok := parseAddr(name); ok || !opts.TrampolineNamed {
		return nil
	}
	_, err := o.Lookup(name)
	if err == nil || !errors.Is(err, elfscan.ErrSymbolNotFound) {
		return nil // found, or ambiguous: the sites say which (as before)
	}
	if o.ELF().Type == elf.ET_REL {
		if !slices.ContainsFunc(sites, func(s elfscan.Site) bool { return s.State == elfscan.StateEnabled }) {
			return nil
		}
		if t, terr := o.Symbols(); terr == nil {
			for i := 1; i < t.Len(); i++ { // an object calls it through an undefined symbol
				if s, _ := t.Sym(uint32(i)); s.Name == name {
					return nil
				}
			}
		}
	}
	return &patch.RoleError{Role: patch.RoleTrampoline, Words: patch.Say("%s %s: %w; name the function the enabled sites branch to (default %s), or give its address (0x…)",
		patch.RoleTrampoline, name, err, DefaultTrampoline)}
}

// checkFileTrampoline refuses Options.RunFileTrampoline for a file with
// enabled sites whose own trampoline cannot run: an object that does not
// define it (its BLs reach it only once linked), or a linked file without
// the symbol. Nop and init sites call nothing, so they need none.
func checkFileTrampoline(o *elfscan.Object, sites []elfscan.Site, opts Options) error {
	name := opts.Trampoline
	if _, isAddr := parseAddr(name); isAddr || !opts.RunFileTrampoline {
		return nil
	}
	first := slices.IndexFunc(sites, func(s elfscan.Site) bool { return s.State == elfscan.StateEnabled })
	switch {
	case first < 0:
		return nil
	case o.Rel() && sites[first].Layout == elfscan.LayoutClassic:
		// A classic trampoline takes its op from a kernel's globals,
		// which only a linked image has (classicfile.go).
		return fmt.Errorf("%w: classic sites in an object (ET_REL): a classic trampoline needs the linked kernel's %s and %s; verify the linked image with its own trampoline, or the object with the tool's", ErrNoFileTrampoline, classicOpSym, classicCallSym)
	}
	_, err := o.Lookup(name)
	switch {
	case err == nil || !errors.Is(err, elfscan.ErrSymbolNotFound):
		return nil // defined, or ambiguous: the sites say which (as for a named trampoline)
	case o.Rel():
		return fmt.Errorf("%w: an object (ET_REL) does not define %s, its BLs reach the trampoline once linked; verify the linked image with its own trampoline, or the object with the tool's", ErrNoFileTrampoline, name)
	}
	return fmt.Errorf("%w: %s is not in the file's symbol tables; run the tool's trampoline instead, or name the file's (a symbol or 0x… address)", ErrNoFileTrampoline, name)
}
