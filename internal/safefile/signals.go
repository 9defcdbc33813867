// SPDX-License-Identifier: Apache-2.0

package safefile

import (
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cleanup holds the files this process made that a signal must remove
// (named temporaries, lock files of new targets) and the count of writes
// under way; mu also keeps a signal from ending the process between a
// link and its rename.
var cleanup = struct {
	mu    sync.Mutex
	paths map[string]bool
	// writing counts the Replace calls between their first file and
	// their rename (the commit point) or their failure; written counts
	// the renames.
	writing, written int
	// stopping is the signal that came when every write had passed its
	// commit point: the run completes, and a later write ends it.
	stopping os.Signal
	// notice tells the user what the handler does (HandleSignals).
	notice func(SignalNotice)
}{paths: map[string]bool{}}

// SignalNotice is what the signal handler did about Sig, for the user:
// the run ends (Stage SignalExit, or SignalExitBeforeNext when a run that
// had been let complete was about to write another file) or completes
// (SignalCompleting: every write had passed its commit point).
type SignalNotice struct {
	Sig   os.Signal
	Stage SignalStage
}

// SignalStage says what a handled signal did to the run.
type SignalStage int

const (
	// SignalExit: the writes under way are undone; the process exits with
	// 128+signal.
	SignalExit SignalStage = iota + 1
	// SignalExitBeforeNext: after SignalCompleting, the run was about to
	// write another file: it exits with 128+signal before creating any.
	SignalExitBeforeNext
	// SignalCompleting: the file was written; the run completes.
	SignalCompleting
)

// signalled is set once the handler has a signal; exiting once it has
// decided to end the process (it then does, with 128+signal).
var signalled, exiting atomic.Bool

// registerCleanup has a signal remove name.
func registerCleanup(name string) {
	cleanup.mu.Lock()
	cleanup.paths[name] = true
	cleanup.mu.Unlock()
}

func forget(name string) {
	cleanup.mu.Lock()
	delete(cleanup.paths, name)
	cleanup.mu.Unlock()
}

// startWrite counts a write as under way; after a signal that let the run
// complete its writes, it ends the process instead (nothing of this write
// exists yet).
func startWrite() {
	cleanup.mu.Lock()
	defer cleanup.mu.Unlock()
	if cleanup.stopping != nil {
		exitOn(cleanup.stopping, SignalExitBeforeNext)
	}
	cleanup.writing++
}

// endWrite counts a write as no longer under way: renamed (the commit
// point), or failed with its temporary removed. Callers hold cleanup.mu.
func endWrite(renamed bool) {
	cleanup.writing--
	if renamed {
		cleanup.written++
	}
}

// handledSignals are the signals that end a run cleanly. SIGQUIT too: Go's
// default for it (a goroutine dump, exit 2) would leave a named temporary.
var handledSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// HandleSignals makes SIGINT, SIGTERM, SIGHUP and SIGQUIT end the run
// truthfully. The commit point of a write is its rename:
//   - a signal while a write is before its commit point (or before any
//     write) removes the temporary files and lock files of the writes
//     under way and exits with 128+signal, the status a shell reports for
//     a process the signal killed: the target keeps its old bytes;
//   - a signal that comes while every write has passed its commit point
//     (and at least one has) lets the run complete with its own status:
//     the target holds the new bytes and the exit says so. A run that
//     would write another file then ends, with 128+signal, before it
//     creates anything for it; further signals are ignored.
//
// A signal during a rename waits for it. notice, when set, is told what the
// handler does, before it exits or lets the run go on (it runs on the
// handler's goroutine, or on the goroutine starting a write, while the
// process holds off renames: it must only write the message). The
// returned stop function ends the run's handling once a signal already
// taken has been dealt with: the signals are ignored from then on, since
// the process only exits after it (cli.Main's caller). Restoring the
// default action instead left a window in which a signal killed the
// process after its file held the new bytes, an exit that says "old
// bytes".
func HandleSignals(notice func(SignalNotice)) (stop func()) {
	cleanup.mu.Lock()
	cleanup.notice = notice
	cleanup.mu.Unlock()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, handledSignals...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sig := range ch {
			signalled.Store(true)
			onSignal(sig)
		}
	}()
	return func() {
		signal.Ignore(handledSignals...) // unregisters ch too
		close(ch)
		// A signal taken before the stop is decided on and told before
		// the process exits: the handler may still be waiting for the
		// last rename's lock, and a run it let complete ended without
		// its notice (or, exiting, it removes temporaries and exits).
		<-done
	}
}

// onSignal is the handler's decision for sig.
func onSignal(sig os.Signal) {
	cleanup.mu.Lock() // waits for a rename under way
	if cleanup.stopping != nil {
		cleanup.mu.Unlock()
		return
	}
	if cleanup.writing > 0 || cleanup.written == 0 {
		exitOn(sig, SignalExit) // never unlocks: holds off other renames
	}
	cleanup.stopping = sig
	tell(SignalNotice{sig, SignalCompleting})
	cleanup.mu.Unlock()
	handled.Store(true)
}

// handled is set when the handler let the run complete (for testSignal).
var handled atomic.Bool

// exitOn removes what the writes under way created, tells the user (stage
// says when) and ends the process with 128+sig. The caller holds
// cleanup.mu.
func exitOn(sig os.Signal, stage SignalStage) {
	exiting.Store(true)
	for p := range cleanup.paths {
		os.Remove(p)
	}
	tell(SignalNotice{sig, stage})
	os.Exit(128 + int(sig.(syscall.Signal)))
}

// tell hands n to the notice callback, if any. The caller holds
// cleanup.mu.
func tell(n SignalNotice) {
	if cleanup.notice != nil {
		cleanup.notice(n)
	}
}

// Test hooks, for tests that run the real binary: FTPATCH_TEST_SIGNAL_AT
// names a stage of Replace ("filled": before the rename; "linked": between
// link and rename; "renamed": after it) at which the process sends itself
// SIGTERM, or the signal FTPATCH_TEST_SIGNAL names (KILL, QUIT...);
// FTPATCH_TEST_NO_TMPFILE=1 makes it use a named temporary as on a file
// system without O_TMPFILE.
const (
	testSignalAt   = "FTPATCH_TEST_SIGNAL_AT"
	testSignalName = "FTPATCH_TEST_SIGNAL"
	testNoTmpfile  = "FTPATCH_TEST_NO_TMPFILE"
)

// testHook, when set by a test, runs at each stage of Replace that
// testSignal names: a test pauses a write there.
var testHook func(stage string)

// testSignal sends SIGTERM (or FTPATCH_TEST_SIGNAL) to this process when
// stage is the one named by FTPATCH_TEST_SIGNAL_AT, and waits for the
// handler to end the process or let the run complete. In "linked", where
// the handler must wait for the rename, it waits for the handler to have
// the signal.
func testSignal(stage string) {
	if testHook != nil {
		testHook(stage)
	}
	if os.Getenv(testSignalAt) != stage {
		return
	}
	sig := syscall.SIGTERM
	if name := os.Getenv(testSignalName); name != "" {
		sig = unix.SignalNum("SIG" + name)
	}
	syscall.Kill(os.Getpid(), sig)
	done := &handled
	if stage == "linked" {
		// Let the handler take the signal before the rename, so that the
		// run deterministically shows it waiting for the rename.
		done = &signalled
	}
	for !done.Load() {
		time.Sleep(time.Millisecond)
	}
}
