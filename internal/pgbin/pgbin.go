package pgbin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNotFound is returned (wrapped, with install instructions) when no
// directory holding initdb, pg_ctl and postgres can be found.
var ErrNotFound = errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found")

// InstallHint says how to get the PostgreSQL server binaries. It is part of
// the error FindBinDir returns.
const InstallHint = "install the PostgreSQL server: on Debian/Ubuntu `sudo apt-get install -y postgresql`, " +
	"on macOS `brew install postgresql@15`; or put the directory holding initdb on PATH"

// serverBinaries are the programs a cluster needs, all from one installation
// (initdb and pg_ctl must match the server's major version).
var serverBinaries = []string{"initdb", "pg_ctl", "postgres"}

// FindBinDir returns the directory holding initdb, pg_ctl and postgres. It
// looks on PATH first, then in /usr/lib/postgresql/*/bin (Debian/Ubuntu,
// highest version first), then in Homebrew's prefixes. When none has all
// three it returns an error wrapping ErrNotFound that says how to install
// them.
func FindBinDir() (string, error) {
	return findBinDir(candidateBinDirs())
}

func findBinDir(candidates []string) (string, error) {
	for _, dir := range candidates {
		if hasServerBinaries(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("%w on PATH, in /usr/lib/postgresql/*/bin or in Homebrew's prefixes; %s",
		ErrNotFound, InstallHint)
}

func candidateBinDirs() []string {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			dirs = append(dirs, filepath.Dir(abs))
			// A symlinked initdb (e.g. /usr/local/bin/initdb) may sit next to
			// no pg_ctl; its target's directory is the real installation.
			if real, err := filepath.EvalSymlinks(abs); err == nil {
				dirs = append(dirs, filepath.Dir(real))
			}
		}
	}
	for _, pattern := range []string{
		"/usr/lib/postgresql/*/bin",
		"/opt/homebrew/opt/postgresql@*/bin",
		"/usr/local/opt/postgresql@*/bin",
	} {
		dirs = append(dirs, byVersionDesc(pattern)...)
	}
	return append(dirs, "/opt/homebrew/bin")
}

// byVersionDesc expands a glob whose matches differ only in a version
// number (".../15/bin", ".../postgresql@15/bin") and orders them newest first.
func byVersionDesc(pattern string) []string {
	matches, _ := filepath.Glob(pattern)
	slices.SortFunc(matches, func(a, b string) int {
		return compareVersions(installVersion(b), installVersion(a))
	})
	return matches
}

// installVersion extracts the version from an installation's bin directory:
// "/usr/lib/postgresql/9.6/bin" → [9 6], ".../postgresql@15/bin" → [15].
func installVersion(binDir string) []int {
	name := filepath.Base(filepath.Dir(binDir))
	if i := strings.LastIndexByte(name, '@'); i >= 0 {
		name = name[i+1:]
	}
	var v []int
	for _, part := range strings.Split(name, ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			return nil
		}
		v = append(v, n)
	}
	return v
}

func compareVersions(a, b []int) int {
	return slices.Compare(a, b)
}

func hasServerBinaries(dir string) bool {
	for _, name := range serverBinaries {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// Program returns the path of a PostgreSQL program (pg_dump, psql):
// the one next to the server binaries FindBinDir finds, so that it
// matches their version, else the one on PATH.
func Program(name string) (string, error) {
	if dir, err := FindBinDir(); err == nil {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath(name)
}
