//go:build !unix

package demo

import (
	"context"
	"os/exec"
)

// pgctlCommand returns a pg_ctl command run as the current user.
func pgctlCommand(ctx context.Context, path, _ string, args ...string) (*exec.Cmd, error) {
	return exec.CommandContext(ctx, path, args...), nil
}
