package safefile

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cleanup holds the named temporary files that exist right now; mu also
// keeps a signal from exiting between a link and its rename.
var cleanup = struct {
	mu    sync.Mutex
	paths map[string]bool
}{paths: map[string]bool{}}

// signalled is set once the handler has a signal: from then on the process
// ends only through the handler, with 128+signal.
var signalled atomic.Bool

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

// HandleSignals makes SIGINT, SIGTERM and SIGHUP remove the named
// temporary files of writes in progress and exit with status 128+signal,
// the status a shell reports for a process the signal killed. A target
// being replaced is left with its old bytes, or, once the rename has
// happened, the new ones; never anything in between. The returned stop
// function restores the default handling.
func HandleSignals() (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig, ok := <-ch
		if !ok {
			return
		}
		signalled.Store(true)
		cleanup.mu.Lock() // never unlocked: waits for a rename under way, then holds off others
		for p := range cleanup.paths {
			os.Remove(p)
		}
		fmt.Fprintf(os.Stderr, "ftpatch: %v\n", sig)
		os.Exit(128 + int(sig.(syscall.Signal)))
	}()
	return func() {
		signal.Stop(ch)
		if signalled.Load() {
			select {} // the handler is removing temporaries; it exits
		}
		close(ch)
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

// testSignal sends SIGTERM to this process when stage is the one named by
// FTPATCH_TEST_SIGNAL_AT. Except in "linked", where the handler must wait
// for the rename, it then waits for the handler to end the process.
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
	if stage == "linked" {
		// Let the handler take the signal before the rename, so that the
		// run deterministically shows it waiting for the rename.
		for !signalled.Load() {
			time.Sleep(time.Millisecond)
		}
		return
	}
	for {
		time.Sleep(time.Hour)
	}
}
