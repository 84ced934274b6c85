//go:build unix

package pgcluster

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// serverOwner is the OS account the server runs as when this process is
// root: initdb, pg_ctl and postgres all refuse to run as root.
type serverOwner struct {
	name     string
	uid, gid uint32
}

// currentServerOwner returns nil when the server can run as the current
// user, and the `postgres` OS account when running as root.
func currentServerOwner() (*serverOwner, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, but PostgreSQL refuses to run as root and there is no "+
			"`postgres` OS user to run it as (create one: `useradd --system --user-group postgres`): %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres OS user: uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres OS user: gid %q: %w", u.Gid, err)
	}
	return &serverOwner{name: u.Username, uid: uint32(uid), gid: uint32(gid)}, nil
}

// apply makes cmd run as the owner. A nil owner leaves cmd alone.
func (o *serverOwner) apply(cmd *exec.Cmd) {
	if o == nil {
		return
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// An empty Groups drops root's supplementary groups.
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: o.uid, Gid: o.gid, Groups: []uint32{}}
}

// chownAll gives the owner the whole tree under dir.
func (o *serverOwner) chownAll(dir string) error {
	if o == nil {
		return nil
	}
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(o.uid), int(o.gid))
	})
}

// chown gives the owner one file.
func (o *serverOwner) chown(path string) error {
	if o == nil {
		return nil
	}
	return os.Lchown(path, int(o.uid), int(o.gid))
}

// canTraverse reports whether the owner can reach dir: every ancestor must
// be searchable by "other" (the owner is not root and, for the directories
// that matter here, owns none of them).
func (o *serverOwner) canTraverse(dir string) bool {
	if o == nil {
		return true
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		searchable := fi.Mode().Perm()&0o001 != 0 ||
			(ok && st.Uid == o.uid && fi.Mode().Perm()&0o100 != 0)
		if !searchable {
			return false
		}
		if p == filepath.Dir(p) {
			return true
		}
	}
}

// detach puts cmd in its own process group so that a Ctrl-C aimed at the
// parent's terminal does not kill it before it can clean up.
func detach(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}
