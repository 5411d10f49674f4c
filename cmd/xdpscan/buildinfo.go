package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/xdpscan/xdpscan/internal/kfloor"
)

// version and commit are stamped by the Makefile (-ldflags -X: `git
// describe --tags --always --dirty` and the commit hash); a plain `go
// build` in a checkout gets them from the build info Go records (the
// module's pseudo-version and vcs.revision, Go 1.24+), `go install
// module@version` gets the module version.
var version, commit string

// buildVersion is the version and the commit, from the stamps or the
// build info; "unknown" only for a build with neither (go build
// -buildvcs=false outside a module version).
func buildVersion() (ver, rev string, dirty bool) {
	ver, rev = version, commit
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if ver == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			ver = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if ver == "" && rev != "" {
		ver = "devel-" + short(rev)
		if dirty {
			ver += "-dirty"
		}
	}
	if ver == "" {
		ver = "unknown"
	}
	return ver, rev, dirty || strings.HasSuffix(ver, "-dirty") || strings.HasSuffix(ver, "+dirty")
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// versionString is `xdpscan --version`'s first line.
func versionString() string {
	ver, rev, dirty := buildVersion()
	s := "xdpscan " + ver
	if rev != "" {
		s += " (commit " + short(rev)
		if dirty {
			s += ", modified"
		}
		s += ")"
	} else {
		s += " (commit unknown)"
	}
	return s
}

// versionLines are `xdpscan --version`: the version, the commit, Go, and
// the kernel it runs on.
func versionLines() []string {
	return []string{
		versionString(),
		fmt.Sprintf("go      %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH),
		fmt.Sprintf("kernel  %s", kfloor.Release()),
	}
}
