package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/airlock-dev/airlock/server"
)

// cmdVersion is `airlock version` (and `airlock --version`).
func cmdVersion(args []string, stdout, stderr io.Writer) error {
	c := mustLookup("version")
	if _, err := c.parse(c.flagSet(), args, stdout, stderr); err != nil {
		return err
	}
	info, ok := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, versionText(info, ok))
	return nil
}

// versionText is "airlock VERSION (commit SHORTSHA[, modified], built with
// goX.Y.Z)". The commit comes from the VCS stamp go build embeds; go run and
// go test binaries have none, and say "commit unknown".
func versionText(info *debug.BuildInfo, ok bool) string {
	commit, modified := "unknown", false
	goVersion := runtime.Version()
	if ok && info != nil {
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if s.Value != "" {
					commit = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if len(commit) > 12 && commit != "unknown" {
		commit = commit[:12]
	}
	out := "airlock " + server.Version + " (commit " + commit
	if modified {
		out += ", modified"
	}
	return out + ", built with " + goVersion + ")"
}
