// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// buildVersion, when set at link time (-ldflags "-X
// github.com/ftpatch/ftpatch/internal/cli.buildVersion=v1.2.3"), is the
// version: the Makefile stamps `git describe --tags --always --dirty` (or
// a source tarball's VERSION file), which names the commit itself, so a
// build without VCS information (-buildvcs=false, a tarball) still says
// which one it is.
var buildVersion string

// versionInfo is what the build says about this binary.
type versionInfo struct {
	Module   string // module version: v1.2.3, or (devel) for a source build
	Revision string // VCS revision, "" when not recorded (-buildvcs=false)
	Modified bool   // the work tree had changes
	Go       string // Go toolchain
}

var readVersion = sync.OnceValue(func() versionInfo {
	v := versionInfo{Module: "(devel)"}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		v.Go = bi.GoVersion
		if bi.Main.Version != "" {
			v.Module = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	return v
})

// Version is the tool's version as JSON lines carry it in "ftpatch": the
// version stamped at link time (see buildVersion), else the module version, then "+" and the first 12 digits of the VCS revision when
// the build recorded one, and "+dirty" for a modified work tree:
// "v1.2.3", "(devel)+0123456789ab", "(devel)+0123456789ab+dirty".
func Version() string {
	if buildVersion != "" {
		return buildVersion
	}
	v := readVersion()
	s := v.Module
	if v.Revision != "" {
		s += "+" + v.Revision[:min(12, len(v.Revision))]
		if v.Modified {
			s += "+dirty"
		}
	}
	return s
}

// versionText is what --version prints.
func versionText() string {
	v := readVersion()
	rev := "revision unknown (built without VCS information)"
	if v.Revision != "" {
		rev = "revision " + v.Revision
		if v.Modified {
			rev += " (modified)"
		}
	}
	return fmt.Sprintf("ftpatch %s\n%s\nbuilt with %s\n", Version(), rev, v.Go)
}
