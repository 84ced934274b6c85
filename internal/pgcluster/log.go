package pgcluster

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// setupLog routes the server log to w through a pipe, or to a file in the
// cluster directory when w is nil.
func (c *Cluster) setupLog(w io.Writer) {
	if w == nil {
		c.logPath = filepath.Join(c.dir, logName)
		return
	}
	r, pw, err := os.Pipe()
	if err != nil {
		c.logPath = filepath.Join(c.dir, logName)
		return
	}
	c.logW, c.tail, c.logDone = pw, &tailBuffer{}, make(chan struct{})
	go func() {
		defer close(c.logDone)
		defer r.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				c.tail.Write(buf[:n])
				// A failing Log must not stall the server on a full pipe.
				_, _ = w.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
}

// closeLog closes our end of the log pipe and waits for the copier to drain
// what the stopped server wrote.
func (c *Cluster) closeLog() {
	if c.logW == nil {
		return
	}
	c.logW.Close()
	c.logW = nil
	select {
	case <-c.logDone:
	case <-time.After(5 * time.Second):
	}
}

// logTail returns the last lines of the server log.
func (c *Cluster) logTail() string {
	var data []byte
	if c.tail != nil {
		data = c.tail.Bytes()
	} else if c.logPath != "" {
		f, err := os.Open(c.logPath)
		if err != nil {
			return fmt.Sprintf("(cannot read %s: %v)", c.logPath, err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Size() > logTailBytes {
			_, _ = f.Seek(-logTailBytes, io.SeekEnd)
		}
		data, _ = io.ReadAll(io.LimitReader(f, logTailBytes))
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "(empty)"
	}
	return s
}

// tailBuffer keeps the last logTailBytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - logTailBytes; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.buf)
}
