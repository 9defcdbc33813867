//go:build cgo

package verify

import (
	"os"
	"syscall"
	"testing"
	"time"
)

func ru() (time.Duration, int64) {
	var r syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r)
	return time.Duration(r.Utime.Nano() + r.Stime.Nano()), r.Minflt
}

func TestTmpPhase(t *testing.T) {
	p := os.Getenv("TMPMEM")
	if p == "" {
		t.Skip()
	}
	for i := 0; i < 3; i++ {
		c0, f0 := ru()
		img, err := Load(p, Options{Jobs: 1, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		c1, f1 := ru()
		rep, err := Check(img, Options{Jobs: 1, Seed: 1})
		c2, f2 := ru()
		img.Close()
		if err != nil || rep.Failed != 0 {
			t.Fatal(err)
		}
		t.Logf("load %v (%d faults), check %v (%d faults)", c1-c0, f1-f0, c2-c1, f2-f1)
	}
}
