//go:build !unix

package pgcluster

import "os/exec"

// serverOwner is only needed on Unix, where PostgreSQL refuses to run as root.
type serverOwner struct{ name string }

func currentServerOwner() (*serverOwner, error) { return nil, nil }

func (o *serverOwner) apply(*exec.Cmd) {}

func (o *serverOwner) chownAll(string) error { return nil }

func (o *serverOwner) chown(string) error { return nil }

func (o *serverOwner) canTraverse(string) bool { return true }

func detach(*exec.Cmd) {}

// startWatchdog is a no-op without a POSIX shell: the server may outlive a
// crashed parent.
func startWatchdog(string, string, bool) (*watchdog, error) { return nil, nil }
