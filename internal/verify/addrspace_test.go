// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package verify

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/verify/uc"
)

// Under an address-space limit (ulimit -v) too small for an engine, verify
// returns uc.ErrAddressSpace saying what it needs (the command exits 2)
// instead of Unicorn's exit(1). The limit is set in a child process: this
// test binary again.
func TestVerifyAddressSpaceLimit(t *testing.T) {
	src := testutil.Fixtures(t, "clang-callops-static.elf")[0]
	if os.Getenv("FTPATCH_VERIFY_AS_CHILD") == "1" {
		verifyAddressSpaceChild(src)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestVerifyAddressSpaceLimit$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FTPATCH_VERIFY_AS_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "child: ErrAddressSpace ok") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func verifyAddressSpaceChild(src string) {
	size, err := vmSize()
	if err != nil {
		fmt.Println("child:", err)
		os.Exit(3)
	}
	// Room for the Go runtime and the image, not for a 1 GiB buffer.
	lim := syscall.Rlimit{Cur: size + 256<<20, Max: size + 256<<20}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &lim); err != nil {
		fmt.Println("child: setrlimit:", err)
		os.Exit(3)
	}
	rep, err := File(src, Options{Jobs: 1})
	switch {
	case err == nil:
		fmt.Printf("child: verify ran under a limit of %d MiB: %+v\n", lim.Cur>>20, rep)
		os.Exit(4)
	case rep != nil || !errors.Is(err, uc.ErrAddressSpace) || !strings.Contains(err.Error(), "1024 MiB"):
		fmt.Println("child: wrong result:", rep, err)
		os.Exit(5)
	}
	fmt.Println("child: ErrAddressSpace ok:", err)
	os.Exit(0)
}

// vmSize is the process's mapped address space (VmSize), in bytes.
func vmSize() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmSize:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmSize in /proc/self/status")
}
