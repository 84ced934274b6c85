//go:build unix

package pgcluster

import (
	"fmt"
	"os"
	"os/exec"
)

// watchdogScript waits for EOF on stdin, which comes when the process that
// started the cluster exits (or calls Stop). It then shuts down a server that
// is still running (immediate mode: nothing in a throwaway cluster is worth
// a checkpoint) and, if asked, removes the cluster directory. A disarm line
// before the EOF (Detach) makes it exit instead. $1 is the data directory,
// $2 "remove" or "keep", $3 the cluster directory.
const watchdogScript = `if read -r line && [ "$line" = detach ]; then exit 0; fi
pid=$(head -n 1 "$1/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null; then
	i=0
	while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
fi
if [ "$2" = remove ]; then rm -rf "$3"; fi
`

// startWatchdog starts a shell that cleans up after the cluster if this
// process dies without calling Stop (a test binary killed by -timeout, a
// panic, SIGKILL). It holds the write end of the watchdog's stdin, which
// only release, disarm or this process's exit close.
func startWatchdog(dataDir, dir string, remove bool) (*watchdog, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("watchdog pipe: %w", err)
	}
	mode := "keep"
	if remove {
		mode = "remove"
	}
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "pgcluster-watchdog", dataDir, mode, dir)
	cmd.Stdin = r
	detach(cmd)
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	r.Close()
	wd := &watchdog{w: w, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // reap the shell; its exit status means nothing
		close(wd.done)
	}()
	return wd, nil
}
