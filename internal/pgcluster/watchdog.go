package pgcluster

import (
	"os"
	"time"
)

// disarmLine is what the watchdog reads on its stdin to exit without
// touching the cluster; watchdogScript compares it without the newline.
const disarmLine = "detach\n"

// watchdog is the process that cleans up after a cluster whose parent died
// (see startWatchdog). A nil *watchdog, when none could start, does nothing.
type watchdog struct {
	w    *os.File      // write end of the watchdog's stdin
	done chan struct{} // closed once the watchdog has exited and been reaped
}

// release lets the watchdog clean up now: it stops the server if it still
// runs and removes the cluster directory if Start made it.
func (wd *watchdog) release() {
	if wd != nil {
		wd.w.Close()
	}
}

// disarm makes the watchdog exit without touching the cluster, and waits
// for it to be gone.
func (wd *watchdog) disarm() {
	if wd == nil {
		return
	}
	// The line reaches the watchdog before the EOF that close sends, even if
	// this process exits right away. A failed write means the watchdog is
	// gone already, which is as good.
	_, _ = wd.w.WriteString(disarmLine)
	wd.w.Close()
	// Waiting only makes Detach's effect visible when it returns; the
	// disarm line is in the pipe either way.
	select {
	case <-wd.done:
	case <-time.After(10 * time.Second):
	}
}
