package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// rawProc is one MCP server process on stdio, driven by a minimal JSON-RPC
// client of the driver's own: a request line out, the answer line back,
// decoded once. The side-by-side figures use it for airlock and for the
// peers alike, so that every server pays the same client. Answer lines
// longer than keepMax are not kept: only their length, head and tail (to
// tell a result from an error), so that a peer's answer to SELECT * on
// millions of rows cannot take the driver's memory with it.
type rawProc struct {
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stderr  *tail
	started time.Time
	keepMax int

	wmu     sync.Mutex
	nextID  atomic.Int64
	pmu     sync.Mutex
	pending map[int64]chan rawLine
	dead    chan struct{} // closed when stdout ends
	deadErr error
	waited  chan struct{} // closed when the process has been waited for
	// killedWhy is set by the memory watchdog before it kills the process.
	killedWhy atomic.Pointer[string]
}

// rawLine is one answer line from the server.
type rawLine struct {
	n          int64  // bytes, newline included
	body       []byte // the whole line, or nil when longer than keepMax
	head, tail []byte // the first and last bytes of a line not kept
}

const (
	rawHeadTail = 4 << 10
	// defaultKeepMax keeps any answer the driver decodes (the 10,000-row
	// table is a few MB); SELECT * on the big table may be far larger.
	defaultKeepMax = 64 << 20
)

// startRaw execs cmd and completes the MCP initialize handshake. Answer
// lines longer than keepMax bytes are counted, not kept.
func startRaw(ctx context.Context, name string, cmd *exec.Cmd, keepMax int) (*rawProc, error) {
	p := &rawProc{name: name, cmd: cmd, stderr: &tail{max: 16 << 10}, keepMax: keepMax,
		pending: map[int64]chan rawLine{}, dead: make(chan struct{}), waited: make(chan struct{})}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go p.readLoop(stdout)
	go func() {
		<-p.dead
		_ = cmd.Wait()
		close(p.waited)
	}()
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ln, err := p.request(ictx, "initialize", map[string]any{
		"protocolVersion": "2025-06-18",
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "airlock-bench", "version": "1"},
	})
	if err == nil {
		err = ln.rpcError()
	}
	if err != nil {
		p.close()
		return nil, fmt.Errorf("%s initialize: %w", name, err)
	}
	if err := p.send(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"}); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *rawProc) pid() int { return p.cmd.Process.Pid }

func (p *rawProc) send(msg any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_, err = p.stdin.Write(b)
	return err
}

// request sends one JSON-RPC request and waits for its answer line.
func (p *rawProc) request(ctx context.Context, method string, params any) (rawLine, error) {
	id := p.nextID.Add(1)
	ch := make(chan rawLine, 1)
	p.pmu.Lock()
	p.pending[id] = ch
	p.pmu.Unlock()
	defer func() {
		p.pmu.Lock()
		delete(p.pending, id)
		p.pmu.Unlock()
	}()
	if err := p.send(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params}); err != nil {
		return rawLine{}, p.exitError(err)
	}
	select {
	case ln := <-ch:
		return ln, nil
	case <-p.dead:
		// An answer may have been delivered just before the end.
		select {
		case ln := <-ch:
			return ln, nil
		default:
		}
		return rawLine{}, p.exitError(p.deadErr)
	case <-ctx.Done():
		return rawLine{}, fmt.Errorf("%s: no answer: %w", p.name, ctx.Err())
	}
}

// exitError explains why the server is gone: the watchdog, or its exit
// status and the end of its stderr.
func (p *rawProc) exitError(err error) error {
	select {
	case <-p.waited:
	case <-time.After(2 * time.Second):
	}
	msg := ""
	if why := p.killedWhy.Load(); why != nil {
		// Its stderr says nothing about being killed.
		return errors.New(*why)
	} else if ps := p.cmd.ProcessState; ps != nil {
		msg = "exited: " + ps.String()
	} else if err != nil {
		msg = err.Error()
	}
	if s := lastLines(p.stderr.String(), 3); s != "" {
		msg += "; stderr: " + s
	}
	return errors.New(msg)
}

// lastLines is the last n non-empty lines of s, joined with " / ".
func lastLines(s string, n int) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	s = strings.Join(keep, " / ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

var idPattern = regexp.MustCompile(`"id":\s*(\d+)`)

func (p *rawProc) readLoop(stdout io.Reader) {
	br := bufio.NewReaderSize(stdout, 1<<16)
	defer close(p.dead)
	for {
		var ln rawLine
		var buf []byte
		over := false
		for {
			chunk, err := br.ReadSlice('\n')
			ln.n += int64(len(chunk))
			if !over && len(buf)+len(chunk) <= p.keepMax {
				buf = append(buf, chunk...)
			} else {
				if !over {
					over = true
					ln.head = append([]byte(nil), buf[:min(len(buf), rawHeadTail)]...)
					ln.tail = buf[max(0, len(buf)-rawHeadTail):]
					buf = nil
				}
				ln.tail = append(ln.tail, chunk...)
				if len(ln.tail) > 2*rawHeadTail {
					ln.tail = append([]byte(nil), ln.tail[len(ln.tail)-rawHeadTail:]...)
				}
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				p.deadErr = fmt.Errorf("%s closed its stdout (%v)", p.name, err)
				return
			}
			break
		}
		var id int64 = -1
		if !over {
			ln.body = buf
			var m struct {
				ID *int64 `json:"id"`
			}
			if json.Unmarshal(buf, &m) == nil && m.ID != nil {
				id = *m.ID
			}
		} else {
			// Peers write "id" last, airlock first.
			if ms := idPattern.FindAllSubmatch(ln.tail, -1); len(ms) > 0 {
				id, _ = strconv.ParseInt(string(ms[len(ms)-1][1]), 10, 64)
			} else if m := idPattern.FindSubmatch(ln.head); m != nil {
				id, _ = strconv.ParseInt(string(m[1]), 10, 64)
			}
		}
		p.pmu.Lock()
		ch := p.pending[id]
		p.pmu.Unlock()
		if ch != nil {
			ch <- ln
		}
	}
}

// rpcError is the JSON-RPC error of an answer, if it is one.
func (ln rawLine) rpcError() error {
	if ln.body == nil {
		if strings.Contains(string(ln.head), `"error":{`) && !strings.Contains(string(ln.head), `"result"`) {
			return fmt.Errorf("JSON-RPC error: %s", ln.head)
		}
		return nil
	}
	var m struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(ln.body, &m); err != nil {
		return fmt.Errorf("answer is not JSON: %w", err)
	}
	if m.Error != nil {
		return fmt.Errorf("JSON-RPC error %d: %s", m.Error.Code, m.Error.Message)
	}
	return nil
}

// toolAnswer is a decoded tools/call result.
type toolAnswer struct {
	text       string
	structured json.RawMessage
	isError    bool
}

// callTool calls a tool with {"sql": sql} and decodes the result; a
// refusal or failure is an error. The line comes back too, for its bytes.
func (p *rawProc) callTool(ctx context.Context, tool, sql string) (toolAnswer, rawLine, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	ln, err := p.request(ctx, "tools/call", map[string]any{"name": tool, "arguments": map[string]any{"sql": sql}})
	if err != nil {
		return toolAnswer{}, ln, err
	}
	if err := ln.rpcError(); err != nil {
		return toolAnswer{}, ln, err
	}
	if ln.body == nil {
		// Too long to keep: a tool error puts isError at the end.
		if strings.Contains(string(ln.tail), `"isError":true`) {
			return toolAnswer{isError: true}, ln, fmt.Errorf("%s: tool error: %s", p.name, ln.head)
		}
		return toolAnswer{}, ln, nil
	}
	var m struct {
		Result struct {
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
			StructuredContent json.RawMessage `json:"structuredContent"`
			IsError           bool            `json:"isError"`
		} `json:"result"`
	}
	if err := json.Unmarshal(ln.body, &m); err != nil {
		return toolAnswer{}, ln, fmt.Errorf("%s: decode the answer: %w", p.name, err)
	}
	var a toolAnswer
	for _, c := range m.Result.Content {
		if c.Type == "text" {
			a.text += c.Text
		}
	}
	a.structured, a.isError = m.Result.StructuredContent, m.Result.IsError
	if a.isError {
		t := a.text
		if len(t) > 300 {
			t = t[:300] + "…"
		}
		return a, ln, fmt.Errorf("%s: tool error: %s", p.name, t)
	}
	return a, ln, nil
}

// close ends the session (EOF on stdin) and waits, killing the process
// after a grace period. It returns the peak RSS from rusage, in KiB.
func (p *rawProc) close() int64 {
	_ = p.stdin.Close()
	select {
	case <-p.waited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.waited
	}
	if ps := p.cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			return ru.Maxrss
		}
	}
	return 0
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux the driver runs on (getconf CLK_TCK).
const clockTick = 10 * time.Millisecond

// cpuTime is the process's user + system CPU so far, its waited-for
// children's included (fields 14-17 of /proc/PID/stat), over all threads.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields count from ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var ticks int64
	for _, k := range f[11:15] { // utime stime cutime cstime
		v, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += v
	}
	return time.Duration(ticks) * clockTick, nil
}

// watchMemory kills the process once its RSS passes limitKiB, polling
// until stop is closed; it returns the highest RSS it saw.
func (p *rawProc) watchMemory(limitKiB int64, stop <-chan struct{}) <-chan int64 {
	peak := make(chan int64, 1)
	go func() {
		var hi int64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		defer func() { peak <- hi }()
		for {
			select {
			case <-stop:
				return
			case <-p.dead:
				return
			case <-t.C:
			}
			rss, err := procStatusKiB(p.pid(), "VmRSS:")
			if err != nil {
				continue
			}
			hi = max(hi, rss)
			if rss > limitKiB {
				why := fmt.Sprintf("killed by the driver's memory watchdog at %s RSS (limit %s)", mib(rss), mib(limitKiB))
				p.killedWhy.Store(&why)
				_ = p.cmd.Process.Kill()
				return
			}
		}
	}()
	return peak
}
