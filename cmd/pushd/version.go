package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// versionText is what -version prints: pushd's module version (v1.2.3 when
// built by go install ...@v1.2.3, "(devel)" from a checkout), the push
// module's, the VCS revision and time the binary was built from (when the
// build recorded them), and the Go version.
// The go command records no VCS information in workspace mode (go.work):
// build releases with GOWORK=off, or install them with go install.
func versionText() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "pushd: no build information in this binary\n"
	}
	return formatVersion(bi)
}

// formatVersion is versionText of bi.
func formatVersion(bi *debug.BuildInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "pushd %s (%s)\n", bi.Main.Version, bi.Main.Path)
	for _, d := range bi.Deps {
		if d.Path == "github.com/pushhub/push" {
			v := d.Version
			if d.Replace != nil {
				v += " => " + d.Replace.Path + " " + d.Replace.Version
			}
			fmt.Fprintf(&b, "push %s\n", strings.TrimSpace(v))
		}
	}
	rev, at, modified := "unknown (no VCS information: built from a module download, in a go.work workspace, or with -buildvcs=false)", "", ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = " " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		}
	}
	fmt.Fprintf(&b, "revision %s%s%s\n%s %s/%s\n", rev, at, modified, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return b.String()
}
