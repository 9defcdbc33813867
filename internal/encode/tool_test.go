package encode_test

import (
	"os"
	"os/exec"
	"testing"
)

// needTool returns the path of an external oracle (binutils, qemu). A missing
// tool fails the test under CI=true and skips it only locally.
// (internal/testutil.NeedTool did not exist when this was written.)
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found, required under CI: %v", name, err)
		}
		t.Skipf("%s not found: %v", name, err)
	}
	return p
}
