// SPDX-License-Identifier: Apache-2.0

//go:build !cgo

package verify

// Without cgo there is no emulator: verify loads and checks what is static
// as usual, and running a site is ErrNoEmulator (engine.go is the real
// thing). The command line asks EmulatorBuilt first and stops there.

// EmulatorBuilt reports whether this build has the emulator: it has not.
func EmulatorBuilt() error { return ErrNoEmulator }

// Preload does nothing: there is no emulator to load.
func Preload() {}

// engine has no instance without cgo: runPool never makes one.
type engine struct{}

// batchSites is how many sites an engine runs per call into C.
const batchSites = 512

func (e *engine) runSites(_ []*site, fails []*Failure) {
	for i := range fails {
		fails[i] = &Failure{Expected: "a run", Observed: ErrNoEmulator.Error()}
	}
}
func (e *engine) run(*site) *Failure {
	return &Failure{Expected: "a run", Observed: ErrNoEmulator.Error()}
}
func (e *engine) runOverlay(*interJob) *Failure {
	return &Failure{Expected: "a run", Observed: ErrNoEmulator.Error()}
}

// runPool fails: there is no engine to run on.
func runPool(*Image, Options, int, func(*region) bool, int, int, func(*engine, int, int)) error {
	return ErrNoEmulator
}
func (e *engine) runRange(int, int) []siteFailure { return nil }
