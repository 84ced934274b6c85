//go:build unix

package demo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// pgctlCommand returns a pg_ctl command that runs as the owner of dataDir
// when this process is root: pg_ctl refuses to run as root, and pgcluster
// gave the data directory to the postgres OS user.
func pgctlCommand(ctx context.Context, path, dataDir string, args ...string) (*exec.Cmd, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	if os.Geteuid() != 0 {
		return cmd, nil
	}
	fi, err := os.Stat(dataDir)
	if err != nil {
		return nil, fmt.Errorf("demo data directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil, fmt.Errorf("demo data directory %s is owned by root; PostgreSQL cannot run as root", dataDir)
	}
	// An empty Groups drops root's supplementary groups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: st.Uid, Gid: st.Gid, Groups: []uint32{}}}
	return cmd, nil
}
